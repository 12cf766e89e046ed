package app_test

import (
	"runtime/debug"
	"testing"

	"github.com/llm-im/incidentd/app"
	"github.com/llm-im/incidentd/config"
)

// runtimeCgo reports whether this test binary was built with cgo.
func runtimeCgo() bool {
	for _, s := range buildSettings() {
		if s.Key == "CGO_ENABLED" {
			return s.Value == "1"
		}
	}
	return false
}

func buildSettings() []debug.BuildSetting {
	if bi, ok := debug.ReadBuildInfo(); ok {
		return bi.Settings
	}
	return nil
}

func TestMemoryLimitCountsPebbleOnTheGoHeapWithoutCgo(t *testing.T) {
	cfg := config.Default()
	cfg.State.Pebble.CacheSizeMB, cfg.State.Pebble.MemtableSizeMB = 256, 64
	if got := app.MemoryLimit(cfg, true); got != app.DefaultMemoryLimit {
		t.Errorf("with cgo: %d, want %d", got, app.DefaultMemoryLimit)
	}
	if got, want := app.MemoryLimit(cfg, false), int64(app.DefaultMemoryLimit+(256+4*64)<<20); got != want {
		t.Errorf("without cgo: %d, want %d", got, want)
	}
	cfg.State.Backend = config.BackendRedis
	if got := app.MemoryLimit(cfg, false); got != app.DefaultMemoryLimit {
		t.Errorf("redis without cgo: %d, want %d", got, app.DefaultMemoryLimit)
	}
}

func TestTuneRuntimeLeavesOperatorSettingsAlone(t *testing.T) {
	prevGC := debug.SetGCPercent(100)
	prevLimit := debug.SetMemoryLimit(-1)
	t.Cleanup(func() { debug.SetGCPercent(prevGC); debug.SetMemoryLimit(prevLimit) })

	env := map[string]string{"GOGC": "50"}
	gc, limit := app.TuneRuntime(config.Default(), func(k string) (string, bool) { v, ok := env[k]; return v, ok })
	want := app.MemoryLimit(config.Default(), runtimeCgo())
	if gc != 100 || limit != want { // what is in force: the operator's GOGC (100 here), our limit
		t.Fatalf("in force: gc %d, limit %d", gc, limit)
	}
	if got := debug.SetGCPercent(100); got != 100 {
		t.Fatalf("GOGC from the environment overridden: %d", got)
	}
	if got := debug.SetMemoryLimit(-1); got != want {
		t.Fatalf("memory limit %d", got)
	}
	gc, _ = app.TuneRuntime(config.Default(), func(string) (string, bool) { return "", false })
	if gc != app.DefaultGCPercent || debug.SetGCPercent(100) != app.DefaultGCPercent {
		t.Fatalf("default GOGC not applied: %d", gc)
	}

	// GOMEMLIMIT alone: the operator's limit is reported as in force (not
	// -1), and GOGC still gets its default.
	debug.SetMemoryLimit(100 << 20)
	env = map[string]string{"GOMEMLIMIT": "100MiB"}
	gc, limit = app.TuneRuntime(config.Default(), func(k string) (string, bool) { v, ok := env[k]; return v, ok })
	if gc != app.DefaultGCPercent || limit != 100<<20 {
		t.Fatalf("GOMEMLIMIT set: gc %d, limit %d, want %d and %d", gc, limit, app.DefaultGCPercent, 100<<20)
	}
}
