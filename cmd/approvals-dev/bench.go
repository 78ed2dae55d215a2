package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"strings"

	"github.com/sfn-approvals/sfn-approvals/internal/bench"
)

func runBench(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("bench", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var o bench.Options
	fs.IntVar(&o.Requests, "requests", 10000, "requests in the worker pipeline and cost phases")
	fs.IntVar(&o.Concurrency, "concurrency", 64, "worker concurrency C")
	fs.DurationVar(&o.SESLatency, "ses-latency", 50e6, "latency L injected into SendEmail")
	fs.DurationVar(&o.SFNLatency, "sfn-latency", 20e6, "latency injected into Step Functions calls (POST phase)")
	fs.Float64Var(&o.SteadyRate, "steady-rate", 200, "requests/s of the enqueue-to-inbox phase")
	fs.DurationVar(&o.SteadyFor, "steady-for", 20e9, "length of the enqueue-to-inbox phase")
	fs.DurationVar(&o.GetFor, "get-for", 10e9, "length of each wrk saturation run")
	fs.Float64Var(&o.GetRate, "get-rate", 1000, "requests/s of the fixed-rate GET phase")
	fs.DurationVar(&o.GetRateFor, "get-rate-for", 10e9, "length of the fixed-rate GET phase")
	fs.IntVar(&o.Connections, "connections", 64, "wrk connections")
	fs.IntVar(&o.Posts, "posts", 300, "decisions POSTed in the POST phase")
	fs.Float64Var(&o.PostRate, "post-rate", 50, "decisions/s in the POST phase")
	fs.IntVar(&o.TokenBytes, "token-bytes", 1024, "length of the task tokens in links")
	micro := fs.String("micro", "./link/,./worker/,./redeemer/,./internal/bench/micro/", "comma-separated packages whose Go benchmarks run first (empty: none)")
	fs.StringVar(&o.MicroBenchtime, "benchtime", "1s", "-benchtime of the micro benchmarks")
	fs.StringVar(&o.BinDir, "bin", "", "directory with the worker and redeemer binaries (default: beside this one)")
	workerEnv := fs.String("worker-env", "", "comma-separated KEY=VALUE added to the worker's environment (GOGC=150, say)")
	phases := fs.String("phases", "", "comma-separated phases to run (pipeline,cost,steady,redeemer; default all)")
	write := fs.String("write", "", "also write the table into this file (BENCHMARKS.md), between its generated-section markers")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *phases != "" {
		o.Phases = strings.Split(*phases, ",")
	}
	if *workerEnv != "" {
		for _, kv := range strings.Split(*workerEnv, ",") {
			if k, _, ok := strings.Cut(kv, "="); !ok || k == "" {
				return fmt.Errorf("-worker-env: %q is not KEY=VALUE", kv)
			}
			o.WorkerEnv = append(o.WorkerEnv, kv)
		}
	}
	if *micro != "" {
		o.MicroPackages = strings.Split(*micro, ",")
	}
	if err := besideMe(&o.BinDir); err != nil {
		return err
	}
	o.Progress = stderr
	rep, err := bench.Run(ctx, o)
	if err != nil {
		return err
	}
	rep.Command = commandLine()
	return publish(stdout, rep, *write)
}
