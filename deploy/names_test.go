package deploy

import (
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap/zaptest"

	"github.com/llm-im/incidentd/metrics"
	"github.com/llm-im/incidentd/storage/pebble"
	"github.com/llm-im/incidentd/storage/redis"
	"github.com/llm-im/incidentd/storage/redis/redistest"
)

// backendMetricNames gathers the series a live Pebble store registers
// itself, on the same kind of registry the worker uses.
func backendMetricNames(t *testing.T) []string {
	t.Helper()
	reg := prometheus.NewRegistry()
	cfg := pebble.DefaultConfig()
	cfg.Path = filepath.Join(t.TempDir(), "pebble")
	s, err := pebble.New(cfg, zaptest.NewLogger(t), reg)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, mf := range mfs {
		names = append(names, mf.GetName())
	}
	return names
}

// redisMetricNames gathers the series a live Redis store registers itself
// (on a redis-server of its own), or reports false when redis-server is not
// installed, outside CI (CI=true fails instead).
func redisMetricNames(t *testing.T) ([]string, bool) {
	t.Helper()
	if _, err := exec.LookPath("redis-server"); err != nil && os.Getenv("CI") != "true" {
		return nil, false
	}
	srv := redistest.StartStandalone(t, redistest.Options{})
	reg := prometheus.NewRegistry()
	s, err := redis.New(redis.Config{URL: srv.URL()}, zaptest.NewLogger(t), reg)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, mf := range mfs {
		names = append(names, mf.GetName())
	}
	return names, true
}

// The worker registers its metrics and the store's on one registry: no
// name may be claimed twice.
func TestWorkerAndPebbleMetricsShareARegistry(t *testing.T) {
	reg := prometheus.NewRegistry()
	if _, err := metrics.New(reg, metrics.Build{Version: "test"}); err != nil {
		t.Fatal(err)
	}
	cfg := pebble.DefaultConfig()
	cfg.Path = filepath.Join(t.TempDir(), "pebble")
	s, err := pebble.New(cfg, zaptest.NewLogger(t), reg)
	if err != nil {
		t.Fatalf("pebble store on the worker's registry: %v", err)
	}
	defer s.Close()
	if _, err := reg.Gather(); err != nil {
		t.Fatal(err)
	}
}

// The same for a Redis store.
func TestWorkerAndRedisMetricsShareARegistry(t *testing.T) {
	srv := redistest.StartStandalone(t, redistest.Options{})
	reg := prometheus.NewRegistry()
	if _, err := metrics.New(reg, metrics.Build{Version: "test"}); err != nil {
		t.Fatal(err)
	}
	s, err := redis.New(redis.Config{URL: srv.URL()}, zaptest.NewLogger(t), reg)
	if err != nil {
		t.Fatalf("redis store on the worker's registry: %v", err)
	}
	defer s.Close()
	if _, err := reg.Gather(); err != nil {
		t.Fatal(err)
	}
}
