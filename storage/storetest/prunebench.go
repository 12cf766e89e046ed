package storetest

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/llm-im/incidentd/incident"
	"github.com/llm-im/incidentd/storage"
)

// PrunePage is the page BenchPrune deletes per iteration, the worker's
// sweep page (consumer.sweepLimit).
const PrunePage = 1000

// BenchPrune measures one step of the retention walk as the worker's sweep
// takes it: each iteration writes (untimed) PrunePage Resolved incidents
// past the cutoff, each the newest of its identity, then times
// storage.PruneInactive listing and deleting them. kept incidents, written
// first, are inactive but changed after the cutoff, so every index the
// deletes touch is shared with incidents that stay. Reports incidents/s.
// around, when not nil, is called with each timed step, to observe it (a
// Redis benchmark reads the slow log around it).
func BenchPrune(b *testing.B, s storage.Store, kept int, around func(step func())) {
	ctx := context.Background()
	cutoff := Base.Add(24 * time.Hour)
	write := func(prefix string, n int, state incident.State, lastSeen func(i int) time.Time, updated time.Time) {
		b.Helper()
		for start := 0; start < n; start += PrunePage {
			batch := storage.Batch{At: Base}
			for i := start; i < min(start+PrunePage, n); i++ {
				in := SparseIncident(fmt.Sprintf("%s-%07d", prefix, i), fmt.Sprintf("v1:%s%07d", prefix, i))
				in.State, in.Source, in.Type = state, Sources[i%len(Sources)], incident.Types[i%len(incident.Types)]
				in.LastSeen, in.UpdatedAt = lastSeen(i), updated
				batch.Incidents = append(batch.Incidents, in)
			}
			if err := s.Apply(ctx, batch); err != nil {
				b.Fatalf("write %s: %v", prefix, err)
			}
		}
	}
	write("kept", kept, incident.Closed, func(i int) time.Time { return At(int64(i)) }, cutoff.Add(time.Hour))

	deleted := 0
	b.ResetTimer()
	for round := range b.N {
		b.StopTimer()
		prefix := fmt.Sprintf("old%d", round)
		write(prefix, PrunePage, incident.Resolved, func(i int) time.Time { return cutoff.Add(-time.Duration(i+1) * time.Second) }, cutoff.Add(-time.Minute))
		var n int
		var err error
		step := func() { n, _, err = storage.PruneInactive(ctx, s, cutoff, storage.PruneCursor{}, PrunePage) }
		b.StartTimer()
		if around != nil {
			around(step)
		} else {
			step()
		}
		if err != nil || n != PrunePage {
			b.Fatalf("prune step deleted %d, %v; want %d", n, err, PrunePage)
		}
		deleted += n
	}
	b.ReportMetric(float64(deleted)/b.Elapsed().Seconds(), "incidents/s")
}
