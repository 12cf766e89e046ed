package redis_test

import (
	"context"
	"strings"
	"testing"

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
