package worker

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sfn"

	"github.com/sfn-approvals/sfn-approvals/internal/awsx"
	"github.com/sfn-approvals/sfn-approvals/metrics"
)

// Error names the worker fails an execution with.
const (
	ErrInvalidRequest = "Approvals.InvalidRequest"
	ErrEmailRejected  = "Approvals.EmailRejected"
	// ErrChannelRejected is a channel that refused the message for good (a
	// 4xx other than 429): a revoked webhook, a body it will not take.
	ErrChannelRejected = "Approvals.ChannelRejected"
)

// taskFailer is the part of the Step Functions client the worker uses.
type taskFailer interface {
	SendTaskFailure(ctx context.Context, in *sfn.SendTaskFailureInput, optFns ...func(*sfn.Options)) (*sfn.SendTaskFailureOutput, error)
}

var _ taskFailer = (*sfn.Client)(nil)

// maxCauseLen is the Step Functions limit on a failure cause.
const maxCauseLen = 32768

// failureCause is the cause sent with SendTaskFailure: a JSON object
// {"problems": [...]} that a state machine can read with States.StringToJson.
// Problems that would push it past the Step Functions limit are summed up
// in a last entry.
func failureCause(problems []string) string {
	const head, tail = `{"problems":[`, `]}`
	enc := make([]string, len(problems))
	for i, p := range problems {
		enc[i] = jsonString(p)
	}
	size := len(head) + len(tail)
	for i, e := range enc {
		// Unless e is the last, keep room for the entry that counts what
		// may yet be left out.
		room := 0
		if i+1 < len(enc) {
			room = len(jsonString(fmt.Sprintf("... and %d more problems", len(enc)-i))) + 1
		}
		if size+len(e)+1+room > maxCauseLen {
			more := jsonString(fmt.Sprintf("... and %d more problems", len(enc)-i))
			return head + strings.Join(append(enc[:i:i], more), ",") + tail
		}
		size += len(e) + 1
	}
	return head + strings.Join(enc, ",") + tail
}

// jsonString encodes s as a JSON string, leaving <, > and & as they are:
// the cause is read by state machines, not pasted into HTML.
func jsonString(s string) string {
	var b strings.Builder
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	_ = enc.Encode(s) // a string always encodes
	return strings.TrimSuffix(b.String(), "\n")
}

// taskGone reports whether SendTaskFailure answered that nothing waits on
// the token any more (timed out, already completed, or never was): the
// message has done all it can.
func taskGone(err error) bool {
	switch awsx.ErrorCode(err) {
	case "TaskTimedOut", "TaskDoesNotExist", "InvalidToken":
		return true
	}
	return false
}

// failFast fails the execution waiting on token with errName and a cause
// listing problems. The message is deleted only once Step Functions has the
// verdict (or nothing waits any more); otherwise it stays for another try.
func (h *Handler) failFast(ctx context.Context, token, errName string, problems []string, outcome string) result {
	_, err := h.Tasks.SendTaskFailure(ctx, &sfn.SendTaskFailureInput{
		TaskToken: aws.String(token),
		Error:     aws.String(errName),
		Cause:     aws.String(failureCause(problems)),
	})
	reason := fmt.Errorf("%s: %d problems, first: %s", errName, len(problems), problems[0])
	switch {
	case err == nil:
		h.Metrics.FailFast.WithLabelValues(errName, "ok").Inc()
		return result{outcome: outcome, delete: true, reason: reason}
	case taskGone(err):
		h.Metrics.FailFast.WithLabelValues(errName, "ok").Inc()
		return result{outcome: outcome, delete: true, reason: fmt.Errorf("%w; execution no longer waiting (%s)", reason, awsx.ErrorCode(err))}
	}
	h.Metrics.FailFast.WithLabelValues(errName, "error").Inc()
	if code, ok := operatorError(err); ok {
		h.Metrics.OperatorErrors.WithLabelValues(code).Inc()
	}
	// Only the code and class of the error are kept: what Step Functions
	// says about a token is no business of the logs.
	sfnErr := fmt.Errorf("send task failure: %s (retryable: %t)", errorSummary(err), awsx.Retryable(err))
	if ctx.Err() != nil {
		return result{outcome: metrics.HandledRetried, release: true, reason: sfnErr}
	}
	return result{outcome: metrics.HandledRetried, reason: sfnErr}
}

// errorSummary names an AWS error by its code, or by its text when it has
// none (a network error, which carries no request content).
func errorSummary(err error) string {
	if code := awsx.ErrorCode(err); code != "" {
		return code
	}
	return err.Error()
}
