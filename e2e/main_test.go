// Package e2e tests the whole product through the real binaries: it builds
// worker and redeemer, starts them against the kumo emulator with the
// example state machine from deploy/ (internal/stack, the same code that
// `approvals-dev dev` runs), and acts as approvers do, over HTTP and in a real
// headless Chromium.
package e2e

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"testing"

	"github.com/sfn-approvals/sfn-approvals/internal/kumo"
	"github.com/sfn-approvals/sfn-approvals/internal/kumotest"
	"github.com/sfn-approvals/sfn-approvals/internal/stack"
)

var (
	once     sync.Once
	shared   *stack.Stack
	setupErr error
	binDir   string
)

type runner struct{ m *testing.M }

func (r runner) Run() int {
	dir, err := os.MkdirTemp("", "approvals-e2e-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer os.RemoveAll(dir)
	binDir = dir
	code := r.m.Run()
	if shared != nil {
		if err := shared.Close(); err != nil {
			fmt.Fprintln(os.Stderr, "stop stack:", err)
			if code == 0 {
				code = 1
			}
		}
	}
	return code
}

func TestMain(m *testing.M) { kumotest.Main(runner{m}) }

// setup returns the running stack, building the binaries and starting it on
// first use. Ports differ from `approvals-dev dev`'s so the two can coexist
// apart from the emulator.
func setup(t *testing.T) *stack.Stack {
	t.Helper()
	once.Do(func() {
		root, err := kumo.RepoRoot()
		if err != nil {
			setupErr = err
			return
		}
		if setupErr = stack.BuildServices(root, binDir); setupErr != nil {
			return
		}
		shared, setupErr = stack.Up(context.Background(), stack.Options{
			Dirs: stack.Dirs{Root: root, BinDir: binDir, LogDir: filepath.Join(binDir, "logs")}, ExternalKumo: true,
			RedeemerAddr: "127.0.0.1:18080", RedeemerAdminAddr: "127.0.0.1:19091", WorkerAdminAddr: "127.0.0.1:19092",
		})
	})
	if setupErr != nil {
		t.Fatalf("local stack: %v", setupErr)
	}
	return shared
}
