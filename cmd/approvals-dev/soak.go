package main

import (
	"context"
	"flag"
	"io"

	"github.com/sfn-approvals/sfn-approvals/internal/soak"
)

func runSoak(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("soak", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var o soak.Options
	fs.IntVar(&o.Executions, "executions", 2000, "executions to start")
	fs.IntVar(&o.Kills, "kills", 3, "times the worker is killed with SIGKILL and restarted (-1: none)")
	fs.IntVar(&o.RedeemerKills, "redeemer-kills", 2, "times the redeemer is killed with SIGKILL and restarted (-1: none)")
	fs.Float64Var(&o.QuorumRate, "quorum", 0.2, "share of valid requests needing 2 of 3 approvals, whose approvers click at once")
	fs.Float64Var(&o.StartRate, "rate", 10, "executions started per second")
	fs.Float64Var(&o.InvalidRate, "invalid", 0.02, "share of deliberately invalid requests, which must fail fast")
	fs.IntVar(&o.Concurrency, "concurrency", 16, "worker concurrency")
	fs.DurationVar(&o.Visibility, "visibility", 10e9, "visibility timeout of the queue and the worker (at least 10s)")
	fs.IntVar(&o.MaxReceives, "max-receives", 20, "receives before a message moves to the DLQ")
	fs.DurationVar(&o.Settle, "settle", 600e9, "longest wait, after the last start, for everything to end")
	fs.BoolVar(&o.NoFaults, "no-faults", false, "inject no AWS faults (kills and duplicates still happen)")
	fs.StringVar(&o.BinDir, "bin", "", "directory with the worker and redeemer binaries (default: beside this one)")
	write := fs.String("write", "", "also write the ledger into this file (RELIABILITY.md), between its soak-ledger markers")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if err := besideMe(&o.BinDir); err != nil {
		return err
	}
	o.Progress = stderr
	l, err := soak.Run(ctx, o)
	if err != nil {
		return err
	}
	l.Command = commandLine()
	if err := publish(stdout, l, *write); err != nil {
		return err
	}
	return l.Err()
}
