package redis_test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/llm-im/incidentd/storage/redis"
	"github.com/llm-im/incidentd/storage/redis/redistest"
)

// TestStandaloneURLOnClusterNode: a redis:// URL naming a node of a Redis
// Cluster is refused when the store opens, before anything is written,
// with an error saying it is a Cluster node and to use redis_cluster;
// every node, whichever slots it holds.
func TestStandaloneURLOnClusterNode(t *testing.T) {
	c := redistest.StartCluster(t)
	for _, addr := range c.Addrs[:3] {
		s, err := redis.New(redis.Config{URL: "redis://:pw-unused@" + addr + "/0"}, nil, nil)
		if err == nil {
			_ = s.Close()
			t.Fatalf("%s: a redis:// store opened on a Cluster node", addr)
		}
		t.Logf("%s: %v", addr, err)
		for _, want := range []string{addr + " is a Redis Cluster node", `backend = "redis_cluster"`, `redis_cluster_nodes = ["redis://` + addr + `"]`} {
			if !strings.Contains(err.Error(), want) {
				t.Errorf("%s: error lacks %q: %v", addr, want, err)
			}
		}
		if strings.Contains(err.Error(), "pw-unused") || strings.Contains(err.Error(), "non local key") {
			t.Errorf("%s: error shows the password or the script's failure: %v", addr, err)
		}
	}
	// Nothing written: every node is still empty.
	for _, addr := range c.Addrs {
		cli := goredis.NewClient(&goredis.Options{Addr: addr, DisableIdentity: true})
		n, err := cli.DBSize(context.Background()).Result()
		_ = cli.Close()
		if err != nil || n != 0 {
			t.Errorf("%s holds %d keys (%v) after the refusals, want 0", addr, n, err)
		}
	}
}

// TestPingFailsWhenClusterIsDown: a cluster whose state is fail (a slot
// range without a master: here another range's master and its replica
// are gone) refuses the deployment's keys with CLUSTERDOWN while its
// nodes still answer PING. The store's Ping, which the worker's readiness
// probe sends, must fail then (found by a black-box run: idle pods stayed
// ready).
func TestPingFailsWhenClusterIsDown(t *testing.T) {
	c := redistest.StartCluster(t)
	s, err := redis.New(redis.Config{Cluster: true, ClusterNodes: c.Nodes()}, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	ctx := context.Background()
	if err := s.Ping(ctx); err != nil {
		t.Fatalf("ping of a healthy cluster: %v", err)
	}
	c.BreakAwayFrom(t, "{llm-im}:incidents")
	redistest.Eventually(t, 30*time.Second, "ping failing with CLUSTERDOWN", func() error {
		err := s.Ping(ctx)
		if err == nil || !strings.Contains(err.Error(), "CLUSTERDOWN") {
			return fmt.Errorf("ping: %v", err)
		}
		return nil
	})
}
