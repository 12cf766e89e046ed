package redis_test

import (
	"slices"
	"testing"
	"time"

	"github.com/llm-im/incidentd/dedupe"
	"github.com/llm-im/incidentd/incident"
	"github.com/llm-im/incidentd/loadgen"
	"github.com/llm-im/incidentd/storage"
	"github.com/llm-im/incidentd/storage/redis"
	"github.com/llm-im/incidentd/storage/redis/redistest"
	"github.com/llm-im/incidentd/storage/storetest"
)

// TestScanIndex: ScanIndex of each single-field filter yields the ids List
// finds for it (Active false: the sets of every inactive state), ScanOrder
// every incident scored by its last_seen in unix µs, and a filter on two
// fields or with a time bound is refused.
func TestScanIndex(t *testing.T) {
	srv := redistest.StartStandalone(t, redistest.Options{})
	s := open(t, redis.Config{URL: srv.URL(), KeyPrefix: uniquePrefix(t)})
	cfg := loadgen.DefaultConfig()
	cfg.AckRatio, cfg.ResolveRatio = 0.1, 0.2
	for _, b := range loadgen.Batches(loadgen.New(cfg), 6, 100) {
		if _, _, err := storage.Ingest(ctx, s, dedupe.NewFolder(15*time.Minute, storetest.NewIDs("si")), b, time.Now); err != nil {
			t.Fatal(err)
		}
	}
	all, err := s.List(ctx, storage.Filter{}, storage.Page{})
	if err != nil {
		t.Fatal(err)
	}
	yes, no := true, false
	filters := []storage.Filter{{Active: &yes}, {Active: &no}, {Sources: []string{all[0].Source}}}
	for _, st := range incident.States {
		filters = append(filters, storage.Filter{States: []incident.State{st}})
	}
	for _, sv := range incident.Severities {
		filters = append(filters, storage.Filter{Severities: []incident.Severity{sv}})
	}
	for _, f := range filters {
		var want, got []string
		for _, in := range all {
			if f.Match(in) {
				want = append(want, in.ID)
			}
		}
		if err := s.ScanIndex(ctx, f, func(id string) { got = append(got, id) }); err != nil {
			t.Fatal(err)
		}
		slices.Sort(want)
		slices.Sort(got)
		if !slices.Equal(slices.Compact(got), want) {
			t.Errorf("ScanIndex(%+v): %d ids, List finds %d", f, len(got), len(want))
		}
	}
	scores := map[string]float64{}
	if err := s.ScanOrder(ctx, func(id string, score float64) { scores[id] = score }); err != nil {
		t.Fatal(err)
	}
	if len(scores) != len(all) {
		t.Errorf("ScanOrder: %d members, %d incidents", len(scores), len(all))
	}
	for _, in := range all {
		if sc, ok := scores[in.ID]; !ok || sc != float64(in.LastSeen.UnixMicro()) {
			t.Errorf("ScanOrder: %s scored %v (%t), last_seen %d µs", in.ID, sc, ok, in.LastSeen.UnixMicro())
		}
	}
	for _, f := range []storage.Filter{{}, {Severities: []incident.Severity{incident.P1}, Sources: []string{"x"}}, {Active: &yes, Since: time.Now()}} {
		if err := s.ScanIndex(ctx, f, func(string) {}); err == nil {
			t.Errorf("ScanIndex(%+v) answers no error", f)
		}
	}
}
