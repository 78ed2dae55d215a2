// Command redeemer serves the signed links in approval emails: it shows a
// confirmation page, and on the button's POST completes the waiting Step
// Functions task. Configuration comes from flags or APPROVALS_* variables.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"github.com/sfn-approvals/sfn-approvals/redeemer"
)

func main() {
	cfg, err := parseConfig(os.Args[1:], os.LookupEnv)
	if errors.Is(err, flag.ErrHelp) {
		return // the usage is printed
	}
	if err != nil {
		fmt.Fprintf(os.Stderr, "redeemer: %v\n", err)
		os.Exit(2)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := redeemer.Run(ctx, cfg); err != nil {
		fmt.Fprintf(os.Stderr, "redeemer: %v\n", err)
		os.Exit(1)
	}
}
