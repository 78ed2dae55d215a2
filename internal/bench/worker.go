package bench

import (
	"cmp"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	sqstypes "github.com/aws/aws-sdk-go-v2/service/sqs/types"

	"github.com/sfn-approvals/sfn-approvals/internal/faultproxy"
	"github.com/sfn-approvals/sfn-approvals/internal/kumo"
	"github.com/sfn-approvals/sfn-approvals/internal/stack"
)

// PipelineResult is the worker's throughput against Little's bound.
type PipelineResult struct {
	Emails      int
	Concurrency int
	SESLatency  time.Duration
	Window      time.Duration // first SendEmail arrival to last SendEmail answer
	Rate        float64       // emails/s over Window
	Bound       float64       // C/L
	SendMean    time.Duration // mean SendEmail time seen at the proxy
	CPU         map[string]float64
	// Baseline is emails/s of a bare SendEmail loop at the same concurrency
	// and latency against the same emulator: this machine's ceiling.
	Baseline float64
}

// CostResult is the worker's own CPU and memory per email.
type CostResult struct {
	Emails   int
	CPU      time.Duration // user+system of the whole worker process, start to exit
	PerEmail time.Duration
	// MaxRSS is the worker's peak resident memory (VmHWM before SIGTERM);
	// ExitMaxRSS its ru_maxrss at exit, which also counts the benchmark
	// process's size at the worker's start (see peakRSS).
	MaxRSS     int64
	ExitMaxRSS int64
	Rate       float64
	CPUShares  map[string]float64
	WallWindow time.Duration
	// Ideal is the least CPU per email any consumer spends here, measured
	// after the worker in the same phase: see run.ideal.
	Ideal *IdealResult
	// SQSCalls counts the worker's SQS calls by operation, as the proxy
	// saw them: how many messages each receive and delete carried.
	SQSCalls map[string]int64
}

// SteadyResult is enqueue-to-inbox latency at a fixed request rate.
type SteadyResult struct {
	Rate          float64
	Requests      int
	SESLatency    time.Duration
	P50, P99, Max time.Duration
}

func (r *run) queue(ctx context.Context) (string, error) {
	r.seq++
	out, err := r.sqs.CreateQueue(ctx, &sqs.CreateQueueInput{
		QueueName:  aws.String(fmt.Sprintf("bench-%d-%d", time.Now().UnixNano()%1e9, r.seq)),
		Attributes: map[string]string{"VisibilityTimeout": "120"},
	})
	if err != nil {
		return "", fmt.Errorf("create queue: %w", err)
	}
	return *out.QueueUrl, nil
}

// body is an approval request as a state machine sends it: one approver,
// the default actions, a few details for the template.
func (r *run) body(i int, subject string) string {
	b, _ := json.Marshal(map[string]any{
		"taskToken": r.token(i),
		"to":        []string{fmt.Sprintf("approver-%d@example.com", i%100)},
		"subject":   subject,
		"data": map[string]any{
			"service": "web-frontend", "version": "v1.4." + strconv.Itoa(i),
			"environment": "production", "requestedBy": "requester@example.com",
		},
		"expiresIn": "72h",
	})
	return string(b)
}

// enqueue sends n requests with SendMessageBatch from a few goroutines.
func (r *run) enqueue(ctx context.Context, queueURL string, n int) error {
	const senders = 8
	batches := make(chan int)
	errs := make(chan error, senders)
	var wg sync.WaitGroup
	var mu sync.Mutex
	sent := 0
	for range senders {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for first := range batches {
				var entries []sqstypes.SendMessageBatchRequestEntry
				for i := first; i < min(first+10, n); i++ {
					entries = append(entries, sqstypes.SendMessageBatchRequestEntry{
						Id: aws.String(strconv.Itoa(i)), MessageBody: aws.String(r.body(i, fmt.Sprintf("Approve deployment #%d", i)))})
				}
				out, err := r.sqs.SendMessageBatch(ctx, &sqs.SendMessageBatchInput{QueueUrl: aws.String(queueURL), Entries: entries})
				if err == nil && len(out.Failed) > 0 {
					err = fmt.Errorf("%d entries failed, first: %s", len(out.Failed), aws.ToString(out.Failed[0].Message))
				}
				if err != nil {
					errs <- fmt.Errorf("enqueue: %w", err)
					return
				}
				mu.Lock()
				sent += len(entries)
				if sent%1000 < 10 || sent == n {
					r.progress("enqueue: %d/%d requests", sent, n)
				}
				mu.Unlock()
			}
		}()
	}
	var err error
feed:
	for first := 0; first < n; first += 10 {
		select {
		case batches <- first:
		case err = <-errs:
			break feed
		}
	}
	close(batches)
	wg.Wait()
	r.progressDone()
	if err != nil {
		return err
	}
	select {
	case err := <-errs:
		return err
	default:
		return nil
	}
}

const stallTimeout = 75 * time.Second

func (r *run) startWorker(ctx context.Context, queueURL string) (*stack.Service, error) {
	admin, err := freeAddr()
	if err != nil {
		return nil, err
	}
	// From the worker's start, every gap between its answers at the proxy
	// is a stall, until waitSent sees the last email.
	r.stalls.arm(r.phase, time.Now())
	return startService(ctx, r.o.BinDir+"/worker", r.logPath("worker"), admin, r.env(append([]string{
		"APPROVALS_QUEUE_URL=" + queueURL,
		"APPROVALS_SENDER=approvals@example.com",
		"APPROVALS_BASE_URL=https://approvals.example.com",
		"APPROVALS_CONCURRENCY=" + strconv.Itoa(r.o.Concurrency),
		"APPROVALS_METRICS_ADDR=" + admin,
	}, r.o.WorkerEnv...)...))
}

// waitSent waits until the proxy has seen want SendEmail calls succeed, and
// returns its record of them; the stalls seen meanwhile go to the report.
// It gives up when nothing moves for longer than the worker's visibility
// timeout (60 s), after which a message whose receive was lost on the way
// would have come back.
func (r *run) waitSent(ctx context.Context, want int, label string) (faultproxy.OpStats, error) {
	t := time.NewTicker(250 * time.Millisecond)
	defer t.Stop()
	defer r.progressDone()
	defer func() { r.report.Stalls = append(r.report.Stalls, r.stalls.disarm()...) }()
	last, lastMove := int64(-1), time.Now()
	for {
		o := r.proxy.Op(faultproxy.SESv2, "SendEmail")
		ok := o.Count - o.Errors
		rate := 0.0
		if el := time.Since(o.First).Seconds(); ok > 0 && el > 0 {
			rate = float64(ok) / el
		}
		r.progress("%s: %d/%d emails sent, %.0f emails/s, %d SES errors, %d stalls", label, ok, want, rate, o.Errors, r.stalls.count())
		if ok >= int64(want) {
			return o, nil
		}
		if ok != last {
			last, lastMove = ok, time.Now()
		} else if time.Since(lastMove) > stallTimeout {
			return o, fmt.Errorf("%w: %d of %d emails sent, none for %s", errIncomplete, ok, want, stallTimeout)
		}
		select {
		case <-ctx.Done():
			return o, ctx.Err()
		case <-t.C:
		}
	}
}

func (r *run) pids(w *stack.Service) map[string]int {
	m := map[string]int{"worker": w.Pid()}
	if r.kumoPID != 0 {
		m["kumo"] = r.kumoPID
	}
	return m
}

// pipeline: a full queue, SES latency L, concurrency C; emails/s from the
// first receive to the last send, against C/L.
func (r *run) pipeline(ctx context.Context) error {
	n := r.o.Requests
	r.proxy.Set(faultproxy.SESv2, faultproxy.Fault{Latency: r.o.SESLatency})
	d, err := r.drain(ctx, n, "pipeline")
	if err != nil {
		return err
	}
	send := d.sent
	window := send.Last.Sub(send.First)
	// The baseline, in the same run and on the same emulator: SendEmail
	// alone at the same concurrency and latency.
	r.progress("baseline: bare SendEmail loop, C = %d", r.o.Concurrency)
	baseline, err := r.ceiling(ctx, max(n/2, 1), r.o.Concurrency)
	r.progressDone()
	if err != nil {
		return err
	}
	r.report.Pipeline = &PipelineResult{
		Emails: n, Concurrency: r.o.Concurrency, SESLatency: r.o.SESLatency, Window: window,
		Rate:     float64(n) / window.Seconds(),
		Bound:    float64(r.o.Concurrency) / r.o.SESLatency.Seconds(),
		SendMean: mean(send.Durations), CPU: d.cpu, Baseline: baseline,
	}
	return nil
}

// cost: the same load with nothing injected; the worker's CPU and peak
// memory from its own rusage at exit, then the ideal consumer's CPU for as
// many emails.
func (r *run) cost(ctx context.Context) error {
	n := r.o.Requests
	d, err := r.drain(ctx, n, "cost")
	if err != nil {
		return err
	}
	u := rusageOf(d.exit)
	window := d.sent.Last.Sub(d.sent.First)
	calls := map[string]int64{}
	for _, op := range []string{"ReceiveMessage", "DeleteMessage", "DeleteMessageBatch", "ChangeMessageVisibility"} {
		calls[op] = r.proxy.Op(faultproxy.SQS, op).Count
	}
	ideal, err := r.ideal(ctx, n)
	if err != nil {
		return err
	}
	r.report.Cost = &CostResult{
		Emails: n, CPU: u.CPU, PerEmail: u.CPU / time.Duration(n), MaxRSS: cmp.Or(d.peakRSS, u.MaxRSS), ExitMaxRSS: u.MaxRSS,
		Rate: float64(n) / window.Seconds(), CPUShares: d.cpu, WallWindow: window, Ideal: ideal, SQSCalls: calls,
	}
	return nil
}

// drained is what a worker did with a full queue.
type drained struct {
	sent faultproxy.OpStats // the SendEmail calls the proxy saw
	cpu  map[string]float64 // CPU shares of the worker and the emulator meanwhile
	exit *os.ProcessState   // the worker's, with its rusage
	// peakRSS is the worker's peak resident memory, read just before it
	// was stopped (0 if it could not be read).
	peakRSS int64
}

// drain fills a fresh queue with n requests, then runs the worker until
// SES has seen n sends, and stops it (the pipeline and cost phases).
func (r *run) drain(ctx context.Context, n int, label string) (drained, error) {
	q, err := r.queue(ctx)
	if err != nil {
		return drained{}, err
	}
	if err := r.enqueue(ctx, q, n); err != nil {
		return drained{}, err
	}
	r.proxy.ResetOps()
	w, err := r.startWorker(ctx, q)
	if err != nil {
		return drained{}, err
	}
	meter := newCPUMeter(r.pids(w))
	sent, err := r.waitSent(ctx, n, label)
	d := drained{sent: sent, cpu: meter.shares()}
	if rss, err := peakRSS(w.Pid()); err == nil {
		d.peakRSS = rss
	} else {
		r.progress("worker peak RSS not read (%v); ru_maxrss reported instead", err)
		r.progressDone()
	}
	exit, serr := w.Stop(30 * time.Second)
	d.exit = exit
	if err == nil {
		err = serr
	}
	return d, err
}

// steady: requests enqueued one by one at a fixed rate while the worker
// runs; latency from each SendMessage call to the SentAt kumo gives the
// email, read once at the end.
func (r *run) steady(ctx context.Context) error {
	n := max(int(r.o.SteadyRate*r.o.SteadyFor.Seconds()), 1)
	q, err := r.queue(ctx)
	if err != nil {
		return err
	}
	r.proxy.Set(faultproxy.SESv2, faultproxy.Fault{Latency: r.o.SESLatency})
	w, err := r.startWorker(ctx, q)
	if err != nil {
		return err
	}
	defer func() {
		if w != nil {
			_, _ = w.Stop(30 * time.Second)
		}
	}()
	r.proxy.ResetOps()
	tag := fmt.Sprintf("steady-%d", time.Now().UnixNano())
	enqueued := make([]time.Time, n)
	var issued atomic.Int64
	var done sync.WaitGroup
	done.Add(1)
	stopProgress := make(chan struct{})
	go func() {
		defer done.Done()
		t := time.NewTicker(250 * time.Millisecond)
		defer t.Stop()
		for {
			select {
			case <-stopProgress:
				return
			case <-t.C:
				o := r.proxy.Op(faultproxy.SESv2, "SendEmail")
				r.progress("enqueue to inbox: %d/%d requests at %.0f/s, %d emails sent", issued.Load(), n, r.o.SteadyRate, o.Count-o.Errors)
			}
		}
	}()
	_, errs := openLoop(ctx, r.o.SteadyRate, n, func(ctx context.Context, i int) error {
		enqueued[i] = time.Now()
		issued.Add(1)
		_, err := r.sqs.SendMessage(ctx, &sqs.SendMessageInput{QueueUrl: aws.String(q),
			MessageBody: aws.String(r.body(i, fmt.Sprintf("%s #%d", tag, i)))})
		return err
	})
	close(stopProgress)
	done.Wait()
	r.progressDone()
	if errs > 0 {
		return fmt.Errorf("%d of %d SendMessage calls failed", errs, n)
	}
	if _, err := r.waitSent(ctx, n, "enqueue to inbox, draining"); err != nil {
		return err
	}
	_, err = w.Stop(30 * time.Second)
	w = nil
	if err != nil {
		return err
	}
	sent, err := kumo.SentEmails(ctx)
	if err != nil {
		return err
	}
	var lat []time.Duration
	for _, e := range sent {
		rest, ok := strings.CutPrefix(e.Subject, tag+" #")
		if !ok {
			continue
		}
		i, err := strconv.Atoi(rest)
		if err != nil || i < 0 || i >= n {
			continue
		}
		lat = append(lat, e.SentAt.Sub(enqueued[i]))
	}
	if len(lat) != n {
		return fmt.Errorf("%d of %d emails found in the outbox", len(lat), n)
	}
	r.report.Steady = &SteadyResult{Rate: r.o.SteadyRate, Requests: n, SESLatency: r.o.SESLatency,
		P50: percentile(lat, 0.50), P99: percentile(lat, 0.99), Max: percentile(lat, 1)}
	return nil
}
