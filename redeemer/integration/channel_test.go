package integration

import (
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	sfntypes "github.com/aws/aws-sdk-go-v2/service/sfn/types"
	"github.com/google/go-cmp/cmp"

	"github.com/sfn-approvals/sfn-approvals/approval"
	"github.com/sfn-approvals/sfn-approvals/channel"
	"github.com/sfn-approvals/sfn-approvals/identity"
	"github.com/sfn-approvals/sfn-approvals/identity/albtest"
	"github.com/sfn-approvals/sfn-approvals/internal/kumotest"
	"github.com/sfn-approvals/sfn-approvals/link"
	"github.com/sfn-approvals/sfn-approvals/redeemer"
	"github.com/sfn-approvals/sfn-approvals/worker"
	"github.com/sfn-approvals/sfn-approvals/worker/workertest"
)

// channelQuorumDefinition is quorumDefinition with the request's channels.
func channelQuorumDefinition(queueURL string) string {
	return kumotest.TaskDefinition(queueURL, kumotest.Task{TimeoutSeconds: 300, Fields: []string{"to", "channels", "subject", "minApprovals", "requestedBy"}})
}

// webhookBody is the part of a webhook channel's message the test reads.
type webhookBody struct {
	Subject      string `json:"subject"`
	MinApprovals int    `json:"minApprovals"`
	RequestedBy  string `json:"requestedBy"`
	Actions      []struct {
		Name, URL string
	} `json:"actions"`
}

// M of N through one channel link under sign-in: a worker posts the
// request to a webhook channel, and two signed-in approvers pressing the
// same button are two votes in kumo's votes table; the same one twice is
// already_voted (also through the email's link), the requester and someone
// the request was not sent to are refused, and the execution's decisions
// name each by email.
func TestChannelQuorumSignedIn(t *testing.T) {
	cfg := kumotest.Config()
	ddb := dynamodb.NewFromConfig(cfg)
	table := kumotest.VotesTable(t, ddb)
	alb := albtest.New(t)
	e := setup(t, func(c *redeemer.Config) {
		c.VotesTable, c.VotesClient = table, ddb
		c.Identity = redeemer.IdentityALB
		c.ALB = identity.Config{ALBARN: alb.ARN, KeysURL: alb.KeysURL()}
	})
	e.sm = kumotest.StateMachine(t, e.sfn, channelQuorumDefinition(e.queue))

	posts := make(chan webhookBody, 4)
	hook := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var b webhookBody
		if err := json.NewDecoder(r.Body).Decode(&b); err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		posts <- b
		w.WriteHeader(http.StatusNoContent)
	}))
	t.Cleanup(hook.Close)
	chans, err := channel.Parse(fmt.Sprintf(`{"ops": {"type": "webhook", "url": %q, "secret": "0123456789abcdef-secret"}}`, hook.URL+"/hook"))
	if err != nil {
		t.Fatal(err)
	}
	stop := workertest.Start(t, worker.Config{
		QueueURL: e.queue, Sender: "approvals@example.com", BaseURL: workerBase, Keyring: e.kr,
		Concurrency: 2, ShutdownGrace: 5 * time.Second, ReceiveWait: time.Second,
		VotesTable: table, Channels: chans, AWS: &cfg,
		Logger: slog.New(slog.NewJSONHandler(io.Discard, nil)),
	}, 15*time.Second)
	t.Cleanup(stop)

	subject := kumotest.Name("Deploy")
	exec := kumotest.StartExecution(t, e.sfn, e.sm, map[string]any{"subject": subject, "channels": []string{"ops"},
		"to": []string{"ann@example.com", "ben@example.com", "cy@example.com"}, "minApprovals": 2, "requestedBy": "req@example.com"})
	var msg webhookBody
	select {
	case msg = <-posts:
	case <-time.After(20 * time.Second):
		t.Fatal("no post to the webhook channel")
	}
	if msg.Subject != subject || msg.MinApprovals != 2 || msg.RequestedBy != "req@example.com" {
		t.Fatalf("channel message %+v, want the subject, minApprovals 2, requestedBy req@example.com", msg)
	}
	var approve string
	for _, a := range msg.Actions {
		if a.Name == "approve" {
			approve = e.baseURL + strings.TrimPrefix(a.URL, workerBase)
		}
	}
	if approve == "" {
		t.Fatalf("no approve link in %+v", msg.Actions)
	}

	steps := []struct {
		sub, email string
		want       answer
	}{
		{"00u1req", "req@example.com", answer{Outcome: "forbidden", Status: http.StatusForbidden, Approver: "channel:ops"}},
		{"00u1dee", "dee@example.com", answer{Outcome: "forbidden", Status: http.StatusForbidden, Approver: "channel:ops"}},
		{"00u1ann", "ann@example.com", answer{Outcome: "vote_recorded", Status: http.StatusOK, Approver: "ann@example.com", Approvals: ptr(1), Required: ptr(2)}},
		{"00u1ann", "Ann@Example.com", answer{Outcome: "already_voted", Status: http.StatusOK, Approver: "Ann@Example.com", Approvals: ptr(1), Required: ptr(2)}},
	}
	for _, s := range steps {
		got := signedVote(t, approve, alb.Header(s.sub, s.email))
		got.DecidedAt = time.Time{}
		if diff := cmp.Diff(s.want, got); diff != "" {
			t.Errorf("POST as %s (-want +got):\n%s", s.email, diff)
		}
	}
	// Her email's link is the same approver: votes count per email.
	linkRE := regexp.MustCompile(regexp.QuoteMeta(workerBase+link.PathPrefix) + `[A-Za-z0-9_-]+`)
	emailLink := linkRE.FindString(waitEmailTo(t, "ann@example.com", subject).Body)
	if emailLink == "" {
		t.Fatal("no link in ann's email")
	}
	if got := signedVote(t, e.baseURL+strings.TrimPrefix(emailLink, workerBase), alb.Header("00u1ann", "ann@example.com")); got.Outcome != "already_voted" {
		t.Errorf("ann's email link after her channel vote = %+v, want already_voted", got)
	}
	if s := e.status(t, exec); s != sfntypes.ExecutionStatusRunning {
		t.Fatalf("after one approval of two the execution is %s", s)
	}
	if got := signedVote(t, approve, alb.Header("00u1ben", "ben@example.com")); got.Outcome != "recorded" {
		t.Fatalf("ben's approval = %+v, want recorded", got)
	}
	d := kumotest.WaitStatus(t, e.sfn, exec, 10*time.Second)
	if d.Status != sfntypes.ExecutionStatusSucceeded {
		t.Fatalf("execution %s, want SUCCEEDED", d.Status)
	}
	var out struct {
		Decisions []approval.Decision `json:"decisions"`
	}
	if err := json.Unmarshal([]byte(aws.ToString(d.Output)), &out); err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]string{"ann@example.com", "ben@example.com"}, approvers(out.Decisions)); diff != "" {
		t.Errorf("decisions' approvers (-want +got):\n%s", diff)
	}
	for _, dd := range out.Decisions {
		if dd.Identity == nil || dd.Identity.Email != dd.Approver {
			t.Errorf("decision %+v: want the sign-in's identity beside its approver", dd)
		}
	}
}

func ptr(n int) *int { return &n }

// signedVote POSTs an empty comment as the signed-in user of header and
// reads the JSON answer.
func signedVote(t *testing.T, u, header string) answer {
	t.Helper()
	req, _ := http.NewRequest(http.MethodPost, u, strings.NewReader(url.Values{"comment": {""}}.Encode()))
	req.Header.Set("Accept", "application/json")
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set(identity.Header, header)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var a answer
	if err := json.NewDecoder(resp.Body).Decode(&a); err != nil {
		t.Fatal(err)
	}
	if a.Status != resp.StatusCode {
		t.Errorf("JSON status %d, HTTP %d", a.Status, resp.StatusCode)
	}
	return a
}
