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
