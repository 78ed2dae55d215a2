// Package bench measures the worker and the redeemer as operators run them:
// the real binaries against the kumo emulator, with AWS latency injected by
// internal/faultproxy, side by side with the limit each figure is judged
// against (Little's bound C/L for the worker, a bare net/http handler for
// the redeemer) in the same run on the same machine. `approvals-dev bench`
// runs it and writes the table into BENCHMARKS.md.
//
// Each phase gets a fresh emulator, so one phase's leftovers (kumo keeps
// every sent email in memory) do not slow the next.
package bench

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/sfn"
	"github.com/aws/aws-sdk-go-v2/service/sqs"

	"github.com/sfn-approvals/sfn-approvals/internal/faultproxy"
	"github.com/sfn-approvals/sfn-approvals/internal/kumo"
	"github.com/sfn-approvals/sfn-approvals/internal/stack"
	"github.com/sfn-approvals/sfn-approvals/link"
)

// Options size the run. Zero values take the defaults noted, which are the
// figures the issue asks for; tests shrink them.
type Options struct {
	stack.Dirs // LogDir: default Root/bin/logs

	Requests    int           // worker pipeline and cost phases (10,000)
	Concurrency int           // worker APPROVALS_CONCURRENCY (64)
	SESLatency  time.Duration // injected into SendEmail (50 ms)
	// WorkerEnv is added to the worker's environment (KEY=VALUE), such as
	// GOGC=150 to weigh the collector's CPU against memory.
	WorkerEnv   []string
	SFNLatency  time.Duration // injected into Step Functions calls (20 ms)
	SteadyRate  float64       // enqueue-to-inbox phase, requests/s (200)
	SteadyFor   time.Duration // its length (20 s)
	GetFor      time.Duration // each wrk saturation run (10 s)
	GetRate     float64       // fixed-rate GET phase, requests/s (1,000)
	GetRateFor  time.Duration // its length (10 s)
	Connections int           // wrk connections (64)
	Posts       int           // POST phase, decisions (300)
	PostRate    float64       // their rate, requests/s (50)
	TokenBytes  int           // length of the task tokens in links (1,024)

	// MicroPackages are run with `go test -bench` first ("" skips them);
	// MicroBenchtime is passed as -benchtime (default 1s).
	MicroPackages  []string
	MicroBenchtime string

	// Phases limits the run to these phases (pipeline, cost, steady,
	// redeemer); empty runs all. For profiling one phase.
	Phases []string

	// ExternalKumo uses an emulator already running (a test's) for every
	// phase instead of a fresh one each, and takes no lock.
	ExternalKumo bool
	// Progress receives the live progress line ("\r..."); nil discards it.
	Progress io.Writer
}

// defaults fills the zero fields; the directories are Prepare's.
func (o *Options) defaults() {
	o.Requests = cmp.Or(o.Requests, 10000)
	o.Concurrency = cmp.Or(o.Concurrency, 64)
	o.SESLatency = cmp.Or(o.SESLatency, 50*time.Millisecond)
	o.SFNLatency = cmp.Or(o.SFNLatency, 20*time.Millisecond)
	o.SteadyRate = cmp.Or(o.SteadyRate, 200)
	o.SteadyFor = cmp.Or(o.SteadyFor, 20*time.Second)
	o.GetFor = cmp.Or(o.GetFor, 10*time.Second)
	o.GetRate = cmp.Or(o.GetRate, 1000)
	o.GetRateFor = cmp.Or(o.GetRateFor, 10*time.Second)
	o.Connections = cmp.Or(o.Connections, 64)
	o.Posts = cmp.Or(o.Posts, 300)
	o.PostRate = cmp.Or(o.PostRate, 50)
	o.TokenBytes = cmp.Or(o.TokenBytes, 1024)
	o.MicroBenchtime = cmp.Or(o.MicroBenchtime, "1s")
	if o.Progress == nil {
		o.Progress = io.Discard
	}
}

// run is one benchmark run's shared state.
type run struct {
	o        Options
	proxy    *faultproxy.Proxy
	proxyURL string
	keys     string
	keyring  *link.Keyring
	sqs      *sqs.Client
	sfn      *sfn.Client
	kumoPID  int
	report   *Report
	seq      int
	phase    string // the phase running
	stalls   stallWatch
}

// Run measures everything and returns the report. It needs the worker and
// redeemer binaries in BinDir, the kumo binary, and wrk on PATH.
func Run(ctx context.Context, o Options) (*Report, error) {
	o.defaults()
	if err := o.Prepare(""); err != nil {
		return nil, err
	}
	wrk, err := wrkPath()
	if err != nil {
		return nil, err
	}
	r := &run{o: o, report: newReport(o)}

	// Micro benchmarks first: they run alone, before anything else loads
	// the machine.
	if len(o.MicroPackages) > 0 {
		fmt.Fprintf(o.Progress, "micro benchmarks: go test -bench %s\n", strings.Join(o.MicroPackages, " "))
		if r.report.Micro, err = runMicro(ctx, o.Root, o.MicroPackages, o.MicroBenchtime); err != nil {
			return nil, err
		}
	}

	unlock, err := kumo.LockUnless(o.ExternalKumo)
	if err != nil {
		return nil, err
	}
	defer unlock()
	r.keys, err = link.GenerateKey()
	if err != nil {
		return nil, err
	}
	if r.keyring, err = link.ParseKeyring(r.keys); err != nil {
		return nil, err
	}
	r.proxy, err = faultproxy.New(kumo.Endpoint, 1)
	if err != nil {
		return nil, err
	}
	var stopProxy func()
	if r.proxyURL, stopProxy, err = faultproxy.Listen(r.stalls.handler(r.proxy)); err != nil {
		return nil, err
	}
	defer stopProxy()
	cfg := kumo.Config()
	cfg.HTTPClient = servicesHTTPClient()
	r.sqs, r.sfn = sqs.NewFromConfig(cfg), sfn.NewFromConfig(cfg)

	phases := []struct {
		name string
		fn   func(context.Context) error
	}{
		{"pipeline", r.pipeline},
		{"cost", r.cost},
		{"steady", r.steady},
		{"redeemer", func(ctx context.Context) error { return r.redeemer(ctx, wrk) }},
	}
	for _, p := range phases {
		if len(o.Phases) > 0 && !slices.Contains(o.Phases, p.name) {
			continue
		}
		if err := r.withKumo(ctx, p.name, p.fn); err != nil {
			return nil, fmt.Errorf("%s: %w", p.name, err)
		}
	}
	return r.report, nil
}

// withKumo runs fn with a fresh emulator (or the external one) and no
// injected faults.
func (r *run) withKumo(ctx context.Context, name string, fn func(context.Context) error) error {
	for _, s := range faultproxy.Services {
		r.proxy.Set(s, faultproxy.Fault{})
	}
	r.proxy.ResetOps()
	if !r.o.ExternalKumo {
		lf, err := os.Create(filepath.Join(r.o.LogDir, "bench-kumo.log"))
		if err != nil {
			return err
		}
		defer lf.Close()
		stop, err := kumo.Start(r.o.Root, lf)
		if err != nil {
			return err
		}
		defer stop()
	}
	r.kumoPID = childPID("kumo")
	r.phase = name
	fmt.Fprintf(r.o.Progress, "%s\n", name)
	return fn(ctx)
}

// env is what every service gets: kumo's region and credentials, its
// endpoint replaced by the fault proxy's.
func (r *run) env(extra ...string) []string {
	env := append(kumo.Env(), "AWS_ENDPOINT_URL="+r.proxyURL, "APPROVALS_SIGNING_KEYS="+r.keys)
	return append(env, extra...)
}

func (r *run) logPath(name string) string {
	r.seq++
	return filepath.Join(r.o.LogDir, fmt.Sprintf("bench-%d-%s.log", r.seq, name))
}

// progress rewrites the live line.
func (r *run) progress(format string, args ...any) {
	fmt.Fprintf(r.o.Progress, "\r\033[K  "+format, args...)
}

func (r *run) progressDone() { fmt.Fprintln(r.o.Progress) }

// token returns a task-token-like string of the configured length, distinct
// per n; kumo's own tokens are short UUIDs, real ones run to hundreds of
// characters, and the link's size (and so the work per email) follows it.
func (r *run) token(n int) string {
	const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"
	b := make([]byte, r.o.TokenBytes)
	x := uint64(n)*0x9e3779b97f4a7c15 + 1
	for i := range b {
		x ^= x << 13
		x ^= x >> 7
		x ^= x << 17
		b[i] = alphabet[x%64]
	}
	return string(b)
}

var errIncomplete = errors.New("incomplete")
