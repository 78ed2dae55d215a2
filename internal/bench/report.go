package bench

import (
	"fmt"
	"os"
	"runtime"
	"sort"
	"strings"
	"time"
)

// Report is one run's figures and where they were made.
type Report struct {
	Date    time.Time
	Cores   int
	CPU     string // model name from /proc/cpuinfo
	Go      string
	Command string // the exact command line, set by the caller
	opts    Options

	Pipeline *PipelineResult
	Cost     *CostResult
	Steady   *SteadyResult
	Redeemer *RedeemerResult
	Micro    []MicroResult
	// Stalls are the worker phases' gaps of StallGap or more between
	// answers at the proxy.
	Stalls []Stall
}

func newReport(o Options) *Report {
	return &Report{Date: time.Now(), Cores: runtime.NumCPU(), CPU: cpuModel(), Go: runtime.Version(), opts: o}
}

func cpuModel() string {
	b, _ := os.ReadFile("/proc/cpuinfo")
	for _, l := range strings.Split(string(b), "\n") {
		if k, v, ok := strings.Cut(l, ":"); ok && strings.TrimSpace(k) == "model name" {
			return strings.TrimSpace(v)
		}
	}
	return runtime.GOARCH
}

// Rows names every row of the main table, in order; the harness test
// checks the table has each.
var Rows = []string{
	"Worker pipeline efficiency",
	"Worker CPU per email",
	"Worker peak RSS",
	"Worker HandleRequest",
	"Worker CPU per email in process",
	"Enqueue to inbox",
	"Stalls in the worker phases",
	"Redeemer GET at saturation",
	"Redeemer GET p99 at fixed rate",
	"Redeemer POST (decision)",
}

// Markdown renders the report: the main table against the targets, where
// the CPU went, and the micro benchmarks.
func (r *Report) Markdown() string {
	var b strings.Builder
	o := r.opts
	fmt.Fprintf(&b, "`%s` on %s, %d cores (%s), %s.\n\n", r.Command, r.Date.Format("2006-01-02"), r.Cores, r.CPU, r.Go)
	fmt.Fprintf(&b, "Everything runs on this one machine: the kumo emulator, the fault proxy that injects AWS latency, "+
		"the load generators and the service under test share its %d cores. Task tokens in links are %d characters.\n\n", r.Cores, o.TokenBytes)
	b.WriteString("| measure | result | target | |\n|---|---|---|---|\n")
	row := func(name, result, target string, met *bool) {
		v := ""
		if met != nil {
			v = "missed"
			if *met {
				v = "met"
			}
		}
		fmt.Fprintf(&b, "| %s | %s | %s | %s |\n", name, result, target, v)
	}
	if p := r.Pipeline; p != nil {
		ratio, ofBaseline := p.Rate/p.Bound, p.Rate/max(p.Baseline, 1e-9)
		row(fmt.Sprintf("%s (%s requests, C = %d, SES latency L = %s)", Rows[0], num(float64(p.Emails)), p.Concurrency, ms(p.SESLatency)),
			fmt.Sprintf("%s emails/s over %.1f s = **%.2f** of C/L = %s/s (mean SendEmail %s). Baseline in the same run, a bare SendEmail loop at C = %d through the same proxy and emulator: %s emails/s = %.2f of C/L; the worker reaches **%.2f** of it",
				num(p.Rate), p.Window.Seconds(), ratio, num(p.Bound), ms(p.SendMean), p.Concurrency, num(p.Baseline), p.Baseline/p.Bound, ofBaseline),
			"≥ 0.90 of the baseline", ptr(ofBaseline >= 0.90))
	}
	if c := r.Cost; c != nil {
		result := fmt.Sprintf("**%s** (%.2f s CPU for %s emails, start to exit; %s emails/s)", us(c.PerEmail), c.CPU.Seconds(), num(float64(c.Emails)), num(c.Rate))
		var met *bool
		if i := c.Ideal; i != nil {
			ratio := float64(c.PerEmail) / float64(max(i.PerEmail, 1))
			result += fmt.Sprintf(". Baseline in the same run, an ideal consumer at C = %d (ReceiveMessage of 10, SendEmail of a pre-rendered %s-byte email, DeleteMessageBatch) in a process of its own through the same proxy, CPU start to exit: %s per email; the worker spends **%.2f** times it",
				o.Concurrency, num(float64(i.EmailBytes)), us(i.PerEmail), ratio)
			met = ptr(ratio <= 1.15)
		}
		if c.SQSCalls != nil {
			per := func(op string) float64 { return float64(c.SQSCalls[op]) / float64(max(c.Emails, 1)) }
			result += fmt.Sprintf(". The worker's SQS calls per email: ReceiveMessage %.2f, DeleteMessageBatch %.2f, DeleteMessage %.2f, ChangeMessageVisibility %.2f",
				per("ReceiveMessage"), per("DeleteMessageBatch"), per("DeleteMessage"), per("ChangeMessageVisibility"))
			if i := c.Ideal; i != nil {
				result += fmt.Sprintf(" (the ideal consumer's: ReceiveMessage %.2f, DeleteMessageBatch %.2f)",
					float64(i.Receives)/float64(max(i.Emails, 1)), float64(i.Deletes)/float64(max(i.Emails, 1)))
			}
		}
		if i := c.Ideal; i != nil && i.InProcess != nil {
			result += fmt.Sprintf(". The same consumer inside the benchmark process, straight to the emulator (the baseline of earlier tables): %s per email, which the worker spends %.2f times",
				us(i.InProcess.PerEmail), float64(c.PerEmail)/float64(max(i.InProcess.PerEmail, 1)))
		}
		row(fmt.Sprintf("%s (no injected latency, C = %d)", Rows[1], o.Concurrency), result, "≤ 1.15 of the ideal consumer", met)
		rss := fmt.Sprintf("**%.1f MB**", float64(c.MaxRSS)/1e6)
		if c.ExitMaxRSS > c.MaxRSS+1e6 {
			rss += fmt.Sprintf(" (VmHWM before SIGTERM; ru_maxrss at exit says %.1f MB, the benchmark process's own size at the worker's start counted in)", float64(c.ExitMaxRSS)/1e6)
		}
		row(fmt.Sprintf("%s (C = %d)", Rows[2], o.Concurrency), rss, "≤ 40 MB", ptr(c.MaxRSS <= 40e6))
	}
	micro := map[string]MicroResult{}
	for _, m := range r.Micro {
		if m.Package == "internal/bench/micro" {
			micro[m.Name] = m
		}
		if m.Package == "internal/bench/micro" && m.Name == "HandleRequest" {
			row(Rows[3]+" (decode, validate, mint two links, render both parts, build the SendEmail input; micro benchmark below)",
				fmt.Sprintf("**%s**, **%d allocs**", us(time.Duration(m.NsOp)), m.AllocsOp), "≤ 150 µs, ≤ 80 allocs",
				ptr(m.NsOp <= 150e3 && m.AllocsOp <= 80))
		}
	}
	if w, i := micro["WorkerRun"], micro["IdealRun"]; w.CPUNsOp > 0 && i.CPUNsOp > 0 {
		ratio := w.CPUNsOp / i.CPUNsOp
		row(Rows[4]+" (worker.Run and the ideal consumer against the same SQS and SES answered in memory, C = 64; micro benchmarks below)",
			fmt.Sprintf("%s of CPU per email (WorkerRun) vs %s (IdealRun) = **%.2f**, the canned services' own CPU in both",
				us(time.Duration(w.CPUNsOp)), us(time.Duration(i.CPUNsOp)), ratio),
			"≤ 1.15", ptr(ratio <= 1.15))
	}
	if s := r.Steady; s != nil {
		row(fmt.Sprintf("%s at a steady %s requests/s (%s requests, SES latency %s)", Rows[5], num(s.Rate), num(float64(s.Requests)), ms(s.SESLatency)),
			fmt.Sprintf("p50 **%s**, p99 **%s** (max %s)", ms(s.P50), ms(s.P99), ms(s.Max)), "reported", nil)
	}
	if r.Pipeline != nil || r.Cost != nil || r.Steady != nil {
		row(fmt.Sprintf("%s (gaps of %.0f s or more between ReceiveMessage or SendEmail answers at the proxy)", Rows[6], StallGap.Seconds()),
			stallSummary(r.Stalls), "none", ptr(len(r.Stalls) == 0))
	}
	if d := r.Redeemer; d != nil {
		pageOnly := ""
		if d.PageOnly.RPS > 0 {
			pageOnly = fmt.Sprintf("; against a bare handler sending the page with its Content-Type alone (the baseline of earlier tables), %s req/s = %.2f",
				num(d.PageOnly.RPS), d.PageOnlyRatio)
		}
		row(fmt.Sprintf("%s (wrk, 1 thread, %d connections, %d-byte page, %d headers)", Rows[7], d.Connections, d.PageBytes, d.HeaderCount),
			fmt.Sprintf("%s req/s vs bare net/http sending the same headers and page %s req/s = **%.2f** (p99 %s vs %s)%s",
				num(d.Redeemer.RPS), num(d.Bare.RPS), d.Ratio, ms(d.Redeemer.P99), ms(d.Bare.P99), pageOnly),
			"≥ 0.75", ptr(d.Ratio >= 0.75))
		fixed := float64(d.FixedP99) / float64(max(d.BareFixedP99, 1))
		row(fmt.Sprintf("%s of %s requests/s (open loop), over the bare handler's p99 at the same rate", Rows[8], num(d.FixedRate)),
			fmt.Sprintf("**%s** (p50 %s) vs bare handler %s = **%.2f**", ms(d.FixedP99), ms(d.FixedP50), ms(d.BareFixedP99), fixed),
			"≤ 1.5", ptr(fixed <= 1.5 && d.FixedErrors == 0))
		row(fmt.Sprintf("%s, %d at %s/s, Step Functions latency %s", Rows[9], d.Posts, num(d.PostRate), ms(d.SFNLatency)),
			fmt.Sprintf("p50 %s, p99 %s; SendTaskSuccess p50 %s, p99 %s; redeemer's own overhead p50 **%s**, p99 **%s**",
				ms(d.PostP50), ms(d.PostP99), ms(d.SFNP50), ms(d.SFNP99), ms(d.OverheadP50), ms(d.Overhead)), "reported", nil)
	}

	b.WriteString("\nWhere the cores went (CPU time over wall time; 1.00 is one core busy throughout; bench is the load generator, SDK clients and fault proxy in one process):\n\n")
	b.WriteString("| phase | worker | redeemer | kumo | wrk | bench |\n|---|---|---|---|---|---|\n")
	shares := func(name string, m map[string]float64) {
		if m == nil {
			return
		}
		cell := func(k string) string {
			if v, ok := m[k]; ok {
				return fmt.Sprintf("%.2f", v)
			}
			return "–"
		}
		fmt.Fprintf(&b, "| %s | %s | %s | %s | %s | %s |\n", name, cell("worker"), cell("redeemer"), cell("kumo"), cell("wrk"), cell("bench"))
	}
	if r.Pipeline != nil {
		shares("worker pipeline (SES latency)", r.Pipeline.CPU)
	}
	if r.Cost != nil {
		shares("worker cost (no latency)", r.Cost.CPUShares)
	}
	if r.Redeemer != nil {
		shares("GET saturation, bare handler", r.Redeemer.Bare.CPU)
		shares("GET saturation, bare handler (page only)", r.Redeemer.PageOnly.CPU)
		shares("GET saturation, redeemer", r.Redeemer.Redeemer.CPU)
	}

	if len(r.Micro) > 0 {
		b.WriteString("\nMicro benchmarks (`go test -run '^$' -bench . -benchmem`, run first, alone):\n\n")
		b.WriteString("| package | benchmark | ns/op | B/op | allocs/op |\n|---|---|---|---|---|\n")
		m := append([]MicroResult(nil), r.Micro...)
		sort.SliceStable(m, func(i, j int) bool { return m[i].Package < m[j].Package })
		for _, x := range m {
			fmt.Fprintf(&b, "| %s | %s | %s | %s | %d |\n", x.Package, x.Name, num(x.NsOp), num(float64(x.BytesOp)), x.AllocsOp)
		}
	}
	return b.String()
}

func ptr(b bool) *bool { return &b }

// num formats with thousands separators and no decimals (one below 100).
func num(f float64) string {
	if f < 100 {
		return fmt.Sprintf("%.1f", f)
	}
	s := fmt.Sprintf("%.0f", f)
	var out []byte
	for i := range s {
		if i > 0 && (len(s)-i)%3 == 0 {
			out = append(out, ',')
		}
		out = append(out, s[i])
	}
	return string(out)
}

func ms(d time.Duration) string {
	if d < 10*time.Millisecond {
		return fmt.Sprintf("%.2f ms", d.Seconds()*1e3)
	}
	return fmt.Sprintf("%.0f ms", d.Seconds()*1e3)
}

func us(d time.Duration) string { return fmt.Sprintf("%.0f µs", d.Seconds()*1e6) }

// Markers delimit the generated part of BENCHMARKS.md; the rest of the file
// (analysis, history) is left as it is.
const (
	beginMarker = "<!-- begin: approvals bench (generated; do not edit by hand) -->"
	endMarker   = "<!-- end: approvals bench -->"
)

// WriteFile puts the report between the markers in path, or appends it
// with them when they are missing.
func (r *Report) WriteFile(path string) error {
	old, err := os.ReadFile(path)
	if err != nil && !os.IsNotExist(err) {
		return err
	}
	block := beginMarker + "\n" + r.Markdown() + endMarker
	s := string(old)
	i, j := strings.Index(s, beginMarker), strings.Index(s, endMarker)
	if i >= 0 && j > i {
		s = s[:i] + block + s[j+len(endMarker):]
	} else {
		if s != "" && !strings.HasSuffix(s, "\n\n") {
			s = strings.TrimRight(s, "\n") + "\n\n"
		}
		s += block + "\n"
	}
	return os.WriteFile(path, []byte(s), 0o644)
}
