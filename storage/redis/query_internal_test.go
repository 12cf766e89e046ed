package redis

import (
	"context"
	"fmt"
	"math"
	"strconv"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap/zaptest"

	"github.com/llm-im/incidentd/incident"
	"github.com/llm-im/incidentd/storage"
	"github.com/llm-im/incidentd/storage/redis/redistest"
	"github.com/llm-im/incidentd/storage/storetest"
)

// TestQueryPaths runs every filter of the conformance suite with walk
// budgets that force each query path: the newest-first walk, the walk
// giving up part way, and the ZINTERSTORE fallback; each also in read-only
// mode (no scratch keys: the fallback and the counts that store an
// intersection build it in the script's memory); on a standalone server
// and a Cluster, each with the commands of the server and with those of
// Redis 5.0 (asIfVersion, on a server without the newer commands: Count
// with SINTERSTORE instead of SINTERCARD).
func TestQueryPaths(t *testing.T) {
	t.Run("standalone", func(t *testing.T) {
		srv := redistest.StartStandalone(t, redistest.Options{})
		queryPaths(t, Config{URL: srv.URL()})
	})
	t.Run("standalone-5.0", func(t *testing.T) {
		srv := redistest.StartStandalone(t, redistest.Options{Extra: redistest.Redis50Commands})
		queryPaths(t, Config{URL: srv.URL(), asIfVersion: "5.0.0"})
	})
	t.Run("cluster", func(t *testing.T) {
		c := redistest.StartCluster(t)
		queryPaths(t, Config{Cluster: true, ClusterNodes: c.Nodes()})
	})
	t.Run("cluster-5.0", func(t *testing.T) {
		c := redistest.StartCluster(t, redistest.Redis50Commands...)
		queryPaths(t, Config{Cluster: true, ClusterNodes: c.Nodes(), asIfVersion: "5.0.0"})
	})
}

func queryPaths(t *testing.T, cfg Config) {
	cfg.KeyPrefix = "qp"
	all := storetest.Population(300, 3)
	for _, budget := range []int{1, 40, 1 << 30} {
		s, err := New(cfg, zaptest.NewLogger(t), prometheus.NewRegistry())
		if err != nil {
			t.Fatal(err)
		}
		if want := cfg.asIfVersion == ""; s.feat.sintercard != want || s.feat.zmscore != want {
			t.Fatalf("commands %v with asIfVersion %q", s.feat, cfg.asIfVersion)
		}
		if budget == 1 {
			storetest.Put(t, s, all...)
		}
		s.budget = budget
		for _, ro := range []bool{false, true} {
			if ro {
				forceReadOnly(s)
			}
			storetest.CheckFilters(t, s, all)
			for _, nf := range storetest.Filters(all) {
				want := storetest.Expect(all, nf.Filter)
				pages := []storage.Page{{Limit: 7}, {Offset: 7, Limit: 7}, {Offset: 20, Limit: 50}, {Offset: 1000, Limit: 5},
					{Offset: max(len(want)-1, 0), Limit: 3}, {Offset: len(want), Limit: 3}} // the last match, and just past it
				for _, p := range pages {
					got, err := s.List(context.Background(), nf.Filter, p)
					if err != nil {
						t.Fatal(err)
					}
					lo, hi := p.Window(len(want))
					storetest.RequireSame(t, fmt.Sprintf("budget %d, read-only %v, %s, page %+v", budget, ro, nf.Name, p), want[lo:hi], got)
				}
			}
		}
		s.Close()
	}
}

// forceReadOnly puts s in read-only query mode, as a refusal would, for
// the rest of the test.
func forceReadOnly(s *Store) { s.readOnly.until.Store(math.MaxInt64) }

// TestDeepOffsetIsAnsweredWithoutIntersecting: a page past the ids in the
// score range, or past a filter group's size, is empty without the
// script's walk or its ZINTERSTORE (an offset of 2^31 over 300k incidents
// held Redis for 1.8 s to answer nothing); a page inside still intersects.
func TestDeepOffsetIsAnsweredWithoutIntersecting(t *testing.T) {
	srv := redistest.StartStandalone(t, redistest.Options{})
	s, err := New(Config{URL: srv.URL(), KeyPrefix: "deep"}, zaptest.NewLogger(t), prometheus.NewRegistry())
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	all := storetest.Population(300, 3)
	storetest.Put(t, s, all...)
	s.budget = 1 // the walk gives up at once: a list would intersect
	ctx := context.Background()
	c := srv.Client(t)
	intersections := func() int {
		for _, l := range strings.Split(c.Info(ctx, "commandstats").Val(), "\n") {
			if rest, ok := strings.CutPrefix(l, "cmdstat_zinterstore:calls="); ok {
				n, _ := strconv.Atoi(rest[:strings.IndexByte(rest, ',')])
				return n
			}
		}
		return 0
	}
	f := storage.Filter{Severities: []incident.Severity{all[0].Severity}, Sources: []string{all[0].Source}}
	want := storetest.Expect(all, f)
	if len(want) == 0 {
		t.Fatal("the filter matches nothing")
	}
	for _, p := range []storage.Page{{Offset: 1 << 31, Limit: 1}, {Offset: len(all), Limit: 50}} {
		c.ConfigResetStat(ctx)
		got, err := s.List(ctx, f, p)
		if err != nil || len(got) != 0 {
			t.Fatalf("page %+v: %d incidents, %v; want none", p, len(got), err)
		}
		if n := intersections(); n != 0 {
			t.Errorf("page %+v: %d ZINTERSTOREs for an empty page", p, n)
		}
	}
	c.ConfigResetStat(ctx)
	got, err := s.List(ctx, f, storage.Page{Offset: len(want) - 1, Limit: 5})
	if err != nil {
		t.Fatal(err)
	}
	storetest.RequireSame(t, "the last match", want[len(want)-1:], got)
	if intersections() == 0 {
		t.Error("a page inside the matches did not intersect: the test does not see the path it guards")
	}
}
