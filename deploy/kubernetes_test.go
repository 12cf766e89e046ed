package deploy

import (
	"bytes"
	"errors"
	"io"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"go.yaml.in/yaml/v3"

	"github.com/llm-im/incidentd/config"
)

// shapes are the deployment shapes under kubernetes/, each a directory to
// apply alone, and the workload kind and store each one runs.
var shapes = map[string]struct {
	kind    string
	backend config.Backend
}{
	"pebble": {"StatefulSet", config.BackendPebble},
	"redis":  {"Deployment", config.BackendRedis},
}

// k8sObject is the part of a manifest document the tests read.
type k8sObject struct {
	APIVersion string `yaml:"apiVersion"`
	Kind       string `yaml:"kind"`
	Metadata   struct {
		Name        string            `yaml:"name"`
		Labels      map[string]string `yaml:"labels"`
		Annotations map[string]string `yaml:"annotations"`
	} `yaml:"metadata"`
	Data map[string]string `yaml:"data"`
	Spec struct {
		// Service
		ClusterIP string           `yaml:"clusterIP"`
		Selector  yaml.Node        `yaml:"selector"` // a map (Service) or a LabelSelector (workloads)
		Ports     []k8sServicePort `yaml:"ports"`
		// StatefulSet, Deployment
		ServiceName string `yaml:"serviceName"`
		Replicas    *int   `yaml:"replicas"`
		Template    struct {
			Metadata struct {
				Labels      map[string]string `yaml:"labels"`
				Annotations map[string]string `yaml:"annotations"`
			} `yaml:"metadata"`
			Spec struct {
				Containers []struct {
					Env []struct {
						Name      string `yaml:"name"`
						Value     string `yaml:"value"`
						ValueFrom *struct {
							SecretKeyRef *struct{ Name, Key string } `yaml:"secretKeyRef"`
						} `yaml:"valueFrom"`
					} `yaml:"env"`
					Ports []struct {
						Name          string `yaml:"name"`
						ContainerPort int    `yaml:"containerPort"`
					} `yaml:"ports"`
					ReadinessProbe k8sProbe `yaml:"readinessProbe"`
					LivenessProbe  k8sProbe `yaml:"livenessProbe"`
					VolumeMounts   []struct {
						Name      string `yaml:"name"`
						MountPath string `yaml:"mountPath"`
					} `yaml:"volumeMounts"`
				} `yaml:"containers"`
				Volumes []struct {
					Name      string `yaml:"name"`
					ConfigMap *struct {
						Name string `yaml:"name"`
					} `yaml:"configMap"`
				} `yaml:"volumes"`
			} `yaml:"spec"`
		} `yaml:"template"`
		VolumeClaimTemplates []struct {
			Metadata struct{ Name string } `yaml:"metadata"`
		} `yaml:"volumeClaimTemplates"`
	} `yaml:"spec"`
}

type k8sProbe struct {
	HTTPGet struct {
		Path string `yaml:"path"`
		Port string `yaml:"port"`
	} `yaml:"httpGet"`
}

type k8sServicePort struct {
	Name       string `yaml:"name"`
	Port       int    `yaml:"port"`
	TargetPort string `yaml:"targetPort"`
}

// selector reads a Service's selector map, or a workload's
// selector.matchLabels.
func (o *k8sObject) selector(t *testing.T) map[string]string {
	t.Helper()
	var sel map[string]string
	if o.Kind == "Service" {
		if err := o.Spec.Selector.Decode(&sel); err != nil {
			t.Fatalf("%s %s: selector: %v", o.Kind, o.Metadata.Name, err)
		}
		return sel
	}
	var ls struct {
		MatchLabels map[string]string `yaml:"matchLabels"`
	}
	if err := o.Spec.Selector.Decode(&ls); err != nil {
		t.Fatalf("%s %s: selector: %v", o.Kind, o.Metadata.Name, err)
	}
	return ls.MatchLabels
}

// selects reports whether every label of sel is on labels (an empty
// selector selects nothing here: none of ours may be empty).
func selects(sel, labels map[string]string) bool {
	if len(sel) == 0 {
		return false
	}
	for k, v := range sel {
		if labels[k] != v {
			return false
		}
	}
	return true
}

// readShape parses every manifest of one shape's directory.
func readShape(t *testing.T, dir string) []*k8sObject {
	t.Helper()
	files, err := filepath.Glob(filepath.Join(dir, "*.yaml"))
	if err != nil || len(files) == 0 {
		t.Fatalf("%s: no manifests (%v)", dir, err)
	}
	var objs []*k8sObject
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		dec := yaml.NewDecoder(bytes.NewReader(b))
		for {
			var o k8sObject
			if err := dec.Decode(&o); errors.Is(err, io.EOF) {
				break
			} else if err != nil {
				t.Fatalf("%s: %v", f, err)
			}
			if o.APIVersion == "" || o.Kind == "" || o.Metadata.Name == "" {
				t.Errorf("%s: a document lacks apiVersion, kind or metadata.name", f)
			}
			objs = append(objs, &o)
		}
	}
	return objs
}

// workload returns the shape's one StatefulSet or Deployment.
func workload(t *testing.T, shape string, objs []*k8sObject) *k8sObject {
	t.Helper()
	var ws []*k8sObject
	for _, o := range objs {
		if o.Kind == "StatefulSet" || o.Kind == "Deployment" {
			ws = append(ws, o)
		}
	}
	if len(ws) != 1 {
		t.Fatalf("%s: %d workloads, want exactly one", shape, len(ws))
	}
	return ws[0]
}

func find(objs []*k8sObject, kind, name string) *k8sObject {
	for _, o := range objs {
		if o.Kind == kind && o.Metadata.Name == name {
			return o
		}
	}
	return nil
}

// TestKubernetesHasNoManifestAtTheTop: `kubectl apply -f deploy/kubernetes/`
// (not recursive) must apply nothing, rather than both shapes at once, which
// would split one durable consumer's stream between two stores.
func TestKubernetesHasNoManifestAtTheTop(t *testing.T) {
	entries, err := os.ReadDir("kubernetes")
	if err != nil {
		t.Fatal(err)
	}
	var dirs []string
	for _, e := range entries {
		switch ext := filepath.Ext(e.Name()); {
		case e.IsDir():
			dirs = append(dirs, e.Name())
		case ext == ".yaml" || ext == ".yml" || ext == ".json":
			t.Errorf("kubernetes/%s: a manifest outside a shape's directory is applied with every shape", e.Name())
		}
	}
	if want := slices.Sorted(maps.Keys(shapes)); !slices.Equal(dirs, want) {
		t.Errorf("shape directories %v, want %v", dirs, want)
	}
}

// TestKubernetesShapesAreSelfContained applies each shape's checks to its
// directory alone: one workload of the right kind, the ConfigMap it mounts
// with a config.toml that loads (with the workload's environment) and names
// the right store, a Service selecting its pods on a port they have, and for
// the StatefulSet a headless governing Service.
func TestKubernetesShapesAreSelfContained(t *testing.T) {
	for shape, want := range shapes {
		t.Run(shape, func(t *testing.T) {
			objs := readShape(t, filepath.Join("kubernetes", shape))
			w := workload(t, shape, objs)
			if w.Kind != want.kind {
				t.Fatalf("workload is a %s, want a %s", w.Kind, want.kind)
			}
			pod := w.Spec.Template.Metadata.Labels
			if !selects(w.selector(t), pod) {
				t.Errorf("%s selector %v does not select its pod template %v", w.Kind, w.selector(t), pod)
			}
			for _, l := range []map[string]string{w.Metadata.Labels, pod} {
				if l["app.kubernetes.io/name"] != "incidentd" || l["app.kubernetes.io/instance"] != "incidentd-"+shape {
					t.Errorf("labels %v: want app.kubernetes.io/name=incidentd and app.kubernetes.io/instance=incidentd-%s", l, shape)
				}
			}
			for k := range w.Spec.Template.Metadata.Annotations {
				if strings.HasPrefix(k, "prometheus.io/") {
					t.Errorf("pod annotation %s: an annotation-based job would scrape the pods a second time, beside the incidentd job of prometheus/scrape.yml", k)
				}
			}
			if len(w.Spec.Template.Spec.Containers) != 1 {
				t.Fatalf("%d containers, want 1", len(w.Spec.Template.Spec.Containers))
			}
			c := w.Spec.Template.Spec.Containers[0]
			ports := map[string]bool{}
			for _, p := range c.Ports {
				ports[p.Name] = true
			}
			if !ports["http"] {
				t.Error("the container has no port named http (probes, Service and scrape job use it)")
			}
			for name, pr := range map[string]string{"/readyz": c.ReadinessProbe.HTTPGet.Port, "/healthz": c.LivenessProbe.HTTPGet.Port} {
				if !ports[pr] {
					t.Errorf("the %s probe uses port %q, which the container does not name", name, pr)
				}
			}
			if c.ReadinessProbe.HTTPGet.Path != "/readyz" || c.LivenessProbe.HTTPGet.Path != "/healthz" {
				t.Errorf("probes: readiness %s, liveness %s", c.ReadinessProbe.HTTPGet.Path, c.LivenessProbe.HTTPGet.Path)
			}

			// The ConfigMap it mounts is in the same directory, and loads.
			var cm *k8sObject
			for _, v := range w.Spec.Template.Spec.Volumes {
				if v.ConfigMap != nil {
					if cm = find(objs, "ConfigMap", v.ConfigMap.Name); cm == nil {
						t.Fatalf("volume %s mounts ConfigMap %s, which is not in kubernetes/%s", v.Name, v.ConfigMap.Name, shape)
					}
				}
			}
			if cm == nil {
				t.Fatal("the workload mounts no ConfigMap")
			}
			env := map[string]string{}
			for _, e := range c.Env {
				switch {
				case e.ValueFrom != nil && e.ValueFrom.SecretKeyRef != nil:
					env[e.Name] = secretStandIn(t, e.Name)
				default:
					env[e.Name] = e.Value
				}
			}
			path := filepath.Join(t.TempDir(), "config.toml")
			if err := os.WriteFile(path, []byte(cm.Data["config.toml"]), 0o600); err != nil {
				t.Fatal(err)
			}
			cfg, err := config.Load(path, func(k string) (string, bool) { v, ok := env[k]; return v, ok })
			if err != nil {
				t.Fatalf("ConfigMap %s: config.toml does not load with the workload's environment: %v", cm.Metadata.Name, err)
			}
			if cfg.State.Backend != want.backend {
				t.Errorf("the %s shape runs the %s store", shape, cfg.State.Backend)
			}
			replicas := 1
			if w.Spec.Replicas != nil {
				replicas = *w.Spec.Replicas
			}
			if need := replicas * 6 * cfg.Consumer.BatchSize; cfg.Consumer.MaxAckPending < need {
				t.Errorf("consumer.max_ack_pending %d < %d pods × 6 × batch_size %d (README)", cfg.Consumer.MaxAckPending, replicas, cfg.Consumer.BatchSize)
			}

			// A Service selects the pods on a port they name.
			var svcs []*k8sObject
			for _, o := range objs {
				if o.Kind == "Service" {
					svcs = append(svcs, o)
					if !selects(o.selector(t), pod) {
						t.Errorf("Service %s selector %v does not select the pods %v", o.Metadata.Name, o.selector(t), pod)
					}
					for _, p := range o.Spec.Ports {
						if !ports[p.TargetPort] {
							t.Errorf("Service %s port %s targets %q, which the container does not name", o.Metadata.Name, p.Name, p.TargetPort)
						}
					}
				}
			}
			if len(svcs) == 0 {
				t.Error("no Service: the API has no address")
			}

			if w.Kind == "StatefulSet" {
				if replicas != 1 {
					t.Errorf("Pebble is single-writer: %d replicas", replicas)
				}
				gov := find(objs, "Service", w.Spec.ServiceName)
				switch {
				case w.Spec.ServiceName == "":
					t.Error("StatefulSet without serviceName")
				case gov == nil:
					t.Errorf("serviceName %q names no Service in kubernetes/%s", w.Spec.ServiceName, shape)
				case gov.Spec.ClusterIP != "None":
					t.Errorf("governing Service %s is not headless (clusterIP %q, want None)", gov.Metadata.Name, gov.Spec.ClusterIP)
				}
				mounts := map[string]bool{}
				for _, m := range c.VolumeMounts {
					mounts[m.Name] = true
				}
				for _, v := range w.Spec.VolumeClaimTemplates {
					if !mounts[v.Metadata.Name] {
						t.Errorf("volume claim %s is not mounted", v.Metadata.Name)
					}
				}
				if len(w.Spec.VolumeClaimTemplates) == 0 {
					t.Error("the Pebble directory is on no PersistentVolume")
				}
			}
		})
	}
}

// secretStandIn is a valid value for a variable the manifests take from a
// Secret, so the ConfigMap's TOML can be loaded as the pod would.
func secretStandIn(t *testing.T, name string) string {
	switch name {
	case "STATE_REDIS_URL":
		return "redis://incidentd:secret@redis:6379/0"
	case "NATS_URL":
		return "nats://incidentd:secret@nats:4222"
	}
	t.Fatalf("a manifest takes %s from a Secret; give the test a stand-in value", name)
	return ""
}

// TestKubernetesShapesDoNotSelectEachOther: should both shapes run at
// once, neither's Services nor workload adopts the other's pods.
func TestKubernetesShapesDoNotSelectEachOther(t *testing.T) {
	objs := map[string][]*k8sObject{}
	for shape := range shapes {
		objs[shape] = readShape(t, filepath.Join("kubernetes", shape))
	}
	for a := range shapes {
		for b := range shapes {
			if a == b {
				continue
			}
			pod := workload(t, b, objs[b]).Spec.Template.Metadata.Labels
			for _, o := range objs[a] {
				if o.Kind == "Service" || o.Kind == "StatefulSet" || o.Kind == "Deployment" {
					if selects(o.selector(t), pod) {
						t.Errorf("%s %s of the %s shape selects the %s shape's pods", o.Kind, o.Metadata.Name, a, b)
					}
				}
			}
		}
	}
}
