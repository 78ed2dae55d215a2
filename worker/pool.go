package worker

import (
	"context"
	"errors"
	"log/slog"
	"math"
	"runtime/debug"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	sqstypes "github.com/aws/aws-sdk-go-v2/service/sqs/types"

	"github.com/sfn-approvals/sfn-approvals/internal/wait"
	"github.com/sfn-approvals/sfn-approvals/metrics"
)

// queue is the part of the SQS client the worker uses.
type queue interface {
	ReceiveMessage(ctx context.Context, in *sqs.ReceiveMessageInput, optFns ...func(*sqs.Options)) (*sqs.ReceiveMessageOutput, error)
	DeleteMessage(ctx context.Context, in *sqs.DeleteMessageInput, optFns ...func(*sqs.Options)) (*sqs.DeleteMessageOutput, error)
	DeleteMessageBatch(ctx context.Context, in *sqs.DeleteMessageBatchInput, optFns ...func(*sqs.Options)) (*sqs.DeleteMessageBatchOutput, error)
	ChangeMessageVisibility(ctx context.Context, in *sqs.ChangeMessageVisibilityInput, optFns ...func(*sqs.Options)) (*sqs.ChangeMessageVisibilityOutput, error)
}

var _ queue = (*sqs.Client)(nil)

// Pool defaults.
const (
	DefaultConcurrency       = 16
	DefaultVisibilityTimeout = 60 * time.Second
	DefaultShutdownGrace     = 30 * time.Second
	DefaultRetryBase         = 10 * time.Second
	DefaultRetryMax          = 15 * time.Minute
	// DefaultReceiveWait is the longest long poll SQS allows.
	DefaultReceiveWait = 20 * time.Second

	maxBatch = 10 // the SQS limit per ReceiveMessage
	// receiveSlack is how long a receive may run past its wait before it
	// is cut: only a hung connection takes that long.
	receiveSlack = 5 * time.Second
	// finishTimeout bounds the delete or visibility change that records a
	// message's outcome.
	finishTimeout = 10 * time.Second
	// unhealthyAfter consecutive failed receives turn /healthz red.
	unhealthyAfter = 5
)

// Pool receives messages and hands each to the Handler, at most Concurrency
// at a time, then deletes the message or schedules its next attempt.
type Pool struct {
	Queue    queue
	QueueURL string
	Handler  *Handler
	Metrics  *metrics.Worker
	Log      *slog.Logger

	Concurrency int
	// VisibilityTimeout is asked for at receive and renewed every third of
	// it while a message is being handled, so a slow send is not received
	// twice.
	VisibilityTimeout time.Duration
	// ShutdownGrace is how long in-flight messages may run on after Run's
	// context ends; then their work is cancelled and they are released.
	ShutdownGrace time.Duration
	// RetryBase and RetryMax shape the delay before a retried message is
	// seen again: RetryBase * 2^(receives-1), at most RetryMax.
	RetryBase time.Duration
	RetryMax  time.Duration
	// ReceiveWait is the long poll's wait, in whole seconds up to 20.
	// Shutdown lets the receive in progress finish, so it is also the
	// longest a drain waits for the queue.
	ReceiveWait time.Duration

	// receiveSlack overrides receiveSlack when set; tests shorten it.
	receiveSlack time.Duration
	// deleteWindow overrides deleteWindow when set; tests lengthen it.
	deleteWindow time.Duration

	receiveFailures atomic.Int32
	stopping        atomic.Pointer[context.Context] // Run's context
	active          atomic.Int64                    // messages being handled
	deletes         *deleter                        // set by Run
}

// Healthy is the /healthz check: red while draining or after repeated
// failures to receive.
func (p *Pool) Healthy() error {
	if ctx := p.stopping.Load(); ctx != nil && (*ctx).Err() != nil {
		return errors.New("shutting down")
	}
	if n := p.receiveFailures.Load(); n >= unhealthyAfter {
		return errors.New("receiving from the queue keeps failing")
	}
	return nil
}

func (p *Pool) defaults() {
	if p.Concurrency <= 0 {
		p.Concurrency = DefaultConcurrency
	}
	if p.VisibilityTimeout <= 0 {
		p.VisibilityTimeout = DefaultVisibilityTimeout
	}
	if p.ShutdownGrace <= 0 {
		p.ShutdownGrace = DefaultShutdownGrace
	}
	if p.RetryBase <= 0 {
		p.RetryBase = DefaultRetryBase
	}
	if p.RetryMax <= 0 {
		p.RetryMax = DefaultRetryMax
	}
	if p.ReceiveWait <= 0 {
		p.ReceiveWait = DefaultReceiveWait
	}
	if p.receiveSlack <= 0 {
		p.receiveSlack = receiveSlack
	}
	if p.deleteWindow <= 0 {
		p.deleteWindow = deleteWindow
	}
	if p.Log == nil {
		p.Log = slog.New(slog.DiscardHandler)
	}
}

// Run receives until ctx ends, then stops receiving, gives in-flight
// messages ShutdownGrace to finish, cancels the rest (which releases them)
// and returns nil. The receive in progress when ctx ends is let finish, and
// what it returns is released unstarted.
func (p *Pool) Run(ctx context.Context) error {
	p.defaults()
	p.stopping.Store(&ctx)
	// Work outlives ctx by the grace period: shutdown stops receiving first
	// and only later cancels the work.
	workCtx, cancelWork := context.WithCancel(context.WithoutCancel(ctx))
	defer cancelWork()
	// The grace period counts from the end of ctx, not from the end of the
	// last receive, which may finish up to ReceiveWait later.
	stoppedAt := make(chan time.Time, 1)
	context.AfterFunc(ctx, func() { stoppedAt <- time.Now() })

	slots := make(chan struct{}, p.Concurrency)
	var wg sync.WaitGroup
	var errDelay time.Duration
	p.deletes = newDeleter(p.Queue, p.QueueURL, &p.active, p.deleteWindow)
	defer p.deletes.close() // at return, when every message is done

	// One long-lived goroutine per slot handles the messages, rather than
	// one goroutine per message: handling runs deep (the SDK's middleware,
	// the templates), and a fresh goroutine grew and copied its stack
	// several times for every message.
	work := make(chan sqstypes.Message, p.Concurrency)
	for range p.Concurrency {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for m := range work {
				p.process(workCtx, m)
				p.active.Add(-1)
				<-slots
			}
		}()
	}

	for {
		n := acquire(ctx, slots, min(maxBatch, p.Concurrency))
		if n == 0 {
			break
		}
		msgs, err := p.receive(ctx, n)
		for range n - len(msgs) {
			<-slots
		}
		if err != nil {
			if ctx.Err() != nil {
				break
			}
			p.Metrics.SQSErrors.WithLabelValues("ReceiveMessage").Inc()
			p.receiveFailures.Add(1)
			errDelay = min(max(2*errDelay, time.Second), 30*time.Second)
			p.Log.Warn("receive failed", "error", err, "retry_in", errDelay.String())
			if !wait.Sleep(ctx, errDelay) {
				break
			}
			continue
		}
		p.receiveFailures.Store(0)
		errDelay = 0
		for i, m := range msgs {
			p.Metrics.Received.Inc()
			if ctx.Err() != nil {
				// Shutdown began while these were on their way: give them
				// back now rather than after their visibility timeout.
				p.Log.Info("messages received during shutdown released, visible now", "count", len(msgs[i:]))
				p.release(context.WithoutCancel(ctx), msgs[i:])
				for range msgs[i:] {
					<-slots
				}
				break
			}
			p.active.Add(1)
			work <- m // never blocks: a slot is held for it
		}
	}
	close(work)

	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()
	grace := time.NewTimer(p.ShutdownGrace - time.Since(<-stoppedAt))
	defer grace.Stop()
	select {
	case <-done:
	case <-grace.C:
		p.Log.Warn("shutdown grace period over; cancelling in-flight messages")
		cancelWork()
		<-done
	}
	return nil
}

// acquire takes one slot, waiting for it, then up to want-1 more if free,
// and returns how many it holds (0 once ctx ends).
func acquire(ctx context.Context, slots chan struct{}, want int) int {
	if ctx.Err() != nil {
		return 0 // select would pick at random between a free slot and Done
	}
	select {
	case slots <- struct{}{}:
	case <-ctx.Done():
		return 0
	}
	n := 1
	for n < want {
		select {
		case slots <- struct{}{}:
			n++
		default:
			return n
		}
	}
	return n
}

// receive asks for up to n messages. Shutdown (the end of ctx) does not
// cancel it: SQS may already have picked messages for this long poll, and
// a cancelled call loses its answer, leaving them invisible until their
// visibility timeout. It is cut only if it outlasts its wait by the slack.
func (p *Pool) receive(ctx context.Context, n int) ([]sqstypes.Message, error) {
	rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), p.ReceiveWait+p.receiveSlack)
	defer cancel()
	out, err := p.Queue.ReceiveMessage(rctx, &sqs.ReceiveMessageInput{
		QueueUrl:            aws.String(p.QueueURL),
		MaxNumberOfMessages: int32(n),
		WaitTimeSeconds:     int32(min(p.ReceiveWait, DefaultReceiveWait) / time.Second),
		VisibilityTimeout:   seconds(p.VisibilityTimeout),
		MessageSystemAttributeNames: []sqstypes.MessageSystemAttributeName{
			sqstypes.MessageSystemAttributeNameApproximateReceiveCount,
			sqstypes.MessageSystemAttributeNameSentTimestamp,
		},
	})
	if err != nil {
		return nil, err
	}
	if len(out.Messages) > n {
		// Never more than asked for; should SQS misbehave, the surplus
		// is given back rather than run beyond the concurrency limit.
		p.release(context.WithoutCancel(ctx), out.Messages[n:])
		return out.Messages[:n], nil
	}
	return out.Messages, nil
}

// process handles one message and records its outcome on the queue.
func (p *Pool) process(ctx context.Context, m sqstypes.Message) {
	p.Metrics.InFlight.Inc()
	defer p.Metrics.InFlight.Dec()
	start := time.Now()
	receives := receiveCount(m)
	// Expiries count from the send, so each receive mints the same links.
	// Without the attribute (SQS always gives it when asked) they count
	// from now, as a zero time tells the handler.
	sent, ok := sentAt(m)
	if ok {
		p.Metrics.MessageAge.Observe(max(start.Sub(sent).Seconds(), 0))
	}

	stopExtending := p.extend(ctx, m)
	res := p.handle(ctx, m, sent)
	stopExtending()

	// The outcome is recorded even if shutdown cancelled the work.
	fctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), finishTimeout)
	defer cancel()
	p.Metrics.Handled.WithLabelValues(res.outcome).Inc()
	// One record per message, its attributes built once; LogAttrs rather
	// than With, which would copy the handler for every message.
	attrs := make([]slog.Attr, 0, 7) // room for a line's own two
	attrs = append(attrs, slog.String("message_id", aws.ToString(m.MessageId)), slog.Int("receive_count", receives),
		slog.String("outcome", res.outcome), slog.Int("emails_sent", res.emails), slog.String("duration", time.Since(start).String()))
	log := func(level slog.Level, msg string, more ...slog.Attr) {
		p.Log.LogAttrs(context.Background(), level, msg, append(attrs, more...)...)
	}
	switch {
	case res.delete:
		// Batched with the deletes of messages finishing at the same time.
		if err := p.deletes.delete(m.ReceiptHandle); err != nil {
			// The message comes back after its visibility timeout and is
			// sent again: at least once.
			p.Metrics.SQSErrors.WithLabelValues("DeleteMessage").Inc()
			log(slog.LevelError, "delete failed", slog.Any("error", err))
		}
	case res.release:
		p.setVisibility(fctx, m, 0)
	default:
		p.setVisibility(fctx, m, p.retryDelay(receives))
	}
	switch {
	case res.outcome == metrics.HandledMalformed:
		log(slog.LevelError, "malformed message left for the dead-letter queue", slog.Any("reason", res.reason))
	case res.release:
		log(slog.LevelWarn, "message released, visible now", slog.Any("reason", res.reason))
	case res.reason != nil && res.outcome == metrics.HandledRetried:
		log(slog.LevelWarn, "message will be retried", slog.Any("reason", res.reason), slog.String("retry_in", p.retryDelay(receives).String()))
	case res.reason != nil:
		log(slog.LevelWarn, "message failed fast", slog.Any("reason", res.reason))
	default:
		log(slog.LevelInfo, "message handled")
	}
}

// handle runs the Handler, turning a panic into this message's retry.
func (p *Pool) handle(ctx context.Context, m sqstypes.Message, sent time.Time) (res result) {
	defer func() {
		if v := recover(); v != nil {
			p.Metrics.Panics.Inc()
			p.Log.Error("panic while handling a message", "message_id", aws.ToString(m.MessageId),
				"panic", v, "stack", string(debug.Stack()))
			res = panicResult(v)
		}
	}()
	return p.Handler.HandleSent(ctx, []byte(aws.ToString(m.Body)), sent)
}

// extend renews the message's visibility every third of the timeout until
// the returned stop is called; stop waits for a renewal in progress, so it
// cannot overwrite the visibility set afterwards. A timer rather than a
// goroutine per message: nearly every message is done long before the
// first renewal.
func (p *Pool) extend(ctx context.Context, m sqstypes.Message) (stop func()) {
	ctx, cancel := context.WithCancel(ctx)
	every := max(p.VisibilityTimeout/3, time.Millisecond)
	var mu sync.Mutex // held by a renewal, and by stop
	var t *time.Timer
	renew := func() {
		mu.Lock()
		defer mu.Unlock()
		if ctx.Err() != nil {
			return
		}
		if p.setVisibility(ctx, m, p.VisibilityTimeout) {
			p.Metrics.VisibilityExt.Inc()
		}
		if ctx.Err() == nil {
			t.Reset(every)
		}
	}
	mu.Lock()
	t = time.AfterFunc(every, renew)
	mu.Unlock()
	return func() {
		cancel() // cuts a renewal's call short
		mu.Lock()
		t.Stop()
		mu.Unlock()
	}
}

func (p *Pool) setVisibility(ctx context.Context, m sqstypes.Message, d time.Duration) bool {
	_, err := p.Queue.ChangeMessageVisibility(ctx, &sqs.ChangeMessageVisibilityInput{
		QueueUrl: aws.String(p.QueueURL), ReceiptHandle: m.ReceiptHandle, VisibilityTimeout: seconds(d)})
	if err != nil {
		if ctx.Err() != nil {
			return false
		}
		p.Metrics.SQSErrors.WithLabelValues("ChangeMessageVisibility").Inc()
		p.Log.Warn("change visibility failed", "message_id", aws.ToString(m.MessageId), "error", err)
		return false
	}
	return true
}

// release makes messages visible again at once.
func (p *Pool) release(ctx context.Context, msgs []sqstypes.Message) {
	ctx, cancel := context.WithTimeout(ctx, finishTimeout)
	defer cancel()
	for _, m := range msgs {
		p.setVisibility(ctx, m, 0)
	}
}

// retryDelay grows with the receive count: RetryBase * 2^(n-1), capped.
func (p *Pool) retryDelay(receives int) time.Duration {
	n := max(receives, 1) - 1
	if n > 30 {
		return p.RetryMax
	}
	d := p.RetryBase * time.Duration(1<<n)
	if d <= 0 || d > p.RetryMax {
		return p.RetryMax
	}
	return d
}

// seconds rounds up to whole seconds, the unit of SQS visibility timeouts,
// within its 12-hour limit.
func seconds(d time.Duration) int32 {
	s := math.Ceil(d.Seconds())
	return int32(min(max(s, 0), 12*3600))
}

func receiveCount(m sqstypes.Message) int {
	n, err := strconv.Atoi(m.Attributes[string(sqstypes.MessageSystemAttributeNameApproximateReceiveCount)])
	if err != nil || n < 1 {
		return 1
	}
	return n
}

func sentAt(m sqstypes.Message) (time.Time, bool) {
	ms, err := strconv.ParseInt(m.Attributes[string(sqstypes.MessageSystemAttributeNameSentTimestamp)], 10, 64)
	if err != nil || ms <= 0 {
		return time.Time{}, false
	}
	return time.UnixMilli(ms), true
}
