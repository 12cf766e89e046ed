package redis_test

import (
	"fmt"
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
