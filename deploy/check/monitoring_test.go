package check

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"gopkg.in/yaml.v3"
)

// Series that come from outside package metrics, and why.
var externalSeries = map[string]string{
	"up": "Prometheus, per scrape target",
	// SQS CloudWatch metrics through YACE (deploy/prometheus/yace.yml).
	"aws_sqs_approximate_number_of_messages_visible_maximum": "CloudWatch AWS/SQS via YACE",
	"aws_sqs_approximate_age_of_oldest_message_maximum":      "CloudWatch AWS/SQS via YACE",
}

// Labels every scraped series has, added by Prometheus.
var targetLabels = map[string]bool{"job": true, "instance": true}

func promtool(t *testing.T, dir string, args ...string) string {
	t.Helper()
	path, err := exec.LookPath("promtool")
	if err != nil {
		t.Fatal("promtool not found: run scripts/apt-install.sh promtool prometheus (make test-deploy does)")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, path, args...)
	cmd.Dir = dir
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("promtool %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return string(out)
}

func promDir(t *testing.T) string { return filepath.Join(root(t), "deploy", "prometheus") }

func TestPromtoolCheckRules(t *testing.T) {
	promtool(t, promDir(t), "check", "rules", "rules.yml")
}

func TestPromtoolTestRules(t *testing.T) {
	promtool(t, promDir(t), "test", "rules", "rules_test.yml")
}

func TestPromtoolCheckScrapeConfig(t *testing.T) {
	promtool(t, promDir(t), "check", "config", "scrape.yml")
}

type ruleFile struct {
	Groups []struct {
		Name  string
		Rules []struct {
			Record, Alert, Expr string
			Labels              map[string]string
			Annotations         map[string]string
		}
	}
}

func readRules(t *testing.T) ruleFile {
	t.Helper()
	var rf ruleFile
	readYAML(t, filepath.Join(promDir(t), "rules.yml"), &rf)
	return rf
}

func readYAML(t *testing.T, path string, v any) {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := yaml.Unmarshal(b, v); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
}

// Each alert has a unit test in which it fires and one in which it must
// stay silent.
func TestEveryAlertIsTested(t *testing.T) {
	var tf struct {
		Tests []struct {
			AlertRuleTest []struct {
				Alertname string `yaml:"alertname"`
				ExpAlerts []any  `yaml:"exp_alerts"`
			} `yaml:"alert_rule_test"`
		}
	}
	readYAML(t, filepath.Join(promDir(t), "rules_test.yml"), &tf)
	fires, silent := map[string]bool{}, map[string]bool{}
	for _, tc := range tf.Tests {
		for _, a := range tc.AlertRuleTest {
			if len(a.ExpAlerts) > 0 {
				fires[a.Alertname] = true
			} else {
				silent[a.Alertname] = true
			}
		}
	}
	n := 0
	for _, g := range readRules(t).Groups {
		for _, r := range g.Rules {
			if r.Alert == "" {
				continue
			}
			n++
			if !fires[r.Alert] {
				t.Errorf("no test in which %s fires", r.Alert)
			}
			if !silent[r.Alert] {
				t.Errorf("no test in which %s stays silent", r.Alert)
			}
			if r.Labels["severity"] == "" || r.Annotations["summary"] == "" || r.Annotations["description"] == "" {
				t.Errorf("%s needs a severity, a summary and a description", r.Alert)
			}
		}
	}
	if n == 0 {
		t.Fatal("no alerts in rules.yml")
	}
}

// checkExpr reports every series an expression reads that the services do
// not export, and every label or label value they never set.
func checkExpr(t *testing.T, where, expr string, known map[string]Metric, records map[string]bool, used map[string]bool) {
	t.Helper()
	sels := Selectors(expr)
	if len(sels) == 0 {
		t.Errorf("%s: no series in %q", where, expr)
	}
	for _, s := range sels {
		if s.Name == "" {
			t.Errorf("%s: selector without a metric name in %q", where, expr)
			continue
		}
		if strings.Contains(s.Name, ":") {
			if !records[s.Name] {
				t.Errorf("%s: %s is not a recording rule in rules.yml", where, s.Name)
			}
			continue
		}
		if _, ok := externalSeries[s.Name]; ok {
			continue
		}
		m, ok := known[s.Name]
		if !ok {
			t.Errorf("%s: %s is not a metric the services export", where, s.Name)
			continue
		}
		used[m.Name] = true
		for _, mt := range s.Matchers {
			if targetLabels[mt.Label] || mt.Label == "le" && strings.HasSuffix(s.Name, "_bucket") {
				continue
			}
			values, ok := m.Labels[mt.Label]
			if !ok {
				t.Errorf("%s: %s has no label %q (it has %v)", where, s.Name, mt.Label, Sorted(m.Labels))
				continue
			}
			if len(values) == 0 {
				continue // values appear as they occur (status codes)
			}
			var want []string
			switch {
			case mt.Op == "=" || mt.Op == "!=":
				want = []string{mt.Value}
			case regexp.MustCompile(`^[A-Za-z0-9_.-]+(\|[A-Za-z0-9_.-]+)*$`).MatchString(mt.Value):
				want = strings.Split(mt.Value, "|")
			}
			for _, v := range want {
				if !values[v] {
					t.Errorf("%s: %s{%s} never takes the value %q (it takes %v)", where, s.Name, mt.Label, v, Sorted(values))
				}
			}
		}
	}
}

func knownSeries(t *testing.T) (map[string]Metric, map[string]Metric) {
	t.Helper()
	ms, err := Metrics()
	if err != nil {
		t.Fatal(err)
	}
	return ms, SeriesNames(ms)
}

func recordingRules(rf ruleFile) map[string]bool {
	out := map[string]bool{}
	for _, g := range rf.Groups {
		for _, r := range g.Rules {
			if r.Record != "" {
				out[r.Record] = true
			}
		}
	}
	return out
}

// checkRules checks every rule's expression with checkExpr and returns the
// recording rules; used gains the metrics the rules read.
func checkRules(t *testing.T, known map[string]Metric, used map[string]bool) map[string]bool {
	t.Helper()
	rf := readRules(t)
	records := recordingRules(rf)
	for _, g := range rf.Groups {
		for _, r := range g.Rules {
			checkExpr(t, "rules.yml "+r.Record+r.Alert, r.Expr, known, records, used)
		}
	}
	return records
}

func TestRulesUseExportedMetrics(t *testing.T) {
	_, known := knownSeries(t)
	checkRules(t, known, map[string]bool{})
}

type dashboardPanel struct {
	ID         int
	Type       string
	Title      string
	Datasource *struct{ UID string }
	Targets    []struct{ Expr string }
	Panels     []dashboardPanel
}

func readDashboard(t *testing.T) (map[string]any, []dashboardPanel) {
	t.Helper()
	var raw map[string]any
	b := readJSON(t, &raw, "deploy", "grafana", "approvals.json")
	var d struct{ Panels []dashboardPanel }
	if err := json.Unmarshal(b, &d); err != nil {
		t.Fatal(err)
	}
	var flat []dashboardPanel
	var walk func([]dashboardPanel)
	walk = func(ps []dashboardPanel) {
		for _, p := range ps {
			flat = append(flat, p)
			walk(p.Panels)
		}
	}
	walk(d.Panels)
	return raw, flat
}

func TestDashboardUsesExportedMetrics(t *testing.T) {
	_, known := knownSeries(t)
	records := recordingRules(readRules(t))
	raw, panels := readDashboard(t)
	if raw["uid"] == "" || raw["title"] == "" {
		t.Error("dashboard needs a uid and a title")
	}
	used := map[string]bool{}
	ids := map[int]bool{}
	for _, p := range panels {
		if ids[p.ID] {
			t.Errorf("panel id %d used twice", p.ID)
		}
		ids[p.ID] = true
		if p.Type == "row" {
			continue
		}
		if len(p.Targets) == 0 {
			t.Errorf("panel %q has no queries", p.Title)
		}
		if p.Datasource == nil || p.Datasource.UID != "${datasource}" {
			t.Errorf("panel %q does not use the dashboard's data source variable", p.Title)
		}
		for _, tg := range p.Targets {
			checkExpr(t, fmt.Sprintf("panel %q", p.Title), tg.Expr, known, records, used)
		}
	}
}

// Every metric the services export is watched somewhere: on the dashboard
// or by a rule. A metric added to package metrics fails this until it is.
func TestEveryMetricIsWatched(t *testing.T) {
	ms, known := knownSeries(t)
	used := map[string]bool{}
	records := checkRules(t, known, used)
	_, panels := readDashboard(t)
	for _, p := range panels {
		for _, tg := range p.Targets {
			checkExpr(t, "dashboard", tg.Expr, known, records, used)
		}
	}
	for name := range ms {
		if strings.HasPrefix(name, "approvals_") && !used[name] {
			t.Errorf("%s is on neither the dashboard nor in a rule", name)
		}
	}
}

// The dashboard shows what operators need: throughput, latency histograms,
// outcomes, backlog age and errors.
func TestDashboardCoverage(t *testing.T) {
	_, panels := readDashboard(t)
	var all bytes.Buffer
	for _, p := range panels {
		for _, tg := range p.Targets {
			all.WriteString(tg.Expr + "\n")
		}
	}
	for what, re := range map[string]string{
		"throughput":        `rate\(approvals_worker_messages_received_total`,
		"SES latency":       `histogram_quantile\([^,]+, sum by \(le\) \(rate\(approvals_worker_ses_call_duration_seconds_bucket`,
		"SFN latency":       `approvals_redeemer_sfn_call_duration_seconds_bucket`,
		"HTTP latency":      `approvals_redeemer_http_request_duration_seconds_bucket`,
		"worker outcomes":   `sum by \(outcome\) \(rate\(approvals_worker_messages_handled_total`,
		"decision outcomes": `sum by \(type, outcome\) \(rate\(approvals_redeemer_decisions_total`,
		"backlog age":       `aws_sqs_approximate_age_of_oldest_message_maximum|approvals_worker_message_age_seconds_bucket`,
		"errors":            `approvals_worker_sqs_errors_total`,
	} {
		if !regexp.MustCompile(re).Match(all.Bytes()) {
			t.Errorf("no panel shows %s", what)
		}
	}
}
