package e2e

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/mail"
	"net/url"
	"regexp"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sfn"
	sfntypes "github.com/aws/aws-sdk-go-v2/service/sfn/types"

	"github.com/sfn-approvals/sfn-approvals/internal/kumo"
	"github.com/sfn-approvals/sfn-approvals/internal/kumotest"
	"github.com/sfn-approvals/sfn-approvals/internal/stack"
	"github.com/sfn-approvals/sfn-approvals/link"
)

var execSeq atomic.Int64

func init() { execSeq.Store(time.Now().Unix() % 100000 * 10) }

// startApproval starts the example state machine for the given approvers and
// returns the execution ARN and the (unique) subject.
func startApproval(t *testing.T, s *stack.Stack, approvers ...string) (string, string) {
	t.Helper()
	in := stack.DefaultInput(execSeq.Add(1))
	if len(approvers) > 0 {
		in["approvers"] = approvers
	}
	arn, err := s.StartExecution(context.Background(), in)
	if err != nil {
		t.Fatal(err)
	}
	return arn, in["subject"].(string)
}

// waitEmail waits for the one email to addr whose subject contains subject.
func waitEmail(t *testing.T, addr, subject string) kumo.SentEmail {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		if got := kumotest.EmailsTo(t, addr, subject); len(got) > 0 {
			if len(got) > 1 {
				t.Fatalf("%d emails to %s for %q, want 1", len(got), addr, subject)
			}
			return got[0]
		}
		if time.Now().After(deadline) {
			t.Fatalf("no email to %s with subject %q within 20s", addr, subject)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

var linkRE = regexp.MustCompile(`https?://[^\s"'<>]+` + regexp.QuoteMeta(link.PathPrefix) + `[A-Za-z0-9_-]+`)

// actionLinks returns the email's links by action name, checking that the
// HTML and the text part carry the same set and that each link belongs to
// the email's recipient.
func actionLinks(t *testing.T, s *stack.Stack, e kumo.SentEmail) map[string]string {
	t.Helper()
	byAction := map[string]string{}
	for _, u := range linkRE.FindAllString(e.Body, -1) {
		c, err := s.Keyring.Open(strings.TrimPrefix(u, s.RedeemerURL+link.PathPrefix), time.Now())
		if err != nil {
			t.Fatalf("link in the email does not open: %v", err)
		}
		to, err := mail.ParseAddress(e.Destination.ToAddresses[0])
		if err != nil {
			t.Fatalf("email to %q: %v", e.Destination.ToAddresses[0], err)
		}
		if c.Recipient != to.Address {
			t.Errorf("link for %q in an email to %q", c.Recipient, to.Address)
		}
		byAction[c.Action.Name] = u
	}
	for name, u := range byAction {
		if !strings.Contains(e.HTMLBody, u) {
			t.Errorf("%s link of the text part is missing from the HTML part", name)
		}
	}
	return byAction
}

func do(t *testing.T, method, u string, form url.Values) (int, string) {
	t.Helper()
	var body io.Reader
	if form != nil {
		body = strings.NewReader(form.Encode())
	}
	req, err := http.NewRequest(method, u, body)
	if err != nil {
		t.Fatal(err)
	}
	if form != nil {
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	}
	client := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	resp, err := client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

func describe(t *testing.T, s *stack.Stack, arn string) *sfn.DescribeExecutionOutput {
	t.Helper()
	return kumotest.WaitStatus(t, s.SFN, arn, 0)
}

func TestApprovePath(t *testing.T) {
	s := setup(t)
	arn, subject := startApproval(t, s)
	email := waitEmail(t, "approver@example.com", subject)
	links := actionLinks(t, s, email)
	if links["approve"] == "" || links["reject"] == "" {
		t.Fatalf("links by action = %v, want approve and reject", links)
	}

	// Mail scanners fetch links: GET and HEAD decide nothing.
	if code, body := do(t, http.MethodGet, links["approve"], nil); code != 200 || !strings.Contains(body, "<form") {
		t.Fatalf("GET link: %d\n%s", code, body)
	}
	if code, _ := do(t, http.MethodHead, links["approve"], nil); code != 200 {
		t.Fatalf("HEAD link: %d", code)
	}
	if st := describe(t, s, arn).Status; st != sfntypes.ExecutionStatusRunning {
		t.Fatalf("after GET and HEAD the execution is %s, want RUNNING", st)
	}

	if code, body := do(t, http.MethodPost, links["approve"], url.Values{"comment": {"ship it"}}); code != 200 {
		t.Fatalf("POST approve: %d\n%s", code, body)
	}
	d := kumotest.WaitStatus(t, s.SFN, arn, 20*time.Second)
	if d.Status != sfntypes.ExecutionStatusSucceeded {
		t.Fatalf("execution %s (%s: %s), want SUCCEEDED", d.Status, aws.ToString(d.Error), aws.ToString(d.Cause))
	}
	var out struct {
		Approval struct {
			Approved bool `json:"approved"`
			Decision struct {
				Action    string    `json:"action"`
				Approver  string    `json:"approver"`
				DecidedAt time.Time `json:"decidedAt"`
				Comment   string    `json:"comment"`
			} `json:"decision"`
		} `json:"approval"`
	}
	if err := json.Unmarshal([]byte(aws.ToString(d.Output)), &out); err != nil {
		t.Fatalf("output %s: %v", aws.ToString(d.Output), err)
	}
	dec := out.Approval.Decision
	if !out.Approval.Approved || dec.Action != "approve" || dec.Approver != "approver@example.com" || dec.Comment != "ship it" || dec.DecidedAt.IsZero() {
		t.Errorf("the custom output and the decision did not reach the next state: %s", aws.ToString(d.Output))
	}

	// The state machine's NotifyApproved step sends the requester a
	// notification through the same queue.
	note := waitEmail(t, "requester@example.com", subject)
	if linkRE.MatchString(note.Body) {
		t.Errorf("a notification carries approval links:\n%s", note.Body)
	}

	// With the votes table (the stack has one) a replayed POST gets its
	// decision again, and changes nothing.
	if code, body := do(t, http.MethodPost, links["approve"], url.Values{"comment": {"again"}}); code != http.StatusOK || !strings.Contains(body, "Decision recorded") {
		t.Errorf("replayed POST: %d, want 200 with the same decision\n%s", code, body)
	}
	if code, _ := do(t, http.MethodPost, links["reject"], nil); code != http.StatusGone {
		t.Errorf("POST of the other action after the decision: %d, want 410", code)
	}
}

func TestRejectPath(t *testing.T) {
	s := setup(t)
	arn, subject := startApproval(t, s)
	links := actionLinks(t, s, waitEmail(t, "approver@example.com", subject))
	if code, body := do(t, http.MethodPost, links["reject"], url.Values{"comment": {"not on a Friday"}}); code != 200 {
		t.Fatalf("POST reject: %d\n%s", code, body)
	}
	d := kumotest.WaitStatus(t, s.SFN, arn, 20*time.Second)
	// The Catch on Rejected sends the notification, then fails the execution.
	if d.Status != sfntypes.ExecutionStatusFailed || aws.ToString(d.Error) != "Rejected" {
		t.Fatalf("execution %s error %q, want FAILED Rejected", d.Status, aws.ToString(d.Error))
	}
	note := waitEmail(t, "requester@example.com", subject)
	if !strings.Contains(note.Body+note.HTMLBody, "not on a Friday") {
		t.Errorf("the rejection notification does not carry the approver's comment:\n%s", note.Body)
	}
}

func TestExpiredLink(t *testing.T) {
	s := setup(t)
	arn, subject := startApproval(t, s)
	links := actionLinks(t, s, waitEmail(t, "approver@example.com", subject))
	c, err := s.Keyring.Open(strings.TrimPrefix(links["approve"], s.RedeemerURL+link.PathPrefix), time.Now())
	if err != nil {
		t.Fatal(err)
	}
	c.ExpiresAt = time.Now().Add(-time.Minute).Truncate(time.Second)
	expired, err := s.Keyring.URL(s.RedeemerURL, c)
	if err != nil {
		t.Fatal(err)
	}
	for _, method := range []string{http.MethodGet, http.MethodPost} {
		if code, _ := do(t, method, expired, url.Values{}); code != http.StatusGone {
			t.Errorf("%s of an expired link: %d, want 410", method, code)
		}
	}
	if st := describe(t, s, arn).Status; st != sfntypes.ExecutionStatusRunning {
		t.Errorf("an expired link changed the execution: %s", st)
	}
	// A link altered by one character is refused outright.
	tampered := []byte(links["approve"])
	i := len(tampered) - 5
	if tampered[i] == 'A' {
		tampered[i] = 'B'
	} else {
		tampered[i] = 'A'
	}
	if code, _ := do(t, http.MethodPost, string(tampered), url.Values{}); code != http.StatusBadRequest && code != http.StatusNotFound {
		t.Errorf("POST of a tampered link: %d, want 400 or 404", code)
	}
	if st := describe(t, s, arn).Status; st != sfntypes.ExecutionStatusRunning {
		t.Errorf("a tampered link changed the execution: %s", st)
	}
}

func TestTwoRecipientsEachGetTheirOwnLinks(t *testing.T) {
	s := setup(t)
	arn, subject := startApproval(t, s, "ana@example.com", "ben@example.com")
	ana := actionLinks(t, s, waitEmail(t, "ana@example.com", subject))
	ben := actionLinks(t, s, waitEmail(t, "ben@example.com", subject))
	if ana["approve"] == "" || ben["approve"] == "" || ana["approve"] == ben["approve"] {
		t.Fatalf("links are not personal: ana %v, ben %v", ana, ben)
	}
	if code, body := do(t, http.MethodPost, ben["approve"], url.Values{}); code != 200 {
		t.Fatalf("POST: %d\n%s", code, body)
	}
	d := kumotest.WaitStatus(t, s.SFN, arn, 20*time.Second)
	if !strings.Contains(aws.ToString(d.Output), `"approver":"ben@example.com"`) {
		t.Errorf("decision does not record ben: %s", aws.ToString(d.Output))
	}
	if code, _ := do(t, http.MethodPost, ana["approve"], url.Values{}); code != http.StatusGone {
		t.Errorf("second approver after the decision: %d, want 410", code)
	}
}

func TestInvalidRequestFailsFast(t *testing.T) {
	s := setup(t)
	// With no Catch, the execution fails with the worker's own error name.
	sm := kumotest.StateMachine(t, s.SFN, kumotest.WaitForTokenDefinition(s.QueueURL, 300))
	arn := kumotest.StartExecution(t, s.SFN, sm, map[string]any{"to": []string{"not an address"}, "subject": "bad request"})
	d := kumotest.WaitStatus(t, s.SFN, arn, 20*time.Second)
	if d.Status != sfntypes.ExecutionStatusFailed || aws.ToString(d.Error) != "Approvals.InvalidRequest" {
		t.Fatalf("execution %s error %q, want FAILED Approvals.InvalidRequest", d.Status, aws.ToString(d.Error))
	}
	if !strings.Contains(aws.ToString(d.Cause), "not an address") {
		t.Errorf("cause does not name the bad address: %s", aws.ToString(d.Cause))
	}

	// The example state machine catches it and ends in its RequestFailed state.
	arn, _ = startApproval(t, s, "nobody-at-all")
	d = kumotest.WaitStatus(t, s.SFN, arn, 20*time.Second)
	if d.Status != sfntypes.ExecutionStatusFailed || aws.ToString(d.Error) != "Approvals.RequestFailed" {
		t.Fatalf("example state machine: %s %q, want FAILED Approvals.RequestFailed", d.Status, aws.ToString(d.Error))
	}
}
