// Package check holds the deployment checks. The CloudFormation template,
// the example state machines, the Prometheus rules and the Grafana dashboard
// are tested against the code they deploy and watch: the variables each
// binary reads, the request decoder, the metrics it registers. It is a
// module of its own so that goformation stays out of the service's go.mod.
//
// The helpers here are shared by the static checks (this package's tests)
// and the live ones against the emulator (package live).
package check

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strings"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"

	"github.com/sfn-approvals/sfn-approvals/metrics"
)

// Root returns the repository root: two levels above this module's go.mod.
func Root() (string, error) {
	out, err := exec.Command("go", "env", "GOMOD").Output()
	if err != nil {
		return "", fmt.Errorf("go env GOMOD: %w", err)
	}
	mod := strings.TrimSpace(string(out))
	if mod == "" || mod == os.DevNull {
		return "", errors.New("not inside the deploy/check module")
	}
	return filepath.Clean(filepath.Join(filepath.Dir(mod), "..", "..")), nil
}

// Build compiles the named commands (./cmd/NAME of the main module) into
// dir and returns their paths by name.
func Build(ctx context.Context, root, dir string, names ...string) (map[string]string, error) {
	args := []string{"build", "-o", dir + string(filepath.Separator)}
	for _, n := range names {
		args = append(args, "./cmd/"+n)
	}
	cmd := exec.CommandContext(ctx, "go", args...)
	cmd.Dir = root
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Run(); err != nil {
		return nil, fmt.Errorf("go build %s: %w\n%s", strings.Join(names, " "), err, stderr.String())
	}
	bins := map[string]string{}
	for _, n := range names {
		bins[n] = filepath.Join(dir, n)
	}
	return bins, nil
}

// envRE matches the variable envflag appends to every flag's usage.
var envRE = regexp.MustCompile(`\[\$([A-Z][A-Z0-9_]*)\]`)

// EnvVars runs bin -h and returns the set of variables its usage names.
func EnvVars(ctx context.Context, bin string) (map[string]bool, error) {
	cmd := exec.CommandContext(ctx, bin, "-h")
	// An empty environment: -h must not depend on configuration.
	cmd.Env = []string{}
	out, _ := cmd.CombinedOutput() // the exit status of -h varies; the text is what counts
	vars := map[string]bool{}
	for _, m := range envRE.FindAllStringSubmatch(string(out), -1) {
		vars[m[1]] = true
	}
	if len(vars) == 0 {
		return nil, fmt.Errorf("%s -h names no variables:\n%s", filepath.Base(bin), out)
	}
	return vars, nil
}

// requiredRE matches envflag's error for a missing required variable.
var requiredRE = regexp.MustCompile(`\b([A-Z][A-Z0-9_]*) \(-[a-z0-9-]+\) is required`)

// RequiredEnvVars starts bin with an empty environment and no flags and
// returns the variables its start-up error says are required.
func RequiredEnvVars(ctx context.Context, bin string) ([]string, error) {
	cmd := exec.CommandContext(ctx, bin)
	cmd.Env = []string{}
	out, err := cmd.CombinedOutput()
	if err == nil {
		return nil, fmt.Errorf("%s started without any configuration", filepath.Base(bin))
	}
	var names []string
	for _, m := range requiredRE.FindAllStringSubmatch(string(out), -1) {
		names = append(names, m[1])
	}
	if len(names) == 0 {
		return nil, fmt.Errorf("%s failed without naming a required variable:\n%s", filepath.Base(bin), out)
	}
	sort.Strings(names)
	return names, nil
}

// Metric is one metric family the services export.
type Metric struct {
	Name string
	Type dto.MetricType
	// Labels maps each label name to the values created up front (empty
	// when the service creates them as they occur, like status codes).
	Labels map[string]map[string]bool
}

// Metrics returns every metric family a worker and a redeemer export,
// including the Go and process collectors, by name. Histograms are listed
// under their family name; SeriesNames expands them.
func Metrics() (map[string]Metric, error) {
	reg := &capture{Registry: metrics.NewRegistry()}
	metrics.NewWorker(reg)
	metrics.NewRedeemer(reg)
	out, err := gather(reg.Registry)
	if err != nil {
		return nil, err
	}
	// Families without series yet (vectors whose labels are created as
	// they occur) are missing from Gather; their descriptors still give
	// their names and label names.
	for _, c := range reg.collectors {
		descs := make(chan *prometheus.Desc, 64)
		go func() {
			c.Describe(descs)
			close(descs)
		}()
		for d := range descs {
			m := descRE.FindStringSubmatch(d.String())
			if m == nil {
				return nil, fmt.Errorf("cannot read descriptor %s", d)
			}
			mf, ok := out[m[1]]
			if !ok {
				mf = Metric{Name: m[1], Type: collectorType(c), Labels: map[string]map[string]bool{}}
				out[m[1]] = mf
			}
			for _, l := range strings.Split(m[2], ",") {
				if l = strings.TrimSpace(l); l != "" && mf.Labels[l] == nil {
					mf.Labels[l] = map[string]bool{}
				}
			}
		}
	}
	return out, nil
}

func collectorType(c prometheus.Collector) dto.MetricType {
	switch c.(type) {
	case *prometheus.HistogramVec, prometheus.Histogram:
		return dto.MetricType_HISTOGRAM
	case *prometheus.SummaryVec, prometheus.Summary:
		return dto.MetricType_SUMMARY
	case *prometheus.GaugeVec, prometheus.Gauge:
		return dto.MetricType_GAUGE
	case *prometheus.CounterVec, prometheus.Counter:
		return dto.MetricType_COUNTER
	}
	return dto.MetricType_UNTYPED
}

// descRE reads a descriptor's name and variable labels from its String().
var descRE = regexp.MustCompile(`fqName: "([^"]+)".*variableLabels: \{([^}]*)\}`)

// capture records what is registered, to describe it afterwards.
type capture struct {
	*prometheus.Registry
	collectors []prometheus.Collector
}

func (c *capture) Register(col prometheus.Collector) error {
	c.collectors = append(c.collectors, col)
	return c.Registry.Register(col)
}

func (c *capture) MustRegister(cols ...prometheus.Collector) {
	for _, col := range cols {
		if err := c.Register(col); err != nil {
			panic(err)
		}
	}
}

func gather(g prometheus.Gatherer) (map[string]Metric, error) {
	mfs, err := g.Gather()
	if err != nil {
		return nil, fmt.Errorf("gather metrics: %w", err)
	}
	out := map[string]Metric{}
	for _, mf := range mfs {
		m := Metric{Name: mf.GetName(), Type: mf.GetType(), Labels: map[string]map[string]bool{}}
		for _, s := range mf.GetMetric() {
			for _, lp := range s.GetLabel() {
				if m.Labels[lp.GetName()] == nil {
					m.Labels[lp.GetName()] = map[string]bool{}
				}
				m.Labels[lp.GetName()][lp.GetValue()] = true
			}
		}
		out[m.Name] = m
	}
	return out, nil
}

// SeriesNames maps every name a query may use (counter and gauge names,
// and a histogram's _bucket, _sum and _count) to its family.
func SeriesNames(ms map[string]Metric) map[string]Metric {
	out := map[string]Metric{}
	for name, m := range ms {
		switch m.Type {
		case dto.MetricType_HISTOGRAM:
			for _, suffix := range []string{"_bucket", "_sum", "_count"} {
				out[name+suffix] = m
			}
		case dto.MetricType_SUMMARY:
			for _, suffix := range []string{"", "_sum", "_count"} {
				out[name+suffix] = m
			}
		default:
			out[name] = m
		}
	}
	return out
}

// Sorted returns the keys of a set, sorted.
func Sorted[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}
