package storetest

import (
	"context"
	"testing"
	"time"

	"github.com/llm-im/incidentd/dedupe"
	"github.com/llm-im/incidentd/incident"
	"github.com/llm-im/incidentd/storage"
)

// testLateTriggerRacesReopen: two writers (two pods) fold the same
// resolved identity at once. One folds a late trigger (not after
// resolved_at) into the resolved incident A; the other, first to write,
// opens B reopening A. The late write still commits (A did not change),
// and the identity must stay on B: an update never takes the pointer back,
// or the next trigger would open a second active incident beside B.
func testLateTriggerRacesReopen(t *testing.T, h Harness) {
	s := h.Open(t)
	ctx := context.Background()
	f := dedupe.NewFolder(time.Hour, NewIDs("ptr"))
	now := func() time.Time { return Base }
	IngestAll(t, s, f, Key(Trigger("t0", "k", 0, incident.P2)), 10)
	IngestAll(t, s, f, Key(Control("r1", "k", incident.Resolve, 100)), 10)

	// Writer 1 reads and folds a late trigger into the resolved A...
	late := Key(Trigger("late", "k", 50, incident.P1))
	snap, err := s.Lookup(ctx, []string{late[0].Fingerprint}, []string{"late"})
	if err != nil {
		t.Fatal(err)
	}
	a := snap.Latest[late[0].Fingerprint]
	res := f.Fold(snap.Latest, snap.Applied, late, Base)
	if res.Stats.Late != 1 {
		t.Fatalf("fold of the late trigger: %+v, want one late merge", res.Stats)
	}
	// ...writer 2 reopens the identity first...
	if _, _, err := storage.Ingest(ctx, s, f, Key(Trigger("t2", "k", 200, incident.P3)), now); err != nil {
		t.Fatal(err)
	}
	snap, err = s.Lookup(ctx, []string{a.Fingerprint}, nil)
	if err != nil {
		t.Fatal(err)
	}
	b := snap.Latest[a.Fingerprint]
	if b == nil || b.ReopenOf != a.ID || !b.Active() {
		t.Fatalf("after the reopen the identity names %+v, want an active reopen of %s", b, a.ID)
	}
	// ...then writer 1 commits: A is unchanged since its read.
	if err := s.Apply(ctx, storage.Batch{Incidents: res.Incidents, EventIDs: res.EventIDs, At: Base}); err != nil {
		t.Fatalf("the late merge into %s: %v", a.ID, err)
	}
	requireLatest(t, s, "after the late write", b)
	got, err := s.Get(ctx, a.ID)
	if err != nil || got.LateCount != 1 {
		t.Fatalf("A after the late merge: %+v, %v; want late_count 1", got, err)
	}
	// The next trigger merges into B: one active incident, two in all.
	IngestAll(t, s, f, Key(Trigger("t3", "k", 300, incident.P3)), 10)
	all, err := s.List(ctx, storage.Filter{Fingerprints: []string{a.Fingerprint}}, storage.Page{})
	if err != nil {
		t.Fatal(err)
	}
	active := 0
	for _, in := range all {
		if in.Active() {
			active++
			if in.ID != b.ID || in.OccurrenceCount != 2 {
				t.Errorf("active incident %s with %d occurrences, want %s with 2", in.ID, in.OccurrenceCount, b.ID)
			}
		}
	}
	if len(all) != 2 || active != 1 {
		t.Fatalf("identity has %d incidents, %d active; want 2, 1 active", len(all), active)
	}
}
