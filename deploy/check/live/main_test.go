// Package live runs the deployment's pieces against the kumo emulator: the
// example state machine through each of its paths, and the worker and
// redeemer binaries, whose /metrics promtool lints.
package live

import (
	"fmt"
	"os"
	"testing"

	"github.com/sfn-approvals/sfn-approvals/deploy/check"
	"github.com/sfn-approvals/sfn-approvals/internal/kumotest"
)

var root string

// kumotest finds the emulator, and the lock every package that uses it
// shares, from the main module: run it from there.
func TestMain(m *testing.M) {
	var err error
	if root, err = check.Root(); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	if err := os.Chdir(root); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	kumotest.Main(m)
}
