package deploy

import (
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"go.yaml.in/yaml/v3"

	"github.com/llm-im/incidentd/config"
)

// scrapeConfig is the part of prometheus/scrape.yml the tests read.
type scrapeConfig struct {
	RuleFiles     []string `yaml:"rule_files"`
	ScrapeConfigs []struct {
		JobName             string `yaml:"job_name"`
		MetricsPath         string `yaml:"metrics_path"`
		KubernetesSDConfigs []struct {
			Role string `yaml:"role"`
		} `yaml:"kubernetes_sd_configs"`
		RelabelConfigs []relabel `yaml:"relabel_configs"`
	} `yaml:"scrape_configs"`
}

type relabel struct {
	SourceLabels []string `yaml:"source_labels"`
	Separator    *string  `yaml:"separator"`
	Regex        *string  `yaml:"regex"`
	Action       string   `yaml:"action"`
	TargetLabel  string   `yaml:"target_label"`
}

func readScrape(t *testing.T) scrapeConfig {
	t.Helper()
	b, err := os.ReadFile("prometheus/scrape.yml")
	if err != nil {
		t.Fatal(err)
	}
	var sc scrapeConfig
	if err := yaml.Unmarshal(b, &sc); err != nil {
		t.Fatal(err)
	}
	if len(sc.ScrapeConfigs) != 1 {
		t.Fatalf("scrape.yml has %d jobs, want 1", len(sc.ScrapeConfigs))
	}
	return sc
}

// keeps runs the keep and drop steps of rs over one target's labels, as
// Prometheus does (source labels joined by ";", the regex anchored), and
// applies the replace steps' default (copy the source into target_label).
func keeps(t *testing.T, rs []relabel, labels map[string]string) (map[string]string, bool) {
	t.Helper()
	out := map[string]string{}
	for k, v := range labels {
		out[k] = v
	}
	for _, r := range rs {
		sep, re := ";", "(.*)"
		if r.Separator != nil {
			sep = *r.Separator
		}
		if r.Regex != nil {
			re = *r.Regex
		}
		var vals []string
		for _, l := range r.SourceLabels {
			vals = append(vals, out[l])
		}
		matched := regexp.MustCompile("^(?:" + re + ")$").MatchString(strings.Join(vals, sep))
		switch r.Action {
		case "keep":
			if !matched {
				return nil, false
			}
		case "drop":
			if matched {
				return nil, false
			}
		case "", "replace":
			if r.Regex != nil || r.TargetLabel == "" {
				t.Fatalf("the test copies labels only: %+v", r)
			}
			out[r.TargetLabel] = strings.Join(vals, sep)
		default:
			t.Fatalf("the test does not know relabel action %q", r.Action)
		}
	}
	return out, true
}

// podTargets lists the targets Kubernetes pod discovery makes of a pod: one
// per container port, with the pod's labels as meta labels.
func podTargets(labels map[string]string, ports []string, phase string) []map[string]string {
	var ts []map[string]string
	for _, p := range ports {
		m := map[string]string{
			"__meta_kubernetes_namespace":               "incidentd",
			"__meta_kubernetes_pod_name":                "incidentd-0",
			"__meta_kubernetes_pod_phase":               phase,
			"__meta_kubernetes_pod_container_port_name": p,
		}
		for k, v := range labels {
			m["__meta_kubernetes_pod_label_"+regexp.MustCompile(`[^a-zA-Z0-9_]`).ReplaceAllString(k, "_")] = v
		}
		ts = append(ts, m)
	}
	return ts
}

// TestScrapeJobFindsTheWorkers: the scrape job the alert rules name exists,
// keeps exactly one target per running pod of either shape, and no other pod.
func TestScrapeJobFindsTheWorkers(t *testing.T) {
	sc := readScrape(t)
	job := sc.ScrapeConfigs[0]
	if job.JobName != "incidentd" {
		t.Errorf("job_name %q, want incidentd", job.JobName)
	}
	if len(job.KubernetesSDConfigs) != 1 || job.KubernetesSDConfigs[0].Role != "pod" {
		t.Errorf("kubernetes_sd_configs %+v, want one with role pod", job.KubernetesSDConfigs)
	}
	if p := config.Default().Metrics.Path; job.MetricsPath != "" && job.MetricsPath != p {
		t.Errorf("metrics_path %s, the worker serves %s", job.MetricsPath, p)
	}

	// Every rule that names a job names this one.
	rules, err := os.ReadFile("prometheus/alerts.yml")
	if err != nil {
		t.Fatal(err)
	}
	named := regexp.MustCompile(`job="([^"]*)"`).FindAllStringSubmatch(string(rules), -1)
	if len(named) == 0 {
		t.Error("no rule selects the job: IncidentdDown and IncidentdAllDown should")
	}
	for _, m := range named {
		if m[1] != job.JobName {
			t.Errorf("alerts.yml selects job=%q, scrape.yml defines %q", m[1], job.JobName)
		}
	}

	for shape := range shapes {
		w := workload(t, shape, readShape(t, filepath.Join("kubernetes", shape)))
		var ports []string
		for _, p := range w.Spec.Template.Spec.Containers[0].Ports {
			ports = append(ports, p.Name)
		}
		ports = append(ports, "") // a container without a named port
		var kept []map[string]string
		for _, tg := range podTargets(w.Spec.Template.Metadata.Labels, ports, "Running") {
			if l, ok := keeps(t, job.RelabelConfigs, tg); ok {
				kept = append(kept, l)
			}
		}
		if len(kept) != 1 {
			t.Errorf("%s: %d targets per pod, want 1", shape, len(kept))
		} else if kept[0]["pod"] != "incidentd-0" || kept[0]["namespace"] != "incidentd" {
			t.Errorf("%s: target labels %v: want pod and namespace", shape, kept[0])
		}
		for _, tg := range podTargets(w.Spec.Template.Metadata.Labels, ports, "Succeeded") {
			if _, ok := keeps(t, job.RelabelConfigs, tg); ok {
				t.Errorf("%s: a pod that ended is scraped", shape)
			}
		}
	}
	for _, tg := range podTargets(map[string]string{"app.kubernetes.io/name": "nats"}, []string{"http"}, "Running") {
		if _, ok := keeps(t, job.RelabelConfigs, tg); ok {
			t.Error("another application's pod is scraped")
		}
	}
}

// TestScrapeConfigPassesPromtool checks scrape.yml, with its rule files,
// with promtool check config. Distribution builds of promtool may lack
// Kubernetes discovery (Debian's does), so the discovery block is swapped
// for a static target: everything else, relabelling included, is checked.
func TestScrapeConfigPassesPromtool(t *testing.T) {
	bin := promtool(t)
	b, err := os.ReadFile("prometheus/scrape.yml")
	if err != nil {
		t.Fatal(err)
	}
	var doc map[string]any
	if err := yaml.Unmarshal(b, &doc); err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	for _, job := range doc["scrape_configs"].([]any) {
		j := job.(map[string]any)
		if _, ok := j["kubernetes_sd_configs"]; !ok {
			t.Fatalf("job %v has no kubernetes_sd_configs", j["job_name"])
		}
		delete(j, "kubernetes_sd_configs")
		j["static_configs"] = []any{map[string]any{"targets": []any{"127.0.0.1:8080"}}}
	}
	for _, rf := range doc["rule_files"].([]any) {
		r, err := os.ReadFile(filepath.Join("prometheus", rf.(string)))
		if err != nil {
			t.Fatalf("scrape.yml loads %s: %v", rf, err)
		}
		if err := os.WriteFile(filepath.Join(dir, rf.(string)), r, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	out, err := yaml.Marshal(doc)
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, "scrape.yml")
	if err := os.WriteFile(path, out, 0o600); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command(bin, "check", "config", path).CombinedOutput(); err != nil {
		t.Fatalf("promtool check config: %v\n%s", err, out)
	}
}
