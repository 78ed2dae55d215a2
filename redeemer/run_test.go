package redeemer

import (
	"context"
	"net"
	"net/http"
	"net/url"
	"runtime"
	"strings"
	"testing"

	"go.uber.org/goleak"
)

// SIGTERM (ctx ending) must not cut off a decision being sent: Serve waits
// for it, answers it, and returns nil.
func TestServeDrainsInFlightPost(t *testing.T) {
	defer goleak.VerifyNone(t)
	b := setup(t)
	entered, release := make(chan struct{}), make(chan struct{})
	b.sfn.block = func(context.Context, int) error {
		close(entered)
		<-release
		return nil
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	served := make(chan error, 1)
	go func() { served <- b.srv.Serve(ctx, ln) }()

	tr := &http.Transport{}
	defer tr.CloseIdleConnections()
	client := &http.Client{Transport: tr}
	type result struct {
		code int
		err  error
	}
	posted := make(chan result, 1)
	go func() {
		resp, err := client.PostForm("http://"+ln.Addr().String()+b.path(t, approve), url.Values{"comment": {"ok"}})
		if err != nil {
			posted <- result{err: err}
			return
		}
		resp.Body.Close()
		posted <- result{code: resp.StatusCode}
	}()

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
	if !strings.Contains(b.logs.String(), `"msg":"drained"`) {
		t.Error("drain not logged")
	}
}
