package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"time"

	"github.com/sfn-approvals/sfn-approvals/internal/stack"
)

func dev(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("dev", flag.ContinueOnError)
	fs.SetOutput(stderr)
	inboxAddr := fs.String("inbox", "127.0.0.1:8025", "address of the local inbox page")
	redeemerAddr := fs.String("redeemer", "127.0.0.1:8080", "address of the redeemer (the links in emails point here)")
	binDir := fs.String("bin", "", "directory with the worker and redeemer binaries (default: beside this one)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if err := besideMe(binDir); err != nil {
		return err
	}
	progress := func(s string) { fmt.Fprintf(stdout, "%s  %s\n", time.Now().Format("15:04:05"), s) }

	ln, err := net.Listen("tcp", *inboxAddr)
	if err != nil {
		return fmt.Errorf("inbox: port %s is taken (%v); pass -inbox with another address", *inboxAddr, err)
	}
	progress("starting the emulator, queue, state machine, redeemer and worker")
	s, err := stack.Up(ctx, stack.Options{Dirs: stack.Dirs{BinDir: *binDir}, RedeemerAddr: *redeemerAddr, Progress: progress})
	if err != nil {
		ln.Close()
		return err
	}
	defer func() {
		progress("stopping")
		if err := s.Close(); err != nil {
			fmt.Fprintln(stderr, "stop:", err)
		}
		progress("stopped; nothing left running")
	}()

	srv := &http.Server{Handler: s.Inbox(), ReadHeaderTimeout: 5 * time.Second}
	go func() {
		if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			fmt.Fprintln(stderr, "inbox:", err)
		}
	}()
	defer srv.Close()

	// The first request goes to the approver's email and to the stack's
	// Slack, Teams and webhook channels: any of them can decide it.
	if _, err := s.StartChannelExecution(ctx, stack.ChannelInput(1)); err != nil {
		return err
	}
	progress("execution #1 started")
	fmt.Fprintf(stdout, "\n  Open http://%s : open the email (or the Slack or Teams message), click Approve, confirm, and watch the execution finish.\n", ln.Addr())
	fmt.Fprintln(stdout, "  Start a 2-of-3 approval there to see three approvers' emails side by side; two approvals decide.")
	fmt.Fprintf(stdout, "  Logs: %s. Ctrl-C stops everything.\n\n", s.LogDir)
	<-ctx.Done()
	return nil
}
