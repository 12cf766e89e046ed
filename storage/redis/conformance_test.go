package redis_test

import (
	"fmt"
	"strings"
	"sync"
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
	var mu sync.Mutex
	prefixes := map[storage.Store]string{}
	openAt := func(t *testing.T, prefix string) storage.Store {
		cfg := base
		cfg.KeyPrefix = prefix
		s := open(t, cfg)
		mu.Lock()
		prefixes[s] = prefix
		mu.Unlock()
		return s
	}
	return storetest.Harness{
		Open: func(t *testing.T) storage.Store { return openAt(t, uniquePrefix(t)) },
		Reopen: func(t *testing.T, s storage.Store) storage.Store {
			_ = s.Close()
			mu.Lock()
			prefix := prefixes[s]
			mu.Unlock()
			return openAt(t, prefix)
		},
	}
}

func TestConformanceStandalone(t *testing.T) {
	srv := redistest.StartStandalone(t, redistest.Options{})
	storetest.Run(t, harness(redis.Config{URL: srv.URL()}))
}

func TestConformanceRequirePass(t *testing.T) {
	srv := redistest.StartStandalone(t, redistest.Options{RequirePass: "s3cret-pass"})
	storetest.Run(t, harness(redis.Config{URL: srv.URL()}))
}

func TestConformanceACLUser(t *testing.T) {
	srv := redistest.StartStandalone(t, redistest.Options{ACLUser: "worker", ACLPassword: "acl-s3cret"})
	storetest.Run(t, harness(redis.Config{URL: srv.URL()}))
}

func TestConformanceTLS(t *testing.T) {
	srv := redistest.StartStandalone(t, redistest.Options{TLS: true, TLSClientAuth: true})
	storetest.Run(t, harness(redis.Config{
		URL: srv.URL(), TLSCAFile: srv.Certs.CA, TLSCertFile: srv.Certs.ClientCert, TLSKeyFile: srv.Certs.ClientKey,
		TLSServerName: "localhost",
	}))
}

func TestConformanceSentinel(t *testing.T) {
	sn := redistest.StartSentinel(t)
	storetest.Run(t, harness(redis.Config{URL: sn.URL()}))
}

func TestConformanceCluster(t *testing.T) {
	c := redistest.StartCluster(t)
	storetest.Run(t, harness(redis.Config{Cluster: true, ClusterNodes: c.Nodes()}))
}

// The same suite on the commands of Redis 5.0: the store picks its
// variants as if the server were 5.0 (redis.AsIfVersion), on a 7.0 server
// that lost every command newer than 5.0 (redistest.Redis50Commands), so
// a command the 5.0 variants still sent would fail the suite. The
// connections go through go-redis's fallback for servers without HELLO.
func TestConformanceRedis50Standalone(t *testing.T) {
	srv := redistest.StartStandalone(t, redistest.Options{Extra: redistest.Redis50Commands})
	storetest.Run(t, harness(redis.AsIfVersion(redis.Config{URL: srv.URL()}, "5.0.0")))
}

func TestConformanceRedis50Cluster(t *testing.T) {
	c := redistest.StartCluster(t, redistest.Redis50Commands...)
	storetest.Run(t, harness(redis.AsIfVersion(redis.Config{Cluster: true, ClusterNodes: c.Nodes()}, "5.0.0")))
}

// TestRedis50CommandsAreGone: the server of the tests above really lacks
// the newer commands, so those tests prove the 5.0 variants need none of
// them: a store that believes the server (7.0) uses ZMSCORE and fails.
func TestRedis50CommandsAreGone(t *testing.T) {
	srv := redistest.StartStandalone(t, redistest.Options{Extra: redistest.Redis50Commands})
	s := open(t, redis.Config{URL: srv.URL(), KeyPrefix: uniquePrefix(t)})
	_, err := s.Lookup(ctx, nil, []string{"e1"})
	if err == nil || !strings.Contains(err.Error(), "Unknown Redis command") {
		t.Fatalf("Lookup with ZMSCORE on a server without it: %v", err)
	}
	if err := srv.Client(t).Do(ctx, "HELLO", "3").Err(); err == nil || !strings.Contains(err.Error(), "unknown command") {
		t.Fatalf("HELLO: %v", err)
	}
}
