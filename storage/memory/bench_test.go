package memory_test

import (
	"context"
	"fmt"
	"testing"

	"github.com/llm-im/incidentd/dedupe"
	"github.com/llm-im/incidentd/incident"
	"github.com/llm-im/incidentd/storage"
	"github.com/llm-im/incidentd/storage/memory"
	"github.com/llm-im/incidentd/storage/storetest"
)

// BenchmarkIngest measures the write path (Lookup, Fold, Apply) over the
// realistic log in batches of 256; events/s is the figure to read.
func BenchmarkIngest(b *testing.B) {
	events := storetest.RealisticEvents(20_000, 1)
	b.ReportAllocs()
	n := 0
	for b.Loop() {
		s := memory.New()
		storetest.IngestAll(b, s, dedupe.NewFolder(storetest.RealisticWindow, storetest.NewIDs("b")), events, 256)
		n += len(events)
	}
	b.ReportMetric(float64(n)/b.Elapsed().Seconds(), "events/s")
}

// BenchmarkList measures filtered, paged queries over about 14k incidents.
func BenchmarkList(b *testing.B) {
	s := memory.New()
	storetest.IngestAll(b, s, dedupe.NewFolder(storetest.RealisticWindow, storetest.NewIDs("b")), storetest.RealisticEvents(20_000, 1), 256)
	yes := true
	for _, f := range []storetest.NamedFilter{
		{Name: "all", Filter: storage.Filter{}},
		{Name: "active", Filter: storage.Filter{Active: &yes}},
		{Name: "source+severity", Filter: storage.Filter{Sources: []string{"guardrails"}, Severities: []incident.Severity{incident.P0, incident.P1}}},
	} {
		b.Run(fmt.Sprintf("%s/page50", f.Name), func(b *testing.B) {
			for b.Loop() {
				if _, err := s.List(context.Background(), f.Filter, storage.Page{Limit: 50}); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkPrune: one step of the retention walk (storetest.BenchPrune),
// 1,000 expired incidents deleted among 100,000 kept.
func BenchmarkPrune(b *testing.B) {
	storetest.BenchPrune(b, memory.New(), 100_000, nil)
}
