package bench

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/sfn-approvals/sfn-approvals/internal/kumotest"
	"github.com/sfn-approvals/sfn-approvals/internal/stack"
)

var binDir string

type runner struct{ m *testing.M }

// Run builds the service binaries once for the package's tests.
func (r runner) Run() int {
	dir, err := os.MkdirTemp("", "approvals-bench-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer os.RemoveAll(dir)
	if err := stack.BuildServices("", dir); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	binDir = dir
	return r.m.Run()
}

func TestMain(m *testing.M) { kumotest.Main(runner{m}) }

// TestRunTiny runs every phase with tiny numbers against the test's
// emulator and checks that the table has every row and the file gets it;
// it asserts nothing about speed.
func TestRunTiny(t *testing.T) {
	if _, err := wrkPath(); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	var progress strings.Builder
	rep, err := Run(ctx, Options{
		Dirs: stack.Dirs{BinDir: binDir, LogDir: t.TempDir()}, ExternalKumo: true,
		Requests: 40, Concurrency: 8, SESLatency: 5 * time.Millisecond, SFNLatency: 5 * time.Millisecond,
		SteadyRate: 50, SteadyFor: 400 * time.Millisecond, GetFor: time.Second, GetRate: 200, GetRateFor: 250 * time.Millisecond,
		Connections: 4, Posts: 5, PostRate: 50, TokenBytes: 200,
		MicroPackages: []string{"./link/", "./internal/bench/micro/"}, MicroBenchtime: "5x", Progress: &progress,
	})
	if err != nil {
		t.Fatalf("Run: %v\nprogress:\n%s", err, progress.String())
	}
	rep.Command = "approvals bench -requests 40"
	md := rep.Markdown()
	for _, row := range Rows {
		if !strings.Contains(md, "| "+row) {
			t.Errorf("table has no row %q:\n%s", row, md)
		}
	}
	for _, want := range []string{"| link | Mint |", "| link | Open |", "`approvals bench -requests 40`", "| worker pipeline (SES latency) |"} {
		if !strings.Contains(md, want) {
			t.Errorf("report lacks %q:\n%s", want, md)
		}
	}
	if rep.Pipeline.Rate <= 0 || rep.Cost.PerEmail <= 0 || rep.Cost.MaxRSS <= 0 || rep.Cost.Ideal == nil || rep.Cost.Ideal.PerEmail <= 0 ||
		rep.Cost.Ideal.Emails != 40 || rep.Cost.Ideal.EmailBytes <= 0 || rep.Steady.P99 <= 0 ||
		rep.Redeemer.Ratio <= 0 || rep.Redeemer.BareFixedP99 <= 0 || rep.Redeemer.PostP99 < rep.Redeemer.SFNP50 {
		t.Errorf("figures missing or impossible: %+v %+v %+v %+v", rep.Pipeline, rep.Cost, rep.Steady, rep.Redeemer)
	}
	if !strings.Contains(progress.String(), "pipeline: 40/40 emails sent") {
		t.Errorf("progress line never showed the pipeline done:\n%s", progress.String())
	}

	// Written between markers, replacing the previous run's table and
	// keeping the rest of the file.
	path := filepath.Join(t.TempDir(), "BENCHMARKS.md")
	if err := os.WriteFile(path, []byte("# Benchmarks\n\nhand-written intro\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	for range 2 {
		if err := rep.WriteFile(path); err != nil {
			t.Fatal(err)
		}
	}
	b, _ := os.ReadFile(path)
	got := string(b)
	if !strings.HasPrefix(got, "# Benchmarks\n\nhand-written intro\n\n"+beginMarker) || strings.Count(got, beginMarker) != 1 || !strings.Contains(got, Rows[0]) {
		t.Errorf("BENCHMARKS.md after two writes:\n%s", got)
	}
}

func TestParseWrk(t *testing.T) {
	out := `Running 10s test @ http://127.0.0.1:1/a/x
  1 threads and 64 connections
  Thread Stats   Avg      Stdev     Max   +/- Stdev
    Latency     3.10ms    1.20ms  30.00ms   90.00%
    Req/Sec    20.50k     1.00k   22.00k    70.00%
  Latency Distribution
     50%    2.90ms
     75%    3.50ms
     90%    4.10ms
     99%  812.00us
  204000 requests in 10.00s, 1.20GB read
Requests/sec:  20400.12
Transfer/sec:    122.00MB
`
	got, err := parseWrk(out)
	if err != nil {
		t.Fatal(err)
	}
	if got.RPS != 20400.12 || got.P50 != 2900*time.Microsecond || got.P99 != 812*time.Microsecond {
		t.Errorf("parseWrk = %+v", got)
	}
	if _, err := parseWrk(strings.Replace(out, "Requests/sec", "  Non-2xx or 3xx responses: 12\nRequests/sec", 1)); err == nil {
		t.Error("non-2xx answers: no error")
	}
}

func TestPercentile(t *testing.T) {
	var ds []time.Duration
	for i := 100; i >= 1; i-- {
		ds = append(ds, time.Duration(i))
	}
	for _, c := range []struct {
		q    float64
		want time.Duration
	}{{0.5, 50}, {0.99, 99}, {1, 100}, {0, 1}} {
		if got := percentile(ds, c.q); got != c.want {
			t.Errorf("percentile(%v) = %v, want %v", c.q, got, c.want)
		}
	}
}
