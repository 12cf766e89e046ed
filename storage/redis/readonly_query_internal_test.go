package redis

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest/observer"

	"github.com/llm-im/incidentd/incident"
	"github.com/llm-im/incidentd/storage"
	"github.com/llm-im/incidentd/storage/redis/redistest"
	"github.com/llm-im/incidentd/storage/storetest"
)

// readerACL is a user that may read, run scripts and nothing else: what an
// operator gives incidentctl get, list or verify.
const readerACL = "user reader on >r3ad ~* &* +@read +@connection +info +evalsha +eval +script"

// TestQueriesWhereRedisRefusesWrites: List and Count of every filter of
// the conformance suite, paged, with a walk budget of 1 so that every
// filtered list takes the fallback that stores an intersection (as do the
// counts with since/until or a field of several values), answer on a
// server that refuses the scratch keys exactly as a writer's store answers
// on the normal path: a read-only ACL user, a read-only replica, a server
// at maxmemory with noeviction, and a read-only ACL user on a Cluster. The
// refusal is counted once under its reason (the store then keeps to
// read-only mode) and logged once.
func TestQueriesWhereRedisRefusesWrites(t *testing.T) {
	all := storetest.Population(300, 7)
	t.Run("acl-reader", func(t *testing.T) {
		srv := redistest.StartStandalone(t, redistest.Options{Extra: []string{readerACL}})
		w := openStore(t, Config{URL: srv.URL()}, nil, nil)
		storetest.Put(t, w, all...)
		want := transcript(t, w, all)
		r, logs, reg := openObserved(t, Config{URL: "redis://reader:r3ad@" + srv.Addr + "/0"})
		requireTranscript(t, want, transcript(t, r, all))
		requireRefused(t, reg, logs, refusedACL, zapcore.InfoLevel)
	})
	t.Run("replica", func(t *testing.T) {
		master := redistest.StartStandalone(t, redistest.Options{Extra: []string{"repl-diskless-sync-delay 0"}})
		replica := redistest.StartStandalone(t, redistest.Options{Extra: []string{"replicaof " + strings.Replace(master.Addr, ":", " ", 1)}})
		w := openStore(t, Config{URL: master.URL()}, nil, nil)
		storetest.Put(t, w, all...)
		want := transcript(t, w, all)
		waitReplicated(t, master, replica)
		r, logs, reg := openObserved(t, Config{URL: replica.URL()})
		requireTranscript(t, want, transcript(t, r, all))
		requireRefused(t, reg, logs, refusedReplica, zapcore.InfoLevel)
	})
	t.Run("oom", func(t *testing.T) {
		srv := redistest.StartStandalone(t, redistest.Options{Extra: []string{"maxmemory-policy noeviction"}})
		s, logs, reg := openObserved(t, Config{URL: srv.URL()})
		storetest.Put(t, s, all...)
		want := transcript(t, s, all)
		if err := srv.Client(t).ConfigSet(context.Background(), "maxmemory", "1").Err(); err != nil {
			t.Fatal(err)
		}
		requireTranscript(t, want, transcript(t, s, all))
		requireRefused(t, reg, logs, refusedOOM, zapcore.WarnLevel)
	})
	t.Run("cluster-acl-reader", func(t *testing.T) {
		c := redistest.StartCluster(t, readerACL+" +cluster +command")
		w := openStore(t, Config{Cluster: true, ClusterNodes: c.Nodes()}, nil, nil)
		storetest.Put(t, w, all...)
		want := transcript(t, w, all)
		r, logs, reg := openObserved(t, Config{Cluster: true, ClusterNodes: c.Nodes(), Username: "reader", Password: "r3ad"})
		requireTranscript(t, want, transcript(t, r, all))
		requireRefused(t, reg, logs, refusedACL, zapcore.InfoLevel)
	})
}

// TestReadOnlyQueriesOnInconsistentIndexes: with an id in two sets of one
// field (a stale index, as incidentctl verify reports them), read-only mode
// still answers as the normal path does: the union of a field's sets
// counts the id once.
func TestReadOnlyQueriesOnInconsistentIndexes(t *testing.T) {
	srv := redistest.StartStandalone(t, redistest.Options{})
	all := storetest.Population(90, 11)
	s := openStore(t, Config{URL: srv.URL()}, nil, nil)
	storetest.Put(t, s, all...)
	ctx := context.Background()
	c := srv.Client(t)
	for _, in := range all[:10] {
		for _, st := range []string{"Detected", "Resolved"} {
			if err := c.SAdd(ctx, "llm-im:state:"+st, in.ID).Err(); err != nil {
				t.Fatal(err)
			}
		}
		if err := c.SAdd(ctx, "llm-im:severity:P0", in.ID).Err(); err != nil {
			t.Fatal(err)
		}
	}
	want := answers(t, s, all, false)
	forceReadOnly(s)
	requireTranscript(t, want, answers(t, s, all, false))
}

// openStore opens a store closed in t.Cleanup, with a walk budget of 1.
func openStore(t *testing.T, cfg Config, log *zap.Logger, reg prometheus.Registerer) *Store {
	t.Helper()
	if log == nil {
		log = zap.NewNop()
	}
	s, err := New(cfg, log, reg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close() })
	s.budget = 1
	return s
}

// openObserved opens a store whose log lines and metrics the test reads.
func openObserved(t *testing.T, cfg Config) (*Store, *observer.ObservedLogs, *prometheus.Registry) {
	t.Helper()
	core, logs := observer.New(zapcore.DebugLevel)
	reg := prometheus.NewRegistry()
	return openStore(t, cfg, zap.New(core), reg), logs, reg
}

// transcript is every answer of List (whole and in pages) and Count for
// the filters of the conformance suite, one line each; the lists are also
// checked against storetest.Expect.
func transcript(t *testing.T, s *Store, all []*incident.Incident) []string {
	t.Helper()
	return answers(t, s, all, true)
}

// answers is transcript, checked against storetest.Expect or not.
func answers(t *testing.T, s *Store, all []*incident.Incident, expect bool) []string {
	t.Helper()
	ctx := context.Background()
	var out []string
	for _, nf := range storetest.Filters(all) {
		want := storetest.Expect(all, nf.Filter)
		for _, p := range []storage.Page{{}, {Limit: 7}, {Offset: 7, Limit: 7}, {Offset: 20, Limit: 50}, {Offset: 1000, Limit: 5}} {
			got, err := s.List(ctx, nf.Filter, p)
			if err != nil {
				t.Fatalf("%s: list %+v: %v", nf.Name, p, err)
			}
			if expect {
				lo, hi := p.Window(len(want))
				storetest.RequireSame(t, fmt.Sprintf("%s, page %+v", nf.Name, p), want[lo:hi], got)
			}
			ids := make([]string, len(got))
			for i, in := range got {
				ids[i] = in.ID
			}
			out = append(out, fmt.Sprintf("%s page %+v: %v", nf.Name, p, ids))
		}
		n, err := s.Count(ctx, nf.Filter)
		if err != nil {
			t.Fatalf("%s: count: %v", nf.Name, err)
		}
		out = append(out, fmt.Sprintf("%s count: %d", nf.Name, n))
	}
	return out
}

func requireTranscript(t *testing.T, want, got []string) {
	t.Helper()
	if len(want) != len(got) {
		t.Fatalf("%d answers, want %d", len(got), len(want))
	}
	for i := range want {
		if want[i] != got[i] {
			t.Fatalf("answer %d:\nwant %s\ngot  %s", i, want[i], got[i])
		}
	}
}

// requireRefused checks that Redis refused the scratch keys once (the
// store then kept to read-only mode), counted under reason, and that the
// store said so in one line at level.
func requireRefused(t *testing.T, reg *prometheus.Registry, logs *observer.ObservedLogs, reason string, level zapcore.Level) {
	t.Helper()
	for _, r := range refusalReasons {
		want := 0.0
		if r == reason {
			want = 1
		}
		got, err := counterValue(reg, "incidentd_redis_query_write_refusals_total", r)
		if err != nil || got != want {
			t.Errorf("refusals{reason=%q} = %v (%v), want %v", r, got, err, want)
		}
	}
	lines := logs.FilterMessageSnippet("refused a query's scratch keys").All()
	if len(lines) != 1 || lines[0].Level != level || lines[0].ContextMap()["reason"] != reason {
		t.Errorf("log lines about the refusal: %+v, want one at %v with reason %s", lines, level, reason)
	}
	if problems, err := testutil.GatherAndLint(reg); err != nil || len(problems) > 0 {
		t.Errorf("lint: %v %v", err, problems)
	}
}

func counterValue(reg *prometheus.Registry, name, reason string) (float64, error) {
	mfs, err := reg.Gather()
	if err != nil {
		return 0, err
	}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
		for _, m := range mf.GetMetric() {
			for _, l := range m.GetLabel() {
				if l.GetName() == "reason" && l.GetValue() == reason {
					return m.GetCounter().GetValue(), nil
				}
			}
		}
	}
	return 0, fmt.Errorf("no %s{reason=%q}", name, reason)
}

// waitReplicated waits until the replica is linked and has every write of
// the master so far.
func waitReplicated(t *testing.T, master, replica *redistest.Server) {
	t.Helper()
	ctx := context.Background()
	m, r := master.Client(t), replica.Client(t)
	redistest.Eventually(t, 30*time.Second, "the replica in sync", func() error {
		mi, err := m.Info(ctx, "replication").Result()
		if err != nil {
			return err
		}
		ri, err := r.Info(ctx, "replication").Result()
		if err != nil {
			return err
		}
		if !strings.Contains(ri, "master_link_status:up") {
			return fmt.Errorf("replica link down")
		}
		mo, ro := infoField(mi, "master_repl_offset"), infoField(ri, "slave_repl_offset")
		if mo == "" || mo != ro {
			return fmt.Errorf("master offset %q, replica offset %q", mo, ro)
		}
		return nil
	})
}

// infoField is the value of one field of an INFO reply, "" when absent.
func infoField(info, name string) string {
	for _, l := range strings.Split(info, "\n") {
		if v, ok := strings.CutPrefix(strings.TrimSpace(l), name+":"); ok {
			return v
		}
	}
	return ""
}
