// Package workertest runs the worker in tests, as cmd/worker does but in
// the test's process, so tests can point it at the emulator or a proxy.
package workertest

import (
	"context"
	"testing"
	"time"

	"github.com/sfn-approvals/sfn-approvals/worker"
)

// Start runs worker.Run(cfg) in the background. stop cancels its context,
// as SIGTERM does, and fails t unless Run returns nil within wait.
func Start(t testing.TB, cfg worker.Config, wait time.Duration) (stop func()) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- worker.Run(ctx, cfg) }()
	return func() {
		t.Helper()
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("worker Run = %v, want nil after shutdown", err)
			}
		case <-time.After(wait):
			t.Errorf("worker Run did not return within %s of shutdown", wait)
		}
	}
}
