package integration

import (
	"context"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sfn"
	sfntypes "github.com/aws/aws-sdk-go-v2/service/sfn/types"
	"github.com/aws/aws-sdk-go-v2/service/sqs"

	"github.com/sfn-approvals/sfn-approvals/internal/faultproxy"
	"github.com/sfn-approvals/sfn-approvals/internal/kumotest"
	"github.com/sfn-approvals/sfn-approvals/internal/testio"
	"github.com/sfn-approvals/sfn-approvals/link"
	"github.com/sfn-approvals/sfn-approvals/worker"
	"github.com/sfn-approvals/sfn-approvals/worker/workertest"
)

// faultBundle is a worker whose AWS calls go through a fault proxy in front
// of kumo, with one slot, so a slot held for ever would stop everything.
type faultBundle struct {
	proxy       *faultproxy.Proxy
	sf          *sfn.Client // direct to kumo
	sm          string
	logs        *testio.SyncBuffer
	metricsAddr string
}

func setupFaults(t *testing.T) *faultBundle {
	t.Helper()
	direct := kumotest.Config()
	sq, sf := sqs.NewFromConfig(direct), sfn.NewFromConfig(direct)
	queueURL, _ := kumotest.Queue(t, sq, 5)
	sm := kumotest.StateMachine(t, sf, approvalDefinition(queueURL))
	proxy, err := faultproxy.New(kumotest.Endpoint, 1)
	if err != nil {
		t.Fatal(err)
	}
	front := httptest.NewServer(proxy)
	t.Cleanup(front.Close)
	viaProxy := kumotest.Config()
	viaProxy.BaseEndpoint = aws.String(front.URL)

	keys, err := link.GenerateKey()
	if err != nil {
		t.Fatal(err)
	}
	kr, err := link.ParseKeyring(keys)
	if err != nil {
		t.Fatal(err)
	}
	b := &faultBundle{proxy: proxy, sf: sf, sm: sm, logs: &testio.SyncBuffer{}, metricsAddr: freeAddr(t)}
	stop := workertest.Start(t, worker.Config{
		QueueURL: queueURL, Sender: "approvals@example.com", BaseURL: baseURL, Keyring: kr,
		Concurrency: 1, MetricsAddr: b.metricsAddr, ShutdownGrace: 5 * time.Second,
		AWSTimeout: time.Second,
		Logger:     slog.New(slog.NewJSONHandler(b.logs, nil)),
		AWS:        &viaProxy,
	}, 30*time.Second)
	t.Cleanup(func() {
		// Stalls and errors end first, so the worker's last calls are answered.
		for _, s := range faultproxy.Services {
			proxy.Set(s, faultproxy.Fault{})
		}
		stop()
	})
	return b
}

func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// metric reads one sample from the worker's /metrics, 0 if absent.
func (b *faultBundle) metric(t *testing.T, series string) float64 {
	t.Helper()
	resp, err := http.Get("http://" + b.metricsAddr + "/metrics")
	if err != nil {
		return 0 // not listening yet
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	m := regexp.MustCompile(`(?m)^` + regexp.QuoteMeta(series) + ` (\S+)$`).FindSubmatch(body)
	if m == nil {
		return 0
	}
	v, _ := strconv.ParseFloat(string(m[1]), 64)
	return v
}

// waitFor polls cond until it holds or the timeout passes.
func waitFor(t *testing.T, what string, timeout time.Duration, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func (b *faultBundle) status(t *testing.T, exec string) sfntypes.ExecutionStatus {
	t.Helper()
	d, err := b.sf.DescribeExecution(context.Background(), &sfn.DescribeExecutionInput{ExecutionArn: aws.String(exec)})
	if err != nil {
		t.Fatal(err)
	}
	return d.Status
}

// An SES endpoint that accepts and never answers costs each SendEmail
// attempt APPROVALS_AWS_TIMEOUT; the worker's only slot comes back, the
// message is retried, and is sent once the stall ends.
func TestStalledSESIsRetried(t *testing.T) {
	b := setupFaults(t)
	b.proxy.Set(faultproxy.SESv2, faultproxy.Fault{StallRate: 1, Operations: []string{"SendEmail"}})
	subject := kumotest.Name("Stalled SES")
	exec := kumotest.StartExecution(t, b.sf, b.sm, map[string]any{
		"to": []string{"stall@example.com"}, "cc": []string{}, "subject": subject, "data": map[string]any{}})

	// The SDK's three attempts each stall and are given up on; the message
	// is then left for another receive.
	waitFor(t, "the stalled send to be given up", 60*time.Second, func() bool {
		return b.metric(t, `approvals_worker_messages_handled_total{outcome="retried"}`) >= 1
	})
	st := b.proxy.Stats(faultproxy.SESv2)
	if st.Stalls != 3 || st.StallsOpen != 0 {
		t.Errorf("SES stats %+v, want 3 stalled attempts, none still open", st)
	}
	if got := len(kumotest.EmailsTo(t, "stall@example.com", subject)); got != 0 {
		t.Fatalf("%d emails sent during the stall", got)
	}

	b.proxy.Set(faultproxy.SESv2, faultproxy.Fault{})
	waitFor(t, "the email after the stall", 30*time.Second, func() bool {
		return len(kumotest.EmailsTo(t, "stall@example.com", subject)) > 0
	})
	if s := b.status(t, exec); s != sfntypes.ExecutionStatusRunning {
		t.Errorf("execution %s, want RUNNING (waiting for the approver)", s)
	}
	waitFor(t, "the retried message to be handled", 10*time.Second, func() bool {
		return b.metric(t, `approvals_worker_messages_handled_total{outcome="sent"}`) == 1
	})
	if l := b.logs.String(); !strings.Contains(l, `"receive_count":2`) {
		t.Errorf("no second receive in the log:\n%s", l)
	}
}

// SES answering SendingPausedException (as SES writes it, parsed by the real
// SDK) is the operator's to fix: the execution stays RUNNING, the message is
// retried and counted by code, and is sent once sending resumes.
func TestSendingPausedIsRetriedNotFailed(t *testing.T) {
	b := setupFaults(t)
	b.proxy.Set(faultproxy.SESv2, faultproxy.Fault{APIErrorRate: 1, APIError: faultproxy.SendingPaused, Operations: []string{"SendEmail"}})
	subject := kumotest.Name("Sending paused")
	exec := kumotest.StartExecution(t, b.sf, b.sm, map[string]any{
		"to": []string{"paused@example.com"}, "cc": []string{}, "subject": subject, "data": map[string]any{}})

	const paused = `approvals_worker_operator_errors_total{code="SendingPausedException"}`
	waitFor(t, "the paused send to be counted", 30*time.Second, func() bool { return b.metric(t, paused) >= 1 })
	waitFor(t, "the message to be left for a retry", 10*time.Second, func() bool {
		return b.metric(t, `approvals_worker_messages_handled_total{outcome="retried"}`) >= 1
	})
	if s := b.status(t, exec); s != sfntypes.ExecutionStatusRunning {
		t.Fatalf("execution %s, want RUNNING: an operator's mistake must not fail it", s)
	}
	if v := b.metric(t, `approvals_worker_fail_fast_total{error="Approvals.EmailRejected",result="ok"}`); v != 0 {
		t.Errorf("%v executions failed with Approvals.EmailRejected", v)
	}
	if st := b.proxy.Stats(faultproxy.SESv2); st.APIErrors < 1 {
		t.Errorf("SES stats %+v: no SendingPausedException answered", st)
	}

	b.proxy.Set(faultproxy.SESv2, faultproxy.Fault{})
	waitFor(t, "the email once sending resumes", 30*time.Second, func() bool {
		return len(kumotest.EmailsTo(t, "paused@example.com", subject)) > 0
	})
	if s := b.status(t, exec); s != sfntypes.ExecutionStatusRunning {
		t.Errorf("execution %s, want RUNNING (waiting for the approver)", s)
	}
	if l := b.logs.String(); !strings.Contains(l, "an operator must fix SendingPausedException") {
		t.Errorf("the retry's log line does not name the operator error:\n%s", l)
	}
}
