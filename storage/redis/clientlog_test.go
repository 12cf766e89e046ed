package redis_test

import (
	"context"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	goredis "github.com/redis/go-redis/v9"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest/observer"

	"github.com/llm-im/incidentd/storage/redis"
	"github.com/llm-im/incidentd/storage/redis/redistest"
)

// routeTo routes go-redis's lines to an observer for the test.
func routeTo(t *testing.T) *observer.ObservedLogs {
	core, logs := observer.New(zapcore.DebugLevel)
	redis.RouteClientLogs(zap.New(core))
	t.Cleanup(func() { redis.RouteClientLogs(zap.NewNop()) })
	return logs
}

// TestClientLogsGoToZap: go-redis's own lines (here failed dials) reach the
// zap logger as warnings, not the standard log package's plain text, and a
// burst of them is one line, not one per failed dial; a store's
// incidentd_redis_client_log_lines_total{level="warn"} counts every one.
func TestClientLogsGoToZap(t *testing.T) {
	logs := routeTo(t)
	srv := redistest.StartStandalone(t, redistest.Options{})
	reg := prometheus.NewRegistry()
	s, err := redis.New(redis.Config{URL: srv.URL()}, zap.NewNop(), reg)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	warned := func() float64 {
		mfs, err := reg.Gather()
		if err != nil {
			t.Fatal(err)
		}
		for _, mf := range mfs {
			for _, m := range mf.GetMetric() {
				if mf.GetName() == "incidentd_redis_client_log_lines_total" && m.GetLabel()[0].GetValue() == "warn" {
					return m.GetCounter().GetValue()
				}
			}
		}
		t.Fatal("no incidentd_redis_client_log_lines_total{level=\"warn\"}")
		return 0
	}
	if n, err := testutil.GatherAndCount(reg, "incidentd_redis_client_log_lines_total"); err != nil || n != 3 {
		t.Fatalf("%d client log line series, want 3 (debug, info, warn): %v", n, err)
	}
	before := warned()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close() // nothing listens there now
	c := goredis.NewClient(&goredis.Options{Addr: addr, DialTimeout: 200 * time.Millisecond, MaxRetries: -1})
	defer c.Close()
	const pings = 5
	for range pings {
		if err := c.Ping(context.Background()).Err(); err == nil {
			t.Fatal("ping of a closed port succeeded")
		}
	}
	var dials int
	for _, e := range logs.All() {
		if e.LoggerName == "go-redis" && e.Level == zapcore.WarnLevel && strings.Contains(e.Message, "failed to dial") {
			dials++
		}
	}
	if dials == 0 || dials >= pings {
		t.Fatalf("%d go-redis dial warnings for %d failed pings, want fewer but some: %v", dials, pings, logs.All())
	}
	if got := warned() - before; got < pings {
		t.Fatalf("warn lines counted: %v, want at least one per failed ping (%d)", got, pings)
	}
}

// TestSentinelLinesAreNotWarnings: opening a store through healthy
// sentinels logs go-redis's routine lines (master selected, sentinels
// discovered) at info or debug, never as warnings.
func TestSentinelLinesAreNotWarnings(t *testing.T) {
	sn := redistest.StartSentinel(t)
	logs := routeTo(t)
	s, err := redis.New(redis.Config{URL: sn.URL()}, zap.NewNop(), prometheus.NewRegistry())
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	redistest.Eventually(t, 10*time.Second, "a go-redis sentinel line", func() error {
		if logs.FilterMessageSnippet("sentinel: selected addr").Len() == 0 {
			return context.DeadlineExceeded
		}
		return nil
	})
	for _, e := range logs.All() {
		if e.Level >= zapcore.WarnLevel {
			t.Errorf("go-redis warned on a healthy Sentinel deployment: %s", e.Message)
		}
		if strings.HasPrefix(e.Message, "sentinel: selected addr") && e.Level != zapcore.InfoLevel {
			t.Errorf("%q at %s, want info", e.Message, e.Level)
		}
	}
}
