package redis_test

import (
	"errors"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	goredis "github.com/redis/go-redis/v9"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"

	"github.com/llm-im/incidentd/storage"
	"github.com/llm-im/incidentd/storage/redis"
	"github.com/llm-im/incidentd/storage/redis/redistest"
)

// TestClusterFailoverLogged: a CLUSTER FAILOVER of the deployment's slot
// is logged at info under go-redis, naming the old and the new master, once
// the store's client loads the new slot map (here after the MOVED its next
// command gets), and incidentd_redis_cluster_slot_map_changes_total counts
// it; the store keeps working.
func TestClusterFailoverLogged(t *testing.T) {
	if testing.Short() {
		t.Skip("a failover takes a few seconds; skipped with -short")
	}
	c := redistest.StartCluster(t)
	logs := routeTo(t)
	reg := prometheus.NewRegistry()
	s, err := redis.New(redis.Config{Cluster: true, ClusterNodes: c.Nodes(), KeyPrefix: "topo"}, zap.NewNop(), reg)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	changes := func() float64 {
		mfs, err := reg.Gather()
		if err != nil {
			t.Fatal(err)
		}
		for _, mf := range mfs {
			if mf.GetName() == "incidentd_redis_cluster_slot_map_changes_total" {
				return mf.GetMetric()[0].GetCounter().GetValue()
			}
		}
		t.Fatal("no incidentd_redis_cluster_slot_map_changes_total")
		return 0
	}
	if _, err := s.Stats(t.Context()); err != nil {
		t.Fatal(err)
	}
	before := changes()
	const msg = "redis cluster: the deployment's slot moved to another master (failover or resharding)"
	if n := logs.FilterMessage(msg).Len(); n != 0 {
		t.Fatalf("%d failover lines before the failover", n)
	}
	n := goredis.NewClient(&goredis.Options{Addr: c.Addrs[0], DisableIdentity: true})
	defer n.Close()
	slot, err := n.ClusterKeySlot(t.Context(), "{topo}:incidents").Result()
	if err != nil {
		t.Fatal(err)
	}
	old, now := c.Failover(t, "{topo}:incidents")
	t.Logf("slot master moved from %s to %s", old, now)
	redistest.Eventually(t, 30*time.Second, "the failover logged", func() error {
		if _, err := s.Stats(t.Context()); err != nil {
			t.Logf("stats: %v", err)
		}
		for _, e := range logs.FilterMessage(msg).All() {
			f := e.ContextMap()
			if e.Level == zapcore.InfoLevel && e.LoggerName == "go-redis" && f["deployment_master_before"] == old && f["deployment_master"] == now &&
				f["deployment_slot"] == slot {
				return nil
			}
		}
		return errors.New("not yet")
	})
	if got := changes() - before; got < 1 {
		t.Errorf("incidentd_redis_cluster_slot_map_changes_total went up by %v, want at least 1", got)
	}
	if _, err := s.Count(t.Context(), storage.Filter{}); err != nil {
		t.Errorf("count after the failover: %v", err)
	}
	for _, e := range logs.All() {
		t.Logf("%s %s %s %v", e.Level, e.LoggerName, e.Message, e.ContextMap())
	}
}
