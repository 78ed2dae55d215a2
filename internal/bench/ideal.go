package bench

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sesv2"
	sestypes "github.com/aws/aws-sdk-go-v2/service/sesv2/types"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	sqstypes "github.com/aws/aws-sdk-go-v2/service/sqs/types"

	"github.com/sfn-approvals/sfn-approvals/approval"
	"github.com/sfn-approvals/sfn-approvals/internal/awsx"
	"github.com/sfn-approvals/sfn-approvals/internal/faultproxy"
	"github.com/sfn-approvals/sfn-approvals/internal/kumo"
	"github.com/sfn-approvals/sfn-approvals/link"
	"github.com/sfn-approvals/sfn-approvals/worker"
)

// IdealResult is the baseline for the worker's CPU per email: a consumer
// that does only what the queue and SES demand of any worker.
type IdealResult struct {
	Emails     int
	EmailBytes int // HTML and text parts of the pre-rendered email
	CPU        time.Duration
	PerEmail   time.Duration
	Rate       float64
	// Receives and Deletes count its ReceiveMessage and DeleteMessageBatch
	// calls.
	Receives, Deletes int64
	// InProcess is the same consumer run inside the benchmark process,
	// straight to the emulator, while nothing else there works: the
	// baseline of earlier tables, reported beside the judged one.
	InProcess *IdealResult
}

// ideal drains n requests from a fresh queue as the least any worker must
// do: ReceiveMessage of up to 10, one SendEmail per message of an email
// rendered once beforehand (the worker's own approval email, so the same
// size), one DeleteMessageBatch per answer, at most C messages in flight,
// with the SDK clients as the worker configures them.
//
// The judged run is a process of its own, started as the worker is, with
// its calls through the fault proxy as the worker's go: the same
// emulator, proxy and load on the cores, and its CPU from its own rusage
// at exit, as the worker's. Then the same consumer runs once more in this
// process, straight to the emulator (how earlier tables measured it).
func (r *run) ideal(ctx context.Context, n int) (*IdealResult, error) {
	email, err := r.preRendered()
	if err != nil {
		return nil, err
	}
	size := len(email.HTML) + len(email.Text)
	res, err := r.idealProcess(ctx, n, email)
	if err != nil {
		return nil, err
	}
	res.EmailBytes = size
	res.Receives = r.proxy.Op(faultproxy.SQS, "ReceiveMessage").Count
	res.Deletes = r.proxy.Op(faultproxy.SQS, "DeleteMessageBatch").Count
	if res.InProcess, err = r.idealInProcess(ctx, n, email.input()); err != nil {
		return nil, err
	}
	res.InProcess.EmailBytes = size
	return res, nil
}

// idealChildEnv, when set, makes this binary (approvals-dev, or the
// package's test binary) the ideal consumer: see idealChild.
const idealChildEnv = "APPROVALS_BENCH_IDEAL_CONSUMER"

// idealJob is what the ideal consumer's process is given, as JSON in
// idealChildEnv.
type idealJob struct {
	QueueURL    string
	Emails      int
	Concurrency int
	Email       idealEmail
}

func init() {
	if v, ok := os.LookupEnv(idealChildEnv); ok {
		os.Exit(idealChild(v))
	}
}

// idealChild runs the ideal consumer for the job in v, with the AWS
// configuration of its environment (the fault proxy's endpoint), and
// prints how many emails it sent.
func idealChild(v string) int {
	var job idealJob
	if err := json.Unmarshal([]byte(v), &job); err != nil {
		fmt.Fprintln(os.Stderr, "ideal consumer:", err)
		return 2
	}
	cfg := kumo.Config()
	cfg.BaseEndpoint = aws.String(os.Getenv("AWS_ENDPOINT_URL"))
	cfg.HTTPClient = servicesHTTPClient()
	cfg = awsx.WithAttemptTimeout(cfg, awsx.DefaultTimeout)
	done, _, _, err := consume(context.Background(), sqs.NewFromConfig(cfg), sesv2.NewFromConfig(cfg),
		job.QueueURL, job.Emails, job.Concurrency, job.Email.input(), func(int64) {})
	if err != nil {
		fmt.Fprintln(os.Stderr, "ideal consumer:", err)
		return 1
	}
	fmt.Println(done)
	return 0
}

// idealProcess runs the ideal consumer as a process of its own through
// the fault proxy, on a fresh queue of n requests.
func (r *run) idealProcess(ctx context.Context, n int, email idealEmail) (*IdealResult, error) {
	q, err := r.queue(ctx)
	if err != nil {
		return nil, err
	}
	if err := r.enqueue(ctx, q, n); err != nil {
		return nil, err
	}
	job, err := json.Marshal(idealJob{QueueURL: q, Emails: n, Concurrency: r.o.Concurrency, Email: email})
	if err != nil {
		return nil, err
	}
	self, err := os.Executable()
	if err != nil {
		return nil, err
	}
	r.proxy.ResetOps()
	r.progress("ideal consumer (own process, through the proxy): %d emails", n)
	cmd := exec.CommandContext(ctx, self)
	cmd.Env = append(r.env(), idealChildEnv+"="+string(job))
	var stderr strings.Builder
	cmd.Stderr = &stderr
	start := time.Now()
	out, err := cmd.Output()
	el := time.Since(start)
	r.progressDone()
	if err != nil {
		return nil, fmt.Errorf("ideal consumer process: %w: %s", err, strings.TrimSpace(stderr.String()))
	}
	got, err := strconv.Atoi(strings.TrimSpace(string(out)))
	if err != nil {
		return nil, fmt.Errorf("ideal consumer process printed %q", out)
	}
	u := rusageOf(cmd.ProcessState)
	return &IdealResult{Emails: got, CPU: u.CPU, PerEmail: u.CPU / time.Duration(max(got, 1)),
		Rate: float64(got) / el.Seconds()}, nil
}

// idealInProcess runs the ideal consumer in this process, talking to the
// emulator directly rather than through the fault proxy (which is this
// process too), while nothing else here works, so this process's CPU time
// over the run is the consumer's.
func (r *run) idealInProcess(ctx context.Context, n int, in *sesv2.SendEmailInput) (*IdealResult, error) {
	q, err := r.queue(ctx)
	if err != nil {
		return nil, err
	}
	if err := r.enqueue(ctx, q, n); err != nil {
		return nil, err
	}
	start, cpu0 := time.Now(), selfCPU()
	cfg := kumo.Config()
	cfg.HTTPClient = servicesHTTPClient()
	cfg = awsx.WithAttemptTimeout(cfg, awsx.DefaultTimeout)
	done, receives, deletes, err := consume(ctx, sqs.NewFromConfig(cfg), sesv2.NewFromConfig(cfg), q, n, r.o.Concurrency, in,
		func(d int64) { r.progress("ideal consumer (in this process): %d/%d emails sent", d, n) })
	r.progressDone()
	el, cpu := time.Since(start), selfCPU()-cpu0
	if err != nil {
		return nil, fmt.Errorf("ideal consumer: %w", err)
	}
	got := int(done)
	return &IdealResult{Emails: got, CPU: cpu, PerEmail: cpu / time.Duration(max(got, 1)),
		Rate: float64(got) / el.Seconds(), Receives: receives, Deletes: deletes}, nil
}

// consume is the ideal consumer: receivers of 10 each, one smaller for the
// rest of c (never more than c messages in flight, as in the worker),
// until n emails are sent.
func consume(ctx context.Context, queue *sqs.Client, ses *sesv2.Client, q string, n, c int, in *sesv2.SendEmailInput,
	progress func(done int64)) (done, receives, deletes int64, err error) {
	var sent, failed, recv, dels atomic.Int64
	errc := make(chan error, 1)
	fail := func(err error) {
		failed.Add(1)
		select {
		case errc <- err:
		default:
		}
	}
	var wg sync.WaitGroup
	for first := 0; first < c; first += 10 {
		batch := min(10, c-first)
		wg.Add(1)
		go func() {
			defer wg.Done()
			for sent.Load() < int64(n) && failed.Load() == 0 && ctx.Err() == nil {
				out, err := queue.ReceiveMessage(ctx, &sqs.ReceiveMessageInput{QueueUrl: aws.String(q),
					MaxNumberOfMessages: int32(batch), WaitTimeSeconds: 1, VisibilityTimeout: 120})
				recv.Add(1)
				if err != nil {
					fail(fmt.Errorf("receive: %w", err))
					return
				}
				if len(out.Messages) == 0 {
					continue
				}
				var sends sync.WaitGroup
				for range out.Messages {
					sends.Add(1)
					go func() {
						defer sends.Done()
						if _, err := ses.SendEmail(ctx, in); err != nil {
							fail(fmt.Errorf("send email: %w", err))
						}
					}()
				}
				sends.Wait()
				entries := make([]sqstypes.DeleteMessageBatchRequestEntry, len(out.Messages))
				for i, m := range out.Messages {
					entries[i] = sqstypes.DeleteMessageBatchRequestEntry{Id: aws.String(strconv.Itoa(i)), ReceiptHandle: m.ReceiptHandle}
				}
				dels.Add(1)
				res, err := queue.DeleteMessageBatch(ctx, &sqs.DeleteMessageBatchInput{QueueUrl: aws.String(q), Entries: entries})
				if err == nil && len(res.Failed) > 0 {
					err = fmt.Errorf("%d entries failed, first: %s", len(res.Failed), aws.ToString(res.Failed[0].Message))
				}
				if err != nil {
					fail(fmt.Errorf("delete: %w", err))
					return
				}
				if d := sent.Add(int64(len(out.Messages))); d%1000 < 10 {
					progress(d)
				}
			}
		}()
	}
	wg.Wait()
	select {
	case err = <-errc:
	default:
		err = ctx.Err()
	}
	return sent.Load(), recv.Load(), dels.Load(), err
}

// preRendered is the worker's approval email for the first benchmark
// request, rendered as the worker renders it.
func (r *run) preRendered() (idealEmail, error) {
	t, err := worker.LoadTemplates("")
	if err != nil {
		return idealEmail{}, err
	}
	const base, to = "https://approvals.example.com", "approver-0@example.com"
	exp := time.Now().Add(72 * time.Hour).Truncate(time.Second)
	d := worker.EmailData{Subject: "Approve deployment #0", Recipient: to, ExpiresAt: exp,
		Data: map[string]any{"service": "web-frontend", "version": "v1.4.0", "environment": "production", "requestedBy": "requester@example.com"}}
	for _, a := range approval.DefaultActions() {
		u, err := r.keyring.URL(base, link.Claims{TaskToken: r.token(0), Action: a, Recipient: to, ExpiresAt: exp})
		if err != nil {
			return idealEmail{}, err
		}
		d.Actions = append(d.Actions, worker.ActionLink{Name: a.Name, Label: a.DisplayLabel(), Type: string(a.Type), URL: u})
	}
	e, err := t.Render(worker.DefaultApprovalTemplate, d)
	if err != nil {
		return idealEmail{}, err
	}
	return idealEmail{From: "approvals@example.com", To: to, Subject: d.Subject, HTML: e.HTML, Text: e.Text}, nil
}

// idealEmail is the email the ideal consumer sends for every message.
type idealEmail struct{ From, To, Subject, HTML, Text string }

// input is e's SendEmail input, built as the worker builds its own.
func (e idealEmail) input() *sesv2.SendEmailInput {
	const utf8 = "UTF-8"
	return &sesv2.SendEmailInput{
		FromEmailAddress: aws.String(e.From),
		Destination:      &sestypes.Destination{ToAddresses: []string{e.To}},
		Content: &sestypes.EmailContent{Simple: &sestypes.Message{
			Subject: &sestypes.Content{Data: aws.String(e.Subject), Charset: aws.String(utf8)},
			Body: &sestypes.Body{
				Html: &sestypes.Content{Data: aws.String(e.HTML), Charset: aws.String(utf8)},
				Text: &sestypes.Content{Data: aws.String(e.Text), Charset: aws.String(utf8)},
			},
		}},
	}
}
