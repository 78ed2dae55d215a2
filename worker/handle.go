package worker

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/sfn-approvals/sfn-approvals/channel"
	"github.com/sfn-approvals/sfn-approvals/link"
	"github.com/sfn-approvals/sfn-approvals/metrics"
)

// Handler turns one message body into emails, or into a fail-fast verdict.
// It never touches the queue: it returns a result that the pool carries
// out, so that deleting and retrying live in one place.
type Handler struct {
	Keyring          *link.Keyring
	BaseURL          string // the redeemer's public base URL
	Sender           string // From address
	ConfigurationSet string // optional SES configuration set
	Templates        *Templates
	DefaultExpiry    time.Duration
	// VotesTable says the votes table is configured: requests may ask for
	// more than one approval.
	VotesTable bool
	Email      emailSender
	// Channels are the configured channels requests may name; Poster
	// posts to them.
	Channels channel.Config
	Poster   channelPoster
	Tasks    taskFailer
	Metrics  *metrics.Worker
	Log      *slog.Logger
	Now      func() time.Time // nil: time.Now
}

// result is what handling decided for a message.
type result struct {
	outcome string // a metrics.Handled* label
	delete  bool   // done: delete the message
	// release makes the message visible again at once: the work was cut
	// short by shutdown, not by anything wrong with the message.
	release bool
	// reason explains a non-success outcome for the log; it never holds a
	// task token, a link or the body.
	reason error
	// emails counts the emails SES accepted.
	emails int
}

func (h *Handler) now() time.Time {
	if h.Now != nil {
		return h.Now()
	}
	return time.Now()
}

// Handle is HandleSent for a request sent now.
func (h *Handler) Handle(ctx context.Context, body []byte) result {
	return h.HandleSent(ctx, body, time.Time{})
}

// HandleSent decodes body, posts one message per channel, sends one email
// per recipient and says what to do with the message. sent is when the
// message was sent, which expiresIn and the default expiry count from;
// zero means now.
func (h *Handler) HandleSent(ctx context.Context, body []byte, sent time.Time) result {
	opts := h.decodeOptions()
	opts.Sent = sent
	req, err := DecodeRequest(body, opts)
	if err != nil {
		var ve *ValidationError
		if !errors.As(err, &ve) || ve.Malformed() {
			return result{outcome: metrics.HandledMalformed, reason: err}
		}
		return h.failFast(ctx, ve.taskToken, ErrInvalidRequest, ve.Problems, metrics.HandledInvalid)
	}

	emails, err := h.compose(req)
	var posts []post
	if err == nil {
		posts, err = h.composePosts(req)
	}
	if err != nil {
		if req.Notification() {
			return result{outcome: metrics.HandledMalformed, reason: err}
		}
		return h.failFast(ctx, req.TaskToken, ErrInvalidRequest, []string{err.Error()}, metrics.HandledInvalid)
	}

	// Channels go first: a channel that refuses the message fails the
	// approval before anyone gets an email for it.
	if _, err := h.postAll(ctx, posts); err != nil {
		switch {
		case ctx.Err() != nil:
			return result{outcome: metrics.HandledRetried, release: true, reason: err}
		case !channel.Rejected(err):
			return result{outcome: metrics.HandledRetried, reason: err}
		case req.Notification():
			return result{outcome: metrics.HandledRejected, delete: true, reason: err}
		}
		return h.failFast(ctx, req.TaskToken, ErrChannelRejected, []string{channelCause(err)}, metrics.HandledRejected)
	}

	for i, e := range emails {
		err := h.send(ctx, e)
		if err == nil {
			continue
		}
		if ctx.Err() != nil {
			return result{outcome: metrics.HandledRetried, release: true, reason: err, emails: i}
		}
		switch v, code := classifySend(err); v {
		case sendRetry:
			return result{outcome: metrics.HandledRetried, reason: err, emails: i}
		case sendOperator:
			h.Metrics.OperatorErrors.WithLabelValues(code).Inc()
			return result{outcome: metrics.HandledRetried, reason: fmt.Errorf("an operator must fix %s: %w", code, err), emails: i}
		}
		if req.Notification() {
			// Nothing waits on a notification, and sending it again would
			// only repeat the emails that did go out before this one.
			return result{outcome: metrics.HandledRejected, delete: true, reason: err, emails: i}
		}
		r := h.failFast(ctx, req.TaskToken, ErrEmailRejected, []string{sesProblem(e.to, err)}, metrics.HandledRejected)
		r.emails = i
		return r
	}
	if req.Notification() {
		return result{outcome: metrics.HandledNotified, delete: true, emails: len(emails)}
	}
	return result{outcome: metrics.HandledSent, delete: true, emails: len(emails)}
}

// decodeOptions are the options Handle decodes requests with.
func (h *Handler) decodeOptions() DecodeOptions {
	return DecodeOptions{Now: h.now(), DefaultExpiry: h.DefaultExpiry, Templates: h.Templates, Channels: h.Channels,
		VotesTable: h.VotesTable}
}

// panicResult is the result for a message whose handling panicked: it is
// retried like a transient error, and reaches the dead-letter queue if the
// panic repeats.
func panicResult(v any) result {
	return result{outcome: metrics.HandledRetried, reason: fmt.Errorf("panic: %v", v)}
}
