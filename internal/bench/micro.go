package bench

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
)

// MicroResult is one `go test -bench` line.
type MicroResult struct {
	Package, Name     string
	NsOp              float64
	BytesOp, AllocsOp int64
	// CPUNsOp is the cpu-ns/op a benchmark reports of itself (0: none):
	// CPU time per op, both cores counted, where ns/op is wall time.
	CPUNsOp float64
}

// runMicro runs the Go benchmarks of those pkgs that have any (a package
// without benchmarks would still run its TestMain, which may start the
// emulator) and parses their results.
func runMicro(ctx context.Context, root string, pkgs []string, benchtime string) ([]MicroResult, error) {
	var with []string
	for _, p := range pkgs {
		if hasBenchmarks(filepath.Join(root, p)) {
			with = append(with, p)
		}
	}
	if len(with) == 0 {
		return nil, nil
	}
	args := append([]string{"test", "-run", "^$", "-bench", ".", "-benchmem", "-benchtime", benchtime}, with...)
	cmd := exec.CommandContext(ctx, "go", args...)
	cmd.Dir = root
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Run(); err != nil {
		return nil, fmt.Errorf("go %s: %w\n%s", strings.Join(args, " "), err, out.String())
	}
	return parseMicro(out.String())
}

var benchFunc = regexp.MustCompile(`(?m)^func Benchmark`)

func hasBenchmarks(dir string) bool {
	files, _ := filepath.Glob(filepath.Join(dir, "*_test.go"))
	for _, f := range files {
		if b, err := os.ReadFile(f); err == nil && benchFunc.Match(b) {
			return true
		}
	}
	return false
}

// benchLine matches "BenchmarkMint-2  28921  41431 ns/op  13840 B/op  8 allocs/op",
// with optional "266.04 MB/s" and "406128 cpu-ns/op" after ns/op.
var benchLine = regexp.MustCompile(`^Benchmark(\S+?)(?:-\d+)?\s+\d+\s+([\d.]+) ns/op(?:\s+[\d.]+ MB/s)?(?:\s+([\d.]+) cpu-ns/op)?\s+(\d+) B/op\s+(\d+) allocs/op`)

func parseMicro(s string) ([]MicroResult, error) {
	var out []MicroResult
	pkg := ""
	sc := bufio.NewScanner(strings.NewReader(s))
	for sc.Scan() {
		line := sc.Text()
		if p, ok := strings.CutPrefix(line, "pkg: "); ok {
			pkg = strings.TrimPrefix(p, "github.com/sfn-approvals/sfn-approvals/")
			continue
		}
		m := benchLine.FindStringSubmatch(line)
		if m == nil {
			continue
		}
		ns, _ := strconv.ParseFloat(m[2], 64)
		cpu, _ := strconv.ParseFloat(m[3], 64)
		b, _ := strconv.ParseInt(m[4], 10, 64)
		a, _ := strconv.ParseInt(m[5], 10, 64)
		out = append(out, MicroResult{Package: pkg, Name: m[1], NsOp: ns, BytesOp: b, AllocsOp: a, CPUNsOp: cpu})
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("no benchmark results in go test output:\n%s", s)
	}
	return out, nil
}
