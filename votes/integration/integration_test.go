// Package integration runs the votes table against the kumo emulator's
// DynamoDB and Step Functions through the real aws-sdk-go-v2 clients. It is
// its own package so that the votes package's unit tests do not wait for the
// emulator's lock.
package integration

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/feature/dynamodb/attributevalue"
	"github.com/aws/aws-sdk-go-v2/feature/dynamodb/expression"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	dbtypes "github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/aws/aws-sdk-go-v2/service/sfn"
	sfntypes "github.com/aws/aws-sdk-go-v2/service/sfn/types"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	"github.com/google/go-cmp/cmp"

	"github.com/sfn-approvals/sfn-approvals/approval"
	"github.com/sfn-approvals/sfn-approvals/internal/kumotest"
	"github.com/sfn-approvals/sfn-approvals/votes"
)

func TestMain(m *testing.M) { kumotest.Main(m) }

// definition waits for the task token like an approval state, with a
// heartbeat interval (kumo needs one for SendTaskHeartbeat) and a Catch that
// puts a veto's error and cause in the output, as a real workflow would.
func definition(queueURL string, timeoutSeconds int) string {
	return kumotest.TaskDefinition(queueURL, kumotest.Task{
		TimeoutSeconds: timeoutSeconds, HeartbeatSeconds: timeoutSeconds,
		Fields: []string{"to", "subject"}, CatchRejected: true,
	})
}

var (
	approve = approval.Action{Name: "approve", Type: approval.Success, Output: json.RawMessage(`{"approved":true}`)}
	reject  = approval.Action{Name: "reject", Type: approval.Failure, Error: "Rejected", Cause: "Rejected by approver"}
	extend  = approval.Action{Name: "extend", Type: approval.Heartbeat}
)

type env struct {
	db    *dynamodb.Client
	sfn   *sfn.Client
	sqs   *sqs.Client
	queue string
	table string
	store *votes.Store
}

func setup(t *testing.T) *env {
	t.Helper()
	cfg := kumotest.Config()
	e := &env{db: dynamodb.NewFromConfig(cfg), sfn: sfn.NewFromConfig(cfg), sqs: sqs.NewFromConfig(cfg)}
	e.queue, _ = kumotest.Queue(t, e.sqs, 3)
	e.table = kumotest.VotesTable(t, e.db)
	s, err := votes.New(e.db, votes.SFN(e.sfn), votes.Config{Table: e.table})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Check(context.Background()); err != nil {
		t.Fatalf("check: %v", err)
	}
	e.store = s
	return e
}

// start runs an execution and returns it with the task token its state
// machine put on the queue.
func (e *env) start(t *testing.T, timeoutSeconds int) (execARN, token string) {
	t.Helper()
	sm := kumotest.StateMachine(t, e.sfn, definition(e.queue, timeoutSeconds))
	execARN = kumotest.StartExecution(t, e.sfn, sm, map[string]any{"to": []string{"ann@example.com"}, "subject": "Deploy 42"})
	msg := kumotest.ReceiveOne(t, e.sqs, e.queue, 10*time.Second)
	var body struct {
		TaskToken string `json:"taskToken"`
	}
	if err := json.Unmarshal([]byte(aws.ToString(msg.Body)), &body); err != nil || body.TaskToken == "" {
		t.Fatalf("message body %q: %v", aws.ToString(msg.Body), err)
	}
	return execARN, body.TaskToken
}

var decidedAt = time.Now().UTC().Truncate(time.Second)

func ballot(token, approver string, a approval.Action, min int) votes.Vote {
	return votes.Vote{TaskToken: token, Action: a, MinApprovals: min, ExpiresAt: time.Now().Add(time.Hour),
		Decision: approval.Decision{Action: a.Name, Approver: approver, DecidedAt: decidedAt, Comment: "from " + approver}}
}

func dec(approver, action string) approval.Decision {
	return approval.Decision{Action: action, Approver: approver, DecidedAt: decidedAt, Comment: "from " + approver}
}

func (e *env) vote(t *testing.T, token, approver string, a approval.Action, min int) votes.Result {
	t.Helper()
	r, err := e.store.Vote(context.Background(), ballot(token, approver, a, min))
	if err != nil {
		t.Fatalf("vote by %s: %v", approver, err)
	}
	return r
}

// items reads every item of the request straight from the table.
func (e *env) items(t *testing.T, token string) []map[string]any {
	t.Helper()
	expr, err := expression.NewBuilder().WithKeyCondition(expression.Key("pk").Equal(expression.Value(votes.RequestKey(token)))).Build()
	if err != nil {
		t.Fatal(err)
	}
	out, err := e.db.Query(context.Background(), &dynamodb.QueryInput{TableName: aws.String(e.table),
		KeyConditionExpression: expr.KeyCondition(), ExpressionAttributeNames: expr.Names(),
		ExpressionAttributeValues: expr.Values(), ConsistentRead: aws.Bool(true)})
	if err != nil {
		t.Fatal(err)
	}
	var items []map[string]any
	if err := attributevalue.UnmarshalListOfMaps(out.Items, &items); err != nil {
		t.Fatal(err)
	}
	return items
}

func (e *env) completion(t *testing.T, token string) map[string]any {
	t.Helper()
	for _, it := range e.items(t, token) {
		if it["sk"] == "completion" {
			return it
		}
	}
	t.Fatal("no completion record")
	return nil
}

// Two of three approve: the second completes the execution with both
// approvals in decisions; the third is told who decided.
func TestTwoOfThree(t *testing.T) {
	e := setup(t)
	execARN, token := e.start(t, 120)

	if diff := cmp.Diff(votes.Result{Outcome: votes.VoteRecorded, Approvals: 1, Required: 2},
		e.vote(t, token, "ann@example.com", approve, 2)); diff != "" {
		t.Fatalf("first approval (-want +got):\n%s", diff)
	}
	if got := e.vote(t, token, "ann@example.com", approve, 2); got.Outcome != votes.AlreadyVoted || got.Approvals != 1 {
		t.Fatalf("Ann again: %+v", got)
	}
	if got := e.vote(t, token, "cat@example.com", extend, 2); got.Outcome != votes.Extended {
		t.Fatalf("heartbeat: %+v", got)
	}
	if d := kumotest.WaitStatus(t, e.sfn, execARN, 0); d.Status != sfntypes.ExecutionStatusRunning {
		t.Fatalf("below quorum the execution is %s", d.Status)
	}

	got := e.vote(t, token, "ben@example.com", approve, 2)
	if got.Outcome != votes.Decided || !got.Completed {
		t.Fatalf("second approval: %+v", got)
	}
	d := kumotest.WaitStatus(t, e.sfn, execARN, 10*time.Second)
	if d.Status != sfntypes.ExecutionStatusSucceeded {
		t.Fatalf("execution %s, want SUCCEEDED", d.Status)
	}
	var out struct {
		Approved  bool                `json:"approved"`
		Decision  approval.Decision   `json:"decision"`
		Decisions []approval.Decision `json:"decisions"`
	}
	if err := json.Unmarshal([]byte(aws.ToString(d.Output)), &out); err != nil {
		t.Fatalf("output %s: %v", aws.ToString(d.Output), err)
	}
	ann, ben := dec("ann@example.com", "approve"), dec("ben@example.com", "approve")
	if diff := cmp.Diff(ben, out.Decision); diff != "" || !out.Approved {
		t.Errorf("output %s: decision (-want +got):\n%s", aws.ToString(d.Output), diff)
	}
	if diff := cmp.Diff([]approval.Decision{ann, ben}, out.Decisions); diff != "" {
		t.Errorf("decisions (-want +got):\n%s", diff)
	}

	got = e.vote(t, token, "cat@example.com", approve, 2)
	if got.Outcome != votes.Gone || got.Decision == nil || got.Decision.Approver != "ben@example.com" ||
		got.Decision.Action != "approve" || !got.Decision.DecidedAt.Equal(decidedAt) {
		t.Fatalf("late approval: %+v", got)
	}

	// The record: a vote item for Ann, the completion for the quorum; all
	// expire a week after the links.
	items := e.items(t, token)
	var sks []string
	for _, it := range items {
		sks = append(sks, it["sk"].(string))
		if ttl, ok := it["ttl"].(float64); !ok || time.Unix(int64(ttl), 0).Before(time.Now().Add(7*24*time.Hour)) {
			t.Errorf("%s: ttl %v, want a week after the links", it["sk"], it["ttl"])
		}
	}
	if diff := cmp.Diff([]string{"completion", "vote#ann@example.com"}, sks); diff != "" {
		t.Errorf("items (-want +got):\n%s", diff)
	}
	if c := e.completion(t, token); c["status"] != "COMPLETED" {
		t.Errorf("completion %v", c)
	}
	ttl, err := e.db.DescribeTimeToLive(context.Background(), &dynamodb.DescribeTimeToLiveInput{TableName: aws.String(e.table)})
	if err != nil {
		t.Fatal(err)
	}
	if desc := ttl.TimeToLiveDescription; desc == nil || aws.ToString(desc.AttributeName) != "ttl" ||
		desc.TimeToLiveStatus != dbtypes.TimeToLiveStatusEnabled {
		t.Errorf("TTL %+v", desc)
	}
}

// A veto after one approval of a 2-of-3: the execution fails at once with
// the approval so far in the cause.
func TestVeto(t *testing.T) {
	e := setup(t)
	execARN, token := e.start(t, 120)
	e.vote(t, token, "ann@example.com", approve, 2)
	if got := e.vote(t, token, "ben@example.com", reject, 2); got.Outcome != votes.Decided || got.Type != approval.Failure || !got.Completed {
		t.Fatalf("veto: %+v", got)
	}
	var cause votes.Cause
	errName := kumotest.Rejection(t, e.sfn, execARN, 10*time.Second, &cause)
	want := votes.Cause{Message: "Rejected by approver", Decision: dec("ben@example.com", "reject"),
		Decisions: []approval.Decision{dec("ann@example.com", "approve")}}
	if diff := cmp.Diff(want, cause); diff != "" || errName != "Rejected" {
		t.Fatalf("error %q, cause (-want +got):\n%s", errName, diff)
	}
	if got := e.vote(t, token, "cat@example.com", approve, 2); got.Outcome != votes.Gone || got.Decision.Approver != "ben@example.com" {
		t.Fatalf("after the veto: %+v", got)
	}
}

// Five approvers click at once on requests needing 2 and 3 of them: exactly
// one call completes each task, with exactly minApprovals approvals.
func TestFiveApproversAtOnce(t *testing.T) {
	e := setup(t)
	for _, min := range []int{2, 3, 2, 3} {
		execARN, token := e.start(t, 120)
		results := make([]votes.Result, 5)
		errs := make([]error, 5)
		var wg sync.WaitGroup
		start := make(chan struct{})
		for i := range results {
			wg.Add(1)
			go func() {
				defer wg.Done()
				<-start
				results[i], errs[i] = e.store.Vote(context.Background(), ballot(token, fmt.Sprintf("p%d@example.com", i), approve, min))
			}()
		}
		close(start)
		wg.Wait()
		completed := 0
		for i, r := range results {
			if errs[i] != nil {
				t.Fatalf("vote %d: %v", i, errs[i])
			}
			if r.Completed {
				completed++
			}
		}
		if completed != 1 {
			t.Fatalf("min %d: %d calls completed the task, want 1: %+v", min, completed, results)
		}
		d := kumotest.WaitStatus(t, e.sfn, execARN, 10*time.Second)
		if d.Status != sfntypes.ExecutionStatusSucceeded {
			t.Fatalf("execution %s", d.Status)
		}
		var out struct {
			Decisions []approval.Decision `json:"decisions"`
		}
		if err := json.Unmarshal([]byte(aws.ToString(d.Output)), &out); err != nil {
			t.Fatal(err)
		}
		seen := map[string]bool{}
		for _, d := range out.Decisions {
			seen[d.Approver] = true
		}
		if len(out.Decisions) != min || len(seen) != min {
			t.Fatalf("min %d: decisions %+v", min, out.Decisions)
		}
		if c := e.completion(t, token); c["status"] != "COMPLETED" || len(c["decisions"].([]any)) != min {
			t.Fatalf("min %d: completion record %v", min, c)
		}
	}
}

// Quorum reached after Step Functions timed the task out: recorded as such,
// gone for everyone.
func TestTaskTimedOutAfterQuorum(t *testing.T) {
	e := setup(t)
	execARN, token := e.start(t, 1)
	e.vote(t, token, "ann@example.com", approve, 2)
	// A task state that times out fails its execution with States.Timeout.
	if d := kumotest.WaitStatus(t, e.sfn, execARN, 10*time.Second); d.Status != sfntypes.ExecutionStatusFailed ||
		aws.ToString(d.Error) != "States.Timeout" {
		t.Fatalf("execution %s (%s), want FAILED (States.Timeout)", d.Status, aws.ToString(d.Error))
	}
	got := e.vote(t, token, "ben@example.com", approve, 2)
	if got.Outcome != votes.Gone || got.Reason != "TaskTimedOut" || got.Completed {
		t.Fatalf("deciding vote: %+v", got)
	}
	if c := e.completion(t, token); c["status"] != "COMPLETED" || c["result"] != "TaskTimedOut" {
		t.Fatalf("completion record %v", c)
	}
	if got := e.vote(t, token, "cat@example.com", reject, 2); got.Outcome != votes.Gone || got.Reason != "TaskTimedOut" {
		t.Fatalf("afterwards: %+v", got)
	}
}

// No table: a clear error at the start (Check) and on a vote, and Step
// Functions is not called.
func TestTableMissing(t *testing.T) {
	e := setup(t)
	execARN, token := e.start(t, 120)
	s, err := votes.New(e.db, votes.SFN(e.sfn), votes.Config{Table: "no-such-votes-table"})
	if err != nil {
		t.Fatal(err)
	}
	checkErr := s.Check(context.Background())
	_, voteErr := s.Vote(context.Background(), ballot(token, "ann@example.com", approve, 1))
	for name, err := range map[string]error{"check": checkErr, "vote": voteErr} {
		var rnf *dbtypes.ResourceNotFoundException
		if !errors.Is(err, votes.ErrNoTable) || !errors.As(err, &rnf) {
			t.Errorf("%s: err = %v, want ErrNoTable over ResourceNotFoundException", name, err)
		}
	}
	t.Logf("check: %v", checkErr)
	if d := kumotest.WaitStatus(t, e.sfn, execARN, 0); d.Status != sfntypes.ExecutionStatusRunning {
		t.Fatalf("execution %s, want RUNNING", d.Status)
	}
}

// crashingTable is the real client until crash is set: from then on no write
// reaches the table, as when the caller's process has died.
type crashingTable struct {
	*dynamodb.Client
	crashed atomic.Bool
}

var errCrash = errors.New("the caller died")

func (c *crashingTable) PutItem(ctx context.Context, in *dynamodb.PutItemInput, o ...func(*dynamodb.Options)) (*dynamodb.PutItemOutput, error) {
	if c.crashed.Load() {
		return nil, errCrash
	}
	return c.Client.PutItem(ctx, in, o...)
}

func (c *crashingTable) UpdateItem(ctx context.Context, in *dynamodb.UpdateItemInput, o ...func(*dynamodb.Options)) (*dynamodb.UpdateItemOutput, error) {
	if c.crashed.Load() {
		return nil, errCrash
	}
	return c.Client.UpdateItem(ctx, in, o...)
}

// crashingTask dies (marking the table crashed) instead of calling Step
// Functions.
type crashingTask struct {
	votes.Task
	table *crashingTable
}

func (c crashingTask) Succeed(context.Context, string, string) error {
	c.table.crashed.Store(true)
	return errCrash
}

// The redeemer dies after the deciding vote claimed the decision and before
// Step Functions heard of it. Once the lease has run out, the next vote (a
// veto link, here) finishes the decision the dead caller made.
func TestCrashAfterDecidingVote(t *testing.T) {
	e := setup(t)
	execARN, token := e.start(t, 120)
	e.vote(t, token, "ann@example.com", approve, 2)

	ct := &crashingTable{Client: e.db}
	var now atomic.Int64
	now.Store(time.Now().UnixNano())
	clock := func() time.Time { return time.Unix(0, now.Load()) }
	dying, err := votes.New(ct, crashingTask{Task: votes.SFN(e.sfn), table: ct}, votes.Config{Table: e.table, Now: clock})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := dying.Vote(context.Background(), ballot(token, "ben@example.com", approve, 2)); !errors.Is(err, errCrash) {
		t.Fatalf("deciding vote: err = %v, want the crash", err)
	}
	if c := e.completion(t, token); c["status"] != "IN_PROGRESS" {
		t.Fatalf("completion record %v", c)
	}

	next, err := votes.New(e.db, votes.SFN(e.sfn), votes.Config{Table: e.table, Now: clock})
	if err != nil {
		t.Fatal(err)
	}
	r, err := next.Vote(context.Background(), ballot(token, "cat@example.com", reject, 2))
	if err != nil || r.Outcome != votes.Busy {
		t.Fatalf("within the lease: %+v, %v", r, err)
	}
	now.Add(int64(votes.DefaultLease))
	r, err = next.Vote(context.Background(), ballot(token, "cat@example.com", reject, 2))
	if err != nil || r.Outcome != votes.Gone || !r.Completed || r.Decision.Approver != "ben@example.com" {
		t.Fatalf("after the lease: %+v, %v", r, err)
	}
	d := kumotest.WaitStatus(t, e.sfn, execARN, 10*time.Second)
	var out struct {
		Decisions []approval.Decision `json:"decisions"`
	}
	if err := json.Unmarshal([]byte(aws.ToString(d.Output)), &out); err != nil || d.Status != sfntypes.ExecutionStatusSucceeded {
		t.Fatalf("execution %s, output %s: %v", d.Status, aws.ToString(d.Output), err)
	}
	if diff := cmp.Diff([]approval.Decision{dec("ann@example.com", "approve"), dec("ben@example.com", "approve")}, out.Decisions); diff != "" {
		t.Fatalf("decisions (-want +got):\n%s", diff)
	}
	if c := e.completion(t, token); c["status"] != "COMPLETED" {
		t.Fatalf("completion record %v", c)
	}
}
