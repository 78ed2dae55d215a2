package micro

import (
	"context"
	"crypto/md5"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/sesv2"
	sestypes "github.com/aws/aws-sdk-go-v2/service/sesv2/types"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	sqstypes "github.com/aws/aws-sdk-go-v2/service/sqs/types"

	"github.com/sfn-approvals/sfn-approvals/approval"
	"github.com/sfn-approvals/sfn-approvals/internal/awsx"
	"github.com/sfn-approvals/sfn-approvals/link"
	"github.com/sfn-approvals/sfn-approvals/worker"
)

// cannedAWS answers the worker's SQS and SES calls from memory, as the
// services would: it hands out n copies of body, then empty receives after
// the long poll's wait, and counts the deletes.
type cannedAWS struct {
	n       int64
	body    string
	md5     string
	handed  atomic.Int64
	deleted atomic.Int64
	done    chan struct{} // closed when n messages are deleted
	once    sync.Once
}

func newCannedAWS(n int, body string) *cannedAWS {
	sum := md5.Sum([]byte(body))
	return &cannedAWS{n: int64(n), body: body, md5: hex.EncodeToString(sum[:]), done: make(chan struct{})}
}

func (c *cannedAWS) deletedSome(k int) {
	if c.deleted.Add(int64(k)) >= c.n {
		c.once.Do(func() { close(c.done) })
	}
}

func (c *cannedAWS) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	if strings.HasPrefix(r.URL.Path, "/v2/email/outbound-emails") {
		w.Header().Set("Content-Type", "application/json")
		io.WriteString(w, `{"MessageId":"m"}`)
		return
	}
	op := strings.TrimPrefix(r.Header.Get("X-Amz-Target"), "AmazonSQS.")
	w.Header().Set("Content-Type", "application/x-amz-json-1.0")
	switch op {
	case "ReceiveMessage":
		var in struct {
			MaxNumberOfMessages int
			WaitTimeSeconds     int
		}
		_ = json.Unmarshal(body, &in)
		type msg struct {
			MessageId, ReceiptHandle, MD5OfBody, Body string
			Attributes                                map[string]string
		}
		var out struct{ Messages []msg }
		sent := strconv.FormatInt(time.Now().UnixMilli(), 10)
		for range max(in.MaxNumberOfMessages, 1) {
			i := c.handed.Add(1)
			if i > c.n {
				break
			}
			id := strconv.FormatInt(i, 10)
			out.Messages = append(out.Messages, msg{MessageId: id, ReceiptHandle: "rh-" + id, MD5OfBody: c.md5, Body: c.body,
				Attributes: map[string]string{"ApproximateReceiveCount": "1", "SentTimestamp": sent}})
		}
		if len(out.Messages) == 0 {
			select { // a long poll with nothing to hand out
			case <-time.After(time.Duration(in.WaitTimeSeconds) * time.Second):
			case <-r.Context().Done():
			}
		}
		json.NewEncoder(w).Encode(out)
	case "DeleteMessageBatch":
		var in struct{ Entries []struct{ Id string } }
		_ = json.Unmarshal(body, &in)
		var out struct {
			Successful []struct{ Id string }
			Failed     []struct{}
		}
		for _, e := range in.Entries {
			out.Successful = append(out.Successful, struct{ Id string }{e.Id})
		}
		json.NewEncoder(w).Encode(out)
		c.deletedSome(len(in.Entries))
	case "DeleteMessage":
		io.WriteString(w, `{}`)
		c.deletedSome(1)
	case "ChangeMessageVisibility":
		io.WriteString(w, `{}`)
	default:
		w.WriteHeader(http.StatusBadRequest)
		fmt.Fprintf(w, `{"__type":"InvalidAction","message":"%s"}`, op)
	}
}

// BenchmarkWorkerRun is the worker as it runs, real SDK clients and all,
// against SQS and SES answered from memory in this process, at C = 64:
// the time per email, and with -cpuprofile the shares of decoding,
// rendering, the SDK, net/http and the garbage collector. The canned
// services' own work is in the profile too, under cannedAWS.ServeHTTP.
func BenchmarkWorkerRun(b *testing.B) {
	aws_ := newCannedAWS(b.N, requestBody(b))
	srv := httptest.NewServer(aws_)
	defer srv.Close()
	cfg := cannedConfig(srv.URL)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	errc := make(chan error, 1)
	b.ResetTimer()
	cpu := startCPU()
	go func() {
		errc <- worker.Run(ctx, worker.Config{
			QueueURL: srv.URL + "/000000000000/bench", Sender: "approvals@example.com",
			BaseURL: "https://approvals.example.com", Keyring: keyring(b), Concurrency: 64,
			ReceiveWait: time.Second, AWS: &cfg, Logger: discardLogger(),
		})
	}()
	select {
	case <-aws_.done:
	case err := <-errc:
		b.Fatalf("worker stopped: %v", err)
	case <-time.After(5 * time.Minute):
		b.Fatalf("%d of %d messages deleted", aws_.deleted.Load(), b.N)
	}
	b.StopTimer()
	cpu.report(b)
	cancel()
	if err := <-errc; err != nil {
		b.Fatal(err)
	}
}

// cannedConfig is the worker's AWS configuration pointed at the canned
// services at url.
func cannedConfig(url string) aws.Config {
	return aws.Config{
		Region:       "us-east-1",
		Credentials:  credentials.NewStaticCredentialsProvider("bench", "bench", ""),
		BaseEndpoint: aws.String(url),
		HTTPClient:   awsxHTTPClient(),
	}
}

// awsxHTTPClient is the HTTP client the worker's own configuration builds
// (awsx.LoadConfig), which the benchmark cannot load from the environment.
func awsxHTTPClient() aws.HTTPClient {
	return awsx.HTTPClient{SDK: awshttp.NewBuildableClient().WithTransportOptions(func(t *http.Transport) {
		t.MaxIdleConns = 2 * awsx.MaxIdleConnsPerHost
		t.MaxIdleConnsPerHost = awsx.MaxIdleConnsPerHost
	})}
}

// discardLogger formats every line as the service does, then drops it.
func discardLogger() *slog.Logger { return slog.New(slog.NewJSONHandler(io.Discard, nil)) }

// BenchmarkIdealRun is BenchmarkWorkerRun's baseline, against the same
// canned services: what any consumer must do per email, and nothing
// else. Receivers of 10 (at most C = 64 messages in flight), one SendEmail
// per message of the worker's approval email rendered once beforehand,
// one DeleteMessageBatch per answer, the SDK clients configured as the
// worker's. Its time per email against BenchmarkWorkerRun's is the
// in-process counterpart of the ideal-consumer row of approvals bench.
func BenchmarkIdealRun(b *testing.B) {
	canned := newCannedAWS(b.N, requestBody(b))
	srv := httptest.NewServer(canned)
	defer srv.Close()
	cfg := cannedConfig(srv.URL)
	cfg = awsx.WithAttemptTimeout(cfg, awsx.DefaultTimeout)
	queue, ses := sqs.NewFromConfig(cfg), sesv2.NewFromConfig(cfg)
	in := preRendered(b)
	queueURL := aws.String(srv.URL + "/000000000000/bench")
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	b.ResetTimer()
	cpu := startCPU()
	var wg sync.WaitGroup
	for first := 0; first < 64; first += 10 {
		batch := min(10, 64-first)
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				select {
				case <-canned.done:
					return
				default:
				}
				out, err := queue.ReceiveMessage(ctx, &sqs.ReceiveMessageInput{QueueUrl: queueURL,
					MaxNumberOfMessages: int32(batch), WaitTimeSeconds: 1})
				if err != nil {
					if ctx.Err() == nil {
						b.Error(err)
					}
					return
				}
				var sends sync.WaitGroup
				for range out.Messages {
					sends.Add(1)
					go func() {
						defer sends.Done()
						if _, err := ses.SendEmail(ctx, in); err != nil {
							b.Error(err)
						}
					}()
				}
				sends.Wait()
				if len(out.Messages) == 0 {
					continue
				}
				entries := make([]sqstypes.DeleteMessageBatchRequestEntry, len(out.Messages))
				for i, m := range out.Messages {
					entries[i] = sqstypes.DeleteMessageBatchRequestEntry{Id: aws.String(strconv.Itoa(i)), ReceiptHandle: m.ReceiptHandle}
				}
				if _, err := queue.DeleteMessageBatch(ctx, &sqs.DeleteMessageBatchInput{QueueUrl: queueURL, Entries: entries}); err != nil {
					if ctx.Err() == nil { // the last delete's answer may come after the end
						b.Error(err)
					}
					return
				}
			}
		}()
	}
	<-canned.done
	b.StopTimer()
	cpu.report(b)
	cancel() // the receivers' empty long polls
	wg.Wait()
}

// requestBody is the approval request both benchmarks consume.
func requestBody(tb testing.TB) string {
	body, err := json.Marshal(map[string]any{
		"taskToken": token, "to": []string{"approver@example.com"}, "subject": "Approve deployment #42",
		"data": map[string]any{"service": "web-frontend", "version": "v1.4.2", "environment": "production"},
	})
	if err != nil {
		tb.Fatal(err)
	}
	return string(body)
}

// cpuClock is this process's user+system CPU time from a start: the
// consumer's and the canned services' together, both cores counted.
type cpuClock time.Duration

func startCPU() cpuClock { return cpuClock(processCPU()) }

// report adds cpu-ns/op, which a wall-clock ns/op hides when the cores
// are not both busy.
func (c cpuClock) report(b *testing.B) {
	b.ReportMetric(float64(processCPU()-time.Duration(c))/float64(b.N), "cpu-ns/op")
}

func processCPU() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// preRendered is the SendEmail input of the approval email the worker
// sends for BenchmarkWorkerRun's request.
func preRendered(tb testing.TB) *sesv2.SendEmailInput {
	kr := keyring(tb)
	exp := time.Now().Add(72 * time.Hour).Truncate(time.Second)
	d := worker.EmailData{Subject: "Approve deployment #42", Recipient: "approver@example.com", ExpiresAt: exp,
		Data: map[string]any{"service": "web-frontend", "version": "v1.4.2", "environment": "production"}}
	for _, a := range approval.DefaultActions() {
		u, err := kr.URL("https://approvals.example.com", link.Claims{TaskToken: token, Action: a, Recipient: d.Recipient, ExpiresAt: exp})
		if err != nil {
			tb.Fatal(err)
		}
		d.Actions = append(d.Actions, worker.ActionLink{Name: a.Name, Label: a.DisplayLabel(), Type: string(a.Type), URL: u})
	}
	r, err := templates(tb).Render(worker.DefaultApprovalTemplate, d)
	if err != nil {
		tb.Fatal(err)
	}
	const utf8 = "UTF-8"
	return &sesv2.SendEmailInput{
		FromEmailAddress: aws.String("approvals@example.com"),
		Destination:      &sestypes.Destination{ToAddresses: []string{d.Recipient}},
		Content: &sestypes.EmailContent{Simple: &sestypes.Message{
			Subject: &sestypes.Content{Data: aws.String(d.Subject), Charset: aws.String(utf8)},
			Body: &sestypes.Body{
				Html: &sestypes.Content{Data: aws.String(r.HTML), Charset: aws.String(utf8)},
				Text: &sestypes.Content{Data: aws.String(r.Text), Charset: aws.String(utf8)},
			},
		}},
	}
}
