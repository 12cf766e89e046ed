package redis_test

import (
	"context"
	"net"
	"strings"
	"testing"
	"time"

	goredis "github.com/redis/go-redis/v9"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest/observer"

	"github.com/llm-im/incidentd/storage/redis"
)

// TestClientLogsGoToZap: go-redis's own lines (here a failed dial) reach
// the zap logger as warnings, not the standard log package's plain text.
func TestClientLogsGoToZap(t *testing.T) {
	core, logs := observer.New(zapcore.DebugLevel)
	redis.RouteClientLogs(zap.New(core))
	t.Cleanup(func() { redis.RouteClientLogs(zap.NewNop()) })

	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close() // nothing listens there now
	c := goredis.NewClient(&goredis.Options{Addr: addr, DialTimeout: 200 * time.Millisecond, MaxRetries: -1})
	defer c.Close()
	if err := c.Ping(context.Background()).Err(); err == nil {
		t.Fatal("ping of a closed port succeeded")
	}
	var found bool
	for _, e := range logs.All() {
		if e.LoggerName == "go-redis" && e.Level == zapcore.WarnLevel && strings.Contains(e.Message, "failed to dial") {
			found = true
		}
	}
	if !found {
		t.Fatalf("no go-redis warning among %d entries: %v", logs.Len(), logs.All())
	}
}
