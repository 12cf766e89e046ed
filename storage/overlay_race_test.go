package storage_test

import (
	"context"
	"testing"
	"time"

	"github.com/llm-im/incidentd/dedupe"
	"github.com/llm-im/incidentd/incident"
	"github.com/llm-im/incidentd/storage"
	"github.com/llm-im/incidentd/storage/memory"
	"github.com/llm-im/incidentd/storage/storetest"
)

// TestPipelinedResolveAfterAReopenElsewhere follows the worker's pipeline
// (consumer/pipeline.go prepare): batch N+1 is looked up while N is
// applied, then storage.Overlay puts N's result on top. N is a late merge
// into the resolved A; another pod reopened the identity as B before N+1's
// Lookup. N commits (updates never move the pointer), and N+1's resolve
// must resolve B: the overlay once handed N+1's fold A, the resolve was
// counted as an orphan and acked, and B stayed open.
func TestPipelinedResolveAfterAReopenElsewhere(t *testing.T) {
	ctx := context.Background()
	s := memory.New()
	f := dedupe.NewFolder(time.Hour, storetest.NewIDs("ov"))
	now := func() time.Time { return storetest.Base }
	storetest.IngestAll(t, s, f, storetest.Key(storetest.Trigger("t0", "k", 0, incident.P2)), 10)
	storetest.IngestAll(t, s, f, storetest.Key(storetest.Control("r1", "k", incident.Resolve, 100)), 10)

	// Pod X, batch N: a late trigger folded into A.
	bN := storetest.Key(storetest.Trigger("late", "k", 50, incident.P1))
	fps, ids, _ := storage.LookupKeys(bN)
	snap, err := s.Lookup(ctx, fps, ids)
	if err != nil {
		t.Fatal(err)
	}
	resN := f.Fold(snap.Latest, snap.Applied, bN, storetest.Base)
	if resN.Stats.Late != 1 {
		t.Fatalf("N: %+v", resN.Stats)
	}
	// Pod Y reopens: B.
	if _, _, err := storage.Ingest(ctx, s, f, storetest.Key(storetest.Trigger("t2", "k", 200, incident.P3)), now); err != nil {
		t.Fatal(err)
	}
	// Pod X, batch N+1 prepared while N is in flight: a resolve event.
	bN1 := storetest.Key(storetest.Control("r3", "k", incident.Resolve, 300))
	fps, ids, want := storage.LookupKeys(bN1)
	snap1, err := s.Lookup(ctx, fps, ids)
	if err != nil {
		t.Fatal(err)
	}
	sawB := snap1.Latest[fps[0]]
	storage.Overlay(&snap1, resN, want, ids)
	// N commits.
	if err := s.Apply(ctx, storage.Batch{Incidents: resN.Incidents, EventIDs: resN.EventIDs, At: storetest.Base}); err != nil {
		t.Fatal(err)
	}
	resN1 := f.Fold(snap1.Latest, snap1.Applied, bN1, storetest.Base)
	if err := s.Apply(ctx, storage.Batch{Incidents: resN1.Incidents, EventIDs: resN1.EventIDs, At: storetest.Base}); err != nil {
		t.Fatal(err)
	}
	if used := snap1.Latest[fps[0]]; used.ID != sawB.ID {
		t.Errorf("N+1 Lookup read %s (%s), the fold used %s (%s)", sawB.ID, sawB.State, used.ID, used.State)
	}
	if open, err := s.FindOpen(ctx, fps[0]); err == nil {
		t.Errorf("resolve event r3 was applied but %s is still %s (stats %+v)", open.ID, open.State, resN1.Stats)
	}
	if resN1.Stats.Resolved != 1 || resN1.Stats.Orphans != 0 {
		t.Errorf("N+1 stats %+v, want one resolve and no orphan", resN1.Stats)
	}
}
