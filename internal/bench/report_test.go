package bench

import (
	"strings"
	"testing"
	"time"
)

func TestParseMicroWithThroughput(t *testing.T) {
	got, err := parseMicro("pkg: github.com/sfn-approvals/sfn-approvals/internal/bench/micro\n" +
		"BenchmarkCalibrateSHA256-2   	   73917	     15396 ns/op	 266.04 MB/s	       0 B/op	       0 allocs/op\n")
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 1 || got[0].Name != "CalibrateSHA256" || got[0].NsOp != 15396 || got[0].Package != "internal/bench/micro" {
		t.Errorf("got %+v", got)
	}
	got, err = parseMicro("BenchmarkWorkerRun-2   	    5425	    291361 ns/op	    406128 cpu-ns/op	  161399 B/op	     880 allocs/op\n")
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 1 || got[0].NsOp != 291361 || got[0].CPUNsOp != 406128 || got[0].BytesOp != 161399 || got[0].AllocsOp != 880 {
		t.Errorf("with cpu-ns/op: got %+v", got)
	}
}

// TestMarkdownRatios checks the rows judged against a baseline of the same
// run: the worker's CPU over the ideal consumer's, and the redeemer's p99 at
// a fixed rate over the bare handler's.
func TestMarkdownRatios(t *testing.T) {
	r := &Report{opts: Options{Concurrency: 64, TokenBytes: 1024},
		Cost: &CostResult{Emails: 100, CPU: 300 * time.Millisecond, PerEmail: 3 * time.Millisecond, MaxRSS: 41e6,
			Ideal:    &IdealResult{Emails: 100, EmailBytes: 9000, PerEmail: 2 * time.Millisecond, Receives: 11, Deletes: 10},
			SQSCalls: map[string]int64{"ReceiveMessage": 50, "DeleteMessageBatch": 20, "DeleteMessage": 10}},
		Redeemer: &RedeemerResult{FixedRate: 1000, FixedP99: 6 * time.Millisecond, BareFixedP99: 3 * time.Millisecond, Ratio: 0.8},
		Micro: []MicroResult{{Package: "internal/bench/micro", Name: "HandleRequest", NsOp: 140e3, AllocsOp: 81},
			{Package: "internal/bench/micro", Name: "WorkerRun", NsOp: 200e3, CPUNsOp: 400e3},
			{Package: "internal/bench/micro", Name: "IdealRun", NsOp: 120e3, CPUNsOp: 250e3}},
	}
	md := r.Markdown()
	for _, want := range []string{
		"2000 µs per email; the worker spends **1.50** times it. The worker's SQS calls per email: ReceiveMessage 0.50, DeleteMessageBatch 0.20, " +
			"DeleteMessage 0.10, ChangeMessageVisibility 0.00 (the ideal consumer's: ReceiveMessage 0.11, DeleteMessageBatch 0.10) | ≤ 1.15 of the ideal consumer | missed |",
		"| **41.0 MB** | ≤ 40 MB | missed |",
		"| **140 µs**, **81 allocs** | ≤ 150 µs, ≤ 80 allocs | missed |",
		"vs bare handler 3.00 ms = **2.00** | ≤ 1.5 | missed |",
		"| 400 µs of CPU per email (WorkerRun) vs 250 µs (IdealRun) = **1.60**, the canned services' own CPU in both | ≤ 1.15 | missed |",
		"= **0.80** (p99 0.00 ms vs 0.00 ms) | ≥ 0.75 | met |",
	} {
		if !strings.Contains(md, want) {
			t.Errorf("report lacks %q:\n%s", want, md)
		}
	}
}
