package redis_test

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	goredis "github.com/redis/go-redis/v9"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest/observer"

	"github.com/llm-im/incidentd/storage/redis"
	"github.com/llm-im/incidentd/storage/redis/redistest"
)

// opened is a store's eviction gauge and its log lines about the policy.
type opened struct {
	unsafe float64
	warns  []observer.LoggedEntry // the eviction warnings
	debugs []observer.LoggedEntry // "cannot read maxmemory-policy"
	policy string                 // maxmemory_policy of "redis store opened"
}

// openForEviction opens a store on cfg, reads its gauge and log, and
// closes it.
func openForEviction(t *testing.T, cfg redis.Config) opened {
	t.Helper()
	core, logs := observer.New(zapcore.DebugLevel)
	reg := prometheus.NewRegistry()
	s, err := redis.New(cfg, zap.New(core), reg)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if problems, err := testutil.GatherAndLint(reg); err != nil || len(problems) > 0 {
		t.Fatalf("lint: %v %v", err, problems)
	}
	var o opened
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	o.unsafe = -1
	for _, mf := range mfs {
		if mf.GetName() == "incidentd_redis_eviction_policy_unsafe" {
			o.unsafe = mf.GetMetric()[0].GetGauge().GetValue()
		}
	}
	o.warns = logs.FilterMessageSnippet("maxmemory-policy lets Redis evict").All()
	o.debugs = logs.FilterMessageSnippet("cannot read maxmemory-policy").All()
	if l := logs.FilterMessage("redis store opened").All(); len(l) == 1 {
		o.policy, _ = l[0].ContextMap()["maxmemory_policy"].(string)
	}
	return o
}

// TestEvictionPolicyCheck: a store opened on a server whose
// maxmemory-policy evicts any key (allkeys-*) warns, naming the policy and
// noeviction, and sets incidentd_redis_eviction_policy_unsafe to 1; the
// volatile-* policies (the store sets no TTL) and noeviction are safe. A
// server that will not tell (CONFIG renamed away, a user without +config)
// opens quietly, the gauge at 0, a debug line saying why.
func TestEvictionPolicyCheck(t *testing.T) {
	ctx := context.Background()
	t.Run("policies", func(t *testing.T) {
		srv := redistest.StartStandalone(t, redistest.Options{})
		c := srv.Client(t)
		for _, tc := range []struct {
			policy string
			unsafe bool
		}{
			{"noeviction", false}, {"allkeys-lru", true}, {"allkeys-lfu", true}, {"allkeys-random", true},
			{"volatile-lru", false}, {"volatile-lfu", false}, {"volatile-random", false}, {"volatile-ttl", false},
		} {
			if err := c.ConfigSet(ctx, "maxmemory-policy", tc.policy).Err(); err != nil {
				t.Fatal(err)
			}
			o := openForEviction(t, redis.Config{URL: srv.URL()})
			if o.policy != tc.policy {
				t.Errorf("%s: the open line says maxmemory_policy %q", tc.policy, o.policy)
			}
			if !tc.unsafe {
				if o.unsafe != 0 || len(o.warns) != 0 {
					t.Errorf("%s: gauge %v, warnings %+v", tc.policy, o.unsafe, o.warns)
				}
				continue
			}
			if o.unsafe != 1 || len(o.warns) != 1 {
				t.Fatalf("%s: gauge %v, %d warnings", tc.policy, o.unsafe, len(o.warns))
			}
			w := o.warns[0]
			if w.Level != zapcore.WarnLevel || w.ContextMap()["maxmemory_policy"] != tc.policy || !strings.Contains(w.Message, "noeviction") {
				t.Errorf("%s: warning %q at %v with %v", tc.policy, w.Message, w.Level, w.ContextMap())
			}
		}
	})
	t.Run("config-renamed", func(t *testing.T) {
		srv := redistest.StartStandalone(t, redistest.Options{Extra: []string{"maxmemory-policy allkeys-lru", `rename-command CONFIG ""`}})
		o := openForEviction(t, redis.Config{URL: srv.URL()})
		if o.unsafe != 0 || len(o.warns) != 0 || len(o.debugs) != 1 || o.debugs[0].Level != zapcore.DebugLevel || o.policy != "unknown" {
			t.Errorf("gauge %v, warnings %+v, debug lines %+v, policy %q", o.unsafe, o.warns, o.debugs, o.policy)
		}
	})
	t.Run("acl-without-config", func(t *testing.T) {
		srv := redistest.StartStandalone(t, redistest.Options{Extra: []string{
			"maxmemory-policy allkeys-lru",
			"user reader on >r3ad ~* &* +@read +@connection +info +evalsha +eval +script",
		}})
		o := openForEviction(t, redis.Config{URL: "redis://reader:r3ad@" + srv.Addr + "/0"})
		if o.unsafe != 0 || len(o.warns) != 0 || len(o.debugs) != 1 || !strings.Contains(fmt.Sprint(o.debugs[0].ContextMap()), "NOPERM") {
			t.Errorf("gauge %v, warnings %+v, debug lines %+v", o.unsafe, o.warns, o.debugs)
		}
	})
}

// TestEvictionPolicyCheckCluster: in Cluster mode every node is checked,
// replicas included: one replica with allkeys-lfu is enough for the
// warning, which names it.
func TestEvictionPolicyCheckCluster(t *testing.T) {
	c := redistest.StartCluster(t)
	cfg := redis.Config{Cluster: true, ClusterNodes: c.Nodes()}
	if o := openForEviction(t, cfg); o.unsafe != 0 || len(o.warns) != 0 || o.policy != "noeviction" {
		t.Fatalf("default cluster: gauge %v, warnings %+v, policy %q", o.unsafe, o.warns, o.policy)
	}
	_, replica := c.MasterOf(t, "{llm-im}:incidents")
	n := goredis.NewClient(&goredis.Options{Addr: replica, DisableIdentity: true})
	defer n.Close()
	if err := n.ConfigSet(context.Background(), "maxmemory-policy", "allkeys-lfu").Err(); err != nil {
		t.Fatal(err)
	}
	// A node's CLUSTER SLOTS leaves out a replica it does not yet count as
	// synced (in a new cluster, one with a replication offset of 0), so a
	// client's view may lack it for a moment: wait until it has it.
	redistest.Eventually(t, 30*time.Second, "every node listing the replica "+replica, func() error {
		for _, a := range c.Addrs {
			cl := goredis.NewClient(&goredis.Options{Addr: a, DisableIdentity: true})
			//lint:ignore SA1019 the client's view comes from CLUSTER SLOTS, which is what this waits on.
			slots, err := cl.ClusterSlots(context.Background()).Result()
			cl.Close()
			if err != nil {
				return err
			}
			if !slices.ContainsFunc(slots, func(s goredis.ClusterSlot) bool {
				return slices.ContainsFunc(s.Nodes, func(n goredis.ClusterNode) bool { return n.Addr == replica })
			}) {
				return fmt.Errorf("%s does not list %s", a, replica)
			}
		}
		return nil
	})
	o := openForEviction(t, cfg)
	if o.unsafe != 1 || len(o.warns) != 1 {
		t.Fatalf("gauge %v, %d warnings; debug lines %+v; policy %q", o.unsafe, len(o.warns), o.debugs, o.policy)
	}
	ctx := o.warns[0].ContextMap()
	if nodes, _ := ctx["nodes"].([]any); len(nodes) != 1 || nodes[0] != replica || ctx["maxmemory_policy"] != "allkeys-lfu" {
		t.Errorf("warning fields %v, want the replica %s", ctx, replica)
	}
	if o.policy != "allkeys-lfu, noeviction" && o.policy != "noeviction, allkeys-lfu" {
		t.Errorf("open line: maxmemory_policy %q", o.policy)
	}
}
