package deploy

import (
	"os"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"go.yaml.in/yaml/v3"

	"github.com/llm-im/incidentd/metrics"
)

// runbookBase is where alerts.yml's runbook_url annotations point (README,
// Alerts: runbook, says how to point them at another copy).
const runbookBase = "https://github.com/llm-im/incidentd/blob/main/README.md"

type alertRule struct {
	Alert       string            `yaml:"alert"`
	Expr        string            `yaml:"expr"`
	Annotations map[string]string `yaml:"annotations"`
}

func alertRules(t *testing.T) []alertRule {
	t.Helper()
	b, err := os.ReadFile("prometheus/alerts.yml")
	if err != nil {
		t.Fatal(err)
	}
	var f struct {
		Groups []struct {
			Rules []alertRule `yaml:"rules"`
		} `yaml:"groups"`
	}
	if err := yaml.Unmarshal(b, &f); err != nil {
		t.Fatal(err)
	}
	var rules []alertRule
	for _, g := range f.Groups {
		for _, r := range g.Rules {
			if r.Alert != "" {
				rules = append(rules, r)
			}
		}
	}
	if len(rules) == 0 {
		t.Fatal("no alert rules")
	}
	return rules
}

// githubAnchors are the anchors GitHub gives the headings of a Markdown
// document: the heading text lower-cased, markup and punctuation other
// than hyphens and underscores dropped, spaces turned into hyphens; a
// repeated anchor gets -1, -2, ... Headings inside code blocks are none.
func githubAnchors(md string) map[string]bool {
	drop := regexp.MustCompile(`[^\p{L}\p{N}\- _]`)
	seen := map[string]int{}
	anchors := map[string]bool{}
	fenced := false
	for _, line := range strings.Split(md, "\n") {
		if strings.HasPrefix(line, "```") {
			fenced = !fenced
			continue
		}
		if fenced || !strings.HasPrefix(line, "#") {
			continue
		}
		text := strings.TrimLeft(line, "#")
		if len(text) == len(line) || len(line)-len(text) > 6 || !strings.HasPrefix(text, " ") {
			continue
		}
		a := strings.ToLower(strings.TrimSpace(text))
		a = drop.ReplaceAllString(a, "")
		a = strings.ReplaceAll(a, " ", "-")
		if n := seen[a]; n > 0 {
			anchors[a+"-"+strconv.Itoa(n)] = true
		} else {
			anchors[a] = true
		}
		seen[a]++
	}
	return anchors
}

func TestGithubAnchors(t *testing.T) {
	got := githubAnchors("# The event format (wire schema v1)\n## Running the worker: `incidentd`\n```sh\n# not a heading\n```\n#### Tests\n#### Tests\n### Alerts: runbook\n")
	for _, want := range []string{"the-event-format-wire-schema-v1", "running-the-worker-incidentd", "tests", "tests-1", "alerts-runbook"} {
		if !got[want] {
			t.Errorf("no anchor %q in %v", want, got)
		}
	}
	if got["not-a-heading"] {
		t.Error("a comment in a code block counted as a heading")
	}
}

// Every alert has a runbook_url: the README on GitHub, at a heading that
// exists (its entry under Alerts: runbook, named after the alert).
func TestAlertsLinkTheirRunbook(t *testing.T) {
	readme, err := os.ReadFile("../README.md")
	if err != nil {
		t.Fatal(err)
	}
	anchors := githubAnchors(string(readme))
	for _, r := range alertRules(t) {
		u, ok := r.Annotations["runbook_url"]
		if !ok {
			t.Errorf("%s has no runbook_url", r.Alert)
			continue
		}
		base, anchor, ok := strings.Cut(u, "#")
		if !ok || base != runbookBase {
			t.Errorf("%s: runbook_url %q, want %s#<anchor>", r.Alert, u, runbookBase)
			continue
		}
		if !anchors[anchor] {
			t.Errorf("%s: runbook_url anchor #%s is no heading of README.md", r.Alert, anchor)
		}
		if anchor != strings.ToLower(r.Alert) {
			t.Errorf("%s: runbook_url anchor #%s, want its own entry #%s", r.Alert, anchor, strings.ToLower(r.Alert))
		}
	}
}

// A histogram_quantile compared with a threshold inside a bucket reads
// over it with no observation that high (it interpolates): every threshold
// a rule compares a quantile of a worker histogram with is one of its
// bucket bounds. IncidentdSlowCommits' 1 s once sat in the flush buckets'
// (0.512, 1.024] and fired on commits of 0.6 s.
func TestQuantileThresholdsAreBucketBounds(t *testing.T) {
	reg := prometheus.NewRegistry()
	if _, err := metrics.New(reg, metrics.Build{Version: "test"}); err != nil {
		t.Fatal(err)
	}
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	bounds := map[string][]float64{}
	for _, mf := range mfs {
		for _, m := range mf.GetMetric() {
			for _, b := range m.GetHistogram().GetBucket() {
				bounds[mf.GetName()] = append(bounds[mf.GetName()], b.GetUpperBound())
			}
		}
	}
	re := regexp.MustCompile(`(?s)histogram_quantile\(.*?(incidentd_[a-z0-9_]+)_bucket.*\)\s*>\s*([0-9.]+)\s*$`)
	checked := 0
	for _, r := range alertRules(t) {
		m := re.FindStringSubmatch(strings.TrimSpace(r.Expr))
		if m == nil {
			continue
		}
		checked++
		v, err := strconv.ParseFloat(m[2], 64)
		if err != nil {
			t.Fatal(err)
		}
		b, ok := bounds[m[1]]
		if !ok {
			t.Errorf("%s: %s is no histogram of the worker", r.Alert, m[1])
			continue
		}
		if !slices.Contains(b, v) {
			t.Errorf("%s: threshold %v is no bucket bound of %s (%v): histogram_quantile interpolates past it", r.Alert, v, m[1], b)
		}
	}
	if checked < 2 {
		t.Errorf("checked %d quantile thresholds, want IncidentdSlowCommits and IncidentdEndToEndLatencyHigh", checked)
	}
}

// Ratios read 0 at idle, not NaN (0/0): each division in the dashboard and
// in the README's cheat sheet divides by a "(… > 0)" filter, with "or
// vector(0)" where the numerator has no such filter either.
func TestRatiosReadZeroAtIdle(t *testing.T) {
	var exprs []string
	dash, err := os.ReadFile("grafana/incidentd-dashboard.json")
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range regexp.MustCompile(`"expr":\s*"((?:[^"\\]|\\.)*)"`).FindAllStringSubmatch(string(dash), -1) {
		exprs = append(exprs, strings.ReplaceAll(m[1], `\"`, `"`))
	}
	readme, err := os.ReadFile("../README.md")
	if err != nil {
		t.Fatal(err)
	}
	_, sheet, ok := strings.Cut(string(readme), "### Grafana / PromQL cheat sheet\n\n```promql\n")
	if !ok {
		t.Fatal("README has no cheat sheet")
	}
	sheet, _, _ = strings.Cut(sheet, "```")
	for _, line := range strings.Split(sheet, "\n") {
		if line != "" && !strings.HasPrefix(line, "#") {
			exprs = append(exprs, line)
		}
	}
	n := 0
	for _, e := range exprs {
		if !strings.Contains(e, " / ") {
			continue
		}
		n++
		if !strings.Contains(e, "> 0)") {
			t.Errorf("%s: a division by what may be 0 reads NaN at idle; divide by (… > 0) and add or vector(0)", e)
		}
	}
	if n < 4 {
		t.Errorf("found %d divisions, want at least 4 (duplicate share, batch size twice, backlog time)", n)
	}
}
