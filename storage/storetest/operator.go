package storetest

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/llm-im/incidentd/dedupe"
	"github.com/llm-im/incidentd/incident"
	"github.com/llm-im/incidentd/storage"
)

// setState runs storage.SetState at now and fails the test on error.
func setState(t *testing.T, s storage.Store, id string, to incident.State, now time.Time) storage.StateChange {
	t.Helper()
	ch, err := storage.SetState(context.Background(), s, id, to, func() time.Time { return now })
	if err != nil {
		t.Fatalf("set %s to %s: %v", id, to, err)
	}
	if err := ch.Incident.Validate(); err != nil {
		t.Fatalf("set %s to %s: the result does not validate: %v", id, to, err)
	}
	return ch
}

// requireLatest checks that Lookup and FindOpen name want as the newest
// incident of its identity (FindOpen only when it is active).
func requireLatest(t *testing.T, s storage.Store, step string, want *incident.Incident) {
	t.Helper()
	ctx := context.Background()
	snap, err := s.Lookup(ctx, []string{want.Fingerprint}, nil)
	if err != nil {
		t.Fatal(err)
	}
	RequireEqual(t, step+": Lookup", want, snap.Latest[want.Fingerprint])
	open, err := s.FindOpen(ctx, want.Fingerprint)
	switch {
	case want.Active() && (err != nil || open.ID != want.ID):
		t.Fatalf("%s: FindOpen = %v, %v; want %s", step, open, err, want.ID)
	case !want.Active() && !errors.Is(err, storage.ErrNotFound):
		t.Fatalf("%s: FindOpen = %v, %v; want ErrNotFound", step, open, err)
	}
}

// testOperatorStateChanges: storage.SetState writes an operator's state
// change through Apply with every index moved (state, active), refuses
// what the lifecycle refuses, answers ErrNotFound for an unknown id, and
// changes nothing for the state an incident already has. The fold goes on
// from what it wrote: a trigger after the operator's resolved_at reopens,
// one not after it is late. Closing an older incident of an identity
// leaves the identity on its newest incident (an update never moves it):
// the next trigger merges there.
func testOperatorStateChanges(t *testing.T, h Harness) {
	ctx := context.Background()
	s := h.Open(t)
	f := dedupe.NewFolder(dedupe.DefaultWindow, NewIDs("op"))
	IngestAll(t, s, f, Key(Trigger("t1", "svc", 1_000, incident.P2), Trigger("u1", "other", 1_000, incident.P3)), 2)
	first := ListAll(t, s)
	var a *incident.Incident
	for _, in := range first {
		if in.DedupKey == "svc" {
			a = in
		}
	}
	opAt := At(60_000_000) // a minute after the triggers

	ch := setState(t, s, a.ID, incident.Investigating, opAt)
	if !ch.Changed || ch.From != incident.Detected || ch.Incident.State != incident.Investigating || ch.Incident.Version != a.Version+1 ||
		ch.Incident.AcknowledgedAt == nil || !ch.Incident.AcknowledgedAt.Equal(opAt) {
		t.Fatalf("Detected -> Investigating: %+v", ch)
	}
	requireLatest(t, s, "investigating", ch.Incident)
	CheckFilters(t, s, ListAll(t, s))
	requireMember(t, s, "investigating", storage.Filter{States: []incident.State{incident.Investigating}}, a.ID, true)
	requireMember(t, s, "investigating", storage.Filter{States: []incident.State{incident.Detected}}, a.ID, false)

	// The same state again: nothing written.
	again := setState(t, s, a.ID, incident.Investigating, opAt.Add(time.Second))
	if again.Changed || again.Incident.Version != ch.Incident.Version {
		t.Fatalf("same state: changed %v, version %d; want unchanged %d", again.Changed, again.Incident.Version, ch.Incident.Version)
	}

	resolved := setState(t, s, a.ID, incident.Resolved, opAt).Incident
	if resolved.ResolvedBy != incident.ResolvedByOperator || !resolved.ResolvedAt.Equal(opAt) {
		t.Fatalf("resolved: %+v", resolved)
	}
	requireLatest(t, s, "resolved by an operator", resolved)
	active := true
	requireMember(t, s, "resolved", storage.Filter{Active: &active}, a.ID, false)
	CheckFilters(t, s, ListAll(t, s))

	// Refusals and unknown ids change nothing.
	var te *incident.TransitionError
	for _, to := range []incident.State{incident.Investigating, incident.Detected} {
		if _, err := storage.SetState(ctx, s, a.ID, to, func() time.Time { return opAt }); !errors.As(err, &te) {
			t.Fatalf("Resolved -> %s = %v, want a TransitionError", to, err)
		}
	}
	if _, err := storage.SetState(ctx, s, "no-such-incident", incident.Closed, time.Now); !errors.Is(err, storage.ErrNotFound) {
		t.Fatalf("unknown id: %v, want ErrNotFound", err)
	}
	requireLatest(t, s, "after refusals", resolved)

	// The fold goes on from the operator's resolution.
	st := IngestAll(t, s, f, Key(Trigger("t2", "svc", 59_000_000, incident.P2)), 1)
	if st.Late != 1 || st.Opened != 0 {
		t.Fatalf("trigger before the operator's resolved_at: %+v, want late", st)
	}
	st = IngestAll(t, s, f, Key(Trigger("t3", "svc", 61_000_000, incident.P1)), 1)
	if st.Reopened != 1 {
		t.Fatalf("trigger after the operator's resolved_at: %+v, want a reopen", st)
	}
	reopened, err := s.FindOpen(ctx, a.Fingerprint)
	if err != nil || reopened.ReopenOf != a.ID {
		t.Fatalf("reopen: %+v, %v", reopened, err)
	}

	// Closing the older, resolved incident keeps the identity on the reopen.
	old, err := s.Get(ctx, a.ID)
	if err != nil {
		t.Fatal(err)
	}
	closed := setState(t, s, a.ID, incident.Closed, opAt.Add(time.Hour)).Incident
	if closed.State != incident.Closed || closed.ResolvedBy != incident.ResolvedByOperator || !closed.ResolvedAt.Equal(*old.ResolvedAt) || closed.LateCount != 1 {
		t.Fatalf("closed: %+v", closed)
	}
	if _, err := storage.SetState(ctx, s, a.ID, incident.Resolved, time.Now); !errors.As(err, &te) {
		t.Fatalf("Closed -> Resolved = %v, want a TransitionError", err)
	}
	now, err := s.Get(ctx, reopened.ID)
	if err != nil {
		t.Fatal(err)
	}
	requireLatest(t, s, "after closing the older incident", now)
	st = IngestAll(t, s, f, Key(Trigger("t4", "svc", 62_000_000, incident.P1)), 1)
	if st.Merged != 1 || st.Opened != 0 {
		t.Fatalf("trigger after closing the older incident: %+v, want a merge into %s", st, reopened.ID)
	}
	all := ListAll(t, s)
	if len(all) != 3 {
		t.Fatalf("%d incidents, want 3 (svc, its reopen, other)", len(all))
	}
	CheckFilters(t, s, all)
	for _, in := range all {
		if err := in.Validate(); err != nil {
			t.Errorf("%s does not validate: %v", in.ID, err)
		}
	}
}

// testOperatorRacesIngest: an operator resolves incidents while writers
// keep folding triggers into them. Every resolve is written (SetState reads
// again after a conflict), every trigger is counted exactly once, each
// identity ends with one incident per resolution plus at most one open one,
// and the identity names its newest incident.
func testOperatorRacesIngest(t *testing.T, h Harness) {
	const identities, rounds = 6, 5
	s := h.Open(t)
	f := dedupe.NewFolder(dedupe.DefaultWindow, NewIDs("race"))
	ys := yielding{s}
	var wg sync.WaitGroup
	errs := make(chan error, identities*2)
	var resolves atomic.Int64
	for k := range identities {
		key := fmt.Sprintf("race-%d", k)
		wg.Add(2)
		go func() { // triggers, batch by batch, each later than the last
			defer wg.Done()
			for r := range rounds * 4 {
				batch := Key(Trigger(fmt.Sprintf("%s-%d", key, r), key, int64(r+1)*1_000, incident.P2))
				if err := ingestRedelivering(ys, f, batch); err != nil {
					errs <- err
					return
				}
				time.Sleep(time.Millisecond)
			}
		}()
		go func() { // the operator resolves whatever is open, rounds times
			defer wg.Done()
			fp := Key(Trigger("x", key, 0, incident.P2))[0].Fingerprint
			for range rounds {
				open, err := s.FindOpen(context.Background(), fp)
				if errors.Is(err, storage.ErrNotFound) {
					time.Sleep(2 * time.Millisecond)
					continue
				}
				if err != nil {
					errs <- err
					return
				}
				// Base, before every trigger's time: a later trigger reopens.
				// Only this goroutine resolves (the quiet period is far
				// longer than the test), so the change is always allowed.
				ch, err := storage.SetState(context.Background(), ys, open.ID, incident.Resolved, func() time.Time { return Base })
				if err != nil {
					errs <- fmt.Errorf("resolve %s: %w", open.ID, err)
					return
				}
				if ch.Changed {
					resolves.Add(1)
				}
				time.Sleep(3 * time.Millisecond)
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	all := ListAll(t, s)
	byFP := map[string][]*incident.Incident{}
	var triggers, operatorResolved int64
	for _, in := range all {
		byFP[in.Fingerprint] = append(byFP[in.Fingerprint], in)
		triggers += in.OccurrenceCount
		if in.ResolvedBy == incident.ResolvedByOperator {
			operatorResolved++
		}
		if err := in.Validate(); err != nil {
			t.Errorf("%s does not validate: %v", in.ID, err)
		}
	}
	if triggers != identities*rounds*4 {
		t.Errorf("%d triggers counted, want %d", triggers, identities*rounds*4)
	}
	if operatorResolved != resolves.Load() {
		t.Errorf("%d incidents resolved by the operator, %d resolves written", operatorResolved, resolves.Load())
	}
	for fp, ins := range byFP {
		reopened := map[string]bool{}
		active := 0
		for _, in := range ins {
			if in.ReopenOf != "" {
				if reopened[in.ReopenOf] {
					t.Errorf("%s: %s reopened twice", fp, in.ReopenOf)
				}
				reopened[in.ReopenOf] = true
			}
			if in.Active() {
				active++
			}
		}
		if active > 1 {
			t.Errorf("%s: %d open incidents", fp, active)
		}
		for _, in := range ins {
			if !reopened[in.ID] { // the end of the reopen chain
				requireLatest(t, s, fp, in)
			}
		}
	}
}

// testOperatorCloseRacesReopen: a trigger reopens an identity between the
// moment SetState reads it and its write closing the resolved incident.
// The close is an update, which never moves the identity: it must stay on
// the reopened incident, so that the next trigger merges there instead of
// opening a second incident.
func testOperatorCloseRacesReopen(t *testing.T, h Harness) {
	ctx := context.Background()
	s := h.Open(t)
	f := dedupe.NewFolder(dedupe.DefaultWindow, NewIDs("rr"))
	IngestAll(t, s, f, Key(Trigger("t1", "svc", 1_000, incident.P2), Control("r1", "svc", incident.Resolve, 2_000)), 2)
	resolved := ListAll(t, s)[0]
	if resolved.State != incident.Resolved {
		t.Fatalf("fixture: %+v", resolved)
	}
	hook := &reopenBeforeWrite{Store: s, f: f, t: t, events: Key(Trigger("t2", "svc", 3_000, incident.P1))}
	ch, err := storage.SetState(ctx, hook, resolved.ID, incident.Closed, func() time.Time { return At(10_000) })
	if err != nil || !ch.Changed {
		t.Fatalf("close: %+v, %v", ch, err)
	}
	if !hook.done {
		t.Fatal("the reopen was not injected")
	}
	open, err := s.FindOpen(ctx, resolved.Fingerprint)
	if err != nil || open.ReopenOf != resolved.ID {
		t.Fatalf("after the race: FindOpen = %+v, %v; want the reopen of %s", open, err, resolved.ID)
	}
	requireLatest(t, s, "after the race", open)
	if st := IngestAll(t, s, f, Key(Trigger("t3", "svc", 4_000, incident.P1)), 1); st.Merged != 1 || st.Opened != 0 {
		t.Fatalf("next trigger: %+v, want a merge into %s", st, open.ID)
	}
	if n := len(ListAll(t, s)); n != 2 {
		t.Fatalf("%d incidents, want 2", n)
	}
}

// reopenBeforeWrite ingests events just before the first Apply without
// event ids (SetState's), as a worker racing it would.
type reopenBeforeWrite struct {
	storage.Store
	f      *dedupe.Folder
	t      *testing.T
	events []dedupe.Keyed
	done   bool
}

func (r *reopenBeforeWrite) Apply(ctx context.Context, b storage.Batch) error {
	if !r.done && len(b.EventIDs) == 0 {
		r.done = true
		if st := IngestAll(r.t, r.Store, r.f, r.events, len(r.events)); st.Reopened != 1 {
			r.t.Errorf("injected trigger: %+v, want a reopen", st)
		}
	}
	return r.Store.Apply(ctx, b)
}
