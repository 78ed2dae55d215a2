package votes

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"slices"
	"time"

	"github.com/aws/aws-sdk-go-v2/feature/dynamodb/expression"

	"github.com/sfn-approvals/sfn-approvals/approval"
	"github.com/sfn-approvals/sfn-approvals/internal/awsx"
)

// Config configures a Store.
type Config struct {
	// Table is the votes table's name (APPROVALS_VOTES_TABLE).
	Table string
	// Lease is how long a claimed decision belongs to the caller that
	// claimed it before the next caller may finish it. It must exceed the
	// time Task may take (its whole retry budget). Default 1 minute.
	Lease time.Duration
	// Timeout bounds each table write made after Step Functions answered;
	// those run detached from the caller's context, so that a cancelled
	// request cannot lose the answer. Default 10 seconds.
	Timeout time.Duration
	// Now is the clock; default time.Now.
	Now    func() time.Time
	Logger *slog.Logger
	// OnConflict, if set, is called for each conditional write that lost
	// to another caller's (a metric: many mean approvers racing, or a
	// caller retrying a write that had succeeded).
	OnConflict func()
}

// DefaultLease is Config.Lease's default: well above the redeemer's retry
// budget for one Step Functions call (about 20 s).
const DefaultLease = time.Minute

// Store records votes and completes each request's task exactly once.
type Store struct {
	table   Table
	task    Task
	name    string
	lease   time.Duration
	timeout time.Duration
	now     func() time.Time
	log     *slog.Logger
	onLost  func()
}

// New returns a Store for the table named in cfg.
func New(table Table, task Task, cfg Config) (*Store, error) {
	if cfg.Table == "" {
		return nil, errors.New("votes: no table name")
	}
	if table == nil || task == nil {
		return nil, errors.New("votes: table and task are required")
	}
	s := &Store{table: table, task: task, name: cfg.Table, lease: cfg.Lease, timeout: cfg.Timeout, now: cfg.Now, log: cfg.Logger, onLost: cfg.OnConflict}
	if s.lease <= 0 {
		s.lease = DefaultLease
	}
	if s.timeout <= 0 {
		s.timeout = 10 * time.Second
	}
	if s.now == nil {
		s.now = time.Now
	}
	if s.log == nil {
		s.log = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	if s.onLost == nil {
		s.onLost = func() {}
	}
	return s, nil
}

// Vote is one POST on one link.
type Vote struct {
	TaskToken string
	Action    approval.Action
	// Decision is this vote: the action's name, the approver, when, and
	// the comment.
	Decision approval.Decision
	// MinApprovals is the request's quorum (0 means 1).
	MinApprovals int
	// ExpiresAt is when the request's links expire; items live Retention
	// longer.
	ExpiresAt time.Time
}

// Outcome says what a vote did.
type Outcome string

const (
	// VoteRecorded: an approval below quorum was counted.
	VoteRecorded Outcome = "vote_recorded"
	// AlreadyVoted: this approver had voted; their earlier vote stands.
	AlreadyVoted Outcome = "already_voted"
	// Decided: the request is decided and this vote is part of the decision
	// (the veto, or one of the approvals). Completed says whether this very
	// call gave Step Functions the answer; a repeated POST of a deciding
	// vote is Decided but not Completed.
	Decided Outcome = "decided"
	// Extended: a heartbeat reached Step Functions. Nothing is recorded.
	Extended Outcome = "extended"
	// Gone: the request was decided without this vote, or Step Functions
	// no longer takes an answer (Reason).
	Gone Outcome = "gone"
	// Busy: another call holds the decision and is giving it to Step
	// Functions now. Try again after RetryAfter; the link stays good.
	Busy Outcome = "busy"
)

// Result is what the redeemer needs to answer the approver.
type Result struct {
	Outcome Outcome
	// Approvals counted so far and Required (minApprovals): VoteRecorded
	// and AlreadyVoted.
	Approvals, Required int
	// Earlier is the approver's earlier vote: AlreadyVoted.
	Earlier *approval.Decision
	// Decided and Gone, when the request has a decision: its type, the
	// deciding vote (Decision.Approver, DecidedAt, Action are a gone page's
	// decidedBy, decidedAt, decidedAction) and the approving votes, in
	// order (for a veto: the approvals before it).
	Type      approval.ActionType
	Decision  *approval.Decision
	Decisions []approval.Decision
	// Reason is Step Functions' error code when it refused the task's
	// answer or this heartbeat (TaskTimedOut, TaskDoesNotExist,
	// InvalidToken): Gone.
	Reason string
	// Completed: this call's Step Functions call completed the task.
	Completed bool
	// RetryAfter: Busy.
	RetryAfter time.Duration
}

// maxRounds bounds how often one Vote reads the table again after losing a
// conditional write; each loss means another caller moved the request on,
// so a few rounds always settle it.
const maxRounds = 5

// Vote records v and, when it decides the request (quorum, or a veto),
// completes the task. Any call also finishes a decision an earlier caller
// left half done. An error is the table's or Step Functions' (classify it
// with awsx.Retryable); a decision left unfinished by one is finished by
// the next call.
func (s *Store) Vote(ctx context.Context, v Vote) (Result, error) {
	if err := v.check(); err != nil {
		return Result{}, err
	}
	if v.MinApprovals < 1 {
		v.MinApprovals = 1
	}
	pk := RequestKey(v.TaskToken)
	for range maxRounds {
		st, err := s.load(ctx, pk)
		if err != nil {
			return Result{}, err
		}
		res, again, err := s.round(ctx, v, pk, st)
		if !again {
			return res, err
		}
	}
	// The request kept changing under us: someone else is deciding it.
	return Result{Outcome: Busy, RetryAfter: time.Second}, nil
}

func (v Vote) check() error {
	switch {
	case v.TaskToken == "":
		return errors.New("vote: no task token")
	case v.Decision.Approver == "":
		return errors.New("vote: no approver")
	case v.ExpiresAt.IsZero():
		return errors.New("vote: no expiry")
	case !v.Action.Type.Valid():
		return fmt.Errorf("vote: unknown action type %q", v.Action.Type)
	}
	return nil
}

// round acts on one reading of the request. again says a conditional write
// lost and the table must be read again.
func (s *Store) round(ctx context.Context, v Vote, pk string, st state) (res Result, again bool, err error) {
	if st.completion != nil {
		return s.settle(ctx, v, *st.completion)
	}
	approvals := st.approvals()
	if len(approvals) >= v.MinApprovals {
		// Quorum without a decision: the callers whose votes reached it
		// stopped before claiming it. Finish their decision first.
		c, err := s.quorum(pk, v, approvals[:v.MinApprovals], nil)
		if err != nil {
			return Result{}, false, err
		}
		return s.claim(ctx, v, c)
	}
	if v.Action.Type == approval.Heartbeat {
		// A heartbeat decides nothing and no page names it: recording it
		// would cost a write unit for nothing.
		return s.heartbeat(ctx, v)
	}
	if prior, ok := st.votes[approverKey(v.Decision.Approver)]; ok {
		d := prior.Decision
		return Result{Outcome: AlreadyVoted, Approvals: len(approvals), Required: v.MinApprovals, Earlier: &d}, false, nil
	}
	if v.Action.Type == approval.Failure {
		c, err := s.veto(pk, v, decisionsOf(approvals))
		if err != nil {
			return Result{}, false, err
		}
		return s.claim(ctx, v, c)
	}
	if len(approvals)+1 >= v.MinApprovals {
		// This approval reaches quorum: claim the decision straight away
		// (one write instead of a vote and a claim).
		c, err := s.quorum(pk, v, approvals, &v)
		if err != nil {
			return Result{}, false, err
		}
		return s.claim(ctx, v, c)
	}

	now := s.now()
	err = s.putNew(ctx, voteItem{
		PK: pk, SK: skVotePrefix + approverKey(v.Decision.Approver), Seq: now.UnixNano(),
		Decision: v.Decision, ActionOutput: string(v.Action.Output), TTL: s.ttl(v),
	})
	if conditionFailed(err) {
		return Result{}, true, nil // the same approver, a moment ago
	}
	if err != nil {
		return Result{}, false, err
	}
	// Approvals cast at the same moment may reach quorum together, each
	// caller having seen too few before writing: read again.
	st, err = s.load(ctx, pk)
	if err != nil {
		return Result{}, false, err
	}
	if st.completion != nil {
		return s.settle(ctx, v, *st.completion)
	}
	approvals = st.approvals()
	if len(approvals) >= v.MinApprovals {
		c, err := s.quorum(pk, v, approvals[:v.MinApprovals], nil)
		if err != nil {
			return Result{}, false, err
		}
		return s.claim(ctx, v, c)
	}
	return Result{Outcome: VoteRecorded, Approvals: len(approvals), Required: v.MinApprovals}, false, nil
}

func (s *Store) ttl(v Vote) int64 { return v.ExpiresAt.Add(Retention).Unix() }

// quorum builds the success decision from the approvals that reached it, in
// order, with mine (when it is the one reaching it) last.
func (s *Store) quorum(pk string, v Vote, votes []voteItem, mine *Vote) (completionItem, error) {
	ds := decisionsOf(votes)
	deciding := approval.Decision{}
	var actionOutput json.RawMessage
	if mine != nil {
		ds = append(ds, mine.Decision)
		deciding, actionOutput = mine.Decision, mine.Action.Output
	} else {
		last := votes[len(votes)-1]
		deciding, actionOutput = last.Decision, json.RawMessage(last.ActionOutput)
	}
	out, err := SuccessOutput(actionOutput, deciding, ds)
	if err != nil {
		return completionItem{}, err
	}
	return completionItem{PK: pk, SK: skCompletion, Type: approval.Success, Decision: deciding, Decisions: ds,
		Output: out, TTL: s.ttl(v)}, nil
}

// veto builds the failure decision: the veto, beside the approvals so far.
func (s *Store) veto(pk string, v Vote, approvals []approval.Decision) (completionItem, error) {
	cause, err := FailureCause(v.Action.Cause, v.Decision, approvals)
	if err != nil {
		return completionItem{}, err
	}
	return completionItem{PK: pk, SK: skCompletion, Type: approval.Failure, Decision: v.Decision,
		Decisions: nonNil(approvals), Error: v.Action.Error, Cause: cause, TTL: s.ttl(v)}, nil
}

// claim writes the decision as IN_PROGRESS, if no one has, and delivers it.
func (s *Store) claim(ctx context.Context, v Vote, c completionItem) (Result, bool, error) {
	c.Status = statusInProgress
	c.LeaseUntil = s.now().Add(s.lease).UnixMilli()
	err := s.putNew(ctx, c)
	if conditionFailed(err) {
		return Result{}, true, nil // decided by another call: read what it decided
	}
	if err != nil {
		return Result{}, false, err
	}
	return s.deliver(ctx, v, c)
}

// settle answers a request that has a decision, finishing it when its
// caller stopped halfway.
func (s *Store) settle(ctx context.Context, v Vote, c completionItem) (Result, bool, error) {
	if c.Status == statusCompleted {
		return decided(v, c), false, nil
	}
	now := s.now()
	if until := time.UnixMilli(c.LeaseUntil); now.Before(until) {
		return Result{Outcome: Busy, RetryAfter: until.Sub(now)}, false, nil
	}
	lease := now.Add(s.lease).UnixMilli()
	err := s.updateCompletion(ctx, c.PK, c.LeaseUntil, expression.Set(expression.Name("leaseUntil"), expression.Value(lease)))
	if conditionFailed(err) {
		return Result{}, true, nil // another caller took it over first
	}
	if err != nil {
		return Result{}, false, err
	}
	s.log.Info("finishing a decision left in progress", "type", string(c.Type), "action", c.Decision.Action)
	c.LeaseUntil = lease
	return s.deliver(ctx, v, c)
}

// deliver sends the claimed decision to Step Functions and records how it
// went.
func (s *Store) deliver(ctx context.Context, v Vote, c completionItem) (Result, bool, error) {
	var err error
	if c.Type == approval.Failure {
		err = s.task.Fail(ctx, v.TaskToken, c.Error, c.Cause)
	} else {
		err = s.task.Succeed(ctx, v.TaskToken, c.Output)
	}
	code := GoneCode(err)
	// Record under a context of our own: Step Functions has answered, and
	// that must not be lost to the approver closing the tab.
	rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), s.timeout)
	defer cancel()
	if err != nil && code == "" {
		// Not delivered. Hand the decision back at once, so the next call
		// (a retry of this one, most likely) need not wait for the lease.
		if rerr := s.updateCompletion(rctx, c.PK, c.LeaseUntil,
			expression.Set(expression.Name("leaseUntil"), expression.Value(int64(0)))); rerr != nil && !conditionFailed(rerr) {
			s.log.Warn("decision lease not released", "error", rerr)
		}
		return Result{}, false, fmt.Errorf("complete task: %w", err)
	}
	c.Status, c.Result, c.CompletedAt = statusCompleted, code, s.now().UTC().Format(time.RFC3339)
	upd := expression.Set(expression.Name("status"), expression.Value(c.Status)).
		Set(expression.Name("completedAt"), expression.Value(c.CompletedAt))
	if code != "" {
		upd = upd.Set(expression.Name("result"), expression.Value(code))
	}
	if rerr := s.updateCompletion(rctx, c.PK, c.LeaseUntil, upd); rerr != nil {
		// Step Functions has its answer; the next caller after the lease
		// sends it again, is told TaskTimedOut, and records that.
		s.log.Warn("decision not marked completed", "error", rerr, "error_code", awsx.ErrorCode(rerr))
	}
	r := decided(v, c)
	r.Completed = err == nil
	return r, false, nil
}

func (s *Store) heartbeat(ctx context.Context, v Vote) (Result, bool, error) {
	err := s.task.Heartbeat(ctx, v.TaskToken)
	if err == nil {
		return Result{Outcome: Extended}, false, nil
	}
	if code := GoneCode(err); code != "" {
		return Result{Outcome: Gone, Reason: code}, false, nil
	}
	return Result{}, false, fmt.Errorf("send heartbeat: %w", err)
}

// decided reports a recorded decision to the caller v: Decided when v is
// part of it (a repeated POST gets the same answer), Gone otherwise, also
// for a part of it who now presses another button.
func decided(v Vote, c completionItem) Result {
	d := c.Decision
	r := Result{Outcome: Gone, Type: c.Type, Decision: &d, Decisions: nonNil(c.Decisions), Reason: c.Result}
	if c.Result == "" && v.Action.Type != approval.Heartbeat && partOf(v, c) {
		r.Outcome = Decided
	}
	return r
}

// partOf reports whether v is one of the votes that made decision c: the
// same approver with the same action.
func partOf(v Vote, c completionItem) bool {
	me := approverKey(v.Decision.Approver)
	same := func(d approval.Decision) bool { return approverKey(d.Approver) == me && d.Action == v.Decision.Action }
	if same(c.Decision) {
		return true
	}
	if c.Type != approval.Success {
		return false
	}
	return slices.ContainsFunc(c.Decisions, same)
}
