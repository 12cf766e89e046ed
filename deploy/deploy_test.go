// Package deploy holds no code: Kubernetes manifests (one directory per
// deployment shape), the Prometheus scrape job and alert rules, and the
// Grafana dashboard. Its tests check them against the program they deploy
// and against each other: the rules and the scrape job with promtool, the
// metric names against the worker's registry, each shape's ConfigMap
// against config.Load, the Services' and the scrape job's selection against
// the pods.
package deploy

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/llm-im/incidentd/incident"
	"github.com/llm-im/incidentd/metrics"
)

func promtool(t *testing.T) string {
	t.Helper()
	p, err := exec.LookPath("promtool")
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatal("promtool not installed (Debian package prometheus); CI must install it")
		}
		t.Skip("promtool not installed (apt-get install prometheus); skipping the rule checks")
	}
	return p
}

func TestAlertRulesPassPromtool(t *testing.T) {
	bin := promtool(t)
	for _, args := range [][]string{
		{"check", "rules", "prometheus/alerts.yml"},
		{"test", "rules", "prometheus/alerts_test.yml"},
	} {
		out, err := exec.Command(bin, args...).CombinedOutput()
		if err != nil {
			t.Fatalf("promtool %s: %v\n%s", strings.Join(args, " "), err, out)
		}
	}
}

var metricName = regexp.MustCompile(`incidentd_[a-z0-9_]+`)

// Every incidentd_* series that the rules and the dashboard query exists in
// the worker's registry (histogram suffixes allowed).
func TestRulesAndDashboardUseRealMetricNames(t *testing.T) {
	reg := prometheus.NewRegistry()
	if _, err := metrics.New(reg, metrics.Build{Version: "test"}); err != nil {
		t.Fatal(err)
	}
	known := map[string]bool{}
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		known[mf.GetName()] = true
	}
	for _, n := range backendMetricNames(t) {
		known[n] = true
	}
	redisNames, haveRedis := redisMetricNames(t)
	for _, n := range redisNames {
		known[n] = true
	}
	for _, file := range []string{"prometheus/alerts.yml", "grafana/incidentd-dashboard.json"} {
		b, err := os.ReadFile(file)
		if err != nil {
			t.Fatal(err)
		}
		for _, name := range metricName.FindAllString(string(b), -1) {
			base := strings.TrimSuffix(strings.TrimSuffix(strings.TrimSuffix(name, "_bucket"), "_sum"), "_count")
			if !haveRedis && strings.HasPrefix(name, "incidentd_redis_") {
				t.Logf("%s: %s not checked (no redis-server)", file, name)
				continue
			}
			if !known[name] && !known[base] {
				t.Errorf("%s queries %s, which the worker does not export", file, name)
			}
		}
	}
}

func TestDashboardIsValidJSON(t *testing.T) {
	b, err := os.ReadFile("grafana/incidentd-dashboard.json")
	if err != nil {
		t.Fatal(err)
	}
	var d struct {
		Title  string `json:"title"`
		Panels []struct {
			Title   string `json:"title"`
			Targets []struct {
				Expr string `json:"expr"`
			} `json:"targets"`
		} `json:"panels"`
	}
	if err := json.Unmarshal(b, &d); err != nil {
		t.Fatal(err)
	}
	if d.Title == "" || len(d.Panels) < 8 {
		t.Fatalf("dashboard has %d panels", len(d.Panels))
	}
	for _, p := range d.Panels {
		if len(p.Targets) == 0 || p.Targets[0].Expr == "" {
			t.Errorf("panel %q has no query", p.Title)
		}
	}
}

// dashboard reads the Grafana dashboard's panels.
func dashboard(t *testing.T) []dashboardPanel {
	t.Helper()
	b, err := os.ReadFile("grafana/incidentd-dashboard.json")
	if err != nil {
		t.Fatal(err)
	}
	var d struct {
		Panels []dashboardPanel `json:"panels"`
	}
	if err := json.Unmarshal(b, &d); err != nil {
		t.Fatal(err)
	}
	return d.Panels
}

type dashboardPanel struct {
	Title   string `json:"title"`
	GridPos struct {
		X, Y, W, H int
	} `json:"gridPos"`
	Targets []struct {
		Expr string `json:"expr"`
	} `json:"targets"`
}

// grafanaVars replaces the dashboard's variables with what Grafana would
// put there, so promtool can read the queries.
var grafanaVars = strings.NewReplacer(`$job`, `.*`, `$__rate_interval`, `5m`)

// TestDashboardPanelsDoNotOverlap: every panel fits the 24-column grid and
// no two share a cell.
func TestDashboardPanelsDoNotOverlap(t *testing.T) {
	ps := dashboard(t)
	for i, a := range ps {
		if a.GridPos.W <= 0 || a.GridPos.H <= 0 || a.GridPos.X < 0 || a.GridPos.X+a.GridPos.W > 24 {
			t.Errorf("panel %q: gridPos %+v off the 24-column grid", a.Title, a.GridPos)
		}
		for _, b := range ps[i+1:] {
			if a.GridPos.X < b.GridPos.X+b.GridPos.W && b.GridPos.X < a.GridPos.X+a.GridPos.W &&
				a.GridPos.Y < b.GridPos.Y+b.GridPos.H && b.GridPos.Y < a.GridPos.Y+a.GridPos.H {
				t.Errorf("panels %q and %q overlap", a.Title, b.Title)
			}
		}
	}
}

// TestDashboardOpenIncidents evaluates the "Open incidents" query with
// promtool on two pods reporting one shared store: the four active states,
// summed once (not once per pod), Resolved and Closed left out.
func TestDashboardOpenIncidents(t *testing.T) {
	expr := panelExpr(t, "Open incidents")
	var series strings.Builder
	want := 0
	for i, st := range incident.States {
		n := 10 * (i + 1) // 10, 20, ... 60
		if st.Active() {
			want += n
		}
		for _, pod := range []string{"w1", "w2"} {
			fmt.Fprintf(&series, "      - series: 'incidentd_store_incidents_by_state{instance=%q, job=\"incidentd\", state=%q}'\n        values: '%dx5'\n", pod, st, n)
		}
	}
	test := fmt.Sprintf(`rule_files: []
evaluation_interval: 1m
tests:
  - interval: 1m
    input_series:
%s    promql_expr_test:
      - expr: %q
        eval_time: 2m
        exp_samples:
          - labels: '{}'
            value: %d
`, series.String(), expr, want)
	promtoolTest(t, test)
}

// TestDashboardWorkersReady evaluates the "Workers ready" query with
// promtool: the ready workers while some are scraped, and 0, not "No
// data", once none is (every pod gone: their series end).
func TestDashboardWorkersReady(t *testing.T) {
	expr := panelExpr(t, "Workers ready")
	test := fmt.Sprintf(`rule_files: []
evaluation_interval: 1m
tests:
  - interval: 1m
    input_series:
      - series: 'incidentd_ready{instance="w1", job="incidentd"}'
        values: '1 1 1 stale'
      - series: 'incidentd_ready{instance="w2", job="incidentd"}'
        values: '1 0 0 stale'
    promql_expr_test:
      - expr: %[1]q
        eval_time: 0m
        exp_samples:
          - labels: '{}'
            value: 2
      - expr: %[1]q
        eval_time: 2m
        exp_samples:
          - labels: '{}'
            value: 1
      - expr: %[1]q
        eval_time: 5m
        exp_samples:
          - labels: '{}'
            value: 0
`, expr)
	promtoolTest(t, test)
}

// panelExpr is the one query of the dashboard panel titled title, with the
// dashboard's variables filled in.
func panelExpr(t *testing.T, title string) string {
	t.Helper()
	for _, p := range dashboard(t) {
		if p.Title == title && len(p.Targets) == 1 {
			return grafanaVars.Replace(p.Targets[0].Expr)
		}
	}
	t.Fatalf("no %q panel with one query", title)
	return ""
}

// promtoolTest runs promtool's rule unit tests on the document test.
func promtoolTest(t *testing.T, test string) {
	t.Helper()
	bin := promtool(t)
	path := filepath.Join(t.TempDir(), "panel_test.yml")
	if err := os.WriteFile(path, []byte(test), 0o600); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command(bin, "test", "rules", path).CombinedOutput(); err != nil {
		t.Fatalf("promtool test rules: %v\n%s\n%s", err, out, test)
	}
}
