package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sfn"
	sfntypes "github.com/aws/aws-sdk-go-v2/service/sfn/types"
	"github.com/google/go-cmp/cmp"

	"github.com/sfn-approvals/sfn-approvals/internal/kumo"
	"github.com/sfn-approvals/sfn-approvals/internal/kumotest"
	"github.com/sfn-approvals/sfn-approvals/internal/stack"
)

// The inbox starts a 2-of-3 request and shows the three approvers' emails
// side by side; two approve in the browser, and the second sees the
// execution succeed with both votes in decisions.
func TestBrowserQuorum(t *testing.T) {
	s := setup(t)
	inbox := httptest.NewServer(s.Inbox())
	defer inbox.Close()
	before := quorumExecutions(t, s)

	b := newBrowser(t)
	b.navigate(t, inbox.URL)
	b.waitFor(t, `document.querySelector("form[action='/start/quorum'] button") !== null`, 10*time.Second)
	b.eval(t, `document.querySelector("form[action='/start/quorum']").requestSubmit()`)
	b.waitFor(t, `location.hash === "#quorum" && document.readyState === "complete"`, 10*time.Second)
	if n := len(quorumExecutions(t, s)); n != len(before)+1 {
		t.Fatalf("%d quorum executions after the button, want %d", n, len(before)+1)
	}
	// The worker sends the emails within a second or two; load the page
	// again (a new query, so not a same-document jump), as its own refresh
	// would.
	for look := 0; b.eval(t, `document.querySelectorAll(".quorum iframe").length`) != float64(3); look++ {
		if look == 60 {
			t.Fatalf("the inbox never showed the three approvers' emails")
		}
		time.Sleep(500 * time.Millisecond)
		b.navigate(t, fmt.Sprintf("%s/?look=%d#quorum", inbox.URL, look))
	}
	srcs, _ := b.eval(t, `[...document.querySelectorAll(".quorum iframe")].map(f => f.getAttribute("src"))`).([]any)
	execs := quorumExecutions(t, s)
	arn := aws.ToString(execs[0].ExecutionArn)

	emails, err := kumo.SentEmails(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	byID := map[string]kumo.SentEmail{}
	for _, e := range emails {
		byID[e.MessageID] = e
	}
	var links []map[string]string
	subject := ""
	for i, src := range srcs {
		id := strings.TrimSuffix(strings.TrimPrefix(src.(string), "/email/"), "?newtab")
		e, ok := byID[id]
		if !ok || !strings.Contains(e.Destination.ToAddresses[0], stack.QuorumApprovers[i]) {
			t.Fatalf("column %d shows email %q, want %s's", i, id, stack.QuorumApprovers[i])
		}
		subject = e.Subject
		links = append(links, actionLinks(t, s, e))
	}
	if got := kumotest.EmailsTo(t, stack.QuorumRequester, subject); len(got) != 0 {
		t.Errorf("the requester got %d emails for their own request", len(got))
	}

	approve := func(i int, comment string) {
		t.Helper()
		b.navigate(t, links[i]["approve"])
		b.waitFor(t, `document.querySelector("form textarea") !== null`, 10*time.Second)
		want := []string{"This request needs 2 approvals and has 0.", "This request needs 2 approvals and has 1."}[i]
		if got := b.eval(t, `document.querySelector(".tally").textContent`); !strings.Contains(got.(string), want) {
			t.Errorf("%s's confirmation page says %q, want %q", stack.QuorumApprovers[i], got, want)
		}
		b.eval(t, `document.querySelector("form textarea").value = `+jsString(comment))
		b.eval(t, `document.querySelector("form").requestSubmit()`)
		b.waitFor(t, `document.readyState === "complete" && document.querySelector("form textarea") === null`, 20*time.Second)
	}

	approve(0, "Looks right to me.")
	if got := b.eval(t, `document.body.innerText`).(string); !strings.Contains(got, "Approval recorded") || !strings.Contains(got, "1 of 2 approvals") {
		t.Errorf("after the first approval the page says:\n%s", got)
	}
	if st := describe(t, s, arn).Status; st != sfntypes.ExecutionStatusRunning {
		t.Fatalf("after one approval of two the execution is %s", st)
	}

	approve(1, "Second pair of eyes: go.")
	if got := b.eval(t, `document.body.innerText`).(string); !strings.Contains(got, "Decision recorded") {
		t.Errorf("after the second approval the page says:\n%s", got)
	}
	d := kumotest.WaitStatus(t, s.SFN, arn, 20*time.Second)
	if d.Status != sfntypes.ExecutionStatusSucceeded {
		t.Fatalf("execution %s after the second approval, want SUCCEEDED", d.Status)
	}
	var out struct {
		Approval struct {
			Decisions []struct {
				Approver string `json:"approver"`
				Comment  string `json:"comment"`
			} `json:"decisions"`
		} `json:"approval"`
	}
	if err := json.Unmarshal([]byte(aws.ToString(d.Output)), &out); err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, dd := range out.Approval.Decisions {
		got = append(got, dd.Approver+": "+dd.Comment)
	}
	want := []string{"alice@example.com: Looks right to me.", "bob@example.com: Second pair of eyes: go."}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("decisions (-want +got):\n%s", diff)
	}

	// The second approver sees the execution succeed in the inbox.
	b.navigate(t, inbox.URL)
	b.waitFor(t, `[...document.querySelectorAll("#executions tr")].some(r => r.textContent.includes(`+jsString(execName(arn))+`) && r.textContent.includes("SUCCEEDED"))`, 10*time.Second)

	// Carol comes too late: her page names who decided.
	b.navigate(t, links[2]["approve"])
	b.waitFor(t, `document.querySelector(".decided-by") !== null`, 10*time.Second)
	if got := b.eval(t, `document.querySelector(".decided-by").textContent`); got != "bob@example.com" {
		t.Errorf("carol's page names %v as the decider, want bob@example.com", got)
	}
}

func quorumExecutions(t *testing.T, s *stack.Stack) []sfntypes.ExecutionListItem {
	t.Helper()
	out, err := s.SFN.ListExecutions(context.Background(), &sfn.ListExecutionsInput{StateMachineArn: aws.String(s.QuorumStateMachineARN)})
	if err != nil {
		t.Fatal(err)
	}
	return out.Executions
}

func execName(arn string) string { return arn[strings.LastIndex(arn, ":")+1:] }
