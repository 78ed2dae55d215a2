package integration

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/feature/dynamodb/attributevalue"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	dbtypes "github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	sfntypes "github.com/aws/aws-sdk-go-v2/service/sfn/types"
	"github.com/google/go-cmp/cmp"

	"github.com/sfn-approvals/sfn-approvals/approval"
	"github.com/sfn-approvals/sfn-approvals/internal/kumotest"
	"github.com/sfn-approvals/sfn-approvals/link"
	"github.com/sfn-approvals/sfn-approvals/redeemer"
	"github.com/sfn-approvals/sfn-approvals/votes"
	"github.com/sfn-approvals/sfn-approvals/worker"
	"github.com/sfn-approvals/sfn-approvals/worker/workertest"
)

// quorumDefinition sends the execution input's approver policy with the
// task token and waits.
func quorumDefinition(queueURL string) string {
	return kumotest.TaskDefinition(queueURL, kumotest.Task{TimeoutSeconds: 300, Fields: []string{"to", "subject", "minApprovals", "requestedBy"}})
}

// The worker mints links under this base; the test sends them to the
// redeemer under test instead.
const workerBase = "https://approvals.example.com"

type quorumEnv struct {
	*env
	ddb   *dynamodb.Client
	table string
}

// setupQuorum runs a worker and a redeemer on one votes table in kumo.
func setupQuorum(t *testing.T) *quorumEnv {
	t.Helper()
	cfg := kumotest.Config()
	q := &quorumEnv{ddb: dynamodb.NewFromConfig(cfg)}
	q.table = kumotest.VotesTable(t, q.ddb)
	q.env = setup(t, func(c *redeemer.Config) { c.VotesTable, c.VotesClient = q.table, q.ddb })
	q.sm = kumotest.StateMachine(t, q.sfn, quorumDefinition(q.queue))

	stop := workertest.Start(t, worker.Config{
		QueueURL: q.queue, Sender: "approvals@example.com", BaseURL: workerBase, Keyring: q.kr,
		Concurrency: 4, ShutdownGrace: 5 * time.Second, ReceiveWait: time.Second,
		VotesTable: q.table, AWS: &cfg,
		Logger: slog.New(slog.NewJSONHandler(io.Discard, nil)),
	}, 15*time.Second)
	t.Cleanup(stop)
	return q
}

// request starts an execution and returns it with each approver's links,
// by action name, from the emails the worker sent.
func (q *quorumEnv) request(t *testing.T, to []string, min int, requestedBy string) (string, map[string]map[string]string) {
	t.Helper()
	subject := kumotest.Name("Deploy")
	exec := kumotest.StartExecution(t, q.sfn, q.sm, map[string]any{"to": to, "subject": subject,
		"minApprovals": min, "requestedBy": requestedBy})
	links := map[string]map[string]string{}
	linkRE := regexp.MustCompile(regexp.QuoteMeta(workerBase+link.PathPrefix) + `([A-Za-z0-9_-]+)`)
	for _, addr := range to {
		if strings.EqualFold(addr, requestedBy) {
			continue
		}
		e := waitEmailTo(t, addr, subject)
		links[addr] = map[string]string{}
		for _, m := range linkRE.FindAllStringSubmatch(e.Body, -1) {
			c, err := q.kr.Open(m[1], time.Now())
			if err != nil {
				t.Fatal(err)
			}
			if c.MinApprovals != min || !strings.EqualFold(c.RequestedBy, requestedBy) {
				t.Errorf("link claims minApprovals %d, requestedBy %q; want %d, %q", c.MinApprovals, c.RequestedBy, min, requestedBy)
			}
			links[addr][c.Action.Name] = q.baseURL + link.PathPrefix + m[1]
		}
	}
	return exec, links
}

func waitEmailTo(t *testing.T, addr, subject string) kumotest.SentEmail {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for time.Now().Before(deadline) {
		if es := kumotest.EmailsTo(t, addr, subject); len(es) > 0 {
			return es[0]
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatalf("no email to %s about %s", addr, subject)
	return kumotest.SentEmail{}
}

// answer is the redeemer's JSON answer.
type answer struct {
	Outcome       string    `json:"outcome"`
	Status        int       `json:"status"`
	Approver      string    `json:"approver"`
	Approvals     *int      `json:"approvals"`
	Required      *int      `json:"required"`
	DecidedBy     string    `json:"decidedBy"`
	DecidedAction string    `json:"decidedAction"`
	DecidedAt     time.Time `json:"decidedAt"`
}

func vote(t *testing.T, method, u, comment string) answer {
	t.Helper()
	var body io.Reader
	if method == http.MethodPost {
		body = strings.NewReader(url.Values{"comment": {comment}}.Encode())
	}
	req, _ := http.NewRequest(method, u, body)
	req.Header.Set("Accept", "application/json")
	if body != nil {
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	}
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

func approvers(ds []approval.Decision) []string {
	var out []string
	for _, d := range ds {
		out = append(out, d.Approver)
	}
	return out
}

func TestQuorumTwoOfThree(t *testing.T) {
	q := setupQuorum(t)
	exec, links := q.request(t, []string{"ann@example.com", "ben@example.com", "cy@example.com"}, 2, "req@example.com")

	if a := vote(t, http.MethodGet, links["ann@example.com"]["approve"], ""); a.Outcome != "confirm" || *a.Approvals != 0 || *a.Required != 2 {
		t.Errorf("first confirmation page = %+v, want confirm 0 of 2", a)
	}
	a := vote(t, http.MethodPost, links["ann@example.com"]["approve"], "fine")
	if a.Outcome != "vote_recorded" || a.Status != http.StatusOK || *a.Approvals != 1 || *a.Required != 2 {
		t.Fatalf("first approval = %+v, want vote_recorded 1 of 2", a)
	}
	if s := q.status(t, exec); s != sfntypes.ExecutionStatusRunning {
		t.Fatalf("after one of two approvals the execution is %s", s)
	}
	// Ann again, even with the other button: her vote stands.
	if a := vote(t, http.MethodPost, links["ann@example.com"]["reject"], ""); a.Outcome != "already_voted" || *a.Approvals != 1 {
		t.Errorf("second vote by ann = %+v, want already_voted", a)
	}
	if a := vote(t, http.MethodGet, links["ben@example.com"]["approve"], ""); a.Outcome != "confirm" || *a.Approvals != 1 {
		t.Errorf("ben's confirmation page = %+v, want confirm with 1 approval", a)
	}
	if a := vote(t, http.MethodPost, links["ben@example.com"]["approve"], "ship it"); a.Outcome != "recorded" {
		t.Fatalf("second approval = %+v, want recorded", a)
	}
	d := kumotest.WaitStatus(t, q.sfn, exec, 10*time.Second)
	if d.Status != sfntypes.ExecutionStatusSucceeded {
		t.Fatalf("execution %s, want SUCCEEDED", d.Status)
	}
	var out struct {
		Decision  approval.Decision   `json:"decision"`
		Decisions []approval.Decision `json:"decisions"`
	}
	if err := json.Unmarshal([]byte(aws.ToString(d.Output)), &out); err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]string{"ann@example.com", "ben@example.com"}, approvers(out.Decisions)); diff != "" {
		t.Errorf("decisions (-want +got):\n%s", diff)
	}
	if out.Decision.Approver != "ben@example.com" || out.Decisions[1].Comment != "ship it" {
		t.Errorf("decision = %+v, want ben's, with his comment", out.Decision)
	}

	// Cy comes too late: the page and the POST name who decided.
	for _, m := range []string{http.MethodGet, http.MethodPost} {
		a := vote(t, m, links["cy@example.com"]["approve"], "")
		if a.Outcome != "gone" || a.Status != http.StatusGone || a.DecidedBy != "ben@example.com" || a.DecidedAction != "approve" ||
			!a.DecidedAt.Equal(out.Decision.DecidedAt) {
			t.Errorf("%s by cy after quorum = %+v, want gone naming ben at %s", m, a, out.Decision.DecidedAt)
		}
	}
}

func TestQuorumVeto(t *testing.T) {
	q := setupQuorum(t)
	exec, links := q.request(t, []string{"ann@example.com", "ben@example.com", "cy@example.com"}, 2, "req@example.com")
	if a := vote(t, http.MethodPost, links["ann@example.com"]["approve"], ""); a.Outcome != "vote_recorded" {
		t.Fatalf("approval = %+v", a)
	}
	if a := vote(t, http.MethodPost, links["cy@example.com"]["reject"], "not today"); a.Outcome != "recorded" {
		t.Fatalf("veto = %+v, want recorded", a)
	}
	d := kumotest.WaitStatus(t, q.sfn, exec, 10*time.Second)
	if d.Status != sfntypes.ExecutionStatusFailed || aws.ToString(d.Error) != "Rejected" {
		t.Fatalf("execution %s (%s), want FAILED Rejected", d.Status, aws.ToString(d.Error))
	}
	var cause votes.Cause
	if err := json.Unmarshal([]byte(aws.ToString(d.Cause)), &cause); err != nil {
		t.Fatalf("cause %q: %v", aws.ToString(d.Cause), err)
	}
	if cause.Decision.Approver != "cy@example.com" || cause.Decision.Comment != "not today" ||
		!cmp.Equal([]string{"ann@example.com"}, approvers(cause.Decisions)) {
		t.Errorf("cause = %+v, want cy's veto with ann's approval", cause)
	}
	if a := vote(t, http.MethodPost, links["ben@example.com"]["approve"], ""); a.Outcome != "gone" || a.DecidedBy != "cy@example.com" || a.DecidedAction != "reject" {
		t.Errorf("approval after the veto = %+v, want gone naming cy", a)
	}
}

func TestRequesterExcluded(t *testing.T) {
	q := setupQuorum(t)
	_, links := q.request(t, []string{"Req@example.com", "ann@example.com"}, 1, "req@example.com")
	if _, ok := links["ann@example.com"]["approve"]; !ok {
		t.Fatal("ann got no approve link")
	}
	// The worker has sent ann's email, so it is done with the request: the
	// requester's would be there by now.
	if es := kumotest.EmailsTo(t, "req@example.com", ""); len(es) != 0 {
		for _, e := range es {
			if strings.Contains(e.Body, workerBase) {
				t.Errorf("the requester got an email with links: %q", e.Subject)
			}
		}
	}

	// A request whose only approver is the requester fails at once.
	exec := kumotest.StartExecution(t, q.sfn, q.sm, map[string]any{"to": []string{"req@example.com"},
		"subject": kumotest.Name("Self"), "minApprovals": 1, "requestedBy": "req@example.com"})
	d := kumotest.WaitStatus(t, q.sfn, exec, 20*time.Second)
	if d.Status != sfntypes.ExecutionStatusFailed || aws.ToString(d.Error) != worker.ErrInvalidRequest ||
		!strings.Contains(aws.ToString(d.Cause), "no approver left") {
		t.Fatalf("execution %s %s %s, want FAILED %s naming the missing approver", d.Status, aws.ToString(d.Error), aws.ToString(d.Cause), worker.ErrInvalidRequest)
	}
}

// Five approvers click at once on a request that needs three: exactly one
// call completes the task, with exactly three approvals.
func TestFiveApproversAtOnce(t *testing.T) {
	q := setupQuorum(t)
	to := []string{"p0@example.com", "p1@example.com", "p2@example.com", "p3@example.com", "p4@example.com"}
	exec, links := q.request(t, to, 3, "req@example.com")
	results := make([]answer, len(to))
	var wg sync.WaitGroup
	start := make(chan struct{})
	for i, addr := range to {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			for range 50 {
				results[i] = vote(t, http.MethodPost, links[addr]["approve"], "")
				if results[i].Outcome != "busy" {
					return
				}
				// Another call is giving Step Functions the answer: as a
				// browser would, ask again shortly.
				time.Sleep(100 * time.Millisecond)
			}
		}()
	}
	close(start)
	wg.Wait()
	d := kumotest.WaitStatus(t, q.sfn, exec, 10*time.Second)
	if d.Status != sfntypes.ExecutionStatusSucceeded {
		t.Fatalf("execution %s, want SUCCEEDED; answers %+v", d.Status, results)
	}
	var out struct {
		Decisions []approval.Decision `json:"decisions"`
	}
	if err := json.Unmarshal([]byte(aws.ToString(d.Output)), &out); err != nil {
		t.Fatal(err)
	}
	seen := map[string]bool{}
	for _, dd := range out.Decisions {
		seen[dd.Approver] = true
	}
	if len(out.Decisions) != 3 || len(seen) != 3 {
		t.Fatalf("decisions %v, want 3 distinct approvers", approvers(out.Decisions))
	}
	// Who is told what depends on the order the clicks reach the table: a
	// vote that lands before quorum is told vote_recorded and still counts in
	// the decision. What must hold: whoever is told recorded is in the
	// decision, and everyone in the decision was told their vote counted.
	recorded := 0
	counted := map[string]bool{}
	for _, a := range results {
		switch a.Outcome {
		case "recorded":
			recorded++
			counted[a.Approver] = true
			if !seen[a.Approver] {
				t.Errorf("%s was told recorded but is not in the decisions", a.Approver)
			}
		case "vote_recorded":
			counted[a.Approver] = true
		case "gone":
		default:
			t.Errorf("answer %+v", a)
		}
	}
	if recorded == 0 {
		t.Errorf("nobody was told recorded: %+v", results)
	}
	for addr := range seen {
		if !counted[addr] {
			t.Errorf("%s is in the decisions but was told neither recorded nor vote_recorded: %+v", addr, results)
		}
	}
	// One completion: the record says Step Functions took the answer, and
	// the redeemer completed the task once.
	c := q.completion(t, exec)
	if c["status"] != "COMPLETED" || c["result"] != nil {
		t.Errorf("completion record %v, want COMPLETED with no refusal", c)
	}
	if n := strings.Count(q.logs.String(), `"completed":true`); n != 1 {
		t.Errorf("%d calls completed the task, want 1:\n%s", n, q.logs)
	}
}

// completion reads the votes table's completion record of exec's request.
func (q *quorumEnv) completion(t *testing.T, exec string) map[string]any {
	t.Helper()
	out, err := q.ddb.Scan(context.Background(), &dynamodb.ScanInput{TableName: aws.String(q.table),
		FilterExpression: aws.String("sk = :c"), ExpressionAttributeValues: map[string]dbtypes.AttributeValue{
			":c": &dbtypes.AttributeValueMemberS{Value: "completion"}}})
	if err != nil {
		t.Fatal(err)
	}
	if len(out.Items) != 1 {
		t.Fatalf("%d completion records, want 1", len(out.Items))
	}
	var m map[string]any
	if err := attributevalue.UnmarshalMap(out.Items[0], &m); err != nil {
		t.Fatal(err)
	}
	return m
}

// A redeemer configured with a table that is not there refuses to start,
// naming the variable.
func TestVotesTableMissing(t *testing.T) {
	for _, kv := range kumotest.Env() {
		k, v, _ := strings.Cut(kv, "=")
		t.Setenv(k, v)
	}
	kr, _ := link.ParseKeyring(keys)
	err := redeemer.Run(context.Background(), redeemer.Config{
		BaseURL: "https://approvals.example.com", Keyring: kr, VotesTable: kumotest.Name("no-such-table"),
		ListenAddr: freeAddr(t), MetricsAddr: freeAddr(t), Logger: slog.New(slog.NewJSONHandler(io.Discard, nil)),
	})
	if err == nil || !strings.Contains(err.Error(), "APPROVALS_VOTES_TABLE") || !strings.Contains(err.Error(), "no such table") {
		t.Fatalf("Run with a missing table = %v, want an error naming APPROVALS_VOTES_TABLE", err)
	}
}
