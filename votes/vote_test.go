package votes

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/aws/smithy-go"
	"github.com/google/go-cmp/cmp"

	"github.com/sfn-approvals/sfn-approvals/approval"
)

const (
	tableName = "approvals-votes"
	token     = "AAAAKgAAAAIAAAAAAAAAAbogus-task-token-of-some-length"
)

var (
	t0      = time.Date(2026, 12, 1, 10, 0, 0, 0, time.UTC)
	expires = t0.Add(72 * time.Hour)

	approve = approval.Action{Name: "approve", Type: approval.Success, Output: json.RawMessage(`{"approved":true}`)}
	reject  = approval.Action{Name: "reject", Type: approval.Failure, Error: "Rejected", Cause: "Rejected by approver"}
	extend  = approval.Action{Name: "extend", Type: approval.Heartbeat}
)

// clock is a settable time source safe for concurrent votes.
type clock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(time.Millisecond) // every vote a distinct moment
	return c.now
}

func (c *clock) advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

type bundle struct {
	table *fakeTable
	task  *fakeTask
	clock *clock
	store *Store
}

func setup(t *testing.T) *bundle {
	t.Helper()
	b := &bundle{table: newFakeTable(tableName), task: newFakeTask(), clock: &clock{now: t0}}
	s, err := New(b.table, b.task, Config{Table: tableName, Lease: time.Minute, Now: b.clock.Now})
	if err != nil {
		t.Fatal(err)
	}
	b.store = s
	return b
}

// vote casts approver's vote on the request, which needs min approvals.
func (b *bundle) vote(t *testing.T, approver string, a approval.Action, min int) Result {
	t.Helper()
	r, err := b.store.Vote(context.Background(), ballot(approver, a, min))
	if err != nil {
		t.Fatalf("vote by %s: %v", approver, err)
	}
	return r
}

func ballot(approver string, a approval.Action, min int) Vote {
	return Vote{TaskToken: token, Action: a, MinApprovals: min, ExpiresAt: expires,
		Decision: approval.Decision{Action: a.Name, Approver: approver, DecidedAt: t0, Comment: "from " + approver}}
}

func dec(approver, action string) approval.Decision {
	return approval.Decision{Action: action, Approver: approver, DecidedAt: t0, Comment: "from " + approver}
}

// completion reads the request's completion record.
func (b *bundle) completion(t *testing.T) completionItem {
	t.Helper()
	it := b.table.item(RequestKey(token), skCompletion)
	if it == nil {
		t.Fatal("no completion record")
	}
	var c completionItem
	if err := unmarshal(it, &c); err != nil {
		t.Fatal(err)
	}
	return c
}

// ignoreRetry leaves RetryAfter out of comparisons where only Busy sets it.
var ignoreRetry = cmp.FilterPath(func(p cmp.Path) bool { return p.Last().String() == ".RetryAfter" }, cmp.Ignore())

func successOutput(t *testing.T, d approval.Decision, ds ...approval.Decision) string {
	t.Helper()
	out, err := SuccessOutput(approve.Output, d, ds)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func TestQuorumReached(t *testing.T) {
	b := setup(t)
	if diff := cmp.Diff(Result{Outcome: VoteRecorded, Approvals: 1, Required: 2}, b.vote(t, "ann@example.com", approve, 2)); diff != "" {
		t.Fatalf("first approval (-want +got):\n%s", diff)
	}
	if calls := b.task.recorded(); len(calls) != 0 {
		t.Fatalf("below quorum, Step Functions was called: %+v", calls)
	}

	got := b.vote(t, "ben@example.com", approve, 2)
	ann, ben := dec("ann@example.com", "approve"), dec("ben@example.com", "approve")
	want := Result{Outcome: Decided, Type: approval.Success, Decision: &ben, Decisions: []approval.Decision{ann, ben}, Completed: true}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Fatalf("approval reaching quorum (-want +got):\n%s", diff)
	}
	wantCalls := []taskCall{{Op: "SendTaskSuccess", Token: token, Output: successOutput(t, ben, ann, ben)}}
	if diff := cmp.Diff(wantCalls, b.task.recorded()); diff != "" {
		t.Fatalf("Step Functions calls (-want +got):\n%s", diff)
	}
	c := b.completion(t)
	if c.Status != statusCompleted || c.Result != "" {
		t.Fatalf("completion record %s, result %q; want COMPLETED, none", c.Status, c.Result)
	}

	// A third approver comes too late; a gone page can name who decided.
	got = b.vote(t, "cat@example.com", approve, 2)
	want = Result{Outcome: Gone, Type: approval.Success, Decision: &ben, Decisions: []approval.Decision{ann, ben}}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Fatalf("late approval (-want +got):\n%s", diff)
	}
	if n := len(b.task.recorded()); n != 1 {
		t.Fatalf("Step Functions calls = %d, want 1", n)
	}
}

// With minApprovals 1 the table still records the decision (so a gone page
// can name it), and the first approval decides at once.
func TestSingleApprovalRecorded(t *testing.T) {
	b := setup(t)
	got := b.vote(t, "ann@example.com", approve, 1)
	ann := dec("ann@example.com", "approve")
	if diff := cmp.Diff(Result{Outcome: Decided, Type: approval.Success, Decision: &ann,
		Decisions: []approval.Decision{ann}, Completed: true}, got); diff != "" {
		t.Fatalf("(-want +got):\n%s", diff)
	}
	if diff := cmp.Diff([]string{skCompletion}, b.table.sks(RequestKey(token))); diff != "" {
		t.Fatalf("items (-want +got):\n%s", diff)
	}
	// MinApprovals 0 means 1: the request is decided, Ben is told who did it.
	got = b.vote(t, "ben@example.com", reject, 0)
	if got.Outcome != Gone || got.Decision.Approver != "ann@example.com" || got.Decision.Action != "approve" {
		t.Fatalf("after the decision: %+v", got)
	}
}

func TestDuplicateVote(t *testing.T) {
	b := setup(t)
	b.vote(t, "ann@example.com", approve, 2)
	writes := b.table.writes

	second := ballot("Ann@Example.com", approve, 2) // the same approver, other case
	second.Decision.Comment = "clicked again"
	for _, v := range []Vote{second, ballot("ann@example.com", reject, 2)} {
		got, err := b.store.Vote(context.Background(), v)
		if err != nil {
			t.Fatal(err)
		}
		earlier := dec("ann@example.com", "approve")
		want := Result{Outcome: AlreadyVoted, Approvals: 1, Required: 2, Earlier: &earlier}
		if diff := cmp.Diff(want, got); diff != "" {
			t.Fatalf("%s again (-want +got):\n%s", v.Action.Name, diff)
		}
	}
	if b.table.writes != writes {
		t.Fatalf("a repeated vote wrote %d items", b.table.writes-writes)
	}
	if calls := b.task.recorded(); len(calls) != 0 {
		t.Fatalf("a repeated vote reached Step Functions: %+v", calls)
	}
	// It did not count: one more approver is still needed, and decides.
	if got := b.vote(t, "ben@example.com", approve, 2); got.Outcome != Decided || len(got.Decisions) != 2 {
		t.Fatalf("second approver: %+v", got)
	}
}

// Two clicks of one approver at the same moment: both see no vote, both
// write; the conditional put lets one through and the other is told
// already_voted.
func TestDuplicateVoteRace(t *testing.T) {
	b := setup(t)
	pk := RequestKey(token)
	// Before the first put of Ann's vote lands, her second click's put has
	// happened: model it by writing the item from inside the first call.
	var once sync.Once
	b.table.fail = func(op, sk string) error {
		once.Do(func() {
			av, err := marshal(voteItem{PK: pk, SK: sk, Seq: 1, Decision: dec("ann@example.com", "approve"), TTL: 1})
			if err != nil {
				t.Error(err)
			}
			b.table.items[[2]string{pk, sk}] = av
		})
		return nil
	}
	got := b.vote(t, "ann@example.com", approve, 2)
	earlier := dec("ann@example.com", "approve")
	if diff := cmp.Diff(Result{Outcome: AlreadyVoted, Approvals: 1, Required: 2, Earlier: &earlier}, got); diff != "" {
		t.Fatalf("(-want +got):\n%s", diff)
	}
}

func TestVetoAfterApprovals(t *testing.T) {
	b := setup(t)
	b.vote(t, "ann@example.com", approve, 3)
	b.vote(t, "ben@example.com", approve, 3)
	got := b.vote(t, "cat@example.com", reject, 3)

	ann, ben, cat := dec("ann@example.com", "approve"), dec("ben@example.com", "approve"), dec("cat@example.com", "reject")
	want := Result{Outcome: Decided, Type: approval.Failure, Decision: &cat, Decisions: []approval.Decision{ann, ben}, Completed: true}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Fatalf("veto (-want +got):\n%s", diff)
	}
	calls := b.task.recorded()
	if len(calls) != 1 || calls[0].Op != "SendTaskFailure" || calls[0].Error != "Rejected" {
		t.Fatalf("Step Functions calls: %+v", calls)
	}
	var cause Cause
	if err := json.Unmarshal([]byte(calls[0].Cause), &cause); err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(Cause{Message: "Rejected by approver", Decision: cat, Decisions: []approval.Decision{ann, ben}}, cause); diff != "" {
		t.Fatalf("cause (-want +got):\n%s", diff)
	}
	// Later approvals find the request decided by the veto.
	got = b.vote(t, "dan@example.com", approve, 3)
	if got.Outcome != Gone || got.Type != approval.Failure || got.Decision.Approver != "cat@example.com" {
		t.Fatalf("after the veto: %+v", got)
	}
}

func TestVetoFirst(t *testing.T) {
	b := setup(t)
	got := b.vote(t, "ann@example.com", reject, 2)
	if got.Outcome != Decided || got.Type != approval.Failure || got.Decisions == nil || len(got.Decisions) != 0 {
		t.Fatalf("veto with no approvals: %+v", got)
	}
	var cause map[string]json.RawMessage
	if err := json.Unmarshal([]byte(b.task.recorded()[0].Cause), &cause); err != nil {
		t.Fatal(err)
	}
	if string(cause["decisions"]) != "[]" {
		t.Fatalf("decisions in the cause = %s, want []", cause["decisions"])
	}
}

// A heartbeat reaches Step Functions and records nothing; once the request
// is decided it is gone without calling Step Functions.
func TestHeartbeat(t *testing.T) {
	b := setup(t)
	b.vote(t, "ann@example.com", approve, 2)
	if got := b.vote(t, "ben@example.com", extend, 2); got.Outcome != Extended {
		t.Fatalf("heartbeat: %+v", got)
	}
	if diff := cmp.Diff([]string{"vote#ann@example.com"}, b.table.sks(RequestKey(token))); diff != "" {
		t.Fatalf("items after a heartbeat (-want +got):\n%s", diff)
	}
	// The heartbeat was no vote: Ben can still approve, and decides.
	if got := b.vote(t, "ben@example.com", approve, 2); got.Outcome != Decided {
		t.Fatalf("approval after a heartbeat: %+v", got)
	}
	if got := b.vote(t, "ben@example.com", extend, 2); got.Outcome != Gone || got.Decision.Approver != "ben@example.com" {
		t.Fatalf("heartbeat after the decision: %+v", got)
	}
	var ops []string
	for _, c := range b.task.recorded() {
		ops = append(ops, c.Op)
	}
	if diff := cmp.Diff([]string{"SendTaskHeartbeat", "SendTaskSuccess"}, ops); diff != "" {
		t.Fatalf("Step Functions calls (-want +got):\n%s", diff)
	}
}

func TestHeartbeatOnEndedTask(t *testing.T) {
	b := setup(t)
	b.task.timeOut(token)
	if diff := cmp.Diff(Result{Outcome: Gone, Reason: "TaskTimedOut"}, b.vote(t, "ann@example.com", extend, 2)); diff != "" {
		t.Fatalf("(-want +got):\n%s", diff)
	}
}

var errCrash = errors.New("caller died")

// The redeemer dies after claiming the decision and before Step Functions
// answered: its call never arrived, nothing more reached the table. Until
// the lease runs out others are told to come back; then the next vote, on
// any link, finishes it with the very answer the dead caller would have
// sent.
func TestCrashAfterDecidingVote(t *testing.T) {
	b := setup(t)
	b.vote(t, "ann@example.com", approve, 2)
	b.task.fail = func(string) error { return errCrash }
	b.table.fail = func(op, sk string) error {
		if op == "UpdateItem" {
			return errCrash
		}
		return nil
	}
	if _, err := b.store.Vote(context.Background(), ballot("ben@example.com", approve, 2)); !errors.Is(err, errCrash) {
		t.Fatalf("deciding vote: err = %v, want the crash", err)
	}
	if c := b.completion(t); c.Status != statusInProgress {
		t.Fatalf("completion record %s, want IN_PROGRESS", c.Status)
	}
	b.task.fail, b.table.fail = nil, nil

	got := b.vote(t, "cat@example.com", reject, 2)
	if got.Outcome != Busy || got.RetryAfter <= 0 || got.RetryAfter > time.Minute {
		t.Fatalf("within the lease: %+v", got)
	}
	if n := len(b.task.recorded()); n != 0 {
		t.Fatalf("within the lease, Step Functions was called %d times", n)
	}

	b.clock.advance(time.Minute)
	got = b.vote(t, "cat@example.com", reject, 2)
	ann, ben := dec("ann@example.com", "approve"), dec("ben@example.com", "approve")
	want := Result{Outcome: Gone, Type: approval.Success, Decision: &ben, Decisions: []approval.Decision{ann, ben}, Completed: true}
	if diff := cmp.Diff(want, got, ignoreRetry); diff != "" {
		t.Fatalf("Cat's veto after the lease finishes Ben's decision (-want +got):\n%s", diff)
	}
	wantCalls := []taskCall{{Op: "SendTaskSuccess", Token: token, Output: successOutput(t, ben, ann, ben)}}
	if diff := cmp.Diff(wantCalls, b.task.recorded()); diff != "" {
		t.Fatalf("Step Functions calls (-want +got):\n%s", diff)
	}
	if c := b.completion(t); c.Status != statusCompleted || c.Result != "" {
		t.Fatalf("completion record %s %q", c.Status, c.Result)
	}
	// Ben's retry now shows his decision, without another call.
	want.Outcome, want.Completed = Decided, false
	if diff := cmp.Diff(want, b.vote(t, "ben@example.com", approve, 2)); diff != "" {
		t.Fatalf("Ben's retry (-want +got):\n%s", diff)
	}
	if n := len(b.task.recorded()); n != 1 {
		t.Fatalf("Step Functions calls = %d, want 1", n)
	}
}

// The redeemer dies after Step Functions took the answer and before it was
// marked COMPLETED. The next caller sends it again; Step Functions says
// TaskTimedOut, which is recorded, and the answer is not repeated.
func TestCrashAfterAnswer(t *testing.T) {
	b := setup(t)
	b.table.fail = func(op, sk string) error {
		if op == "UpdateItem" {
			return errCrash
		}
		return nil
	}
	if got := b.vote(t, "ann@example.com", approve, 1); got.Outcome != Decided || !got.Completed {
		t.Fatalf("deciding vote: %+v", got)
	}
	b.table.fail = nil
	b.clock.advance(time.Minute)
	got := b.vote(t, "ann@example.com", approve, 1)
	if got.Outcome != Gone || got.Reason != "TaskTimedOut" || got.Completed || got.Decision.Approver != "ann@example.com" {
		t.Fatalf("retry: %+v", got)
	}
	if c := b.completion(t); c.Status != statusCompleted || c.Result != "TaskTimedOut" {
		t.Fatalf("completion record %s %q", c.Status, c.Result)
	}
	if n := len(b.task.recorded()); n != 1 {
		t.Fatalf("Step Functions took %d answers, want 1", n)
	}
}

// Two approvals reach quorum together but their callers die before either
// claims the decision. The next caller finds the quorum and finishes it.
func TestCrashBetweenVoteAndClaim(t *testing.T) {
	b := setup(t)
	b.vote(t, "ann@example.com", approve, 3)
	b.vote(t, "ben@example.com", approve, 3)
	// Cat's approval is written as a vote (quorum looks one away when she
	// reads), then she dies before claiming.
	pk := RequestKey(token)
	av, err := marshal(voteItem{PK: pk, SK: "vote#cat@example.com", Seq: b.clock.Now().UnixNano(),
		Decision: dec("cat@example.com", "approve"), ActionOutput: string(approve.Output), TTL: 1})
	if err != nil {
		t.Fatal(err)
	}
	b.table.items[[2]string{pk, "vote#cat@example.com"}] = av

	got := b.vote(t, "dan@example.com", extend, 3)
	ann, ben, cat := dec("ann@example.com", "approve"), dec("ben@example.com", "approve"), dec("cat@example.com", "approve")
	want := Result{Outcome: Gone, Type: approval.Success, Decision: &cat, Decisions: []approval.Decision{ann, ben, cat}, Completed: true}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Fatalf("Dan's heartbeat finishes the quorum (-want +got):\n%s", diff)
	}
	wantCalls := []taskCall{{Op: "SendTaskSuccess", Token: token, Output: successOutput(t, cat, ann, ben, cat)}}
	if diff := cmp.Diff(wantCalls, b.task.recorded()); diff != "" {
		t.Fatalf("Step Functions calls (-want +got):\n%s", diff)
	}
}

// The approver's own claim fails on the table (the vote put went through
// first): the vote stays, and the next vote completes from it.
func TestClaimWriteFails(t *testing.T) {
	b := setup(t)
	b.vote(t, "ann@example.com", approve, 2)
	b.table.fail = func(op, sk string) error {
		if sk == skCompletion {
			return &smithy.GenericAPIError{Code: "InternalServerError", Fault: smithy.FaultServer}
		}
		return nil
	}
	if _, err := b.store.Vote(context.Background(), ballot("ben@example.com", approve, 2)); err == nil || !strings.Contains(err.Error(), tableName) {
		t.Fatalf("err = %v, want the table's error naming it", err)
	}
	b.table.fail = nil
	if got := b.vote(t, "ben@example.com", approve, 2); got.Outcome != Decided || !got.Completed {
		t.Fatalf("Ben's retry: %+v", got)
	}
}

// Step Functions says TaskTimedOut when quorum is reached: recorded so, and
// every later vote is gone without calling it again.
func TestTaskTimedOutAfterQuorum(t *testing.T) {
	b := setup(t)
	b.vote(t, "ann@example.com", approve, 2)
	b.task.timeOut(token)
	got := b.vote(t, "ben@example.com", approve, 2)
	ann, ben := dec("ann@example.com", "approve"), dec("ben@example.com", "approve")
	want := Result{Outcome: Gone, Type: approval.Success, Decision: &ben, Decisions: []approval.Decision{ann, ben}, Reason: "TaskTimedOut"}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Fatalf("deciding vote on a timed-out task (-want +got):\n%s", diff)
	}
	if c := b.completion(t); c.Status != statusCompleted || c.Result != "TaskTimedOut" {
		t.Fatalf("completion record %s %q", c.Status, c.Result)
	}
	calls := 0
	b.task.fail = func(string) error { calls++; return nil }
	for _, who := range []string{"ben@example.com", "cat@example.com"} {
		if diff := cmp.Diff(want, b.vote(t, who, approve, 2)); diff != "" {
			t.Fatalf("%s afterwards (-want +got):\n%s", who, diff)
		}
	}
	if calls != 0 {
		t.Fatalf("Step Functions called %d times after the record", calls)
	}
}

// Step Functions unavailable: the error reaches the caller, the claim is
// handed back, and a retry right away delivers it.
func TestStepFunctionsUnavailable(t *testing.T) {
	b := setup(t)
	throttled := &smithy.GenericAPIError{Code: "ThrottlingException", Fault: smithy.FaultClient}
	b.task.fail = func(string) error { return throttled }
	_, err := b.store.Vote(context.Background(), ballot("ann@example.com", approve, 1))
	var ae smithy.APIError
	if !errors.As(err, &ae) || ae.ErrorCode() != "ThrottlingException" {
		t.Fatalf("err = %v, want the throttling error", err)
	}
	if c := b.completion(t); c.Status != statusInProgress || c.LeaseUntil != 0 {
		t.Fatalf("completion record %s lease %d, want IN_PROGRESS released", c.Status, c.LeaseUntil)
	}
	b.task.fail = nil
	if got := b.vote(t, "ann@example.com", approve, 1); got.Outcome != Decided || !got.Completed {
		t.Fatalf("retry: %+v", got)
	}
}

// Five approvers click at once on requests needing 2, 3 and 5 of them.
// Their reads are lined up so that all five see no vote, write theirs, and
// then all five see every vote and race for the decision: exactly one call
// completes the task, with exactly minApprovals distinct approvals.
func TestConcurrentApprovers(t *testing.T) {
	for _, min := range []int{2, 3, 5} {
		t.Run(fmt.Sprint(min), func(t *testing.T) {
			const n = 5
			b := setup(t)
			// Every caller's first read happens before anyone writes; every
			// second read after all have written.
			var first, second sync.WaitGroup
			first.Add(n)
			second.Add(n)
			var mu sync.Mutex
			queries := map[string]int{} // before and after, counted apart
			phase := func(at string) int {
				mu.Lock()
				defer mu.Unlock()
				queries[at]++
				return queries[at]
			}
			b.table.afterQuery = func() {
				if phase("after") <= n {
					first.Done()
					first.Wait()
				}
			}
			b.table.beforeQuery = func() {
				if q := phase("before"); q > n && q <= 2*n {
					second.Done()
					second.Wait()
				}
			}
			results := make([]Result, n)
			var wg sync.WaitGroup
			for i := range results {
				wg.Add(1)
				go func() {
					defer wg.Done()
					r, err := b.store.Vote(context.Background(), ballot(fmt.Sprintf("p%d@example.com", i), approve, min))
					if err != nil {
						t.Error(err)
					}
					results[i] = r
				}()
			}
			wg.Wait()
			completed := 0
			for _, r := range results {
				if r.Completed {
					completed++
				}
			}
			calls := b.task.recorded()
			if completed != 1 || len(calls) != 1 || b.task.attempts != 1 {
				t.Fatalf("%d calls completed, %d tried, Step Functions took %d answers; want 1, 1, 1: %+v",
					completed, b.task.attempts, len(calls), results)
			}
			var out struct {
				Decisions []approval.Decision `json:"decisions"`
			}
			if err := json.Unmarshal([]byte(calls[0].Output), &out); err != nil {
				t.Fatal(err)
			}
			seen := map[string]bool{}
			for _, d := range out.Decisions {
				seen[d.Approver] = true
			}
			if len(out.Decisions) != min || len(seen) != min {
				t.Fatalf("decisions = %+v, want %d distinct", out.Decisions, min)
			}
			if c := b.completion(t); len(c.Decisions) != min || c.Status != statusCompleted {
				t.Fatalf("completion record %s with %d decisions", c.Status, len(c.Decisions))
			}
		})
	}
}

func TestTableMissing(t *testing.T) {
	b := setup(t)
	s, err := New(b.table, b.task, Config{Table: "no-such-table"})
	if err != nil {
		t.Fatal(err)
	}
	for name, err := range map[string]error{
		"check": s.Check(context.Background()),
		"vote": func() error {
			_, err := s.Vote(context.Background(), ballot("ann@example.com", approve, 2))
			return err
		}(),
	} {
		var rnf *types.ResourceNotFoundException
		if !errors.Is(err, ErrNoTable) || !errors.As(err, &rnf) || !strings.Contains(err.Error(), `"no-such-table"`) {
			t.Errorf("%s: err = %v, want ErrNoTable naming the table", name, err)
		}
	}
	if err := b.store.Check(context.Background()); err != nil {
		t.Errorf("check of the real table: %v", err)
	}
}

// The items name the request by a hash of its token, never the token, and
// expire Retention after the links.
func TestItemLayout(t *testing.T) {
	b := setup(t)
	b.vote(t, "ann@example.com", approve, 2)
	b.vote(t, "ben@example.com", approve, 2)
	pk := RequestKey(token)
	if strings.Contains(pk, token) || pk != RequestKey(token) || pk == RequestKey(token+"x") || len(pk) != len("req#")+43 {
		t.Fatalf("request key %q", pk)
	}
	if diff := cmp.Diff([]string{skCompletion, "vote#ann@example.com"}, b.table.sks(pk)); diff != "" {
		t.Fatalf("items (-want +got):\n%s", diff)
	}
	wantTTL := fmt.Sprint(expires.Add(7 * 24 * time.Hour).Unix())
	for _, sk := range b.table.sks(pk) {
		it := b.table.item(pk, sk)
		if n, ok := it["ttl"].(*types.AttributeValueMemberN); !ok || n.Value != wantTTL {
			t.Errorf("%s: ttl = %#v, want %s", sk, it["ttl"], wantTTL)
		}
		for attr, v := range it {
			if s, ok := v.(*types.AttributeValueMemberS); ok && strings.Contains(s.Value, token) {
				t.Errorf("%s: %s holds the task token", sk, attr)
			}
		}
	}
}

func TestVoteChecks(t *testing.T) {
	b := setup(t)
	for name, mutate := range map[string]func(*Vote){
		"token":    func(v *Vote) { v.TaskToken = "" },
		"approver": func(v *Vote) { v.Decision.Approver = "" },
		"expiry":   func(v *Vote) { v.ExpiresAt = time.Time{} },
		"type":     func(v *Vote) { v.Action.Type = "maybe" },
	} {
		v := ballot("ann@example.com", approve, 2)
		mutate(&v)
		if _, err := b.store.Vote(context.Background(), v); err == nil {
			t.Errorf("%s: no error", name)
		}
	}
	if b.table.writes != 0 {
		t.Fatalf("invalid votes wrote %d items", b.table.writes)
	}
}

func TestSuccessOutput(t *testing.T) {
	ann, ben := dec("ann@example.com", "approve"), dec("ben@example.com", "approve")
	out, err := SuccessOutput(json.RawMessage(`{"approved":true,"decisions":"theirs"}`), ben, []approval.Decision{ann, ben})
	if err != nil {
		t.Fatal(err)
	}
	var got map[string]any
	if err := json.Unmarshal([]byte(out), &got); err != nil {
		t.Fatal(err)
	}
	decision := map[string]any{"action": "approve", "approver": "ben@example.com", "decidedAt": "2026-12-01T10:00:00Z", "comment": "from ben@example.com"}
	want := map[string]any{"approved": true, "decision": decision, "decisions": []any{
		map[string]any{"action": "approve", "approver": "ann@example.com", "decidedAt": "2026-12-01T10:00:00Z", "comment": "from ann@example.com"},
		decision,
	}}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Fatalf("(-want +got):\n%s", diff)
	}
	if _, err := SuccessOutput(json.RawMessage(`[1]`), ben, nil); err == nil {
		t.Fatal("a non-object action output was accepted")
	}
}
