// Package kumotest runs the kumo AWS emulator for integration tests and
// gives them real aws-sdk-go-v2 clients pointed at it.
//
// kumo must listen on port 4566, so only one can run on a machine. Packages
// that use it take an exclusive file lock for their whole run; `go test
// ./...` runs them one after another while everything else runs in parallel.
package kumotest

import (
	"fmt"
	"io"
	"os"
	"path/filepath"
	"syscall"

	"github.com/sfn-approvals/sfn-approvals/internal/kumo"
)

// Re-exported from package kumo for the tests' convenience.
const (
	Port   = kumo.Port
	Region = kumo.Region
)

var (
	Endpoint   = kumo.Endpoint
	Env        = kumo.Env
	Config     = kumo.Config
	SentEmails = kumo.SentEmails
	RepoRoot   = kumo.RepoRoot
)

// SentEmail is one email in kumo's outbox.
type SentEmail = kumo.SentEmail

// Main is called from a package's TestMain with its *testing.M (or anything
// that runs the tests): it locks the emulator, starts it (building it first
// if needed), runs the tests and stops it.
func Main(m interface{ Run() int }) {
	os.Exit(run(m))
}

func run(m interface{ Run() int }) int {
	root, err := kumo.RepoRoot()
	if err != nil {
		fmt.Fprintln(os.Stderr, "kumotest:", err)
		return 1
	}
	unlock, err := lock(filepath.Join(root, "bin", ".kumo.lock"))
	if err != nil {
		fmt.Fprintln(os.Stderr, "kumotest:", err)
		return 1
	}
	defer unlock()
	stop, err := kumo.Start(root, io.Discard)
	if err != nil {
		fmt.Fprintln(os.Stderr, "kumotest:", err)
		return 1
	}
	defer stop()
	return m.Run()
}

func lock(path string) (func(), error) {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return nil, err
	}
	f, err := os.OpenFile(path, os.O_CREATE|os.O_RDWR, 0o644)
	if err != nil {
		return nil, err
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX); err != nil {
		f.Close()
		return nil, fmt.Errorf("lock %s: %w", path, err)
	}
	return func() { _ = syscall.Flock(int(f.Fd()), syscall.LOCK_UN); f.Close() }, nil
}
