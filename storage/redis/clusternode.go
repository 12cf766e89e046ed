package redis

import (
	"context"
	"fmt"
	"strings"

	goredis "github.com/redis/go-redis/v9"
)

// refuseClusterNode refuses a standalone connection (a redis:// URL) to a
// server in cluster mode (INFO cluster: cluster_enabled:1): such a
// connection reaches only the slots of that one node, so the first script
// touching the deployment's keys would fail with "Script attempted to
// access a non local key in a cluster node" or a MOVED. A server that
// refuses INFO (an ACL user without the permission, a renamed command) is
// not checked. addr names the server in the error (no credentials).
func refuseClusterNode(ctx context.Context, rdb goredis.Cmdable, addr string) error {
	info, err := rdb.Info(ctx, "cluster").Result()
	if err != nil || !clusterEnabled(info) {
		return nil
	}
	return fmt.Errorf("redis: %s is a Redis Cluster node (INFO cluster: cluster_enabled:1), which a redis:// URL (backend \"redis\") cannot use: "+
		"it reaches only that node's slots; use backend = \"redis_cluster\" with redis_cluster_nodes = [\"redis://%s\"] "+
		"(incidentctl: --state-backend redis_cluster --state-redis-cluster-nodes redis://%s, or the --from-/--to- forms)",
		addr, addr, addr)
}

// clusterEnabled reads cluster_enabled in the text of INFO cluster.
func clusterEnabled(info string) bool {
	for _, l := range strings.Split(info, "\n") {
		if v, ok := strings.CutPrefix(strings.TrimSpace(l), "cluster_enabled:"); ok {
			return strings.TrimSpace(v) == "1"
		}
	}
	return false
}
