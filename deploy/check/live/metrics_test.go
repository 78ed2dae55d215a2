package live

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/sfn"
	"github.com/aws/aws-sdk-go-v2/service/sqs"

	"github.com/sfn-approvals/sfn-approvals/deploy/check"
	"github.com/sfn-approvals/sfn-approvals/internal/kumotest"
	"github.com/sfn-approvals/sfn-approvals/link"
)

// freeAddr returns a loopback address nobody listens on right now.
func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

type service struct {
	cmd    *exec.Cmd
	logs   *bytes.Buffer
	exited chan error
}

func start(t *testing.T, bin string, env ...string) *service {
	t.Helper()
	s := &service{cmd: exec.Command(bin), logs: &bytes.Buffer{}, exited: make(chan error, 1)}
	s.cmd.Env = append(kumotest.Env(), env...)
	s.cmd.Stdout, s.cmd.Stderr = s.logs, s.logs
	if err := s.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { s.exited <- s.cmd.Wait() }()
	t.Cleanup(func() {
		if s.cmd.ProcessState == nil {
			_ = s.cmd.Process.Kill()
			<-s.exited
		}
	})
	return s
}

// waitHealthy polls url until it answers 200, failing if the process exits.
func (s *service) waitHealthy(t *testing.T, url string) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		select {
		case err := <-s.exited:
			s.exited <- err
			t.Fatalf("%s exited at start: %v\n%s", filepath.Base(s.cmd.Path), err, s.logs)
		default:
		}
		if resp, err := http.Get(url); err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return
			}
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatalf("%s not healthy at %s within 30s\n%s", filepath.Base(s.cmd.Path), url, s.logs)
}

// stop sends SIGTERM, as ECS does, and expects a clean exit.
func (s *service) stop(t *testing.T) {
	t.Helper()
	if err := s.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-s.exited:
		if err != nil {
			t.Errorf("%s exited with %v after SIGTERM\n%s", filepath.Base(s.cmd.Path), err, s.logs)
		}
	case <-time.After(60 * time.Second):
		t.Errorf("%s still running 60s after SIGTERM", filepath.Base(s.cmd.Path))
	}
}

func get(t *testing.T, url string) string {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("GET %s: %d %v", url, resp.StatusCode, err)
	}
	return string(b)
}

// promtoolCheckMetrics lints an exposition with `promtool check metrics`.
func promtoolCheckMetrics(t *testing.T, exposition string) {
	t.Helper()
	path, err := exec.LookPath("promtool")
	if err != nil {
		t.Fatal("promtool not found: run scripts/apt-install.sh promtool prometheus (make test-deploy does)")
	}
	cmd := exec.Command(path, "check", "metrics")
	cmd.Stdin = strings.NewReader(exposition)
	out, err := cmd.CombinedOutput()
	if err != nil || len(bytes.TrimSpace(out)) > 0 {
		t.Errorf("promtool check metrics: %v\n%s", err, out)
	}
}

// The two services, started as ECS starts them (the task definitions'
// variables, SIGTERM to stop), answer the load balancer's health check
// and serve /metrics that promtool accepts and that hold every metric the
// rules and dashboard are checked against.
func TestServicesLive(t *testing.T) {
	dir := t.TempDir()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	bins, err := check.Build(ctx, root, dir, "worker", "redeemer")
	if err != nil {
		t.Fatal(err)
	}
	key, err := link.GenerateKey()
	if err != nil {
		t.Fatal(err)
	}
	cfg := kumotest.Config()
	sq, sf := sqs.NewFromConfig(cfg), sfn.NewFromConfig(cfg)
	queue, _ := kumotest.Queue(t, sq, 3)

	listen, redeemerAdmin, workerAdmin := freeAddr(t), freeAddr(t), freeAddr(t)
	common := []string{"APPROVALS_BASE_URL=https://approvals.example.com", "APPROVALS_SIGNING_KEYS=" + key}
	redeemer := start(t, bins["redeemer"], append(common,
		"APPROVALS_LISTEN_ADDR="+listen, "APPROVALS_METRICS_ADDR="+redeemerAdmin)...)
	worker := start(t, bins["worker"], append(common,
		"APPROVALS_QUEUE_URL="+queue, "APPROVALS_SENDER=approvals@example.com",
		"APPROVALS_METRICS_ADDR="+workerAdmin, "APPROVALS_SHUTDOWN_GRACE=5s")...)

	// The load balancer's health check: /healthz on the traffic port.
	redeemer.waitHealthy(t, "http://"+listen+"/healthz")
	redeemer.waitHealthy(t, "http://"+redeemerAdmin+"/healthz")
	worker.waitHealthy(t, "http://"+workerAdmin+"/healthz")

	// One approval through the example state machine, so the worker's
	// counters and histograms have observations.
	def := strings.ReplaceAll(readFile(t, "deploy/statemachines/approval.asl.json"), "${QueueUrl}", queue)
	subject := kumotest.Name("Live metrics check")
	kumotest.StartExecution(t, sf, kumotest.StateMachine(t, sf, def), map[string]any{
		"approvers": []string{"ben@example.com"}, "requester": []string{"ana@example.com"},
		"subject": subject, "details": map[string]any{"service": "web"},
	})
	deadline := time.Now().Add(30 * time.Second)
	for len(kumotest.EmailsTo(t, "ben@example.com", subject)) == 0 {
		if time.Now().After(deadline) {
			t.Fatalf("no approval email within 30s\n%s", worker.logs)
		}
		time.Sleep(100 * time.Millisecond)
	}

	// The email reaches kumo's outbox before the worker's SendEmail call
	// returns and counts it: wait for the count, not only for the email.
	for strings.Contains(get(t, "http://"+workerAdmin+"/metrics"), "\napprovals_worker_emails_sent_total 0\n") {
		if time.Now().After(deadline) {
			t.Fatalf("the email sent was not counted within 30s\n%s", worker.logs)
		}
		time.Sleep(100 * time.Millisecond)
	}

	ms, err := check.Metrics()
	if err != nil {
		t.Fatal(err)
	}
	for _, svc := range []struct {
		name, addr string
	}{{"worker", workerAdmin}, {"redeemer", redeemerAdmin}} {
		t.Run(svc.name, func(t *testing.T) {
			exp := get(t, "http://"+svc.addr+"/metrics")
			promtoolCheckMetrics(t, exp)
			for name, m := range ms {
				if !strings.HasPrefix(name, "approvals_"+svc.name+"_") || !precreated(m) {
					continue
				}
				if !strings.Contains(exp, fmt.Sprintf("# TYPE %s ", name)) {
					t.Errorf("%s is not in the scrape", name)
				}
			}
			if svc.name == "worker" && strings.Contains(exp, "\napprovals_worker_emails_sent_total 0\n") {
				t.Error("the email sent is not counted")
			}
		})
	}

	worker.stop(t)
	redeemer.stop(t)
	if t.Failed() {
		t.Logf("worker logs:\n%s\nredeemer logs:\n%s", worker.logs, redeemer.logs)
	}
}

// precreated reports whether a metric has series from the start: no
// labels, or values for each created up front.
func precreated(m check.Metric) bool {
	for _, v := range m.Labels {
		if len(v) == 0 {
			return false
		}
	}
	return true
}
