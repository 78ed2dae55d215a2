package bench

import (
	"context"
	"fmt"
	"strconv"
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
}

// ideal drains n requests from a fresh queue as the least any worker must
// do: ReceiveMessage of up to 10, one SendEmail per message of an email
// rendered once beforehand (the worker's own approval email, so the same
// size), one DeleteMessageBatch per answer, at most C messages in flight.
// It runs in this process, talking to the emulator directly rather than
// through the fault proxy (which is this process too), while nothing else
// here works, so this process's CPU time over the run is the consumer's.
// It uses the SDK clients as the worker configures them.
func (r *run) ideal(ctx context.Context, n int) (*IdealResult, error) {
	q, err := r.queue(ctx)
	if err != nil {
		return nil, err
	}
	if err := r.enqueue(ctx, q, n); err != nil {
		return nil, err
	}
	in, size, err := r.preRendered()
	if err != nil {
		return nil, err
	}

	start, cpu0 := time.Now(), selfCPU()
	cfg := kumo.Config()
	cfg.HTTPClient = servicesHTTPClient()
	cfg = awsx.WithAttemptTimeout(cfg, awsx.DefaultTimeout)
	queue, ses := sqs.NewFromConfig(cfg), sesv2.NewFromConfig(cfg)

	var done, failed, receives, deletes atomic.Int64
	errc := make(chan error, 1)
	fail := func(err error) {
		failed.Add(1)
		select {
		case errc <- err:
		default:
		}
	}
	var wg sync.WaitGroup
	// Receivers of 10 each, one smaller for the rest of C: never more
	// than C messages in flight, as in the worker.
	for first := 0; first < r.o.Concurrency; first += 10 {
		batch := min(10, r.o.Concurrency-first)
		wg.Add(1)
		go func() {
			defer wg.Done()
			for done.Load() < int64(n) && failed.Load() == 0 && ctx.Err() == nil {
				out, err := queue.ReceiveMessage(ctx, &sqs.ReceiveMessageInput{QueueUrl: aws.String(q),
					MaxNumberOfMessages: int32(batch), WaitTimeSeconds: 1, VisibilityTimeout: 120})
				receives.Add(1)
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
				deletes.Add(1)
				res, err := queue.DeleteMessageBatch(ctx, &sqs.DeleteMessageBatchInput{QueueUrl: aws.String(q), Entries: entries})
				if err == nil && len(res.Failed) > 0 {
					err = fmt.Errorf("%d entries failed, first: %s", len(res.Failed), aws.ToString(res.Failed[0].Message))
				}
				if err != nil {
					fail(fmt.Errorf("delete: %w", err))
					return
				}
				if d := done.Add(int64(len(out.Messages))); d%1000 < 10 {
					r.progress("ideal consumer: %d/%d emails sent", d, n)
				}
			}
		}()
	}
	wg.Wait()
	r.progressDone()
	el, cpu := time.Since(start), selfCPU()-cpu0
	select {
	case err := <-errc:
		return nil, fmt.Errorf("ideal consumer: %w", err)
	default:
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	got := int(done.Load())
	return &IdealResult{Emails: got, EmailBytes: size, CPU: cpu, PerEmail: cpu / time.Duration(max(got, 1)),
		Rate: float64(got) / el.Seconds(), Receives: receives.Load(), Deletes: deletes.Load()}, nil
}

// preRendered is the SendEmail input of the worker's approval email for
// the first benchmark request, built the way the worker builds it.
func (r *run) preRendered() (*sesv2.SendEmailInput, int, error) {
	t, err := worker.LoadTemplates("")
	if err != nil {
		return nil, 0, err
	}
	const base, to = "https://approvals.example.com", "approver-0@example.com"
	exp := time.Now().Add(72 * time.Hour).Truncate(time.Second)
	d := worker.EmailData{Subject: "Approve deployment #0", Recipient: to, ExpiresAt: exp,
		Data: map[string]any{"service": "web-frontend", "version": "v1.4.0", "environment": "production", "requestedBy": "requester@example.com"}}
	for _, a := range approval.DefaultActions() {
		u, err := r.keyring.URL(base, link.Claims{TaskToken: r.token(0), Action: a, Recipient: to, ExpiresAt: exp})
		if err != nil {
			return nil, 0, err
		}
		d.Actions = append(d.Actions, worker.ActionLink{Name: a.Name, Label: a.DisplayLabel(), Type: string(a.Type), URL: u})
	}
	e, err := t.Render(worker.DefaultApprovalTemplate, d)
	if err != nil {
		return nil, 0, err
	}
	const utf8 = "UTF-8"
	return &sesv2.SendEmailInput{
		FromEmailAddress: aws.String("approvals@example.com"),
		Destination:      &sestypes.Destination{ToAddresses: []string{to}},
		Content: &sestypes.EmailContent{Simple: &sestypes.Message{
			Subject: &sestypes.Content{Data: aws.String(d.Subject), Charset: aws.String(utf8)},
			Body: &sestypes.Body{
				Html: &sestypes.Content{Data: aws.String(e.HTML), Charset: aws.String(utf8)},
				Text: &sestypes.Content{Data: aws.String(e.Text), Charset: aws.String(utf8)},
			},
		}},
	}, len(e.HTML) + len(e.Text), nil
}
