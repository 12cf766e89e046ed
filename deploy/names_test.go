package deploy

import (
	"path/filepath"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap/zaptest"

	"github.com/llm-im/incidentd/metrics"
	"github.com/llm-im/incidentd/storage/pebble"
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
