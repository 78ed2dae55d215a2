package redeemer

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sfn"

	"github.com/sfn-approvals/sfn-approvals/approval"
	"github.com/sfn-approvals/sfn-approvals/internal/awsx"
	"github.com/sfn-approvals/sfn-approvals/link"
	"github.com/sfn-approvals/sfn-approvals/metrics"
	"github.com/sfn-approvals/sfn-approvals/votes"
)

// decide answers POST: verify the link (and sign-in) again (the form is not
// trusted to be ours), check the comment (or a JSON callback's body), and
// complete the task.
func (s *Server) decide(w http.ResponseWriter, r *http.Request, tok string) {
	c, id, v, ok := s.admit(r, tok)
	if !ok {
		s.respond(w, r, v)
		return
	}
	in, bad, problem := readDecisionInput(r)
	if problem != "" {
		v := view{outcome: bad, claims: &c, signedIn: id, comment: in.comment, commentErr: problem}
		v.formAction, v.formActionPlain = formAction(r.URL)
		s.respond(w, r, v)
		return
	}
	d := approval.Decision{
		Action:    c.Action.Name,
		Approver:  approverOf(c, id),
		DecidedAt: s.cfg.Now().UTC().Truncate(time.Second),
		Comment:   in.comment,
		Payload:   approval.RawJSON(in.payload),
		Identity:  id,
	}
	if s.votes != nil {
		s.vote(w, r, c, id, d)
		return
	}
	out := s.complete(r.Context(), c, d)
	v = view{outcome: out, claims: &c, signedIn: id, decidedAt: d.DecidedAt}
	if out.Name == outRecorded.Name && redirect(w, r, c, &v) {
		return
	}
	s.respond(w, r, v)
}

// readComment returns the approver's comment, with line breaks as browsers
// count them for maxlength (LF, where the form sends CRLF), and a message
// for the approver when it cannot be accepted.
func readComment(r *http.Request) (comment, problem string) {
	tooLong := fmt.Sprintf("The comment is too long: at most %d characters, please shorten it.", MaxCommentRunes)
	if err := r.ParseForm(); err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			return "", tooLong
		}
		return "", "The form could not be read; please try again."
	}
	comment = r.PostForm.Get("comment")
	if !utf8.ValidString(comment) {
		return strings.ToValidUTF8(comment, "\uFFFD"), "The comment contains characters that are not valid text (not UTF-8); please retype it."
	}
	comment = strings.TrimSpace(strings.ReplaceAll(comment, "\r\n", "\n"))
	if utf8.RuneCountInString(comment) > MaxCommentRunes {
		return comment, tooLong
	}
	return comment, ""
}

// complete sends the decision to Step Functions with retries and says how it
// went. The call runs under a context detached from the request, bounded by
// the retry budget: an approver closing the tab must not cut a decision off
// halfway, and SIGTERM waits for it (see Run).
func (s *Server) complete(reqCtx context.Context, c link.Claims, d approval.Decision) outcome {
	op, call, err := s.prepare(c, d)
	typ := string(c.Action.Type)
	attrs := []any{"action", c.Action.Name, "type", typ, "approver", d.Approver, "key_id", c.KeyID}
	if d.Identity != nil {
		// Who signed in, by the provider's id; the header itself is a
		// credential and never logged.
		attrs = append(attrs, "sub", d.Identity.Sub)
	}
	if err != nil {
		s.m.Decisions.WithLabelValues(typ, metrics.OutcomeError).Inc()
		s.log.Error("decision not sent", append(attrs, "error", err)...)
		return outError
	}

	s.m.InFlightPosts.Inc()
	defer s.m.InFlightPosts.Dec()
	ctx, cancel := context.WithTimeout(context.WithoutCancel(reqCtx), s.cfg.Retry.MaxElapsed)
	defer cancel()
	attempts, err := s.callSFN(ctx, op, c.TaskToken, attrs, call)
	attrs = append(attrs, "operation", op, "attempts", attempts)

	switch {
	case err == nil:
		s.m.Decisions.WithLabelValues(typ, metrics.OutcomeRecorded).Inc()
		s.log.Info("decision recorded", attrs...)
		if c.Action.Type == approval.Heartbeat {
			return outExtended
		}
		return outRecorded
	case votes.GoneCode(err) != "":
		s.m.Decisions.WithLabelValues(typ, metrics.OutcomeGone).Inc()
		s.log.Info("task already answered or timed out", append(attrs, "error_code", awsx.ErrorCode(err))...)
		return outGone
	case awsx.Retryable(err) || errors.Is(err, errAttemptTimeout) || ctx.Err() != nil:
		s.m.Decisions.WithLabelValues(typ, metrics.OutcomeUnavailable).Inc()
		s.log.Warn("step functions unavailable", append(attrs, "error_code", awsx.ErrorCode(err), "error", redact(err, c.TaskToken))...)
		return outUnavailable
	default:
		s.m.Decisions.WithLabelValues(typ, metrics.OutcomeError).Inc()
		s.log.Error("step functions refused the decision", append(attrs, "error_code", awsx.ErrorCode(err), "error", redact(err, c.TaskToken))...)
		return outError
	}
}

// callSFN makes one Step Functions call with the POST's retries: each
// attempt bounded by AttemptTimeout, the whole by ctx and the retry budget.
func (s *Server) callSFN(ctx context.Context, op, token string, attrs []any, call func(context.Context) error) (attempts int, err error) {
	err = awsx.Retry(ctx, s.cfg.Retry, func(ctx context.Context) error {
		attempts++
		actx, cancel := context.WithTimeout(ctx, s.cfg.AttemptTimeout)
		defer cancel()
		start := time.Now()
		err := call(actx)
		s.m.SFNDuration.WithLabelValues(op).Observe(time.Since(start).Seconds())
		if err != nil && actx.Err() != nil && ctx.Err() == nil {
			// This attempt's own deadline, not the budget's: worth another.
			return errAttemptTimeout
		}
		return err
	}, func(err error, wait time.Duration) {
		s.m.SFNRetries.WithLabelValues(op).Inc()
		s.log.Warn("step functions call retried", append(attrs, "operation", op, "attempt", attempts,
			"wait", wait, "error_code", awsx.ErrorCode(err), "error", redact(err, token))...)
	})
	return attempts, err
}

// prepare builds the Step Functions call for the link's action.
func (s *Server) prepare(c link.Claims, d approval.Decision) (op string, call func(context.Context) error, err error) {
	switch c.Action.Type {
	case approval.Success:
		out, err := SuccessOutput(c.Action, d)
		if err != nil {
			return "", nil, err
		}
		op, call = s.succeedCall(c.TaskToken, out)
		return op, call, nil
	case approval.Failure:
		cause, err := FailureCause(c.Action, d)
		if err != nil {
			return "", nil, err
		}
		op, call = s.failCall(c.TaskToken, c.Action.Error, cause)
		return op, call, nil
	case approval.Heartbeat:
		op, call = s.heartbeatCall(c.TaskToken)
		return op, call, nil
	}
	return "", nil, fmt.Errorf("unknown action type %q", c.Action.Type)
}

// succeedCall, failCall and heartbeatCall are the Step Functions calls that
// answer a task, with their operation's name for metrics and logs: a lone
// decision (prepare) and the votes store (retryingTask) make the same ones.
func (s *Server) succeedCall(token, output string) (op string, call func(context.Context) error) {
	in := &sfn.SendTaskSuccessInput{TaskToken: aws.String(token), Output: aws.String(output)}
	return "SendTaskSuccess", func(ctx context.Context) error {
		_, err := s.sfn.SendTaskSuccess(ctx, in)
		return err
	}
}

func (s *Server) failCall(token, errorName, cause string) (op string, call func(context.Context) error) {
	in := &sfn.SendTaskFailureInput{TaskToken: aws.String(token), Error: aws.String(errorName), Cause: aws.String(cause)}
	return "SendTaskFailure", func(ctx context.Context) error {
		_, err := s.sfn.SendTaskFailure(ctx, in)
		return err
	}
}

func (s *Server) heartbeatCall(token string) (op string, call func(context.Context) error) {
	in := &sfn.SendTaskHeartbeatInput{TaskToken: aws.String(token)}
	return "SendTaskHeartbeat", func(ctx context.Context) error {
		_, err := s.sfn.SendTaskHeartbeat(ctx, in)
		return err
	}
}

// SuccessOutput is the SendTaskSuccess output of a success action decided
// by one approver: as votes.SuccessOutput gives at quorum, with d the only
// approving vote, so a state machine reads decisions the same way with or
// without a votes table.
func SuccessOutput(a approval.Action, d approval.Decision) (string, error) {
	return votes.SuccessOutput(a.Output, d, []approval.Decision{d})
}

// FailureCause is the SendTaskFailure cause of a failure action decided by
// one approver: votes.FailureCause with no approvals before it.
func FailureCause(a approval.Action, d approval.Decision) (string, error) {
	return votes.FailureCause(a.Cause, d, nil)
}

// errAttemptTimeout stands for one attempt that ran out of time. It is a
// timeout net.Error, so awsx.Retryable retries it; it deliberately does not
// wrap context.DeadlineExceeded, which Retryable treats as final.
var errAttemptTimeout error = attemptTimeout{}

type attemptTimeout struct{}

func (attemptTimeout) Error() string   { return "step functions call timed out" }
func (attemptTimeout) Timeout() bool   { return true }
func (attemptTimeout) Temporary() bool { return true }

// redact removes the task token from an error's text before it is logged;
// the SDK's errors should not carry it, but a log is the wrong place to find
// out they do.
func redact(err error, token string) string {
	if err == nil {
		return ""
	}
	msg := err.Error()
	if token != "" {
		msg = strings.ReplaceAll(msg, token, "[task token]")
	}
	return msg
}
