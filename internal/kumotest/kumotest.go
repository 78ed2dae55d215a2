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
	"strings"

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
	if fuzzWorker() {
		// A fuzzing worker process runs fuzz targets only: the process
		// that started it holds the emulator (and its lock) already.
		return m.Run()
	}
	root, err := kumo.RepoRoot()
	if err != nil {
		fmt.Fprintln(os.Stderr, "kumotest:", err)
		return 1
	}
	unlock, err := kumo.Lock()
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

// fuzzWorker reports whether this test binary was started by `go test
// -fuzz` to run inputs (flags are not parsed yet when TestMain runs).
func fuzzWorker() bool {
	for _, a := range os.Args[1:] {
		if a == "-test.fuzzworker" || strings.HasPrefix(a, "-test.fuzzworker=") {
			return true
		}
	}
	return false
}
