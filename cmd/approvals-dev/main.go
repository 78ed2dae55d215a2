// Command approvals-dev is the development harness: the local stack with an
// inbox page, the benchmarks and the soak, all on the kumo emulator. It is
// not part of the image; the operator's tool is approvals.
package main

import (
	"context"
	"os"
	"os/signal"
	"path/filepath"
	"syscall"

	"github.com/sfn-approvals/sfn-approvals/internal/cli"
)

var commands = []cli.Command{
	{Name: "dev", Summary: "run the whole product locally on emulated AWS, with an inbox page (make dev)", Run: dev},
	{Name: "bench", Summary: "measure worker and redeemer throughput, latency and cost on emulated AWS (make bench)", Run: runBench},
	{Name: "soak", Summary: "run executions through faults, worker and redeemer kills, duplicate deliveries and 2-of-3 requests, and account for every one (make soak)", Run: runSoak},
}

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := cli.Run(ctx, "approvals-dev", commands, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

// besideMe fills an empty *dir with the directory of this executable, where
// `make build` puts the worker and redeemer binaries too.
func besideMe(dir *string) error {
	if *dir != "" {
		return nil
	}
	exe, err := os.Executable()
	if err != nil {
		return err
	}
	*dir = filepath.Dir(exe)
	return nil
}
