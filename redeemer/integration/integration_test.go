// Package integration runs the redeemer against the kumo emulator through
// the real aws-sdk-go-v2 clients. It is its own package so that the
// redeemer's unit tests do not wait for the emulator's lock.
package integration

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sfn"
	sfntypes "github.com/aws/aws-sdk-go-v2/service/sfn/types"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	"github.com/google/go-cmp/cmp"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/sfn-approvals/sfn-approvals/approval"
	"github.com/sfn-approvals/sfn-approvals/internal/kumotest"
	"github.com/sfn-approvals/sfn-approvals/internal/testio"
	"github.com/sfn-approvals/sfn-approvals/link"
	"github.com/sfn-approvals/sfn-approvals/redeemer"
)

func TestMain(m *testing.M) { kumotest.Main(m) }

const keys = "k1:AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8="

// definition is kumotest.WaitForTokenDefinition with a heartbeat interval
// (kumo crashes on SendTaskHeartbeat without one) and a Catch that puts a
// failure's error and cause in the output, as a real workflow would.
func definition(queueURL string) string {
	return kumotest.TaskDefinition(queueURL, kumotest.Task{TimeoutSeconds: 120, HeartbeatSeconds: 60, Fields: []string{"to", "subject"}, CatchRejected: true})
}

type env struct {
	sqs     *sqs.Client
	sfn     *sfn.Client
	queue   string
	sm      string
	kr      *link.Keyring
	baseURL string
	logs    *testio.SyncBuffer // the redeemer's
}

func setup(t *testing.T, opts ...func(*redeemer.Config)) *env {
	t.Helper()
	cfg := kumotest.Config()
	e := &env{sqs: sqs.NewFromConfig(cfg), sfn: sfn.NewFromConfig(cfg), logs: &testio.SyncBuffer{}}
	e.queue, _ = kumotest.Queue(t, e.sqs, 3)
	e.sm = kumotest.StateMachine(t, e.sfn, definition(e.queue))
	kr, err := link.ParseKeyring(keys)
	if err != nil {
		t.Fatal(err)
	}
	e.kr = kr

	// The redeemer's own client, as Run makes it: no SDK retries under ours.
	client := sfn.NewFromConfig(cfg, func(o *sfn.Options) { o.Retryer = aws.NopRetryer{} })
	rcfg := redeemer.Config{BaseURL: "https://approvals.example.com", Keyring: kr}
	for _, o := range opts {
		o(&rcfg)
	}
	srv, err := redeemer.New(rcfg, client, prometheus.NewRegistry(), slog.New(slog.NewJSONHandler(e.logs, nil)))
	if err != nil {
		t.Fatal(err)
	}
	ts := httptest.NewServer(srv)
	t.Cleanup(ts.Close)
	e.baseURL = ts.URL
	return e
}

// start runs an execution and returns it with the task token from the
// message its state machine put on the queue.
func (e *env) start(t *testing.T) (execARN, token string) {
	t.Helper()
	execARN = kumotest.StartExecution(t, e.sfn, e.sm, map[string]any{"to": []string{"ben@example.com"}, "subject": "Deploy 42"})
	msg := kumotest.ReceiveOne(t, e.sqs, e.queue, 10*time.Second)
	var body struct {
		TaskToken string `json:"taskToken"`
	}
	if err := json.Unmarshal([]byte(aws.ToString(msg.Body)), &body); err != nil || body.TaskToken == "" {
		t.Fatalf("message body %q: %v", aws.ToString(msg.Body), err)
	}
	return execARN, body.TaskToken
}

func (e *env) link(t *testing.T, token string, a approval.Action) string {
	t.Helper()
	u, err := e.kr.URL(e.baseURL, link.Claims{TaskToken: token, Action: a, Recipient: "ben@example.com", ExpiresAt: time.Now().Add(time.Hour)})
	if err != nil {
		t.Fatal(err)
	}
	return u
}

func (e *env) status(t *testing.T, execARN string) sfntypes.ExecutionStatus {
	t.Helper()
	out, err := e.sfn.DescribeExecution(context.Background(), &sfn.DescribeExecutionInput{ExecutionArn: aws.String(execARN)})
	if err != nil {
		t.Fatal(err)
	}
	return out.Status
}

func post(t *testing.T, u, comment string) int {
	t.Helper()
	resp, err := http.PostForm(u, url.Values{"comment": {comment}})
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return resp.StatusCode
}

func get(t *testing.T, method, u string) int {
	t.Helper()
	req, _ := http.NewRequest(method, u, nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return resp.StatusCode
}

func TestApproveThroughStepFunctions(t *testing.T) {
	e := setup(t)
	execARN, token := e.start(t)
	u := e.link(t, token, approval.Action{Name: "approve", Label: "Approve", Type: approval.Success,
		Output: json.RawMessage(`{"approved": true, "ticket": 42}`)})

	// What a mail scanner does: nothing may happen.
	if c := get(t, http.MethodGet, u); c != http.StatusOK {
		t.Fatalf("GET = %d", c)
	}
	if c := get(t, http.MethodHead, u); c != http.StatusOK {
		t.Fatalf("HEAD = %d", c)
	}
	if s := e.status(t, execARN); s != sfntypes.ExecutionStatusRunning {
		t.Fatalf("after GET and HEAD the execution is %s, want RUNNING", s)
	}

	before := time.Now().UTC().Truncate(time.Second)
	if c := post(t, u, "ship it"); c != http.StatusOK {
		t.Fatalf("POST = %d, want 200", c)
	}
	d := kumotest.WaitStatus(t, e.sfn, execARN, 10*time.Second)
	if d.Status != sfntypes.ExecutionStatusSucceeded {
		t.Fatalf("execution %s, want SUCCEEDED", d.Status)
	}
	var out struct {
		Approved bool              `json:"approved"`
		Ticket   int               `json:"ticket"`
		Decision approval.Decision `json:"decision"`
	}
	if err := json.Unmarshal([]byte(aws.ToString(d.Output)), &out); err != nil {
		t.Fatalf("output %s: %v", aws.ToString(d.Output), err)
	}
	if out.Decision.DecidedAt.Before(before) || out.Decision.DecidedAt.After(time.Now()) {
		t.Errorf("decidedAt %v not around the POST", out.Decision.DecidedAt)
	}
	out.Decision.DecidedAt = time.Time{}
	want := approval.Decision{Action: "approve", Approver: "ben@example.com", Comment: "ship it"}
	if !out.Approved || out.Ticket != 42 || out.Decision != want {
		t.Errorf("output %s\n%s", aws.ToString(d.Output), cmp.Diff(want, out.Decision))
	}

	// The task is answered: a second click, on any link for it, is 410.
	if c := post(t, u, "again"); c != http.StatusGone {
		t.Errorf("second POST = %d, want 410", c)
	}
	if c := post(t, e.link(t, token, approval.DefaultActions()[1]), ""); c != http.StatusGone {
		t.Errorf("reject after approve = %d, want 410", c)
	}
}

func TestRejectAndExtendThroughStepFunctions(t *testing.T) {
	e := setup(t)
	execARN, token := e.start(t)

	extend := approval.Action{Name: "extend", Label: "More time", Type: approval.Heartbeat}
	if c := post(t, e.link(t, token, extend), ""); c != http.StatusOK {
		t.Fatalf("heartbeat POST = %d, want 200", c)
	}
	if s := e.status(t, execARN); s != sfntypes.ExecutionStatusRunning {
		t.Fatalf("after a heartbeat the execution is %s, want RUNNING", s)
	}

	if c := post(t, e.link(t, token, approval.DefaultActions()[1]), "not this week"); c != http.StatusOK {
		t.Fatalf("reject POST = %d, want 200", c)
	}
	var cause approval.FailureCause
	errName := kumotest.Rejection(t, e.sfn, execARN, 10*time.Second, &cause)
	if errName != "Rejected" || cause.Message != "Rejected by approver" ||
		cause.Decision.Action != "reject" || cause.Decision.Approver != "ben@example.com" || cause.Decision.Comment != "not this week" {
		t.Errorf("rejection error %q, cause %+v", errName, cause)
	}
}

// Run, as cmd/redeemer calls it: configuration from the SDK's environment,
// both listeners up, and a clean exit when its context ends.
func TestRun(t *testing.T) {
	for _, kv := range kumotest.Env() {
		k, v, _ := strings.Cut(kv, "=")
		t.Setenv(k, v)
	}
	kr, _ := link.ParseKeyring(keys)
	cfg := redeemer.Config{
		BaseURL: "https://approvals.example.com", Keyring: kr,
		ListenAddr: freeAddr(t), MetricsAddr: freeAddr(t),
		Logger: slog.New(slog.NewJSONHandler(io.Discard, nil)),
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- redeemer.Run(ctx, cfg) }()

	waitOK(t, "http://"+cfg.ListenAddr+"/healthz", done)
	waitOK(t, "http://"+cfg.MetricsAddr+"/healthz", done)
	resp, err := http.Get("http://" + cfg.MetricsAddr + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	for _, m := range []string{`approvals_redeemer_link_checks_total{result="expired"} 0`,
		`approvals_redeemer_decisions_total{outcome="unavailable",type="failure"} 0`,
		"approvals_redeemer_sfn_call_duration_seconds_bucket", "go_goroutines"} {
		if !strings.Contains(string(body), m) {
			t.Errorf("/metrics lacks %s", m)
		}
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("Run = %v, want nil", err)
	}
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

// waitOK polls u until it answers 200, failing if Run returns first.
func waitOK(t *testing.T, u string, done <-chan error) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		select {
		case err := <-done:
			t.Fatalf("Run returned early: %v", err)
		default:
		}
		if resp, err := http.Get(u); err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return
			}
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatalf("%s did not answer 200", u)
}
