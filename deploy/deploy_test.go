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
	"os"
	"os/exec"
	"regexp"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"

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
	for _, file := range []string{"prometheus/alerts.yml", "grafana/incidentd-dashboard.json"} {
		b, err := os.ReadFile(file)
		if err != nil {
			t.Fatal(err)
		}
		for _, name := range metricName.FindAllString(string(b), -1) {
			base := strings.TrimSuffix(strings.TrimSuffix(strings.TrimSuffix(name, "_bucket"), "_sum"), "_count")
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
