package storetest

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"runtime"
	"sync"
	"testing"
	"time"

	"github.com/llm-im/incidentd/dedupe"
	"github.com/llm-im/incidentd/incident"
	"github.com/llm-im/incidentd/storage"
)

// testConflictWritesNothing: a batch with a stale version, a re-used event
// id or an identity another writer opened fails with ErrConflict and writes
// none of its incidents or markers, not even the valid ones.
func testConflictWritesNothing(t *testing.T, h Harness) {
	ctx := context.Background()
	s := h.Open(t)
	a1 := SparseIncident("inc-a", "v1:a")
	a2 := Update(a1, func(in *incident.Incident) { in.OccurrenceCount = 2 })
	Put(t, s, a1, a2)
	fresh := func() *incident.Incident { return SparseIncident("inc-new", "v1:new") }
	with := func(in *incident.Incident, change func(*incident.Incident)) *incident.Incident {
		c := in.Clone()
		change(c)
		return c
	}
	tests := []struct {
		name   string
		bad    *incident.Incident
		events []string
	}{
		{"stale version", Update(a1, func(*incident.Incident) {}), nil},
		{"version skips ahead", with(a2, func(in *incident.Incident) { in.Version = 4 }), nil},
		{"create over an existing id", with(a1, func(in *incident.Incident) { in.Version = 1 }), nil},
		{"update of an unknown incident", with(a1, func(in *incident.Incident) { in.ID, in.Version = "inc-ghost", 2 }), nil},
		{"event already applied", Update(a2, func(*incident.Incident) {}), []string{"put:inc-a:v1"}},
		{"identity opened by another writer", SparseIncident("inc-a-twin", "v1:a"), nil},
		{"reopen of an incident that is no longer the latest", with(SparseIncident("inc-a-next", "v1:a"), func(in *incident.Incident) { in.ReopenOf = "inc-older" }), nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b := storage.Batch{Incidents: []*incident.Incident{fresh(), tt.bad}, EventIDs: append([]string{"e-new"}, tt.events...), At: Base}
			if err := s.Apply(ctx, b); !errors.Is(err, storage.ErrConflict) {
				t.Fatalf("apply = %v, want ErrConflict", err)
			}
			requireOnly(t, s, a2, "e-new")
		})
	}
	// The store still takes a valid batch, reopen included.
	a3 := Update(a2, func(in *incident.Incident) { in.State = incident.Resolved })
	next := with(SparseIncident("inc-a-next", "v1:a"), func(in *incident.Incident) { in.ReopenOf = "inc-a" })
	if err := s.Apply(ctx, storage.Batch{Incidents: []*incident.Incident{fresh(), a3, next}, EventIDs: []string{"e-new"}, At: Base}); err != nil {
		t.Fatalf("valid batch after conflicts: %v", err)
	}
	requireStored(t, s, fresh(), a3, next)
}

// requireOnly checks that a is the only incident stored and event is not
// marked applied.
func requireOnly(t *testing.T, s storage.Store, a *incident.Incident, event string) {
	t.Helper()
	RequireSame(t, "stored after a conflict", []*incident.Incident{a}, ListAll(t, s))
	if _, err := s.Get(context.Background(), "inc-new"); !errors.Is(err, storage.ErrNotFound) {
		t.Fatalf("get of the conflicting batch's new incident = %v, want ErrNotFound", err)
	}
	snap, err := s.Lookup(context.Background(), []string{"v1:new", a.Fingerprint}, []string{event})
	if err != nil {
		t.Fatal(err)
	}
	if len(snap.Latest) != 1 || snap.Applied[event] {
		t.Fatalf("lookup after a conflict: %d latest, applied %v", len(snap.Latest), snap.Applied)
	}
	RequireEqual(t, "lookup after a conflict", a, snap.Latest[a.Fingerprint])
}

// lifecycleEvents returns triggers, repeated ids, acknowledges, resolves and
// reopens over a few identities.
func lifecycleEvents() []dedupe.Keyed {
	var evs []incident.Event
	for k := range 5 {
		key := fmt.Sprintf("svc-%d", k)
		id := func(n int) string { return fmt.Sprintf("lc-%d-%d", k, n) }
		base := int64(k * 10_000)
		evs = append(evs,
			Trigger(id(1), key, base+1_000, incident.P3),
			Trigger(id(2), key, base+500, incident.P1),   // older than the first: out of order
			Trigger(id(1), key, base+1_000, incident.P3), // same id: a redelivery
			Control(id(3), key, incident.Acknowledge, base+2_000),
		)
		if k%2 == 0 {
			evs = append(evs,
				Control(id(4), key, incident.Resolve, base+3_000),
				Trigger(id(5), key, base+2_500, incident.P2), // late: predates the resolve
				Trigger(id(6), key, base+4_000, incident.P0), // reopens
			)
		}
	}
	return Key(evs...)
}

// testIdempotentReingest: ingesting the same events again, in any batching
// and order, changes nothing.
func testIdempotentReingest(t *testing.T, h Harness) {
	s := h.Open(t)
	events := lifecycleEvents()
	IngestAll(t, s, dedupe.NewFolder(dedupe.DefaultWindow, NewIDs("first")), events, 4)
	before := ListAll(t, s)
	reversed := make([]dedupe.Keyed, len(events))
	for i := range events {
		reversed[len(events)-1-i] = events[i]
	}
	for _, again := range []struct {
		name   string
		events []dedupe.Keyed
		batch  int
	}{{"same batches", events, 4}, {"one batch", events, len(events)}, {"reversed, one by one", reversed, 1}} {
		st := IngestAll(t, s, dedupe.NewFolder(dedupe.DefaultWindow, NewIDs("again")), again.events, again.batch)
		if st.Applied != 0 || st.Duplicates != len(events) {
			t.Fatalf("%s: re-ingest applied %d, duplicates %d; want 0, %d", again.name, st.Applied, st.Duplicates, len(events))
		}
		RequireSame(t, again.name+": incidents after re-ingest", before, ListAll(t, s))
	}
}

// testConcurrentWriters: four writers ingest overlapping, repeated event
// sets (shared event ids) of 20 identities at once; in the end each identity
// has exactly one open incident that counted each distinct trigger once.
func testConcurrentWriters(t *testing.T, h Harness) {
	const identities, perIdentity, writers = 20, 8, 4
	s := h.Open(t)
	var events []incident.Event
	for k := range identities {
		for j := range perIdentity {
			events = append(events, Trigger(fmt.Sprintf("cw-%02d-%d", k, j), fmt.Sprintf("cw-%02d", k),
				int64(j*1_000+k), incident.Severities[(k+j)%len(incident.Severities)]))
		}
	}
	keyed := Key(events...)
	ys := yielding{s}
	var wg sync.WaitGroup
	errs := make(chan error, writers)
	start := make(chan struct{}) // all writers race from the first batch on
	for w := range writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			rng := rand.New(rand.NewPCG(uint64(w), 99))
			f := dedupe.NewFolder(dedupe.DefaultWindow, NewIDs(fmt.Sprintf("w%d", w)))
			for range 2 {
				mine := append([]dedupe.Keyed(nil), keyed...)
				rng.Shuffle(len(mine), func(i, j int) { mine[i], mine[j] = mine[j], mine[i] })
				size := 7 + w*3
				for lo := 0; lo < len(mine); lo += size {
					if err := ingestRedelivering(ys, f, mine[lo:min(lo+size, len(mine))]); err != nil {
						errs <- fmt.Errorf("writer %d: %w", w, err)
						return
					}
				}
			}
		}()
	}
	close(start)
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	got := ListAll(t, s)
	if len(got) != identities {
		t.Fatalf("%d incidents for %d identities", len(got), identities)
	}
	for _, in := range got {
		if !in.Active() || in.OccurrenceCount != perIdentity {
			t.Errorf("%s (%s): state %s, occurrence_count %d; want active, %d", in.ID, in.DedupKey, in.State, in.OccurrenceCount, perIdentity)
		}
		open, err := s.FindOpen(context.Background(), in.Fingerprint)
		if err != nil || open.ID != in.ID {
			t.Errorf("find open %s = %v, %v; want %s", in.Fingerprint, open, err, in.ID)
		}
	}
	RequireFolded(t, FoldAll(keyed), got)
}

// ingestRedelivering runs storage.Ingest until the batch is applied, as the
// worker does through redeliveries when Ingest runs out of conflict retries.
func ingestRedelivering(s storage.Store, f *dedupe.Folder, batch []dedupe.Keyed) error {
	for range 100 {
		_, _, err := storage.Ingest(context.Background(), s, f, batch, func() time.Time { return Base })
		if !errors.Is(err, storage.ErrConflict) {
			return err
		}
	}
	return fmt.Errorf("batch still conflicting after 100 redeliveries")
}

// yielding widens the window between a writer's Lookup and its Apply so
// that fast backends see the races slow ones do.
type yielding struct{ storage.Store }

func (y yielding) Lookup(ctx context.Context, fps, ids []string) (storage.Snapshot, error) {
	snap, err := y.Store.Lookup(ctx, fps, ids)
	runtime.Gosched()
	return snap, err
}
