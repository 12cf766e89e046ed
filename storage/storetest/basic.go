package storetest

import (
	"context"
	"errors"
	"slices"
	"testing"
	"time"

	"github.com/llm-im/incidentd/dedupe"
	"github.com/llm-im/incidentd/incident"
	"github.com/llm-im/incidentd/storage"
)

// testRoundTrip: every field survives Apply and comes back from Get, List,
// FindOpen and Lookup; returned incidents are copies.
func testRoundTrip(t *testing.T, h Harness) {
	ctx := context.Background()
	s := h.Open(t)
	pair := FullPair("inc-full", "v1:full")
	prev, full, sparse := pair[0], pair[1], SparseIncident("inc-sparse", "v1:sparse")
	if err := s.Apply(ctx, storage.Batch{Incidents: []*incident.Incident{prev, full, sparse}, EventIDs: []string{"e-full", "e-sparse"}, At: Base}); err != nil {
		t.Fatalf("apply: %v", err)
	}
	if err := s.Flush(ctx); err != nil {
		t.Fatalf("flush: %v", err)
	}
	requireStored(t, s, prev, full, sparse)

	// A second version replaces the first everywhere.
	v2 := Update(full, func(in *incident.Incident) {
		at := At(9_000_013)
		in.State, in.ResolvedAt, in.ResolvedBy = incident.Resolved, &at, incident.ResolvedByEvent
		in.Labels = map[string]string{"only": "this"}
		in.Resources = append(in.Resources, "zone/b")
		in.LastValue = nil
	})
	Put(t, s, v2)
	requireStored(t, s, prev, v2, sparse)
	if _, err := s.FindOpen(ctx, v2.Fingerprint); !errors.Is(err, storage.ErrNotFound) {
		t.Fatalf("FindOpen of a resolved identity = %v, want ErrNotFound", err)
	}

	// What a caller does to incidents it passed in or got back does not
	// reach the store.
	requireNoAliasing(t, s, v2)
}

// requireNoAliasing changes the incidents every read path returns, and the
// one that was written, and checks that the stored want is unchanged.
func requireNoAliasing(t *testing.T, s storage.Store, want *incident.Incident) {
	t.Helper()
	ctx := context.Background()
	written := want
	want = want.Clone()
	var got []*incident.Incident
	if in, err := s.Get(ctx, want.ID); err == nil {
		got = append(got, in)
	}
	if list, err := s.List(ctx, storage.Filter{Fingerprints: []string{want.Fingerprint}}, storage.Page{}); err == nil {
		got = append(got, list...)
	}
	if snap, err := s.Lookup(ctx, []string{want.Fingerprint}, nil); err == nil {
		got = append(got, snap.Latest[want.Fingerprint])
	}
	if in, err := s.FindOpen(ctx, want.Fingerprint); err == nil {
		got = append(got, in)
	}
	for _, in := range append(got, written) {
		if in == nil {
			continue
		}
		in.Title = "changed"
		if in.Labels != nil {
			in.Labels["only"] = "changed"
		}
		if len(in.Resources) > 0 {
			in.Resources[0] = "changed"
		}
		if in.LastValue != nil {
			*in.LastValue = -1
		}
		if in.ResolvedAt != nil {
			*in.ResolvedAt = time.Time{}
		}
	}
	again, err := s.Get(ctx, want.ID)
	if err != nil {
		t.Fatal(err)
	}
	RequireEqual(t, "get after changing incidents given and returned", want, again)
}

// requireStored checks that exactly ins are stored, through every read path;
// ins are in write order, so the last of a fingerprint is its latest.
func requireStored(t *testing.T, s storage.Store, ins ...*incident.Incident) {
	t.Helper()
	ctx := context.Background()
	latest := map[string]*incident.Incident{}
	for _, in := range ins {
		got, err := s.Get(ctx, in.ID)
		if err != nil {
			t.Fatalf("get %s: %v", in.ID, err)
		}
		RequireEqual(t, "get", in, got)
		latest[in.Fingerprint] = in
	}
	fps := []string{"v1:never-written"}
	for fp, in := range latest {
		f := storage.Filter{Fingerprints: []string{fp}}
		list, err := s.List(ctx, f, storage.Page{})
		if err != nil {
			t.Fatalf("list: %v", err)
		}
		RequireSame(t, "list by fingerprint", Expect(ins, f), list)
		open, err := s.FindOpen(ctx, fp)
		switch {
		case in.Active() && err != nil:
			t.Fatalf("find open %s: %v", fp, err)
		case in.Active():
			RequireEqual(t, "find open", in, open)
		case !errors.Is(err, storage.ErrNotFound):
			t.Fatalf("find open of inactive %s = %v, %v; want ErrNotFound", fp, open, err)
		}
		fps = append(fps, fp)
	}
	RequireSame(t, "list all", Expect(ins, storage.Filter{}), ListAll(t, s))
	snap, err := s.Lookup(ctx, fps, []string{"e-never-applied"})
	if err != nil {
		t.Fatalf("lookup: %v", err)
	}
	if len(snap.Latest) != len(latest) || snap.Applied["e-never-applied"] {
		t.Fatalf("lookup: %d latest (want %d), applied %v", len(snap.Latest), len(latest), snap.Applied)
	}
	for fp, in := range latest {
		RequireEqual(t, "lookup", in, snap.Latest[fp])
	}
}

// testFilters: List and Count agree with Filter.Match over what was written,
// for each filter field alone and in combination.
func testFilters(t *testing.T, h Harness) {
	s := h.Open(t)
	all := Population(60, 1)
	Put(t, s, all...)
	CheckFilters(t, s, all)
}

// testOrderAndPagination: newest last_seen first, id descending on ties;
// pages of 7 cover the list without gaps or repeats.
func testOrderAndPagination(t *testing.T, h Harness) {
	ctx := context.Background()
	s := h.Open(t)
	all := Population(45, 2)
	Put(t, s, all...)
	want := Expect(all, storage.Filter{})
	if !hasTie(want) {
		t.Fatal("storetest: the population has no last_seen tie; pick another seed")
	}
	no := false
	for _, f := range []NamedFilter{{"empty", storage.Filter{}}, {"active=false", storage.Filter{Active: &no}}} {
		want := Expect(all, f.Filter)
		var walked []*incident.Incident
		for off := 0; ; off += 7 {
			page, err := s.List(ctx, f.Filter, storage.Page{Offset: off, Limit: 7})
			if err != nil {
				t.Fatalf("%s: list at %d: %v", f.Name, off, err)
			}
			if len(page) > 7 {
				t.Fatalf("%s: page at %d has %d incidents, limit 7", f.Name, off, len(page))
			}
			if len(page) == 0 {
				break
			}
			walked = append(walked, page...)
			if len(walked) > len(want) {
				break
			}
		}
		RequireSame(t, f.Name+": pages of 7", want, walked)
		for _, off := range []int{len(want), len(want) + 5} {
			page, err := s.List(ctx, f.Filter, storage.Page{Offset: off, Limit: 7})
			if err != nil || len(page) != 0 {
				t.Fatalf("%s: offset %d past the end: %d incidents, %v", f.Name, off, len(page), err)
			}
		}
		page, err := s.List(ctx, f.Filter, storage.Page{Offset: 3})
		if err != nil {
			t.Fatal(err)
		}
		RequireSame(t, f.Name+": offset 3, no limit", want[min(3, len(want)):], page)
	}
}

func hasTie(sorted []*incident.Incident) bool {
	for i := 1; i < len(sorted); i++ {
		if sorted[i].LastSeen.Equal(sorted[i-1].LastSeen) {
			return true
		}
	}
	return false
}

// testIndexesStayExactAfterUpdate is the regression test for the old
// system's stale Redis indexes: after severity P3→P0, state
// Detected→Triaged→Resolved and a source and type change, the incident is
// found only under its new values; after Delete, under none.
func testIndexesStayExactAfterUpdate(t *testing.T, h Harness) {
	ctx := context.Background()
	s := h.Open(t)
	others := Population(20, 3)
	Put(t, s, others...)
	x := SparseIncident("inc-x", "v1:x")
	x.Severity, x.State, x.Source, x.Type = incident.P3, incident.Detected, "old-source", incident.Data
	y := SparseIncident("inc-y", "v1:y") // stays active, deleted at the end
	Put(t, s, x, y)

	steps := []struct {
		name   string
		change func(*incident.Incident)
		gone   storage.Filter // a filter x matched before this step and must not after
	}{
		{"P3→P0, Detected→Triaged, new source and type", func(in *incident.Incident) {
			in.Severity, in.State, in.Source, in.Type = incident.P0, incident.Triaged, "new-source", incident.Security
		}, storage.Filter{Severities: []incident.Severity{incident.P3}}},
		{"Triaged→Resolved", func(in *incident.Incident) { in.State = incident.Resolved },
			storage.Filter{States: []incident.State{incident.Triaged}}},
	}
	cur := x
	for _, st := range steps {
		cur = Update(cur, st.change)
		Put(t, s, cur)
		all := append(slices.Clone(others), cur, y)
		CheckFilters(t, s, all)
		requireMember(t, s, st.name, st.gone, cur.ID, false)
	}
	yes, no := true, false
	for _, f := range []storage.Filter{
		{States: []incident.State{incident.Detected}}, {States: []incident.State{incident.Triaged}},
		{Severities: []incident.Severity{incident.P3}}, {Sources: []string{"old-source"}},
		{Types: []incident.Type{incident.Data}}, {Active: &yes},
	} {
		requireMember(t, s, "after the updates", f, cur.ID, false)
	}
	for _, f := range []storage.Filter{
		{States: []incident.State{incident.Resolved}}, {Severities: []incident.Severity{incident.P0}},
		{Sources: []string{"new-source"}}, {Types: []incident.Type{incident.Security}}, {Active: &no},
		{Fingerprints: []string{"v1:x"}},
	} {
		requireMember(t, s, "after the updates", f, cur.ID, true)
	}

	for _, del := range []*incident.Incident{cur, y} {
		if err := s.Delete(ctx, del.ID); err != nil {
			t.Fatalf("delete %s: %v", del.ID, err)
		}
		if _, err := s.Get(ctx, del.ID); !errors.Is(err, storage.ErrNotFound) {
			t.Fatalf("get after delete = %v, want ErrNotFound", err)
		}
		if err := s.Delete(ctx, del.ID); !errors.Is(err, storage.ErrNotFound) {
			t.Fatalf("second delete = %v, want ErrNotFound", err)
		}
		if _, err := s.FindOpen(ctx, del.Fingerprint); !errors.Is(err, storage.ErrNotFound) {
			t.Fatalf("find open after delete = %v, want ErrNotFound", err)
		}
		snap, err := s.Lookup(ctx, []string{del.Fingerprint}, nil)
		if err != nil {
			t.Fatal(err)
		}
		if in := snap.Latest[del.Fingerprint]; in != nil && in.ID == del.ID {
			t.Fatalf("lookup still returns deleted %s", del.ID)
		}
	}
	CheckFilters(t, s, others)
}

// requireMember checks whether id is among List(f) and counted by Count(f).
func requireMember(t *testing.T, s storage.Store, step string, f storage.Filter, id string, want bool) {
	t.Helper()
	got, err := s.List(context.Background(), f, storage.Page{})
	if err != nil {
		t.Fatalf("%s: list: %v", step, err)
	}
	if in := slices.ContainsFunc(got, func(in *incident.Incident) bool { return in.ID == id }); in != want {
		t.Fatalf("%s: %s listed under %+v = %v, want %v", step, id, f, in, want)
	}
}

// testFindOpenAndLookup follows one identity through trigger, acknowledge,
// resolve and reopen.
func testFindOpenAndLookup(t *testing.T, h Harness) {
	ctx := context.Background()
	s := h.Open(t)
	f := dedupe.NewFolder(dedupe.DefaultWindow, NewIDs("fo"))
	fp := Key(Trigger("x", "svc-a", 0, incident.P2))[0].Fingerprint
	steps := []struct {
		ev        incident.Event
		state     incident.State
		open      bool
		reopenOf  string
		incidents int
	}{
		{Trigger("a1", "svc-a", 1_000, incident.P2), incident.Detected, true, "", 1},
		{Control("a2", "svc-a", incident.Acknowledge, 2_000), incident.Triaged, true, "", 1},
		{Trigger("a3", "svc-a", 3_000, incident.P1), incident.Triaged, true, "", 1},
		{Control("a4", "svc-a", incident.Resolve, 4_000), incident.Resolved, false, "", 1},
		{Trigger("a5", "svc-a", 5_000, incident.P3), incident.Detected, true, "fo-000001", 2},
	}
	var applied []string
	for _, st := range steps {
		IngestAll(t, s, f, Key(st.ev), 1)
		applied = append(applied, st.ev.ID)
		snap, err := s.Lookup(ctx, []string{fp, "v1:unknown"}, append(slices.Clone(applied), "never"))
		if err != nil {
			t.Fatalf("%s: lookup: %v", st.ev.ID, err)
		}
		latest := snap.Latest[fp]
		if latest == nil || latest.State != st.state || latest.ReopenOf != st.reopenOf {
			t.Fatalf("%s: lookup latest = %+v, want state %s reopen_of %q", st.ev.ID, latest, st.state, st.reopenOf)
		}
		if _, ok := snap.Latest["v1:unknown"]; ok || len(snap.Applied) != len(applied) || snap.Applied["never"] {
			t.Fatalf("%s: lookup = %d latest, applied %v; want only %v", st.ev.ID, len(snap.Latest), snap.Applied, applied)
		}
		open, err := s.FindOpen(ctx, fp)
		switch {
		case st.open && err != nil:
			t.Fatalf("%s: find open: %v", st.ev.ID, err)
		case st.open:
			RequireEqual(t, st.ev.ID+": find open = latest", latest, open)
		case !errors.Is(err, storage.ErrNotFound):
			t.Fatalf("%s: find open = %v, %v; want ErrNotFound", st.ev.ID, open, err)
		}
		if n, err := s.Count(ctx, storage.Filter{Fingerprints: []string{fp}}); err != nil || n != int64(st.incidents) {
			t.Fatalf("%s: count = %d, %v; want %d", st.ev.ID, n, err, st.incidents)
		}
	}
	if _, err := s.FindOpen(ctx, "v1:unknown"); !errors.Is(err, storage.ErrNotFound) {
		t.Fatalf("find open of an unknown identity = %v, want ErrNotFound", err)
	}

	// Deleting the latest incident of an identity does not wedge it: the
	// next trigger opens a new incident.
	open, err := s.FindOpen(ctx, fp)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Delete(ctx, open.ID); err != nil {
		t.Fatalf("delete: %v", err)
	}
	if _, err := s.FindOpen(ctx, fp); !errors.Is(err, storage.ErrNotFound) {
		t.Fatalf("find open after deleting the open incident = %v, want ErrNotFound", err)
	}
	IngestAll(t, s, f, Key(Trigger("a6", "svc-a", 6_000, incident.P4)), 1)
	reborn, err := s.FindOpen(ctx, fp)
	if err != nil || reborn.ID == open.ID || reborn.OccurrenceCount != 1 || reborn.LatestEventID != "a6" {
		t.Fatalf("find open after a trigger of a deleted identity = %+v, %v", reborn, err)
	}
	if n, err := s.Count(ctx, storage.Filter{Fingerprints: []string{fp}}); err != nil || n != 2 {
		t.Fatalf("count = %d, %v; want 2 (the resolved one and the new one)", n, err)
	}
}

// testStats: Stats counts what Count(empty filter) counts.
func testStats(t *testing.T, h Harness) {
	ctx := context.Background()
	s := h.Open(t)
	for _, n := range []int{0, 25} {
		if n > 0 {
			Put(t, s, Population(n, 4)...)
		}
		st, err := s.Stats(ctx)
		if err != nil {
			t.Fatalf("stats: %v", err)
		}
		c, err := s.Count(ctx, storage.Filter{})
		if err != nil {
			t.Fatal(err)
		}
		if st.Incidents != c || c != int64(n) || st.SizeOnDisk < 0 {
			t.Fatalf("stats = %+v, count %d, want %d incidents", st, c, n)
		}
	}
}

// testClosed: every call after Close returns ErrClosed.
func testClosed(t *testing.T, h Harness) {
	s := h.Open(t)
	in := SparseIncident("inc-1", "v1:1")
	Put(t, s, in)
	if err := s.Close(); err != nil {
		t.Fatalf("close: %v", err)
	}
	requireClosed(t, s)
}

func requireClosed(t *testing.T, s storage.Store) {
	t.Helper()
	ctx := context.Background()
	calls := map[string]func() error{
		"Lookup": func() error { _, err := s.Lookup(ctx, []string{"v1:1"}, []string{"e"}); return err },
		"Apply": func() error {
			return s.Apply(ctx, storage.Batch{Incidents: []*incident.Incident{SparseIncident("inc-2", "v1:2")}, EventIDs: []string{"e2"}, At: Base})
		},
		"Get":      func() error { _, err := s.Get(ctx, "inc-1"); return err },
		"FindOpen": func() error { _, err := s.FindOpen(ctx, "v1:1"); return err },
		"List":     func() error { _, err := s.List(ctx, storage.Filter{}, storage.Page{}); return err },
		"Count":    func() error { _, err := s.Count(ctx, storage.Filter{}); return err },
		"Scan":     func() error { return s.Scan(ctx, func(*incident.Incident) error { return nil }) },
		"Delete":   func() error { return s.Delete(ctx, "inc-1") },
		"Flush":    func() error { return s.Flush(ctx) },
		"Stats":    func() error { _, err := s.Stats(ctx); return err },
	}
	for name, call := range calls {
		if err := call(); !errors.Is(err, storage.ErrClosed) {
			t.Errorf("%s after Close = %v, want ErrClosed", name, err)
		}
	}
}
