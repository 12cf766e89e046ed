package ctl_test

import (
	"context"
	"strconv"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	goredis "github.com/redis/go-redis/v9"
	"go.uber.org/zap/zaptest"

	"github.com/llm-im/incidentd/config"
	"github.com/llm-im/incidentd/ctl"
	"github.com/llm-im/incidentd/incident"
	"github.com/llm-im/incidentd/storage/backend"
	"github.com/llm-im/incidentd/storage/redis/redistest"
)

// TestVerifyRedisSets: verify checks llm-im:incidents and every
// llm-im:fingerprint:{fp} against the records, on standalone (default
// prefix, and a prefix holding SCAN MATCH's pattern characters) and Cluster
// ({prefix} hash tag): it passes on a clean store, fails (exit 4, naming
// the set) on each kind of corruption made with plain Redis commands, and
// passes again once it is undone.
func TestVerifyRedisSets(t *testing.T) {
	onRedis(t, "vc", checkVerifySets)
	t.Run("standalone-glob-prefix", func(t *testing.T) {
		srv := redistest.StartStandalone(t, redistest.Options{})
		c := srv.Client(t)
		st := config.Default().State
		st.Backend, st.RedisURL, st.KeyPrefix = config.BackendRedis, srv.URL(), `t*[x]?`
		// A neighbour whose keys the pattern would match, unescaped.
		c.SAdd(t.Context(), "tAAxB:fingerprint:v1:neighbour", "n1")
		checkVerifySets(t, st, c, st.KeyPrefix, []string{"--state-backend", "redis", "--state-redis-url", srv.URL(), "--state-key-prefix", st.KeyPrefix})
	})
}

// onRedis runs check on a standalone server (default prefix) and on a
// Cluster (key prefix clusterPrefix, hash-tagged), each in a subtest, with
// the store's configuration, a client of the deployment, the prefix its
// keys start with and the incidentctl flags that name the store.
func onRedis(t *testing.T, clusterPrefix string, check func(t *testing.T, st config.StateConfig, c goredis.UniversalClient, prefix string, flags []string)) {
	t.Run("standalone", func(t *testing.T) {
		srv := redistest.StartStandalone(t, redistest.Options{})
		st := config.Default().State
		st.Backend, st.RedisURL = config.BackendRedis, srv.URL()
		check(t, st, srv.Client(t), "llm-im", []string{"--state-backend", "redis", "--state-redis-url", srv.URL()})
	})
	t.Run("cluster", func(t *testing.T) {
		if testing.Short() {
			t.Skip("a cluster takes a few seconds to form; skipped with -short")
		}
		cl := redistest.StartCluster(t)
		st := config.Default().State
		st.Backend, st.RedisClusterNodes, st.KeyPrefix = config.BackendRedisCluster, cl.Nodes(), clusterPrefix
		c := goredis.NewClusterClient(&goredis.ClusterOptions{Addrs: cl.Addrs, DisableIdentity: true})
		t.Cleanup(func() { _ = c.Close() })
		check(t, st, c, "{"+clusterPrefix+"}", []string{"--state-backend", "redis_cluster", "--state-redis-cluster-nodes", strings.Join(cl.Nodes(), ","), "--state-key-prefix", clusterPrefix})
	})
}

func checkVerifySets(t *testing.T, st config.StateConfig, c goredis.UniversalClient, prefix string, flags []string) {
	ctx := t.Context()
	s, err := backend.Open(st, zaptest.NewLogger(t), prometheus.NewRegistry())
	if err != nil {
		t.Fatal(err)
	}
	fillStore(t, s, 400)
	all := allIncidents(t, s)
	_ = s.Close()
	var a, b *incident.Incident // two incidents of different identities
	for _, in := range all {
		if a == nil {
			a = in
		} else if in.Fingerprint != a.Fingerprint {
			b = in
			break
		}
	}
	if b == nil {
		t.Fatal("fixture has one identity")
	}
	verify := func() result { return runCtl(t, nil, "", append([]string{"verify"}, flags...)...) }
	r := verify()
	mustCode(t, r, ctl.ExitOK)
	if want := prefix + ":incidents and "; !strings.Contains(r.out, want) || !strings.Contains(r.out, prefix+":fingerprint:* sets checked") {
		t.Fatalf("verify of a clean store does not say it checked the sets:\n%s", r.out)
	}

	all1 := prefix + ":incidents"
	fpA, fpB := prefix+":fingerprint:"+a.Fingerprint, prefix+":fingerprint:"+b.Fingerprint
	stale := prefix + ":fingerprint:v1:00000000000000000000000000000000"
	for _, tc := range []struct {
		name         string
		break_, undo [][]any
		want         string
	}{
		{"stale id in the all set", [][]any{{"SADD", all1, "ghost"}}, [][]any{{"SREM", all1, "ghost"}},
			`set ` + all1 + `: holds "ghost", which no listed incident has`},
		{"id missing from the all set", [][]any{{"SREM", all1, a.ID}}, [][]any{{"SADD", all1, a.ID}},
			"set " + all1 + ": misses " + a.ID},
		{"id of another identity in a fingerprint set", [][]any{{"SADD", fpA, b.ID}}, [][]any{{"SREM", fpA, b.ID}},
			"set " + fpA + ": holds " + b.ID + ", whose fingerprint is " + b.Fingerprint},
		{"unknown id in a fingerprint set", [][]any{{"SADD", fpB, "ghost"}}, [][]any{{"SREM", fpB, "ghost"}},
			`set ` + fpB + `: holds "ghost", which no listed incident has`},
		{"id missing from its fingerprint set", [][]any{{"SREM", fpA, a.ID}}, [][]any{{"SADD", fpA, a.ID}},
			"set " + fpA + ": misses " + a.ID},
		{"set of a fingerprint no incident has", [][]any{{"SADD", stale, a.ID}}, [][]any{{"DEL", stale}},
			"set " + stale + ": no listed incident has fingerprint v1:00000000000000000000000000000000 (a stale set)"},
		{"stale fingerprint key that is not a set", [][]any{{"SET", stale, "x"}}, [][]any{{"DEL", stale}},
			"set " + stale + ": no listed incident has fingerprint v1:00000000000000000000000000000000, and the key is not a set (a string)"},
		{"stale fingerprint key that is a hash", [][]any{{"HSET", stale, "f", "v"}}, [][]any{{"DEL", stale}},
			"set " + stale + ": no listed incident has fingerprint v1:00000000000000000000000000000000, and the key is not a set (a hash)"},
		{"fingerprint key that is not a set", [][]any{{"RENAME", fpB, fpB + "-saved"}, {"SET", fpB, "x"}},
			[][]any{{"DEL", fpB}, {"RENAME", fpB + "-saved", fpB}},
			"set " + fpB + ": cannot be read as a set: WRONGTYPE"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			redisDo(ctx, t, c, tc.break_)
			r := verify()
			redisDo(ctx, t, c, tc.undo)
			t.Logf("verify output:\n%s", r.out)
			mustCode(t, r, ctl.ExitInconsistent)
			if !inconsistentRE.MatchString(r.err) {
				t.Errorf("stderr %q, want it to match %s", r.err, inconsistentRE)
			}
			if !strings.Contains(r.out, "FAIL "+tc.want) {
				t.Fatalf("verify output lacks %q:\n%s", "FAIL "+tc.want, r.out)
			}
			if strings.Contains(tc.want, "not a set") && strings.Contains(r.out, "(a stale set)") {
				t.Fatalf("verify calls a key that is not a set a stale set:\n%s", r.out)
			}
			mustCode(t, verify(), ctl.ExitOK)
		})
	}
}

// redisDo runs commands as redis-cli would send them.
func redisDo(ctx context.Context, t *testing.T, c goredis.UniversalClient, cmds [][]any) {
	t.Helper()
	for _, args := range cmds {
		if err := c.Do(ctx, args...).Err(); err != nil {
			t.Fatalf("%v: %v", args, err)
		}
	}
}

// TestVerifyRedisIndexSets: on Redis verify reads the single-field index
// sets (SSCAN) and llm-im:z:incidents (ZSCAN) instead of walking List
// through each filter, and reports each kind of corruption, made with plain
// Redis commands, with a List walk's FAIL lines (exit 4); a clean store
// passes, before and after. Standalone and Cluster ({prefix} hash tag, the
// scans on the slot's master).
func TestVerifyRedisIndexSets(t *testing.T) {
	onRedis(t, "vi", checkVerifyIndexSets)
}

func checkVerifyIndexSets(t *testing.T, st config.StateConfig, c goredis.UniversalClient, prefix string, flags []string) {
	ctx := t.Context()
	s, err := backend.Open(st, zaptest.NewLogger(t), prometheus.NewRegistry())
	if err != nil {
		t.Fatal(err)
	}
	fillStore(t, s, 400)
	all := allIncidents(t, s)
	_ = s.Close()
	a := all[len(all)/2]
	other := incident.States[0]
	for _, s := range incident.States {
		if s != a.State {
			other = s
			break
		}
	}
	verify := func() result { return runCtl(t, nil, "", append([]string{"verify"}, flags...)...) }
	r := verify()
	mustCode(t, r, ctl.ExitOK)
	if want := "indexes read directly, not with List: " + prefix + ":z:incidents"; !strings.Contains(r.out, want) {
		t.Fatalf("verify of a clean store does not say it read the indexes (%q):\n%s", want, r.out)
	}

	z := prefix + ":z:incidents"
	sev := prefix + ":severity:" + a.Severity.String()
	src := prefix + ":source:" + a.Source
	us := a.LastSeen.UnixMicro()
	for _, tc := range []struct {
		name         string
		break_, undo [][]any
		want         string
	}{
		{"id missing from a severity set", [][]any{{"SREM", sev, a.ID}}, [][]any{{"SADD", sev, a.ID}},
			"index severity=" + a.Severity.String() + ": misses " + a.ID},
		{"stale id in a state set", [][]any{{"SADD", prefix + ":state:" + other.String(), a.ID}}, [][]any{{"SREM", prefix + ":state:" + other.String(), a.ID}},
			"index state=" + other.String() + ": lists " + a.ID + ", whose record does not match"},
		{"unknown id in a source set", [][]any{{"SADD", src, "ghost"}}, [][]any{{"SREM", src, "ghost"}},
			"index source=" + a.Source + ": lists ghost, which is not among the records read"},
		{"wrong score in the order", [][]any{{"ZADD", z, "XX", us + 1, a.ID}}, [][]any{{"ZADD", z, "XX", us, a.ID}},
			"index all: " + z + " scores " + a.ID + " at " + strconv.FormatInt(us+1, 10) + ", its last_seen is " + strconv.FormatInt(us, 10)},
		{"extra member in the order", [][]any{{"ZADD", z, us, "ghost"}}, [][]any{{"ZREM", z, "ghost"}},
			"index all: lists ghost, which is not among the records read"},
		{"id missing from the order", [][]any{{"ZREM", z, a.ID}}, [][]any{{"ZADD", z, us, a.ID}},
			"index all: misses " + a.ID},
		{"severity key that is not a set", [][]any{{"RENAME", sev, sev + "-saved"}, {"SET", sev, "x"}},
			[][]any{{"DEL", sev}, {"RENAME", sev + "-saved", sev}},
			"index severity=" + a.Severity.String() + ": cannot be read: redis sscan " + sev + ": WRONGTYPE"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			redisDo(ctx, t, c, tc.break_)
			r := verify()
			redisDo(ctx, t, c, tc.undo)
			t.Logf("verify output:\n%s", r.out)
			mustCode(t, r, ctl.ExitInconsistent)
			if !inconsistentRE.MatchString(r.err) {
				t.Errorf("stderr %q, want it to match %s", r.err, inconsistentRE)
			}
			if !strings.Contains(r.out, "FAIL "+tc.want) {
				t.Fatalf("verify output lacks %q:\n%s", "FAIL "+tc.want, r.out)
			}
			mustCode(t, verify(), ctl.ExitOK)
		})
	}
}
