package awsx

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/sfn"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
)

// silentEndpoint accepts every request and never answers, as a half-open
// connection does, until the client hangs up. answer, when it returns true
// for a request number (from 1), makes that one answer at once instead.
func silentEndpoint(t *testing.T, answer func(n int64) bool) (aws.Config, *atomic.Int64) {
	t.Helper()
	var n atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		// The body read first: only then does the server notice the client
		// hanging up.
		io.Copy(io.Discard, r.Body)
		if i := n.Add(1); answer != nil && answer(i) {
			w.Header().Set("Content-Type", "application/x-amz-json-1.0")
			w.Write([]byte(`{}`))
			return
		}
		<-r.Context().Done()
	}))
	t.Cleanup(srv.Close)
	cfg := aws.Config{Region: "us-east-1", BaseEndpoint: aws.String(srv.URL),
		Credentials: credentials.NewStaticCredentialsProvider("a", "b", "")}
	return cfg, &n
}

func heartbeat(ctx context.Context, cfg aws.Config) error {
	_, err := sfn.NewFromConfig(cfg).SendTaskHeartbeat(ctx, &sfn.SendTaskHeartbeatInput{TaskToken: aws.String("t")})
	return err
}

// Every attempt has its own deadline: a silent endpoint costs each of the
// SDK's attempts one timeout, then the call fails with a transient error
// while the caller's own context is still live.
func TestAttemptTimeoutPerAttempt(t *testing.T) {
	cfg, requests := silentEndpoint(t, nil)
	cfg.RetryMaxAttempts = 3
	cfg = WithAttemptTimeout(cfg, 50*time.Millisecond)
	ctx := context.Background()
	err := heartbeat(ctx, cfg)
	var te *AttemptTimeoutError
	if !errors.As(err, &te) {
		t.Fatalf("err = %v, want an AttemptTimeoutError", err)
	}
	if te.Operation != "SendTaskHeartbeat" || te.After != 50*time.Millisecond {
		t.Errorf("error = %+v", te)
	}
	if !Retryable(err) {
		t.Errorf("Retryable(%v) = false, want true", err)
	}
	if errors.Is(err, context.DeadlineExceeded) || errors.Is(err, context.Canceled) {
		t.Errorf("err %v wraps a context error, which callers take as giving up", err)
	}
	if got := requests.Load(); got != 3 {
		t.Errorf("%d requests, want 3: one per attempt, each given up on by its own deadline", got)
	}
}

// A retry after a silent attempt gets a fresh deadline and its answer.
func TestAttemptTimeoutThenAnswer(t *testing.T) {
	cfg, requests := silentEndpoint(t, func(n int64) bool { return n >= 2 })
	cfg.RetryMaxAttempts = 3
	cfg = WithAttemptTimeout(cfg, 50*time.Millisecond)
	if err := heartbeat(context.Background(), cfg); err != nil {
		t.Fatalf("heartbeat = %v, want the second attempt's answer", err)
	}
	if got := requests.Load(); got != 2 {
		t.Errorf("%d requests, want 2", got)
	}
}

// The caller's own cancellation stays what it is: not an attempt timeout,
// not retryable.
func TestAttemptTimeoutCallerCancels(t *testing.T) {
	cfg, _ := silentEndpoint(t, nil)
	cfg = WithAttemptTimeout(cfg, time.Hour)
	ctx, cancel := context.WithCancel(context.Background())
	go func() { cancel() }()
	err := heartbeat(ctx, cfg)
	var te *AttemptTimeoutError
	if err == nil || errors.As(err, &te) || Retryable(err) {
		t.Errorf("err = %v, want the caller's cancellation, not retryable", err)
	}
}

// deadlineRecorder is an HTTP client that notes each request's deadline and
// answers an empty JSON object.
type deadlineRecorder struct{ deadlines []time.Time }

func (d *deadlineRecorder) Do(r *http.Request) (*http.Response, error) {
	dl, _ := r.Context().Deadline()
	d.deadlines = append(d.deadlines, dl)
	return &http.Response{StatusCode: 200, Header: http.Header{"Content-Type": {"application/x-amz-json-1.0"}},
		Body: http.NoBody, Request: r}, nil
}

// A long poll waits by design: its attempt gets the wait on top of the
// timeout, and a receive that names no wait gets the longest the queue may
// set (20 s).
func TestAttemptTimeoutLongPoll(t *testing.T) {
	const timeout = 10 * time.Second
	tests := []struct {
		name string
		call func(context.Context, *sqs.Client) error
		want time.Duration
	}{
		{"receive, 20 s wait", func(ctx context.Context, c *sqs.Client) error {
			_, err := c.ReceiveMessage(ctx, &sqs.ReceiveMessageInput{QueueUrl: aws.String("http://q/1/q"), WaitTimeSeconds: 20})
			return err
		}, 30 * time.Second},
		{"receive, 5 s wait", func(ctx context.Context, c *sqs.Client) error {
			_, err := c.ReceiveMessage(ctx, &sqs.ReceiveMessageInput{QueueUrl: aws.String("http://q/1/q"), WaitTimeSeconds: 5})
			return err
		}, 15 * time.Second},
		{"receive, queue's wait", func(ctx context.Context, c *sqs.Client) error {
			_, err := c.ReceiveMessage(ctx, &sqs.ReceiveMessageInput{QueueUrl: aws.String("http://q/1/q")})
			return err
		}, 30 * time.Second},
		{"delete", func(ctx context.Context, c *sqs.Client) error {
			_, err := c.DeleteMessage(ctx, &sqs.DeleteMessageInput{QueueUrl: aws.String("http://q/1/q"), ReceiptHandle: aws.String("r")})
			return err
		}, timeout},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rec := &deadlineRecorder{}
			cfg := WithAttemptTimeout(aws.Config{Region: "us-east-1", HTTPClient: rec,
				Credentials: credentials.NewStaticCredentialsProvider("a", "b", "")}, timeout)
			before := time.Now()
			if err := tt.call(context.Background(), sqs.NewFromConfig(cfg)); err != nil {
				t.Fatal(err)
			}
			after := time.Now()
			if len(rec.deadlines) != 1 {
				t.Fatalf("%d requests", len(rec.deadlines))
			}
			if dl := rec.deadlines[0]; dl.Before(before.Add(tt.want)) || dl.After(after.Add(tt.want)) {
				t.Errorf("attempt deadline %s after the call, want %s", dl.Sub(before), tt.want)
			}
		})
	}
}

// Options do not leak into the configuration they were added to.
func TestWithAttemptTimeoutCopies(t *testing.T) {
	base := aws.Config{}
	_ = WithAttemptTimeout(base, time.Second)
	if len(base.APIOptions) != 0 {
		t.Errorf("base config changed: %d API options", len(base.APIOptions))
	}
}

func TestCheckTimeout(t *testing.T) {
	for d, ok := range map[time.Duration]bool{time.Second: true, DefaultTimeout: true, time.Minute: true,
		999 * time.Millisecond: false, 61 * time.Second: false, 0: false} {
		err := CheckTimeout(d)
		if (err == nil) != ok {
			t.Errorf("CheckTimeout(%s) = %v", d, err)
		}
		if err != nil && !strings.Contains(err.Error(), "out of range") {
			t.Errorf("CheckTimeout(%s) = %q", d, err)
		}
	}
}
