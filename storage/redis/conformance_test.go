package redis_test

import (
	"fmt"
	"sync/atomic"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap/zaptest"

	"github.com/llm-im/incidentd/storage"
	"github.com/llm-im/incidentd/storage/redis"
	"github.com/llm-im/incidentd/storage/redis/redistest"
	"github.com/llm-im/incidentd/storage/storetest"
)

var prefixSeq atomic.Int64

// uniquePrefix gives every store of a test run its own keyspace on a shared
// server.
func uniquePrefix(t testing.TB) string {
	return fmt.Sprintf("t%d", prefixSeq.Add(1))
}

// open opens a store with cfg and closes it in t.Cleanup.
func open(t testing.TB, cfg redis.Config) *redis.Store {
	t.Helper()
	s, err := redis.New(cfg, zaptest.NewLogger(t), prometheus.NewRegistry())
	if err != nil {
		t.Fatalf("redis.New: %v", err)
	}
	t.Cleanup(func() { _ = s.Close() })
	return s
}

// harness runs the suite on one deployment, each store on a fresh prefix.
func harness(base redis.Config) storetest.Harness {
	return storetest.Harness{
		Open: func(t *testing.T) storage.Store {
			cfg := base
			cfg.KeyPrefix = uniquePrefix(t)
			return open(t, cfg)
		},
		Reopen: func(t *testing.T, s storage.Store) storage.Store {
			_ = s.Close()
			cfg := base
			cfg.KeyPrefix = fmt.Sprintf("t%d", prefixSeq.Load())
			return open(t, cfg)
		},
	}
}

func TestConformanceStandalone(t *testing.T) {
	srv := redistest.StartStandalone(t, redistest.Options{})
	storetest.Run(t, harness(redis.Config{URL: srv.URL()}))
}
