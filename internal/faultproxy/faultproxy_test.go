package faultproxy

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"runtime"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/sesv2"
	sestypes "github.com/aws/aws-sdk-go-v2/service/sesv2/types"
	"github.com/aws/aws-sdk-go-v2/service/sfn"
	"github.com/aws/aws-sdk-go-v2/service/sqs"

	"github.com/sfn-approvals/sfn-approvals/internal/awsx"
)

// setup returns a proxy in front of a backend that answers every request
// with an empty JSON object, and an SDK config pointed at the proxy with the
// SDK's own retries off, so each call is one request.
func setup(t *testing.T) (*Proxy, aws.Config, *atomic.Int64) {
	t.Helper()
	var reached atomic.Int64
	backend := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		reached.Add(1)
		w.Header().Set("Content-Type", "application/x-amz-json-1.0")
		w.Write([]byte(`{}`))
	}))
	t.Cleanup(backend.Close)
	p, err := New(backend.URL, 1)
	if err != nil {
		t.Fatal(err)
	}
	front := httptest.NewServer(p)
	t.Cleanup(front.Close)
	cfg := aws.Config{Region: "us-east-1", BaseEndpoint: aws.String(front.URL), RetryMaxAttempts: 1,
		Credentials: credentials.NewStaticCredentialsProvider("a", "b", "")}
	return p, cfg, &reached
}

func sendEmail(cfg aws.Config) error {
	_, err := sesv2.NewFromConfig(cfg).SendEmail(context.Background(), &sesv2.SendEmailInput{
		FromEmailAddress: aws.String("a@example.com"),
		Destination:      &sestypes.Destination{ToAddresses: []string{"b@example.com"}},
		Content: &sestypes.EmailContent{Simple: &sestypes.Message{
			Subject: &sestypes.Content{Data: aws.String("s")}, Body: &sestypes.Body{Text: &sestypes.Content{Data: aws.String("t")}}}},
	})
	return err
}

func sendTaskSuccess(cfg aws.Config) error {
	_, err := sfn.NewFromConfig(cfg).SendTaskSuccess(context.Background(), &sfn.SendTaskSuccessInput{TaskToken: aws.String("t"), Output: aws.String("{}")})
	return err
}

func sendTaskHeartbeat(cfg aws.Config) error {
	_, err := sfn.NewFromConfig(cfg).SendTaskHeartbeat(context.Background(), &sfn.SendTaskHeartbeatInput{TaskToken: aws.String("t")})
	return err
}

func deleteMessage(cfg aws.Config) error {
	_, err := sqs.NewFromConfig(cfg).DeleteMessage(context.Background(), &sqs.DeleteMessageInput{QueueUrl: aws.String("http://q/1/q"), ReceiptHandle: aws.String("r")})
	return err
}

// The injected errors must reach callers as the real services' errors, as
// the real SDK parses them, and be classified retryable.
func TestErrorsAreAWSShaped(t *testing.T) {
	tests := []struct {
		name     string
		svc      Service
		fault    Fault
		call     func(aws.Config) error
		wantCode string
	}{
		{"SES throttling", SESv2, Fault{ThrottleRate: 1}, sendEmail, "TooManyRequestsException"},
		{"SES 5xx", SESv2, Fault{ServerErrorRate: 1}, sendEmail, "InternalServiceErrorException"},
		{"SFN throttling", SFN, Fault{ThrottleRate: 1}, sendTaskSuccess, "ThrottlingException"},
		{"SFN 5xx", SFN, Fault{ServerErrorRate: 1}, sendTaskSuccess, "ServiceUnavailable"},
		{"SQS throttling", SQS, Fault{ThrottleRate: 1}, deleteMessage, "ThrottlingException"},
		{"SQS 5xx", SQS, Fault{ServerErrorRate: 1}, deleteMessage, "InternalError"},
		{"reset", SESv2, Fault{ResetRate: 1}, sendEmail, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p, cfg, reached := setup(t)
			p.Set(tt.svc, tt.fault)
			err := tt.call(cfg)
			if err == nil {
				t.Fatal("no error")
			}
			if got := awsx.ErrorCode(err); got != tt.wantCode {
				t.Errorf("code = %q, want %q (%v)", got, tt.wantCode, err)
			}
			if !awsx.Retryable(err) {
				t.Errorf("not retryable: %v", err)
			}
			if reached.Load() != 0 {
				t.Errorf("a faulted request reached the backend")
			}
			st := p.Stats(tt.svc)
			if st.Requests != 1 || st.Throttled+st.ServerErrors+st.Resets != 1 {
				t.Errorf("stats = %+v", st)
			}
		})
	}
}

func TestOperationsAndOtherServicesPassThrough(t *testing.T) {
	p, cfg, reached := setup(t)
	p.Set(SFN, Fault{ThrottleRate: 1, Operations: []string{"SendTaskSuccess"}})
	if err := sendTaskHeartbeat(cfg); err != nil {
		t.Errorf("heartbeat was faulted: %v", err)
	}
	if err := sendEmail(cfg); err != nil {
		t.Errorf("SES was faulted: %v", err)
	}
	if err := sendTaskSuccess(cfg); awsx.ErrorCode(err) != "ThrottlingException" {
		t.Errorf("SendTaskSuccess: %v", err)
	}
	if reached.Load() != 2 {
		t.Errorf("backend reached %d times, want 2", reached.Load())
	}
}

func TestLatencyIsAdded(t *testing.T) {
	p, cfg, _ := setup(t)
	p.Set(SESv2, Fault{Latency: 50 * time.Millisecond})
	start := time.Now()
	if err := sendEmail(cfg); err != nil {
		t.Fatal(err)
	}
	if el := time.Since(start); el < 50*time.Millisecond {
		t.Errorf("request took %s, less than the injected 50ms", el)
	}
}

func TestClassify(t *testing.T) {
	tests := []struct {
		target, method, path string
		svc                  Service
		op                   string
	}{
		{"AmazonSQS.ReceiveMessage", "POST", "/", SQS, "ReceiveMessage"},
		{"AWSStepFunctions.SendTaskFailure", "POST", "/", SFN, "SendTaskFailure"},
		{"", "POST", "/v2/email/outbound-emails", SESv2, "SendEmail"},
		{"", "GET", "/kumo/ses/v2/sent-emails", Other, ""},
	}
	for _, tt := range tests {
		r := httptest.NewRequest(tt.method, tt.path, nil)
		if tt.target != "" {
			r.Header.Set("X-Amz-Target", tt.target)
		}
		if svc, op := Classify(r); svc != tt.svc || op != tt.op {
			t.Errorf("%s %s %s: got %s %s", tt.target, tt.method, tt.path, svc, op)
		}
	}
}

func TestOpStatsRecordEachAnswer(t *testing.T) {
	p, cfg, _ := setup(t)
	before := time.Now()
	for range 3 {
		if err := sendEmail(cfg); err != nil {
			t.Fatal(err)
		}
	}
	p.Set(SESv2, Fault{ThrottleRate: 1})
	if err := sendEmail(cfg); awsx.ErrorCode(err) != "TooManyRequestsException" {
		t.Fatalf("throttled send: %v", err)
	}
	if err := sendTaskSuccess(cfg); err != nil {
		t.Fatal(err)
	}

	got := p.Op(SESv2, "SendEmail")
	if got.Count != 4 || got.Errors != 1 || len(got.Durations) != 4 {
		t.Errorf("SendEmail: count %d, errors %d, %d durations; want 4, 1, 4", got.Count, got.Errors, len(got.Durations))
	}
	if got.First.Before(before) || got.Last.Before(got.First) || time.Now().Before(got.Last) {
		t.Errorf("SendEmail window %v..%v not within the test's", got.First, got.Last)
	}
	if sfnOp := p.Op(SFN, "SendTaskSuccess"); sfnOp.Count != 1 || sfnOp.Errors != 0 {
		t.Errorf("SendTaskSuccess: count %d, errors %d; want 1, 0", sfnOp.Count, sfnOp.Errors)
	}

	p.ResetOps()
	if got := p.Op(SESv2, "SendEmail"); got.Count != 0 || len(got.Durations) != 0 {
		t.Errorf("after ResetOps: count %d, %d durations; want none", got.Count, len(got.Durations))
	}
	if s := p.Stats(SESv2); s.Requests != 4 {
		t.Errorf("Stats survive ResetOps: requests %d, want 4", s.Requests)
	}
}

func TestOpStatsCountResets(t *testing.T) {
	p, cfg, _ := setup(t)
	p.Set(SFN, Fault{ResetRate: 1})
	if err := sendTaskSuccess(cfg); err == nil {
		t.Fatal("reset connection: no error")
	}
	// The client sees the closed connection before the proxy's handler has
	// returned and recorded it, so wait for the record.
	deadline := time.Now().Add(5 * time.Second)
	for {
		got := p.Op(SFN, "SendTaskSuccess")
		if got.Count == 1 && got.Errors == 1 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("count %d, errors %d; want 1, 1", got.Count, got.Errors)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// SES's SendingPausedException, as the proxy writes it, is what the real
// SDK parses into that typed error: not retryable by code, an operator's
// fault to the worker.
func TestAPIErrorIsAWSShaped(t *testing.T) {
	p, cfg, reached := setup(t)
	p.Set(SESv2, Fault{APIErrorRate: 1, APIError: SendingPaused})
	err := sendEmail(cfg)
	var paused *sestypes.SendingPausedException
	if !errors.As(err, &paused) || awsx.ErrorCode(err) != "SendingPausedException" {
		t.Fatalf("err = %v, want SES's SendingPausedException", err)
	}
	if reached.Load() != 0 {
		t.Error("the request reached the backend")
	}
	if st := p.Stats(SESv2); st.Requests != 1 || st.APIErrors != 1 {
		t.Errorf("stats = %+v", st)
	}
}

// A stalled request gets no answer until the client gives up; the client's
// attempt deadline is what frees it, and once the stall is lifted requests
// pass again.
func TestStall(t *testing.T) {
	p, cfg, reached := setup(t)
	cfg = awsx.WithAttemptTimeout(cfg, 50*time.Millisecond)
	p.Set(SESv2, Fault{StallRate: 1})
	err := sendEmail(cfg)
	var te *awsx.AttemptTimeoutError
	if !errors.As(err, &te) || !awsx.Retryable(err) {
		t.Fatalf("err = %v, want a retryable attempt timeout", err)
	}
	if reached.Load() != 0 {
		t.Error("a stalled request reached the backend")
	}
	// The client has hung up; the proxy notices and lets the request go.
	for p.Stats(SESv2).StallsOpen != 0 {
		runtime.Gosched()
	}
	if st := p.Stats(SESv2); st.Stalls != 1 || st.Requests != 1 {
		t.Errorf("stats = %+v", st)
	}
	p.Set(SESv2, Fault{})
	if err := sendEmail(cfg); err != nil {
		t.Errorf("after the stall: %v", err)
	}
}
