package ctl

import (
	"fmt"
	"path/filepath"
	"strings"

	"github.com/llm-im/incidentd/config"
	"github.com/llm-im/incidentd/storage/redis/redisurl"
)

// describeStore names where the store of st is, for the summary line of
// import and migrate: a Pebble store's absolute path (marked as the
// default when it is state.path's default, ./data/pebble of the current
// directory), a Redis deployment's addresses, database and key
// prefix. It never shows a password.
func describeStore(st config.StateConfig) string {
	switch st.Backend {
	case config.BackendPebble:
		p, err := filepath.Abs(st.Path)
		if err != nil {
			p = st.Path
		}
		if filepath.Clean(st.Path) == filepath.Clean(config.Default().State.Path) {
			return fmt.Sprintf("pebble %s (the default state.path, under the current directory)", p)
		}
		return "pebble " + p
	case config.BackendRedis:
		u, err := redisurl.Parse(st.RedisURL)
		if err != nil {
			return "redis " + redisurl.Redact(st.RedisURL)
		}
		if u.Sentinel {
			return fmt.Sprintf("redis sentinel %s master %s db %d, key prefix %s", strings.Join(u.Addrs, ","), u.MasterName, u.DB, st.KeyPrefix)
		}
		return fmt.Sprintf("redis %s db %d, key prefix %s", u.Addrs[0], u.DB, st.KeyPrefix)
	case config.BackendRedisCluster:
		u, err := redisurl.ParseClusterNodes(st.RedisClusterNodes)
		if err != nil {
			return "redis_cluster"
		}
		return fmt.Sprintf("redis_cluster %s, key prefix {%s}", strings.Join(u.Addrs, ","), st.KeyPrefix)
	}
	return string(st.Backend)
}
