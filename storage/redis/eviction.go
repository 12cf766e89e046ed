package redis

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"sync"

	goredis "github.com/redis/go-redis/v9"
	"go.uber.org/zap"
)

// evicting reports whether a maxmemory-policy lets Redis evict the store's
// keys: the allkeys-* policies. The volatile-* ones evict only keys with a
// TTL, and the store sets none (applied-event markers are members of one
// sorted set, scored by when they expire); with no such key they refuse
// writes at maxmemory, as noeviction does.
func evicting(policy string) bool { return strings.HasPrefix(policy, "allkeys-") }

// nodePolicy is one server's eviction setting.
type nodePolicy struct {
	addr      string // "" outside Cluster mode
	policy    string // maxmemory-policy
	maxmemory string // bytes; "0" is no limit
}

// evictionPolicies reads maxmemory-policy and maxmemory (CONFIG GET
// maxmemory*) of the server, with Sentinel of the master, in Cluster mode
// of every node that answers, replicas included (any of them may become
// the master of the deployment's slot). A server that refuses (CONFIG
// renamed or disabled, an ACL user without +config, a managed Redis) or
// does not answer is left out; its error is returned.
func evictionPolicies(ctx context.Context, rdb goredis.UniversalClient) ([]nodePolicy, []error) {
	one := func(ctx context.Context, c goredis.Cmdable, addr string) (nodePolicy, error) {
		kv, err := c.ConfigGet(ctx, "maxmemory*").Result()
		if err != nil {
			return nodePolicy{}, err
		}
		p, ok := kv["maxmemory-policy"]
		if !ok {
			return nodePolicy{}, fmt.Errorf("CONFIG GET maxmemory* has no maxmemory-policy")
		}
		return nodePolicy{addr: addr, policy: p, maxmemory: kv["maxmemory"]}, nil
	}
	cc, ok := rdb.(*goredis.ClusterClient)
	if !ok {
		p, err := one(ctx, rdb, "")
		if err != nil {
			return nil, []error{err}
		}
		return []nodePolicy{p}, nil
	}
	var mu sync.Mutex
	var out []nodePolicy
	var errs []error
	_ = cc.ForEachShard(ctx, func(ctx context.Context, c *goredis.Client) error {
		addr := c.Options().Addr
		p, err := one(ctx, c, addr)
		mu.Lock()
		defer mu.Unlock()
		if err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", addr, err))
		} else {
			out = append(out, p)
		}
		return nil
	})
	slices.SortFunc(out, func(a, b nodePolicy) int { return strings.Compare(a.addr, b.addr) })
	return out, errs
}

// checkEviction reads the servers' eviction policies (evictionPolicies),
// warns when one lets Redis evict the store's keys, and returns whether one
// does (incidentd_redis_eviction_policy_unsafe) and the policies read, for
// the log ("unknown" when none could be read). A server that refuses to
// tell is noted at debug level only: many deployments do not let clients
// read the configuration.
func (s *Store) checkEviction(ctx context.Context) (unsafe bool, policies string) {
	nodes, errs := evictionPolicies(ctx, s.rdb)
	if len(errs) > 0 {
		s.log.Debug("redis: cannot read maxmemory-policy (CONFIG GET); the eviction policy is not checked there",
			zap.Errors("errors", errs))
	}
	var seen, bad, addrs, limits []string
	for _, n := range nodes {
		if !slices.Contains(seen, n.policy) {
			seen = append(seen, n.policy)
		}
		if !evicting(n.policy) {
			continue
		}
		if !slices.Contains(bad, n.policy) {
			bad = append(bad, n.policy)
		}
		if !slices.Contains(limits, n.maxmemory) {
			limits = append(limits, n.maxmemory)
		}
		if n.addr != "" {
			addrs = append(addrs, n.addr)
		}
	}
	if len(seen) == 0 {
		return false, "unknown"
	}
	if len(bad) > 0 {
		fields := []zap.Field{zap.String("maxmemory_policy", strings.Join(bad, ", ")), zap.String("maxmemory", strings.Join(limits, ", "))}
		if len(addrs) > 0 {
			fields = append(fields, zap.Strings("nodes", addrs))
		}
		s.log.Warn("redis: the maxmemory-policy lets Redis evict any key once it reaches maxmemory: incident records, "+
			"index sets and applied-event markers would vanish without an error, leaving the store inconsistent; "+
			"set maxmemory-policy noeviction (CONFIG SET maxmemory-policy noeviction, and in the server's configuration) "+
			"and give Redis enough maxmemory for the data", fields...)
	}
	return len(bad) > 0, strings.Join(seen, ", ")
}
