package storetest

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/llm-im/incidentd/dedupe"
	"github.com/llm-im/incidentd/incident"
	"github.com/llm-im/incidentd/loadgen"
	"github.com/llm-im/incidentd/storage"
)

// RealisticWindow is the quiet period of the realistic log: short enough
// that identities time out and reopen within it.
const RealisticWindow = 150 * time.Millisecond

// RealisticEvents returns n loadgen events (30% duplicates, half of them
// redeliveries with the same id; 5% acknowledges, 5% resolves), fingerprinted.
func RealisticEvents(n int, seed uint64) []dedupe.Keyed {
	g := loadgen.New(loadgen.Config{Seed: seed, DuplicateRatio: 0.3, AckRatio: 0.05, ResolveRatio: 0.05, Start: Base, Step: time.Millisecond, IDPrefix: "rl"})
	evs := make([]incident.Event, n)
	for i := range evs {
		evs[i] = g.Next()
	}
	return Key(evs...)
}

// FoldAll is the independent expectation of an ingested log: the incidents
// one Folder makes of all events in one fold, starting from nothing.
func FoldAll(events []dedupe.Keyed) []*incident.Incident {
	return FoldAllWindow(events, dedupe.DefaultWindow)
}

// FoldAllWindow is FoldAll with a quiet period.
func FoldAllWindow(events []dedupe.Keyed, window time.Duration) []*incident.Incident {
	f := dedupe.NewFolder(window, NewIDs("expected"))
	return f.Fold(map[string]*incident.Incident{}, map[string]bool{}, events, Base).Incidents
}

// RequireFolded compares stored incidents with expected ones ignoring what
// depends on who wrote them and in how many batches: ids (incidents are
// matched by fingerprint and first_seen; reopen_of by what it points to),
// created_at, updated_at and version.
func RequireFolded(t testing.TB, want, got []*incident.Incident) {
	t.Helper()
	wk, gk := byIdentity(t, "expected", want), byIdentity(t, "stored", got)
	if len(wk) != len(gk) {
		t.Fatalf("%d incidents stored, %d expected", len(got), len(want))
	}
	for k, w := range wk {
		g, ok := gk[k]
		if !ok {
			t.Fatalf("expected incident %s (first seen %s) not stored", w.Fingerprint, w.FirstSeen)
		}
		if d := Diff(comparable(w, wk), comparable(g, gk)); d != "" {
			t.Fatalf("incident %s (first seen %s): %s", w.Fingerprint, w.FirstSeen, d)
		}
	}
}

func identityKey(in *incident.Incident) string {
	return in.Fingerprint + "@" + in.FirstSeen.UTC().Format(time.RFC3339Nano)
}

func byIdentity(t testing.TB, what string, ins []*incident.Incident) map[string]*incident.Incident {
	t.Helper()
	m := make(map[string]*incident.Incident, len(ins))
	for _, in := range ins {
		k := identityKey(in)
		if _, dup := m[k]; dup {
			t.Fatalf("%s: two incidents of %s", what, k)
		}
		m[k] = in
	}
	return m
}

// comparable blanks the writer-dependent fields of in and replaces reopen_of
// by the identity key of the incident it names.
func comparable(in *incident.Incident, all map[string]*incident.Incident) *incident.Incident {
	c := in.Clone()
	c.ID, c.CreatedAt, c.UpdatedAt, c.Version = "", time.Time{}, time.Time{}, 0
	if c.ReopenOf != "" {
		c.ReopenOf = "missing:" + c.ReopenOf
		for k, o := range all {
			if o.ID == in.ReopenOf {
				c.ReopenOf = k
			}
		}
	}
	return c
}

// testRealisticLog: 2000 generated events with 30% duplicates ingested in
// batches end as the same incidents as one fold of the whole log, and the
// indexes agree with them.
func testRealisticLog(t *testing.T, h Harness) {
	ctx := context.Background()
	s := h.Open(t)
	events := RealisticEvents(2000, 7)
	st := IngestAll(t, s, dedupe.NewFolder(RealisticWindow, NewIDs("rl")), events, 64)
	if st.Duplicates == 0 || st.TimedOut == 0 || st.Reopened == 0 || st.Resolved == 0 || st.Acknowledged == 0 {
		t.Fatalf("storetest: the realistic log misses a case: %+v", st)
	}
	got := ListAll(t, s)
	RequireFolded(t, FoldAllWindow(events, RealisticWindow), got)
	CheckFilters(t, s, got)
	stats, err := s.Stats(ctx)
	if err != nil || stats.Incidents != int64(len(got)) {
		t.Fatalf("stats = %+v, %v; want %d incidents", stats, err, len(got))
	}
}

// testPersistence: everything written survives Close and a reopen, applied
// markers included; the old handle returns ErrClosed.
func testPersistence(t *testing.T, h Harness) {
	if h.Reopen == nil {
		t.Skip("backend keeps nothing across Close (Harness.Reopen is nil)")
	}
	ctx := context.Background()
	s := h.Open(t)
	pop := Population(30, 5)
	Put(t, s, pop...)
	Put(t, s, FullPair("inc-full", "v1:full")...)
	events := RealisticEvents(500, 11)
	IngestAll(t, s, dedupe.NewFolder(RealisticWindow, NewIDs("p1")), events, 50)
	if err := s.Flush(ctx); err != nil {
		t.Fatalf("flush: %v", err)
	}
	before := ListAll(t, s)

	r := h.Reopen(t, s)
	requireClosed(t, s)
	RequireSame(t, "after reopen", before, ListAll(t, r))
	CheckFilters(t, r, before)
	got, err := r.Get(ctx, "inc-full")
	if err != nil {
		t.Fatal(err)
	}
	RequireEqual(t, "full incident after reopen", FullIncident("inc-full", "v1:full"), got)
	ids := make([]string, len(events))
	for i := range events {
		ids[i] = events[i].Event.ID
	}
	snap, err := r.Lookup(ctx, nil, ids)
	if err != nil {
		t.Fatal(err)
	}
	for _, id := range ids {
		if !snap.Applied[id] {
			t.Fatalf("applied marker of %s lost in reopen", id)
		}
	}
	st := IngestAll(t, r, dedupe.NewFolder(RealisticWindow, NewIDs("p2")), events, 50)
	if st.Applied != 0 {
		t.Fatalf("re-ingest after reopen applied %d events", st.Applied)
	}
	RequireSame(t, "after re-ingest", before, ListAll(t, r))

	// Writes after a reopen persist too, deletes included.
	if err := r.Delete(ctx, pop[0].ID); err != nil {
		t.Fatal(err)
	}
	late := Key(Trigger("after-reopen", "svc-late", 10_000_000, incident.P0))
	IngestAll(t, r, dedupe.NewFolder(RealisticWindow, NewIDs("p3")), late, 1)
	want := ListAll(t, r)
	r2 := h.Reopen(t, r)
	RequireSame(t, "after the second reopen", want, ListAll(t, r2))
	if _, err := r2.Get(ctx, pop[0].ID); !errors.Is(err, storage.ErrNotFound) {
		t.Fatalf("deleted incident back after reopen: %v", err)
	}
	if open, err := r2.FindOpen(ctx, late[0].Fingerprint); err != nil || open.OccurrenceCount != 1 {
		t.Fatalf("find open after reopen = %v, %v", open, err)
	}
	if n, err := r2.Count(ctx, storage.Filter{}); err != nil || n != int64(len(want)) {
		t.Fatal(fmt.Errorf("count after reopen = %d, %v; want %d", n, err, len(want)))
	}
}
