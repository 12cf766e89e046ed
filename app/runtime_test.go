package app_test

import (
	"runtime/debug"
	"testing"

	"github.com/llm-im/incidentd/app"
)

func TestTuneRuntimeLeavesOperatorSettingsAlone(t *testing.T) {
	prevGC := debug.SetGCPercent(100)
	prevLimit := debug.SetMemoryLimit(-1)
	t.Cleanup(func() { debug.SetGCPercent(prevGC); debug.SetMemoryLimit(prevLimit) })

	env := map[string]string{"GOGC": "50"}
	gc, limit := app.TuneRuntime(func(k string) (string, bool) { v, ok := env[k]; return v, ok })
	if gc != -1 || limit != app.DefaultMemoryLimit {
		t.Fatalf("set gc %d, limit %d", gc, limit)
	}
	if got := debug.SetGCPercent(100); got != 100 {
		t.Fatalf("GOGC from the environment overridden: %d", got)
	}
	if got := debug.SetMemoryLimit(-1); got != app.DefaultMemoryLimit {
		t.Fatalf("memory limit %d", got)
	}
	gc, _ = app.TuneRuntime(func(string) (string, bool) { return "", false })
	if gc != app.DefaultGCPercent || debug.SetGCPercent(100) != app.DefaultGCPercent {
		t.Fatalf("default GOGC not applied: %d", gc)
	}
}
