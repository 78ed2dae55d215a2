package awsx

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	"github.com/aws/smithy-go/middleware"
)

// Bounds of APPROVALS_AWS_TIMEOUT, the deadline of one AWS call attempt.
const (
	DefaultTimeout = 10 * time.Second
	MinTimeout     = time.Second
	MaxTimeout     = 60 * time.Second
)

// maxLongPoll is the longest SQS long poll, which a ReceiveMessage that
// does not name its wait may get from the queue's own setting.
const maxLongPoll = 20 * time.Second

// CheckTimeout says whether d is a valid APPROVALS_AWS_TIMEOUT.
func CheckTimeout(d time.Duration) error {
	if d < MinTimeout || d > MaxTimeout {
		return fmt.Errorf("%s is out of range [%s, %s]", d, MinTimeout, MaxTimeout)
	}
	return nil
}

// AttemptTimeoutError is one attempt of an AWS call that got no complete
// answer within its deadline: a half-open connection, an endpoint that
// accepted and went silent. It is transient: the SDK's retryer tries again
// (it is a timeout and a connection error to it) and Retryable says true.
// It deliberately wraps no context error, which both would take as the
// caller giving up.
type AttemptTimeoutError struct {
	Operation string
	After     time.Duration
}

func (e *AttemptTimeoutError) Error() string {
	return fmt.Sprintf("%s: no answer within %s", e.Operation, e.After)
}

// Timeout, Temporary and ConnectionError make it a net.Error timeout and a
// connection error, which is how the SDK's retryer and Retryable know it.
func (*AttemptTimeoutError) Timeout() bool         { return true }
func (*AttemptTimeoutError) Temporary() bool       { return true }
func (*AttemptTimeoutError) ConnectionError() bool { return true }

// WithAttemptTimeout returns cfg whose clients give every attempt of every
// call d to finish, sending the request and reading the whole answer. The
// SDK has no read timeout of its own, so without it one silent connection
// holds its caller for ever. A ReceiveMessage attempt gets its long-poll
// wait on top of d. The APIOptions slice is copied, so cfg's other users
// are not changed.
func WithAttemptTimeout(cfg aws.Config, d time.Duration) aws.Config {
	cfg.APIOptions = append(cfg.APIOptions[:len(cfg.APIOptions):len(cfg.APIOptions)], AttemptTimeout(d))
	return cfg
}

// AttemptTimeout is the middleware behind WithAttemptTimeout, for a single
// client's APIOptions.
func AttemptTimeout(d time.Duration) func(*middleware.Stack) error {
	return func(s *middleware.Stack) error {
		if err := s.Initialize.Add(longPollWait{}, middleware.After); err != nil {
			return err
		}
		mw := attemptDeadline{d: d}
		// After the retry step, so each attempt has its own deadline rather
		// than the call as a whole; a stack without one (none of ours) still
		// gets a deadline for the call.
		if _, ok := s.Finalize.Get("Retry"); ok {
			return s.Finalize.Insert(mw, "Retry", middleware.After)
		}
		return s.Finalize.Add(mw, middleware.Before)
	}
}

type longPollKey struct{}

// longPollWait notes a ReceiveMessage's wait, which only the input knows,
// for attemptDeadline further down the stack.
type longPollWait struct{}

func (longPollWait) ID() string { return "ApprovalsLongPollWait" }

func (longPollWait) HandleInitialize(ctx context.Context, in middleware.InitializeInput, next middleware.InitializeHandler) (
	middleware.InitializeOutput, middleware.Metadata, error,
) {
	if r, ok := in.Parameters.(*sqs.ReceiveMessageInput); ok {
		wait := time.Duration(r.WaitTimeSeconds) * time.Second
		if r.WaitTimeSeconds <= 0 {
			// Not named: the queue's ReceiveMessageWaitTimeSeconds applies,
			// at most 20 s.
			wait = maxLongPoll
		}
		ctx = middleware.WithStackValue(ctx, longPollKey{}, wait)
	}
	return next.HandleInitialize(ctx, in)
}

type attemptDeadline struct{ d time.Duration }

func (attemptDeadline) ID() string { return "ApprovalsAttemptTimeout" }

func (m attemptDeadline) HandleFinalize(ctx context.Context, in middleware.FinalizeInput, next middleware.FinalizeHandler) (
	middleware.FinalizeOutput, middleware.Metadata, error,
) {
	d := m.d
	if wait, ok := middleware.GetStackValue(ctx, longPollKey{}).(time.Duration); ok {
		d += wait
	}
	actx, cancel := context.WithTimeoutCause(ctx, d, errAttemptDeadline)
	defer cancel()
	out, md, err := next.HandleFinalize(actx, in)
	if err != nil && ctx.Err() == nil && errors.Is(context.Cause(actx), errAttemptDeadline) {
		return out, md, &AttemptTimeoutError{Operation: middleware.GetOperationName(ctx), After: d}
	}
	return out, md, err
}

var errAttemptDeadline = errors.New("attempt deadline")
