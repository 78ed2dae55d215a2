package bench

import "testing"

func TestParseMicroWithThroughput(t *testing.T) {
	got, err := parseMicro("pkg: github.com/sfn-approvals/sfn-approvals/internal/bench/micro\n" +
		"BenchmarkCalibrateSHA256-2   	   73917	     15396 ns/op	 266.04 MB/s	       0 B/op	       0 allocs/op\n")
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 1 || got[0].Name != "CalibrateSHA256" || got[0].NsOp != 15396 || got[0].Package != "internal/bench/micro" {
		t.Errorf("got %+v", got)
	}
}
