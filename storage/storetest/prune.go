package storetest

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/llm-im/incidentd/incident"
	"github.com/llm-im/incidentd/storage"
)

// testPruneInactive runs the retention walk (storage.PruneInactive) in
// small steps over a population with tied last_seen times (one tie longer
// than a page, its newest ids kept): one walk deletes
// exactly the inactive incidents whose last_seen and updated_at are before
// the cutoff, leaves every index exact and the identity pointers of what
// it kept, and deletes nothing at a version it was not given.
func testPruneInactive(t *testing.T, h Harness) {
	ctx := context.Background()
	s := h.Open(t)
	all := Population(90, 11)
	for _, in := range all {
		in.UpdatedAt = in.LastSeen.Add(time.Second)
	}
	cutoff := At(20 * 1_000_001)
	closedLate := SparseIncident("inc-closed-late", "v1:closed-late") // old, but changed after the cutoff
	closedLate.State, closedLate.LastSeen, closedLate.UpdatedAt = incident.Closed, At(1_000), cutoff.Add(time.Minute)
	openOld := SparseIncident("inc-open-old", "v1:open-old") // old, but active
	openOld.State, openOld.LastSeen = incident.Detected, At(500)
	all = append(all, closedLate, openOld)
	// A tie longer than a page whose newest (by id) are kept: the walk must
	// pass them by offset to reach the expired ones of the same time.
	for i := range 6 {
		in := SparseIncident(fmt.Sprintf("inc-tie-z%d", i), fmt.Sprintf("v1:tie-z%d", i))
		in.State, in.LastSeen, in.UpdatedAt = incident.Closed, At(3_000), cutoff.Add(time.Minute)
		all = append(all, in)
	}
	for i := range 5 {
		in := SparseIncident(fmt.Sprintf("inc-tie-a%d", i), fmt.Sprintf("v1:tie-a%d", i))
		in.State, in.LastSeen, in.UpdatedAt = incident.Resolved, At(3_000), At(4_000)
		all = append(all, in)
	}
	Put(t, s, all...)

	var want, kept []*incident.Incident
	for _, in := range all {
		if !in.State.Active() && in.LastSeen.Before(cutoff) && in.UpdatedAt.Before(cutoff) {
			want = append(want, in)
		} else {
			kept = append(kept, in)
		}
	}
	if len(want) < 10 || len(kept) < 10 {
		t.Fatalf("fixture: %d to delete, %d to keep", len(want), len(kept))
	}

	// A changed incident is not deleted at its old version.
	moved := Update(want[0], func(in *incident.Incident) { in.UpdatedAt = want[0].UpdatedAt })
	Put(t, s, moved)
	if n, err := s.DeleteVersions(ctx, map[string]int64{moved.ID: want[0].Version, "inc-none": 1}); err != nil || n != 0 {
		t.Fatalf("DeleteVersions at a stale version and of an unknown id = %d, %v; want 0, nil", n, err)
	}
	if _, err := s.Get(ctx, moved.ID); err != nil {
		t.Fatalf("get after a stale DeleteVersions: %v", err)
	}

	if deleted := pruneWalk(t, s, cutoff, 4); deleted != len(want) {
		t.Fatalf("one walk deleted %d incidents, want %d", deleted, len(want))
	}
	for _, in := range want {
		if _, err := s.Get(ctx, in.ID); !errors.Is(err, storage.ErrNotFound) {
			t.Fatalf("get %s after the prune = %v, want ErrNotFound", in.ID, err)
		}
	}
	CheckFilters(t, s, kept)
	if st, err := s.Stats(ctx); err != nil || st.Incidents != int64(len(kept)) {
		t.Fatalf("Stats after the prune = %+v, %v; want %d incidents", st, err, len(kept))
	}
	requirePointers(t, s, all, kept)
	if n := pruneWalk(t, s, cutoff, 4); n != 0 {
		t.Fatalf("a walk over what is left deleted %d", n)
	}
}

// pruneWalk runs one whole retention walk with pages of limit and returns
// how many it deleted.
func pruneWalk(t *testing.T, s storage.Store, cutoff time.Time, limit int) int {
	t.Helper()
	n, steps := 0, 0
	var from storage.PruneCursor
	for {
		d, next, err := storage.PruneInactive(context.Background(), s, cutoff, from, limit)
		if err != nil {
			t.Fatalf("prune step: %v", err)
		}
		n += d
		if steps++; steps > 1000 {
			t.Fatal("the retention walk does not end")
		}
		if next.Start() {
			return n
		}
		if !from.Start() && next.Until.After(from.Until) {
			t.Fatalf("the walk went back from %v to %v", from, next)
		}
		from = next
	}
}

// requirePointers checks every identity's latest incident: the newest kept
// incident of the identity when it was the identity's newest, else none.
func requirePointers(t *testing.T, s storage.Store, all, kept []*incident.Incident) {
	t.Helper()
	newest := map[string]*incident.Incident{}
	for _, in := range all { // all lists each identity's incidents oldest first
		newest[in.Fingerprint] = in
	}
	isKept := map[string]bool{}
	for _, in := range kept {
		isKept[in.ID] = true
	}
	fps := make([]string, 0, len(newest))
	for fp := range newest {
		fps = append(fps, fp)
	}
	snap, err := s.Lookup(context.Background(), fps, nil)
	if err != nil {
		t.Fatal(err)
	}
	for fp, in := range newest {
		got := snap.Latest[fp]
		switch {
		case isKept[in.ID] && (got == nil || got.ID != in.ID):
			t.Errorf("identity %s: latest = %v, want the kept %s", fp, describeID(got), in.ID)
		case !isKept[in.ID] && got != nil:
			t.Errorf("identity %s: latest = %s, want none (its newest incident %s was pruned)", fp, got.ID, in.ID)
		}
	}
}

func describeID(in *incident.Incident) string {
	if in == nil {
		return "none"
	}
	return in.ID
}
