package redis

import (
	"context"
	"fmt"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap/zaptest"

	"github.com/llm-im/incidentd/storage"
	"github.com/llm-im/incidentd/storage/redis/redistest"
	"github.com/llm-im/incidentd/storage/storetest"
)

// TestQueryPaths runs every filter of the conformance suite with walk
// budgets that force each query path: the newest-first walk, the walk
// giving up part way, and the ZINTERSTORE fallback.
func TestQueryPaths(t *testing.T) {
	srv := redistest.StartStandalone(t, redistest.Options{})
	all := storetest.Population(300, 3)
	for _, budget := range []int{1, 40, 1 << 30} {
		s, err := New(Config{URL: srv.URL(), KeyPrefix: "qp"}, zaptest.NewLogger(t), prometheus.NewRegistry())
		if err != nil {
			t.Fatal(err)
		}
		if budget == 1 {
			storetest.Put(t, s, all...)
		}
		s.budget = budget
		storetest.CheckFilters(t, s, all)
		for _, nf := range storetest.Filters(all) {
			want := storetest.Expect(all, nf.Filter)
			for _, p := range []storage.Page{{Limit: 7}, {Offset: 7, Limit: 7}, {Offset: 20, Limit: 50}, {Offset: 1000, Limit: 5}} {
				got, err := s.List(context.Background(), nf.Filter, p)
				if err != nil {
					t.Fatal(err)
				}
				lo, hi := p.Window(len(want))
				storetest.RequireSame(t, fmt.Sprintf("budget %d, %s, page %+v", budget, nf.Name, p), want[lo:hi], got)
			}
		}
		s.Close()
	}
}
