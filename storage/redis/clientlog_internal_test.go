package redis

import (
	"context"
	"testing"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest/observer"
)

func TestClientLogLevels(t *testing.T) {
	tests := []struct {
		format string
		args   []any
		want   zapcore.Level
	}{
		{"sentinel: selected addr=%s masterAddr=%s", []any{"127.0.0.1:26379", "127.0.0.1:6379"}, zapcore.InfoLevel},
		{"sentinel: new master=%q addr=%q", []any{"mymaster", "127.0.0.1:6380"}, zapcore.InfoLevel},
		{"sentinel: discovered new sentinel=%q for master=%q", []any{"x", "mymaster"}, zapcore.DebugLevel},
		{"cluster: slots %v migrated to %s, reloading cluster state", []any{"[0-10]", "h:1"}, zapcore.InfoLevel},
		{"redis: connection pool: failed to dial after %d attempts: %v", []any{5, "refused"}, zapcore.WarnLevel},
		{"sentinel: GetMasterAddrByName name=%q failed: %s", []any{"mymaster", "timeout"}, zapcore.WarnLevel},
		{"%s", []any{"anything else"}, zapcore.WarnLevel},
		// The sentinels go-redis stopped asking once one answered.
		{"sentinel: GetMasterAddrByName addr=%s, master=%q failed: %s", []any{"127.0.0.1:26379", "mymaster", "context canceled"}, zapcore.DebugLevel},
		{"sentinel: GetMasterAddrByName addr=%s, master=%q failed: %s", []any{"127.0.0.1:26379", "mymaster", "dial tcp: connection refused"}, zapcore.WarnLevel},
	}
	for _, tt := range tests {
		core, logs := observer.New(zapcore.DebugLevel)
		newClientLogger(zap.New(core), time.Now).Printf(context.Background(), tt.format, tt.args...)
		if logs.Len() != 1 || logs.All()[0].Level != tt.want {
			t.Errorf("%q: %v, want one line at %s", tt.format, logs.All(), tt.want)
		}
	}
}

// TestClientLogRateLimit: of the lines of one format, one is logged per
// 10 seconds, and the next one logged counts those left out; other formats
// and prepared "%s" messages of another kind are not held back.
func TestClientLogRateLimit(t *testing.T) {
	core, logs := observer.New(zapcore.InfoLevel)
	now := time.Unix(1e9, 0)
	c := newClientLogger(zap.New(core), func() time.Time { return now })
	ctx := context.Background()
	dial := "redis: connection pool: failed to dial after %d attempts: %v"

	for i := range 101 { // a 40 s outage's worth within one window
		c.Printf(ctx, dial, 5, i)
	}
	c.Printf(ctx, "sentinel: selected addr=%s masterAddr=%s", "a", "b")
	c.Printf(ctx, "%s", "circuit breaker opened for 10.0.0.1:6379")
	c.Printf(ctx, "%s", "circuit breaker opened for 10.0.0.2:6379") // same kind: held back
	c.Printf(ctx, "%s", "handoff queue full")
	c.Printf(ctx, "sentinel: discovered new sentinel=%q for master=%q", "x", "m") // debug: not enabled, not counted
	if got := logs.FilterMessageSnippet("failed to dial").Len(); got != 1 {
		t.Fatalf("%d dial lines in one window, want 1", got)
	}
	if logs.Len() != 4 {
		t.Fatalf("%d lines, want 4: %v", logs.Len(), logs.All())
	}

	now = now.Add(9 * time.Second)
	c.Printf(ctx, dial, 5, "late")
	now = now.Add(time.Second)
	c.Printf(ctx, dial, 5, "next window")
	last := logs.All()[logs.Len()-1]
	if last.Message != "redis: connection pool: failed to dial after 5 attempts: next window" || last.ContextMap()["suppressed"] != int64(101) {
		t.Fatalf("next window's line = %q %v, want it with suppressed=101", last.Message, last.ContextMap())
	}
	// Every line counts, held back or below the log level.
	if w, i, d := c.lines(zapcore.WarnLevel), c.lines(zapcore.InfoLevel), c.lines(zapcore.DebugLevel); w != 106 || i != 1 || d != 1 {
		t.Fatalf("counted warn %d, info %d, debug %d; want 106, 1, 1", w, i, d)
	}
	// A Sentinel master change is logged at once, though the first
	// master was logged a second before; the same master again is not.
	master := "sentinel: new master=%q addr=%q"
	c.Printf(ctx, master, "mymaster", "127.0.0.1:6379")
	now = now.Add(time.Second)
	c.Printf(ctx, master, "mymaster", "127.0.0.1:6380")
	c.Printf(ctx, master, "mymaster", "127.0.0.1:6380")
	if got := logs.FilterMessageSnippet("sentinel: new master").Len(); got != 2 {
		t.Fatalf("%d new-master lines, want 2 (one per master)", got)
	}
	now = now.Add(clientLogWindow)
	c.Printf(ctx, dial, 5, "quiet again")
	if last := logs.All()[logs.Len()-1]; last.ContextMap()["suppressed"] != nil {
		t.Errorf("a line after a quiet window carries %v", last.ContextMap())
	}
}
