package redeemer

import (
	"context"
	"errors"
	"fmt"
	"math"
	"net/http"
	"time"

	"github.com/sfn-approvals/sfn-approvals/approval"
	"github.com/sfn-approvals/sfn-approvals/internal/awsx"
	"github.com/sfn-approvals/sfn-approvals/link"
	"github.com/sfn-approvals/sfn-approvals/metrics"
	"github.com/sfn-approvals/sfn-approvals/votes"
)

// voteStore is the part of votes.Store the redeemer uses; tests fake it.
type voteStore interface {
	Vote(ctx context.Context, v votes.Vote) (votes.Result, error)
	Tally(ctx context.Context, taskToken, approver string, minApprovals int) (votes.Tally, error)
	Check(ctx context.Context) error
}

var _ voteStore = (*votes.Store)(nil)

// tableBudget is what a POST allows the votes table on top of the Step
// Functions retry budget: a few single-item reads and writes.
const tableBudget = 10 * time.Second

var (
	outVoteRecorded = outcome{Name: "vote_recorded", Status: http.StatusOK, Title: "Approval recorded",
		Message: "Your approval has been recorded. The request is decided when enough approvers have approved; you can close this page."}
	outAlreadyVoted = outcome{Name: "already_voted", Status: http.StatusOK, Title: "You already voted",
		Message: "You already voted on this request, and your earlier vote stands. Nothing was changed."}
	outBusy = outcome{Name: "busy", Status: http.StatusServiceUnavailable, Title: "Being decided",
		Message: "Another decision on this request is being recorded right now, so nothing was recorded yet.",
		Hint:    "This link still works: try again in a few seconds."}
)

// newVoteStore builds the votes store of cfg.VotesTable, completing tasks
// through s's retrying Step Functions calls.
func (s *Server) newVoteStore() (voteStore, error) {
	if s.cfg.VotesClient == nil {
		return nil, errors.New("redeemer: a votes table without a DynamoDB client")
	}
	return votes.New(s.cfg.VotesClient, retryingTask{s}, votes.Config{
		Table: s.cfg.VotesTable,
		// The lease must outlast a Task call, which is bounded by the
		// retry budget.
		Lease:      max(votes.DefaultLease, 2*s.cfg.Retry.MaxElapsed),
		Now:        s.cfg.Now,
		Logger:     s.log,
		OnConflict: s.m.VoteConflicts.Inc,
	})
}

// CheckVotes verifies the votes table, when one is configured, so that the
// redeemer refuses to start without it rather than failing every POST.
func (s *Server) CheckVotes(ctx context.Context) error {
	if s.votes == nil {
		return nil
	}
	return s.votes.Check(ctx)
}

// vote answers a POST through the votes table: the vote counts once, and the
// request is completed when it reaches quorum or is vetoed.
func (s *Server) vote(w http.ResponseWriter, r *http.Request, c link.Claims, id *approval.Identity, d approval.Decision) {
	typ := string(c.Action.Type)
	attrs := []any{"action", c.Action.Name, "type", typ, "approver", d.Approver, "key_id", c.KeyID,
		"min_approvals", c.Quorum()}
	s.m.InFlightPosts.Inc()
	defer s.m.InFlightPosts.Dec()
	// Detached, as complete's call is: the approver closing the tab must
	// not cut a decision off between the table and Step Functions.
	ctx, cancel := context.WithTimeout(context.WithoutCancel(r.Context()), s.cfg.Retry.MaxElapsed+tableBudget)
	defer cancel()
	res, err := s.votes.Vote(ctx, votes.Vote{
		TaskToken: c.TaskToken, Action: c.Action, Decision: d,
		MinApprovals: c.Quorum(), ExpiresAt: c.ExpiresAt,
	})
	if err != nil {
		out := outError
		result := metrics.VoteError
		if awsx.Retryable(err) || errors.Is(err, errAttemptTimeout) || ctx.Err() != nil {
			out, result = outUnavailable, metrics.VoteUnavailable
			s.log.Warn("vote not recorded, AWS unavailable", append(attrs, "error_code", awsx.ErrorCode(err), "error", redact(err, c.TaskToken))...)
		} else {
			s.log.Error("vote not recorded", append(attrs, "error_code", awsx.ErrorCode(err), "error", redact(err, c.TaskToken))...)
		}
		s.m.Votes.WithLabelValues(result).Inc()
		s.m.Decisions.WithLabelValues(typ, metricsOutcome(out)).Inc()
		s.respond(w, r, view{outcome: out, claims: &c, signedIn: id})
		return
	}
	s.m.Votes.WithLabelValues(string(res.Outcome)).Inc()
	if res.Completed {
		s.m.QuorumCompletions.WithLabelValues(string(res.Type)).Inc()
	}
	v := view{claims: &c, signedIn: id, decidedAt: d.DecidedAt, approvals: res.Approvals, required: c.Quorum(), tallied: true}
	attrs = append(attrs, "outcome", string(res.Outcome), "approvals", res.Approvals, "completed", res.Completed)
	switch res.Outcome {
	case votes.VoteRecorded:
		v.outcome = outVoteRecorded
		v.Message = fmt.Sprintf("Your approval has been recorded: %d of %d approvals. The request is decided when %d approvers have approved; you can close this page.",
			res.Approvals, res.Required, res.Required)
		s.log.Info("vote recorded", attrs...)
	case votes.AlreadyVoted:
		v.outcome = outAlreadyVoted
		if res.Earlier != nil {
			v.decidedAt = res.Earlier.DecidedAt
			v.earlier = res.Earlier
		}
		s.log.Info("approver already voted", attrs...)
	case votes.Decided:
		v.outcome = outRecorded
		v.decided = res.Decision
		v.approvals = len(res.Decisions)
		s.m.Decisions.WithLabelValues(typ, metrics.OutcomeRecorded).Inc()
		s.log.Info("decision recorded", attrs...)
		if redirect(w, r, c, &v) {
			return
		}
	case votes.Extended:
		v.outcome, v.tallied = outExtended, false
		s.m.Decisions.WithLabelValues(typ, metrics.OutcomeRecorded).Inc()
		s.log.Info("decision recorded", attrs...)
	case votes.Gone:
		v.outcome, v.tallied = outGone, false
		v.decided = res.Decision
		v.decidedAt = time.Time{}
		if res.Decision != nil {
			v.decidedAt = res.Decision.DecidedAt
		}
		s.m.Decisions.WithLabelValues(typ, metrics.OutcomeGone).Inc()
		s.log.Info("task already answered or timed out", append(attrs, "error_code", res.Reason)...)
	case votes.Busy:
		v.outcome, v.tallied = outBusy, false
		v.RetryAfter = time.Duration(math.Ceil(max(res.RetryAfter, time.Second).Seconds())) * time.Second
		s.log.Info("request being decided by another call", attrs...)
	default:
		v.outcome, v.tallied = outError, false
		s.log.Error("unknown vote outcome", attrs...)
	}
	s.respond(w, r, v)
}

// tally fills a confirmation page's count of approvals. A table that cannot
// be read costs the page its count, not its form: the POST reads it again.
func (s *Server) tally(ctx context.Context, c link.Claims, v *view) {
	if s.votes == nil {
		return
	}
	ctx, cancel := context.WithTimeout(ctx, tableBudget)
	defer cancel()
	t, err := s.votes.Tally(ctx, c.TaskToken, approverOf(c, v.signedIn), c.Quorum())
	if err != nil {
		s.m.Votes.WithLabelValues(metrics.VoteTallyError).Inc()
		s.log.Warn("votes not counted for the page", "error_code", awsx.ErrorCode(err), "error", redact(err, c.TaskToken))
		return
	}
	v.tallied, v.approvals, v.required = true, t.Approvals, t.Required
	switch {
	case t.Decided:
		// Nothing left to confirm: say who decided, as a POST would.
		v.outcome, v.formAction, v.tallied = outGone, "", false
		v.decided = t.Decision
		if t.Decision != nil {
			v.decidedAt = t.Decision.DecidedAt
		}
	case t.Mine != nil && c.Action.Type != approval.Heartbeat:
		v.outcome, v.formAction = outAlreadyVoted, ""
		v.earlier, v.decidedAt = t.Mine, t.Mine.DecidedAt
	}
}

// metricsOutcome is the decisions_total outcome of an error answer.
func metricsOutcome(o outcome) string {
	if o.Name == outUnavailable.Name {
		return metrics.OutcomeUnavailable
	}
	return metrics.OutcomeError
}

// retryingTask is how the votes store reaches Step Functions: each call with
// the POST's retries (callSFN), which end within the retry budget and so
// within the store's lease.
type retryingTask struct{ s *Server }

func (t retryingTask) Succeed(ctx context.Context, token, output string) error {
	op, call := t.s.succeedCall(token, output)
	return t.call(ctx, op, token, call)
}

func (t retryingTask) Fail(ctx context.Context, token, errorName, cause string) error {
	op, call := t.s.failCall(token, errorName, cause)
	return t.call(ctx, op, token, call)
}

func (t retryingTask) Heartbeat(ctx context.Context, token string) error {
	op, call := t.s.heartbeatCall(token)
	return t.call(ctx, op, token, call)
}

func (t retryingTask) call(ctx context.Context, op, token string, call func(context.Context) error) error {
	ctx, cancel := context.WithTimeout(ctx, t.s.cfg.Retry.MaxElapsed)
	defer cancel()
	_, err := t.s.callSFN(ctx, op, token, nil, call)
	return err
}
