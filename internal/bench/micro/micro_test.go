package micro

import (
	"context"
	"encoding/json"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sesv2"
	"github.com/aws/aws-sdk-go-v2/service/sfn"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/sfn-approvals/sfn-approvals/approval"
	"github.com/sfn-approvals/sfn-approvals/link"
	"github.com/sfn-approvals/sfn-approvals/metrics"
	"github.com/sfn-approvals/sfn-approvals/worker"
)

// token is task-token-like, the length the load benchmarks use.
var token = strings.Repeat("AAAAKgAAAAIAAAAAAAAAAQ+/", 1024/24+1)[:1024]

// sesFake accepts every email in memory.
type sesFake struct{ sent atomic.Int64 }

func (f *sesFake) SendEmail(context.Context, *sesv2.SendEmailInput, ...func(*sesv2.Options)) (*sesv2.SendEmailOutput, error) {
	f.sent.Add(1)
	return &sesv2.SendEmailOutput{MessageId: aws.String("m")}, nil
}

// sfnFake fails the benchmark if the handler ever gives up on a request.
type sfnFake struct{ failed atomic.Int64 }

func (f *sfnFake) SendTaskFailure(context.Context, *sfn.SendTaskFailureInput, ...func(*sfn.Options)) (*sfn.SendTaskFailureOutput, error) {
	f.failed.Add(1)
	return &sfn.SendTaskFailureOutput{}, nil
}

func keyring(tb testing.TB) *link.Keyring {
	k, err := link.GenerateKey()
	if err != nil {
		tb.Fatal(err)
	}
	kr, err := link.ParseKeyring(k)
	if err != nil {
		tb.Fatal(err)
	}
	return kr
}

func templates(tb testing.TB) *worker.Templates {
	t, err := worker.LoadTemplates("")
	if err != nil {
		tb.Fatal(err)
	}
	return t
}

// BenchmarkHandleRequest is the worker's CPU work for one approval request
// with one recipient, minus the network: decode and validate the body,
// mint both links, render both parts, build the SendEmail input.
func BenchmarkHandleRequest(b *testing.B) {
	ses, tasks := &sesFake{}, &sfnFake{}
	h := &worker.Handler{
		Keyring: keyring(b), BaseURL: "https://approvals.example.com", Sender: "approvals@example.com",
		Templates: templates(b), DefaultExpiry: 72 * time.Hour, Email: ses, Tasks: tasks,
		Metrics: metrics.NewWorker(prometheus.NewRegistry()),
	}
	body, err := json.Marshal(map[string]any{
		"taskToken": token, "to": []string{"approver@example.com"}, "subject": "Approve deployment #42",
		"data": map[string]any{"service": "web-frontend", "version": "v1.4.2", "environment": "production"},
	})
	if err != nil {
		b.Fatal(err)
	}
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		h.Handle(ctx, body)
	}
	if ses.sent.Load() == 0 || tasks.failed.Load() != 0 {
		b.Fatalf("%d emails sent, %d requests failed; want every request to send", ses.sent.Load(), tasks.failed.Load())
	}
}

// BenchmarkRenderEmail is the template render alone: both parts of the
// approval email with two ready links.
func BenchmarkRenderEmail(b *testing.B) {
	t, kr := templates(b), keyring(b)
	exp := time.Now().Add(72 * time.Hour).Truncate(time.Second)
	var actions []worker.ActionLink
	for _, a := range approval.DefaultActions() {
		u, err := kr.URL("https://approvals.example.com", link.Claims{TaskToken: token, Action: a, Recipient: "approver@example.com", ExpiresAt: exp})
		if err != nil {
			b.Fatal(err)
		}
		actions = append(actions, worker.ActionLink{Name: a.Name, Label: a.Label, Type: string(a.Type), URL: u})
	}
	d := worker.EmailData{Subject: "Approve deployment #42", Recipient: "approver@example.com", ExpiresAt: exp, Actions: actions,
		Data: map[string]any{"service": "web-frontend", "version": "v1.4.2", "environment": "production"}}
	b.ReportAllocs()
	for b.Loop() {
		r, err := t.Render("approval", d)
		if err != nil || !strings.Contains(r.HTML, actions[0].URL) {
			b.Fatalf("render: %v", err)
		}
	}
}
