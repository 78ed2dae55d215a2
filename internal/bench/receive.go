package bench

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"net/http/httptrace"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	sqstypes "github.com/aws/aws-sdk-go-v2/service/sqs/types"
	"github.com/aws/smithy-go/middleware"
)

// StallGap is the shortest gap between two answers that counts as a stall:
// with messages waiting, kumo answers a receive in milliseconds, so seconds
// without one mean something is stuck (typically messages handed out in an
// answer that never arrived, waiting out their visibility timeout).
const StallGap = 2 * time.Second

// ReceiveOptions size a receive probe.
type ReceiveOptions struct {
	Receives  int // ReceiveMessage answers to collect (20,000)
	Consumers int // concurrent receivers (64)
	BodyBytes int // size of each message body (1,500, about an approval request)
	// Busy goroutines spin meanwhile, with GOMAXPROCS raised above the
	// cores by as many, so the kernel takes turns between threads as it
	// does on a machine shared by kumo and a working worker: answers are
	// lost in a scheduling race that a busy machine loses far more often.
	Busy int
}

// ReceiveResult is what a receive probe saw.
type ReceiveResult struct {
	Receives    int // answers that arrived
	Messages    int // messages in them
	Elapsed     time.Duration
	LostAnswers int // ReceiveMessage attempts that failed: the SDK retries them, unseen by the caller
	// BodyEOF counts the lost answers whose request write failed with
	// io.EOF, the mark of the request body closed under net/http's writer.
	BodyEOF     int
	FirstErrors []string // the first few errors of any attempt, for the cause
	// Stranded counts messages handed out in answers that never arrived:
	// deliveries the probe did not see (from ApproximateReceiveCount) and
	// messages still in flight after the last delete.
	Stranded    int
	OtherErrors int // failed attempts of other calls (deletes, sends)
	Stalls      []time.Duration
}

// attempts counts failed attempts of each operation, below the SDK's retry,
// where a lost answer is still visible.
type attempts struct {
	mu     sync.Mutex
	failed map[string]int
	// bodyEOF counts the failed attempts whose request write net/http
	// ended with io.EOF: the request body closed under its writer.
	bodyEOF map[string]int
	first   []string
}

func (a *attempts) middleware(s *middleware.Stack) error {
	mw := middleware.FinalizeMiddlewareFunc("BenchCountAttempts", func(ctx context.Context, in middleware.FinalizeInput, next middleware.FinalizeHandler) (
		middleware.FinalizeOutput, middleware.Metadata, error,
	) {
		var wmu sync.Mutex
		var writeErr error
		ctx = httptrace.WithClientTrace(ctx, &httptrace.ClientTrace{WroteRequest: func(i httptrace.WroteRequestInfo) {
			wmu.Lock()
			writeErr = i.Err
			wmu.Unlock()
		}})
		out, md, err := next.HandleFinalize(ctx, in)
		if err != nil && ctx.Err() == nil {
			op := middleware.GetOperationName(ctx)
			wmu.Lock()
			eof := errors.Is(writeErr, io.EOF)
			wmu.Unlock()
			a.mu.Lock()
			a.failed[op]++
			if eof {
				a.bodyEOF[op]++
			}
			if len(a.first) < 5 {
				a.first = append(a.first, op+": "+err.Error())
			}
			a.mu.Unlock()
		}
		return out, md, err
	})
	if _, ok := s.Finalize.Get("Retry"); ok {
		return s.Finalize.Insert(mw, "Retry", middleware.After)
	}
	return s.Finalize.Add(mw, middleware.Before)
}

// ReceiveProbe consumes as the worker does: Consumers receivers, each
// asking for up to ten messages with a 20 s long poll and a 60 s visibility
// timeout, deleting what it got and sending as many new messages, so the
// queue never runs dry, until Receives answers have arrived. cfg points at
// the SQS endpoint (kumo, or the fault proxy before it) with the HTTP
// client under test.
func ReceiveProbe(ctx context.Context, cfg aws.Config, o ReceiveOptions) (*ReceiveResult, error) {
	if o.Receives <= 0 {
		o.Receives = 20000
	}
	if o.Consumers <= 0 {
		o.Consumers = 64
	}
	if o.BodyBytes <= 0 {
		o.BodyBytes = 1500
	}
	att := &attempts{failed: map[string]int{}, bodyEOF: map[string]int{}}
	client := sqs.NewFromConfig(cfg, func(so *sqs.Options) { so.APIOptions = append(so.APIOptions, att.middleware) })
	q, err := client.CreateQueue(ctx, &sqs.CreateQueueInput{
		QueueName: aws.String(fmt.Sprintf("receive-probe-%d", time.Now().UnixNano()%1e9))})
	if err != nil {
		return nil, fmt.Errorf("create queue: %w", err)
	}
	qurl := q.QueueUrl
	var seq atomic.Int64
	pad := strings.Repeat("x", o.BodyBytes)
	send := func(n int) error {
		var entries []sqstypes.SendMessageBatchRequestEntry
		for i := range n {
			id := seq.Add(1)
			entries = append(entries, sqstypes.SendMessageBatchRequestEntry{
				Id: aws.String(strconv.Itoa(i)), MessageBody: aws.String(fmt.Sprintf(`{"n":%d,"pad":%q}`, id, pad))})
		}
		out, err := client.SendMessageBatch(ctx, &sqs.SendMessageBatchInput{QueueUrl: qurl, Entries: entries})
		if err == nil && len(out.Failed) > 0 {
			err = fmt.Errorf("%d entries failed, first: %s", len(out.Failed), aws.ToString(out.Failed[0].Message))
		}
		return err
	}
	// Twice what the consumers can hold at once, so none waits for stock.
	for range 2 * o.Consumers {
		if err := send(10); err != nil {
			return nil, fmt.Errorf("fill queue: %w", err)
		}
	}

	if o.Busy > 0 {
		// More runnable threads than cores, so the kernel, not only Go's
		// scheduler, takes turns: that is when a goroutine stops between
		// two statements for milliseconds.
		defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(runtime.NumCPU() + o.Busy))
	}
	stopBusy := make(chan struct{})
	var busy sync.WaitGroup
	for range o.Busy {
		busy.Add(1)
		go func() {
			defer busy.Done()
			b := make([]byte, 4<<10)
			for {
				select {
				case <-stopBusy:
					return
				default:
					sum := sha256.Sum256(b)
					b[0] = sum[0]
				}
			}
		}()
	}
	defer func() { close(stopBusy); busy.Wait() }()

	res := &ReceiveResult{}
	var mu sync.Mutex
	start := time.Now()
	last := start
	var answered atomic.Int64
	errs := make(chan error, o.Consumers)
	var wg sync.WaitGroup
	for range o.Consumers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for answered.Load() < int64(o.Receives) && ctx.Err() == nil {
				out, err := client.ReceiveMessage(ctx, &sqs.ReceiveMessageInput{
					QueueUrl: qurl, MaxNumberOfMessages: 10, WaitTimeSeconds: 20, VisibilityTimeout: 60,
					MessageSystemAttributeNames: []sqstypes.MessageSystemAttributeName{sqstypes.MessageSystemAttributeNameApproximateReceiveCount},
				})
				if err != nil {
					if ctx.Err() == nil {
						errs <- fmt.Errorf("receive: %w", err)
					}
					return
				}
				answered.Add(1)
				now := time.Now()
				unseen := 0
				for _, m := range out.Messages {
					if c, err := strconv.Atoi(m.Attributes[string(sqstypes.MessageSystemAttributeNameApproximateReceiveCount)]); err == nil && c > 1 {
						unseen += c - 1
					}
				}
				mu.Lock()
				if gap := now.Sub(last); gap >= StallGap {
					res.Stalls = append(res.Stalls, gap)
				}
				last = now
				res.Receives++
				res.Messages += len(out.Messages)
				res.Stranded += unseen
				mu.Unlock()
				if len(out.Messages) == 0 {
					continue
				}
				var del []sqstypes.DeleteMessageBatchRequestEntry
				for i, m := range out.Messages {
					del = append(del, sqstypes.DeleteMessageBatchRequestEntry{Id: aws.String(strconv.Itoa(i)), ReceiptHandle: m.ReceiptHandle})
				}
				if _, err := client.DeleteMessageBatch(ctx, &sqs.DeleteMessageBatchInput{QueueUrl: qurl, Entries: del}); err != nil && ctx.Err() == nil {
					errs <- fmt.Errorf("delete: %w", err)
					return
				}
				if err := send(len(out.Messages)); err != nil && ctx.Err() == nil {
					errs <- fmt.Errorf("refill: %w", err)
					return
				}
			}
		}()
	}
	wg.Wait()
	res.Elapsed = time.Since(start)
	select {
	case err := <-errs:
		return nil, err
	default:
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	attrs, err := client.GetQueueAttributes(ctx, &sqs.GetQueueAttributesInput{QueueUrl: qurl,
		AttributeNames: []sqstypes.QueueAttributeName{sqstypes.QueueAttributeNameApproximateNumberOfMessagesNotVisible}})
	if err != nil {
		return nil, fmt.Errorf("queue attributes: %w", err)
	}
	inFlight, _ := strconv.Atoi(attrs.Attributes[string(sqstypes.QueueAttributeNameApproximateNumberOfMessagesNotVisible)])
	res.Stranded += inFlight
	_, _ = client.DeleteQueue(ctx, &sqs.DeleteQueueInput{QueueUrl: qurl})

	att.mu.Lock()
	defer att.mu.Unlock()
	for op, n := range att.failed {
		if op == "ReceiveMessage" {
			res.LostAnswers += n
			res.BodyEOF += att.bodyEOF[op]
		} else {
			res.OtherErrors += n
		}
	}
	res.FirstErrors = att.first
	return res, nil
}

// String sums the result up in one line.
func (r *ReceiveResult) String() string {
	longest := time.Duration(0)
	for _, s := range r.Stalls {
		longest = max(longest, s)
	}
	return fmt.Sprintf("%d receives (%d messages) in %s: %d lost answers (%d after the request write failed with io.EOF), %d messages stranded, %d other failed attempts, %d stalls of %s or more (longest %s)",
		r.Receives, r.Messages, r.Elapsed.Round(time.Millisecond), r.LostAnswers, r.BodyEOF, r.Stranded, r.OtherErrors, len(r.Stalls), StallGap, longest.Round(time.Millisecond))
}
