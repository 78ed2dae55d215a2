package redeemer

import (
	"bufio"
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"runtime"
	"strings"
	"sync"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/goleak"

	"github.com/sfn-approvals/sfn-approvals/metrics"
)

// SIGTERM (ctx ending) must not cut off a decision being sent: Serve waits
// for it, answers it, and returns nil.
func TestServeDrainsInFlightPost(t *testing.T) {
	defer goleak.VerifyNone(t)
	b := setup(t)
	entered, release := holdCalls(b)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	served := make(chan error, 1)
	go func() { served <- b.srv.Serve(ctx, ln) }()
	posted, closeIdle := postApprove(t, b, ln.Addr().String())
	defer closeIdle()

	<-entered
	cancel()
	for b.srv.Healthy() == nil {
		// Serve marks itself draining right after ctx ends; wait for it.
		select {
		case err := <-served:
			t.Fatalf("Serve returned %v with a POST in flight", err)
		default:
			runtime.Gosched()
		}
	}
	finishInFlight(t, served, release, posted)
	if !strings.Contains(b.logs.String(), `"msg":"drained"`) {
		t.Error("drain not logged")
	}
}

// finishInFlight checks that Serve is still draining while the held POST
// is in flight, lets the POST answer, and wants a 200 for it and a clean
// return from Serve.
func finishInFlight(t *testing.T, served <-chan error, release chan struct{}, posted <-chan postResult) {
	t.Helper()
	select {
	case err := <-served:
		t.Fatalf("Serve returned %v with a POST in flight", err)
	default:
	}
	close(release)
	if r := <-posted; r.err != nil || r.code != http.StatusOK {
		t.Fatalf("in-flight POST = %d %v, want 200", r.code, r.err)
	}
	if err := <-served; err != nil {
		t.Fatalf("Serve = %v, want nil after a clean drain", err)
	}
}

// holdCalls makes Step Functions calls wait: entered is closed when the
// first arrives, and closing release lets it answer.
func holdCalls(b *bundle) (entered, release chan struct{}) {
	entered, release = make(chan struct{}), make(chan struct{})
	b.sfn.block = func(context.Context, int) error {
		close(entered)
		<-release
		return nil
	}
	return entered, release
}

type postResult struct {
	code int
	err  error
}

// postApprove POSTs an approve link to the server at addr in the background.
// Call closeIdle before checking for leaked goroutines.
func postApprove(t *testing.T, b *bundle, addr string) (_ <-chan postResult, closeIdle func()) {
	tr := &http.Transport{}
	p := b.path(t, approve)
	posted := make(chan postResult, 1)
	go func() {
		resp, err := (&http.Client{Transport: tr}).PostForm("http://"+addr+p, url.Values{"comment": {"ok"}})
		if err != nil {
			posted <- postResult{err: err}
			return
		}
		resp.Body.Close()
		posted <- postResult{code: resp.StatusCode}
	}()
	return posted, tr.CloseIdleConnections
}

// closeSignal is a listener that says when it has been closed.
type closeSignal struct {
	net.Listener
	once   sync.Once
	closed chan struct{}
}

func (l *closeSignal) Close() error {
	err := l.Listener.Close()
	l.once.Do(func() { close(l.closed) })
	return err
}

// On ECS the target is deregistered and drained before SIGTERM, so the drain
// need not keep accepting: the listener closes at once and idle connections
// are dropped while a POST in flight still finishes; /healthz answers 503 on
// the admin listener meanwhile.
func TestServeStopsAcceptingAtOnce(t *testing.T) {
	defer goleak.VerifyNone(t)
	b := setup(t)
	entered, release := holdCalls(b)
	inner, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ln := &closeSignal{Listener: inner, closed: make(chan struct{})}
	addr := ln.Addr().String()
	admin := metrics.AdminHandler(prometheus.NewRegistry(), b.srv.Healthy)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	served := make(chan error, 1)
	go func() { served <- b.srv.Serve(ctx, ln) }()

	// A keep-alive connection, idle after one health check.
	idle, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer idle.Close()
	if _, err := io.WriteString(idle, "GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n"); err != nil {
		t.Fatal(err)
	}
	idleReader := bufio.NewReader(idle)
	resp, err := http.ReadResponse(idleReader, nil)
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("health check before the drain: %v %v", resp, err)
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()

	posted, closeIdle := postApprove(t, b, addr)
	defer closeIdle()
	<-entered
	cancel()

	<-ln.closed
	if c, err := net.Dial("tcp", addr); err == nil {
		c.Close()
		t.Error("new connection accepted during the drain")
	}
	if _, err := idleReader.ReadByte(); !errors.Is(err, io.EOF) {
		t.Errorf("idle connection during the drain: read %v, want EOF (closed)", err)
	}
	w := httptest.NewRecorder()
	admin.ServeHTTP(w, httptest.NewRequest(http.MethodGet, "/healthz", nil))
	if w.Code != http.StatusServiceUnavailable {
		t.Errorf("admin /healthz during the drain = %d, want 503", w.Code)
	}
	finishInFlight(t, served, release, posted)
}
