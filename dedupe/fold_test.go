package dedupe

import (
	"fmt"
	"testing"
	"time"

	"github.com/llm-im/incidentd/incident"
)

var t0 = time.Date(2026, 5, 1, 12, 0, 0, 0, time.UTC)

// counterIDs returns a deterministic incident id generator.
func counterIDs() func() string {
	n := 0
	return func() string { n++; return fmt.Sprintf("inc-%04d", n) }
}

func trig(id, fp string, at time.Duration, sev incident.Severity) Keyed {
	return Keyed{Fingerprint: fp, Event: incident.Event{ID: id, Action: incident.Trigger, Source: "src", Title: "title " + id,
		Severity: sev, OccurredAt: t0.Add(at), Resources: []string{"r-" + id}}}
}

func ctl(id, fp string, a incident.Action, at time.Duration) Keyed {
	return Keyed{Fingerprint: fp, Event: incident.Event{ID: id, Action: a, Source: "src", OccurredAt: t0.Add(at)}}
}

func TestFoldRules(t *testing.T) {
	f := NewFolder(15*time.Minute, counterIDs())
	now := t0.Add(time.Hour)

	// Open, merge, duplicate, peak and latest severity.
	r := f.Fold(nil, nil, []Keyed{
		trig("a", "fp", 0, incident.P3),
		trig("b", "fp", 2*time.Minute, incident.P1),
		trig("c", "fp", time.Minute, incident.P0), // older than b: severity stays b's
		trig("a", "fp", 0, incident.P3),           // same id: duplicate
	}, now)
	if len(r.Incidents) != 1 || r.Stats.Opened != 1 || r.Stats.Merged != 2 || r.Stats.Duplicates != 1 || r.Stats.Applied != 3 {
		t.Fatalf("stats %+v, %d incidents", r.Stats, len(r.Incidents))
	}
	in := r.Incidents[0]
	if in.OccurrenceCount != 3 || in.Severity != incident.P1 || in.PeakSeverity != incident.P0 || in.Title != "title b" ||
		!in.FirstSeen.Equal(t0) || !in.LastSeen.Equal(t0.Add(2*time.Minute)) || in.Version != 1 || in.State != incident.Detected {
		t.Fatalf("merged incident %+v", in)
	}
	if fmt.Sprint(in.Resources) != "[r-a r-b r-c]" {
		t.Fatalf("resources %v", in.Resources)
	}
	if len(r.EventIDs) != 3 {
		t.Fatalf("event ids %v", r.EventIDs)
	}

	// Next batch: already-applied ids are skipped; acknowledge; resolve.
	latest := map[string]*incident.Incident{"fp": in}
	applied := map[string]bool{"a": true, "b": true, "c": true}
	r = f.Fold(latest, applied, []Keyed{
		trig("b", "fp", 2*time.Minute, incident.P1),
		ctl("ack", "fp", incident.Acknowledge, 3*time.Minute),
		ctl("ack2", "fp", incident.Acknowledge, 4*time.Minute),
		ctl("res", "fp", incident.Resolve, 5*time.Minute),
		ctl("res2", "fp", incident.Resolve, 6*time.Minute),
	}, now)
	got := r.Incidents[0]
	if r.Stats.Duplicates != 1 || r.Stats.Acknowledged != 1 || r.Stats.Noops != 1 || r.Stats.Resolved != 1 || r.Stats.Orphans != 1 {
		t.Fatalf("stats %+v", r.Stats)
	}
	if got.State != incident.Resolved || got.ResolvedBy != incident.ResolvedByEvent || !got.ResolvedAt.Equal(t0.Add(5*time.Minute)) ||
		!got.AcknowledgedAt.Equal(t0.Add(3*time.Minute)) || got.Version != 2 || got.OccurrenceCount != 3 {
		t.Fatalf("after ack+resolve: %+v", got)
	}
	if in.State != incident.Detected || in.Version != 1 {
		t.Fatal("Fold modified its input")
	}

	// A late trigger joins the resolved incident; a later one reopens.
	latest = map[string]*incident.Incident{"fp": got}
	r = f.Fold(latest, nil, []Keyed{
		trig("late", "fp", 4*time.Minute, incident.P2),
		trig("new", "fp", 7*time.Minute, incident.P2),
	}, now)
	if r.Stats.Late != 1 || r.Stats.Reopened != 1 || r.Stats.Opened != 1 || len(r.Incidents) != 2 {
		t.Fatalf("stats %+v", r.Stats)
	}
	old, reopened := r.Incidents[0], r.Incidents[1]
	if old.OccurrenceCount != 4 || old.LateCount != 1 || old.State != incident.Resolved {
		t.Fatalf("late merge %+v", old)
	}
	if reopened.ReopenOf != old.ID || reopened.OccurrenceCount != 1 || reopened.State != incident.Detected {
		t.Fatalf("reopen %+v", reopened)
	}
}

func TestFoldQuietPeriod(t *testing.T) {
	f := NewFolder(15*time.Minute, counterIDs())
	r := f.Fold(nil, nil, []Keyed{
		trig("a", "fp", 0, incident.P3),
		trig("b", "fp", 15*time.Minute, incident.P3), // exactly the window: still the same incident
		trig("c", "fp", 31*time.Minute, incident.P3), // more than a window after b
	}, t0)
	if len(r.Incidents) != 2 || r.Stats.TimedOut != 1 || r.Stats.Reopened != 1 {
		t.Fatalf("stats %+v", r.Stats)
	}
	first, second := r.Incidents[0], r.Incidents[1]
	if first.State != incident.Resolved || first.ResolvedBy != incident.ResolvedByTimeout ||
		!first.ResolvedAt.Equal(t0.Add(30*time.Minute)) || first.OccurrenceCount != 2 {
		t.Fatalf("timed out incident %+v", first)
	}
	if second.ReopenOf != first.ID || !second.FirstSeen.Equal(t0.Add(31*time.Minute)) {
		t.Fatalf("new incident %+v", second)
	}
	// A resolve after the quiet period finds nothing open.
	r = f.Fold(map[string]*incident.Incident{"fp": second}, nil, []Keyed{ctl("r", "fp", incident.Resolve, 50*time.Minute)}, t0)
	if r.Stats.TimedOut != 1 || r.Stats.Orphans != 1 || r.Incidents[0].ResolvedBy != incident.ResolvedByTimeout {
		t.Fatalf("stats %+v", r.Stats)
	}
}

func TestFoldOrphans(t *testing.T) {
	f := NewFolder(0, counterIDs())
	r := f.Fold(nil, nil, []Keyed{ctl("x", "nope", incident.Acknowledge, 0), ctl("y", "nope", incident.Resolve, 0)}, t0)
	if r.Stats.Orphans != 2 || len(r.Incidents) != 0 || len(r.EventIDs) != 2 {
		t.Fatalf("orphans: %+v %d", r.Stats, len(r.Incidents))
	}
	if f.Window() != DefaultWindow {
		t.Fatalf("default window %v", f.Window())
	}
}

// recv sets when the stream received k, as seconds after t0.
func recv(k Keyed, s int) Keyed {
	k.Received = t0.Add(time.Duration(s) * time.Second)
	return k
}

// retry marks k as one the fold may defer.
func retry(k Keyed) Keyed {
	k.Retry = true
	return k
}

// TestFoldStreamOrder: an acknowledge or resolve acts only on an incident
// with a trigger the stream received before it; otherwise it is deferred
// (Retry) or an orphan, as it would have been had the workers applied the
// stream in order.
func TestFoldStreamOrder(t *testing.T) {
	f := NewFolder(15*time.Minute, counterIDs())
	now := t0.Add(time.Hour)
	opened := func(t *testing.T, events ...Keyed) *incident.Incident {
		t.Helper()
		r := f.Fold(nil, nil, events, now)
		if len(r.Incidents) != 1 {
			t.Fatalf("%d incidents", len(r.Incidents))
		}
		return r.Incidents[0]
	}
	t.Run("first received is the earliest trigger's", func(t *testing.T) {
		in := opened(t, recv(trig("b", "fp", time.Minute, incident.P2), 20), recv(trig("a", "fp", 0, incident.P2), 10),
			recv(trig("c", "fp", 2*time.Minute, incident.P2), 30))
		if !in.FirstReceivedAt.Equal(t0.Add(10 * time.Second)) {
			t.Fatalf("first_received_at %v", in.FirstReceivedAt)
		}
		if in2 := opened(t, trig("a", "fp", 0, incident.P2), recv(trig("b", "fp", 0, incident.P2), 10)); !in2.FirstReceivedAt.IsZero() {
			t.Fatalf("an unknown receipt time must count as the earliest, got %v", in2.FirstReceivedAt)
		}
	})
	in := opened(t, recv(trig("a", "fp", 0, incident.P2), 10))
	latest := map[string]*incident.Incident{"fp": in}
	cases := []struct {
		name                               string
		ev                                 Keyed
		state                              incident.State
		orphans, deferred, applied, writes int
	}{
		{"resolve received after the trigger", recv(ctl("r", "fp", incident.Resolve, time.Minute), 11), incident.Resolved, 0, 0, 1, 1},
		{"resolve received before the trigger", recv(ctl("r", "fp", incident.Resolve, time.Minute), 9), incident.Detected, 1, 0, 1, 0},
		{"resolve received before, retry", retry(recv(ctl("r", "fp", incident.Resolve, time.Minute), 9)), incident.Detected, 0, 1, 0, 0},
		{"ack received before, retry", retry(recv(ctl("k", "fp", incident.Acknowledge, time.Minute), 9)), incident.Detected, 0, 1, 0, 0},
		{"ack received after, retry", retry(recv(ctl("k", "fp", incident.Acknowledge, time.Minute), 11)), incident.Triaged, 0, 0, 1, 1},
		{"unknown receipt time acts", ctl("r", "fp", incident.Resolve, time.Minute), incident.Resolved, 0, 0, 1, 1},
		{"after the quiet period, retry", retry(recv(ctl("r", "fp", incident.Resolve, time.Hour), 11)), incident.Detected, 0, 1, 0, 0},
		{"after the quiet period", recv(ctl("r", "fp", incident.Resolve, time.Hour), 11), incident.Resolved, 1, 0, 1, 1},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			r := f.Fold(latest, nil, []Keyed{c.ev}, now)
			st := in.State
			if len(r.Incidents) > 0 {
				st = r.Incidents[0].State
			}
			if st != c.state || r.Stats.Orphans != c.orphans || r.Stats.Deferred != c.deferred ||
				r.Stats.Applied != c.applied || len(r.EventIDs) != c.applied || len(r.Incidents) != c.writes {
				t.Fatalf("state %s, stats %+v, %d writes, ids %v", st, r.Stats, len(r.Incidents), r.EventIDs)
			}
			if c.deferred > 0 && (len(r.Deferred) != 1 || r.Deferred[0] != 0) {
				t.Fatalf("deferred %v, want [0]", r.Deferred)
			}
		})
	}
	t.Run("no incident, retry, then the trigger in the same batch", func(t *testing.T) {
		r := f.Fold(nil, nil, []Keyed{
			retry(recv(ctl("r", "fp", incident.Resolve, time.Minute), 12)),
			recv(trig("a", "fp", 0, incident.P2), 10), // reached the stream first, folded second
			retry(recv(ctl("r2", "fp2", incident.Resolve, time.Minute), 12)),
		}, now)
		if fmt.Sprint(r.Deferred) != "[0 2]" || r.Stats.Deferred != 2 || r.Stats.Opened != 1 || fmt.Sprint(r.EventIDs) != "[a]" {
			t.Fatalf("deferred %v, stats %+v, ids %v", r.Deferred, r.Stats, r.EventIDs)
		}
		// The redelivery finds the incident and resolves it.
		r = f.Fold(map[string]*incident.Incident{"fp": r.Incidents[0]}, map[string]bool{"a": true},
			[]Keyed{retry(recv(ctl("r", "fp", incident.Resolve, time.Minute), 12))}, now)
		if r.Stats.Resolved != 1 || len(r.Deferred) != 0 || r.Incidents[0].State != incident.Resolved {
			t.Fatalf("redelivered resolve: %+v", r.Stats)
		}
	})
}

// TestFoldEarlierIncident: after another worker committed a reopen, an
// event the stream received before the resolve of the reopened incident
// acts on that earlier incident, as it would have in stream order.
func TestFoldEarlierIncident(t *testing.T) {
	f := NewFolder(15*time.Minute, counterIDs())
	now := t0.Add(time.Hour)
	rs := t0.Add(15 * time.Second)
	old := &incident.Incident{ID: "old", Fingerprint: "fp", Source: "src", Title: "t", State: incident.Resolved,
		ResolvedAt: &rs, ResolvedBy: incident.ResolvedByEvent, FirstSeen: t0, LastSeen: t0, OccurrenceCount: 1,
		FirstReceivedAt: t0.Add(5 * time.Second), LastReceivedAt: t0.Add(5 * time.Second),
		ResolvedReceivedAt: t0.Add(15 * time.Second), Version: 2}
	latest := &incident.Incident{ID: "new", Fingerprint: "fp", Source: "src", Title: "t", State: incident.Detected,
		FirstSeen: t0.Add(time.Minute), LastSeen: t0.Add(time.Minute), OccurrenceCount: 1, ReopenOf: "old",
		FirstReceivedAt: t0.Add(20 * time.Second), LastReceivedAt: t0.Add(20 * time.Second), Version: 1}
	events := []Keyed{
		recv(ctl("ack", "fp", incident.Acknowledge, 8*time.Second), 10),     // between old's trigger and its resolve
		recv(trig("late", "fp", 9*time.Second, incident.P2), 12),            // likewise
		recv(ctl("res2", "fp", incident.Resolve, 10*time.Second), 11),       // old is resolved already
		recv(trig("after", "fp", 2*time.Minute, incident.P2), 30),           // after the reopen: the latest's
		recv(ctl("ack-new", "fp", incident.Acknowledge, 2*time.Minute), 31), // likewise
	}
	latestMap := map[string]*incident.Incident{"fp": latest}
	if ids := NeedsEarlier(latestMap, events); fmt.Sprint(ids) != "[old]" {
		t.Fatalf("NeedsEarlier = %v, want [old]", ids)
	}
	r := f.FoldEarlier(latestMap, map[string]*incident.Incident{"old": old}, nil, events, now)
	byID := map[string]*incident.Incident{}
	for _, in := range r.Incidents {
		byID[in.ID] = in
	}
	o, n := byID["old"], byID["new"]
	if o == nil || n == nil {
		t.Fatalf("wrote %v", r.Incidents)
	}
	if o.AcknowledgedAt == nil || !o.AcknowledgedAt.Equal(t0.Add(8*time.Second)) || o.OccurrenceCount != 2 || o.LateCount != 0 ||
		o.State != incident.Resolved || o.Version != 3 {
		t.Fatalf("earlier incident: ack %v, count %d, late %d, %s v%d", o.AcknowledgedAt, o.OccurrenceCount, o.LateCount, o.State, o.Version)
	}
	if n.OccurrenceCount != 2 || n.State != incident.Triaged || !n.FirstReceivedAt.Equal(t0.Add(20*time.Second)) || n.Version != 2 {
		t.Fatalf("latest incident: count %d, %s, first received %v, v%d", n.OccurrenceCount, n.State, n.FirstReceivedAt, n.Version)
	}
	if r.Stats.Orphans != 1 || r.Stats.Acknowledged != 2 || r.Stats.Merged != 2 {
		t.Fatalf("stats %+v", r.Stats)
	}
	// Without the earlier incident (not read), the latest takes them, as before.
	r = f.Fold(latestMap, nil, events, now)
	if len(r.Incidents) != 1 || r.Incidents[0].ID != "new" {
		t.Fatalf("without earlier: wrote %v", r.Incidents)
	}
}

// TestFoldOvertakenResolve: a resolve received before a trigger already
// merged (and older than it) leaves the incident open; an acknowledgement
// from before the resolve is dropped, as the re-fired alert is not
// acknowledged in stream order, and a later one is kept.
func TestFoldOvertakenResolve(t *testing.T) {
	f := NewFolder(15*time.Minute, counterIDs())
	now := t0.Add(time.Hour)
	for _, c := range []struct {
		name  string
		ackAt time.Duration
		state incident.State
	}{
		{"ack before the resolve", 10 * time.Second, incident.Detected},
		{"ack after the resolve", 40 * time.Second, incident.Triaged},
	} {
		t.Run(c.name, func(t *testing.T) {
			r := f.Fold(nil, nil, []Keyed{
				recv(trig("a", "fp", 0, incident.P2), 1),
				recv(trig("c", "fp", 30*time.Second, incident.P2), 5), // after the resolve, committed first
				recv(ctl("k", "fp", incident.Acknowledge, c.ackAt), 2),
			}, now)
			in := r.Incidents[0]
			r = f.Fold(map[string]*incident.Incident{"fp": in}, nil, []Keyed{
				recv(ctl("r", "fp", incident.Resolve, 20*time.Second), 3),
			}, now)
			if r.Stats.Orphans != 1 || r.Stats.Resolved != 0 {
				t.Fatalf("stats %+v", r.Stats)
			}
			st, ack := in.State, in.AcknowledgedAt
			if len(r.Incidents) > 0 {
				st, ack = r.Incidents[0].State, r.Incidents[0].AcknowledgedAt
			}
			if st != c.state || (st == incident.Detected) != (ack == nil) {
				t.Fatalf("state %s, acknowledged_at %v; want %s", st, ack, c.state)
			}
		})
	}
}

// TestFoldLateTriggerOfReopenedIncident: a trigger no later than the
// resolved_at of the incident its identity's open incident reopened is late
// on that earlier incident (black-box finding: it was merged into the
// reopen, which then began before the incident it reopened); one after
// that resolved_at merges into the reopen. A late trigger does not move the
// last_seen of an incident the quiet period resolved: its resolved_at stays
// last_seen + window.
func TestFoldLateTriggerOfReopenedIncident(t *testing.T) {
	f := NewFolder(15*time.Minute, counterIDs())
	now := t0.Add(time.Hour)
	check := func(t *testing.T, old, reopen *incident.Incident) {
		t.Helper()
		if old.LateCount != 1 || old.OccurrenceCount != 2 || !old.LastSeen.Equal(t0) || !old.ResolvedAt.Equal(t0.Add(15*time.Minute)) ||
			old.State != incident.Resolved {
			t.Errorf("earlier incident: late %d, count %d, last_seen %v, resolved_at %v, %s", old.LateCount, old.OccurrenceCount,
				old.LastSeen, old.ResolvedAt, old.State)
		}
		if reopen.OccurrenceCount != 2 || !reopen.FirstSeen.Equal(t0.Add(20*time.Minute)) || reopen.LateCount != 0 {
			t.Errorf("reopen: count %d, first_seen %v, late %d", reopen.OccurrenceCount, reopen.FirstSeen, reopen.LateCount)
		}
	}
	late := trig("late", "fp", 5*time.Minute, incident.P3) // after old's last_seen, before its resolved_at
	gap := trig("gap", "fp", 20*time.Minute, incident.P3)  // after old's resolved_at, before the reopen
	t.Run("one batch", func(t *testing.T) {
		r := f.Fold(nil, nil, []Keyed{trig("a", "fp", 0, incident.P3), trig("b", "fp", 40*time.Minute, incident.P3), late, gap}, now)
		if len(r.Incidents) != 2 || r.Stats.Late != 1 || r.Stats.Reopened != 1 {
			t.Fatalf("stats %+v, %d incidents", r.Stats, len(r.Incidents))
		}
		check(t, r.Incidents[0], r.Incidents[1])
	})
	t.Run("later batch", func(t *testing.T) {
		first := f.Fold(nil, nil, []Keyed{trig("a", "fp", 0, incident.P3), trig("b", "fp", 40*time.Minute, incident.P3)}, now)
		old, reopen := first.Incidents[0], first.Incidents[1]
		latest := map[string]*incident.Incident{"fp": reopen}
		events := []Keyed{late, gap}
		if ids := NeedsEarlier(latest, events); len(ids) != 1 || ids[0] != old.ID {
			t.Fatalf("NeedsEarlier = %v, want [%s]", ids, old.ID)
		}
		r := f.FoldEarlier(latest, map[string]*incident.Incident{old.ID: old}, nil, events, now)
		byID := map[string]*incident.Incident{}
		for _, in := range r.Incidents {
			byID[in.ID] = in
		}
		if byID[old.ID] == nil || byID[reopen.ID] == nil || r.Stats.Late != 1 || r.Stats.Merged != 1 {
			t.Fatalf("stats %+v, wrote %v", r.Stats, r.Incidents)
		}
		check(t, byID[old.ID], byID[reopen.ID])
	})
}

// TestFoldLateTriggerBesideTheReopen: a batch that reopens an identity
// whose incident an earlier batch resolved (by a resolve, or by the quiet
// period) and then holds a trigger older than the reopen, not after that
// resolution: the trigger is late on the earlier incident, as it is when
// it comes in a batch of its own (found by a black-box run: it was merged
// into the reopen, whose first_seen it moved back).
func TestFoldLateTriggerBesideTheReopen(t *testing.T) {
	for _, tc := range []struct {
		name     string
		first    []Keyed
		resolved time.Duration
	}{
		{"resolve event", []Keyed{trig("a1", "fp", 0, incident.P3), ctl("a2", "fp", incident.Resolve, 5*time.Minute)}, 5 * time.Minute},
		{"quiet period", []Keyed{trig("a1", "fp", 0, incident.P3), trig("a0", "fp", 2*time.Minute, incident.P3)}, 17 * time.Minute},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := NewFolder(15*time.Minute, counterIDs())
			now := t0.Add(time.Hour)
			first := f.Fold(nil, nil, tc.first, now)
			old := first.Incidents[0]
			if tc.name == "quiet period" {
				// The sweep resolves it once quiet (or a trigger's timeout).
				old = old.Clone()
				f.timeout(old)
			}
			reopenAt := tc.resolved + time.Minute
			events := []Keyed{trig("a3", "fp", reopenAt, incident.P3), trig("a4", "fp", 3*time.Minute, incident.P1)}
			latest := map[string]*incident.Incident{"fp": old}
			r := f.FoldEarlier(latest, nil, nil, events, now)
			byID := map[string]*incident.Incident{}
			for _, in := range r.Incidents {
				byID[in.ID] = in
			}
			var reopen *incident.Incident
			for _, in := range r.Incidents {
				if in.ReopenOf == old.ID {
					reopen = in
				}
			}
			if reopen == nil || byID[old.ID] == nil || r.Stats.Late != 1 || r.Stats.Reopened != 1 {
				t.Fatalf("stats %+v, wrote %v", r.Stats, r.Incidents)
			}
			if e := byID[old.ID]; e.LateCount != 1 || e.OccurrenceCount != old.OccurrenceCount+1 || e.PeakSeverity != incident.P1 {
				t.Errorf("earlier incident: late %d, count %d (was %d), peak %s; want the late trigger counted on it",
					e.LateCount, e.OccurrenceCount, old.OccurrenceCount, e.PeakSeverity)
			}
			if reopen.OccurrenceCount != 1 || !reopen.FirstSeen.Equal(t0.Add(reopenAt)) || reopen.PeakSeverity != incident.P3 {
				t.Errorf("reopen: count %d, first_seen %v, peak %s; want only its own trigger", reopen.OccurrenceCount, reopen.FirstSeen, reopen.PeakSeverity)
			}
		})
	}
}
