package incident_test

import (
	"errors"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/llm-im/incidentd/dedupe"
	"github.com/llm-im/incidentd/incident"
)

var ot0 = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

// inState returns a valid incident in state st, as the fold leaves one:
// resolved ones by an event at +10m, Triaged and later acknowledged at +1m.
func inState(st incident.State) *incident.Incident {
	in := &incident.Incident{
		ID: "inc-1", Fingerprint: "v1:0123456789abcdef0123456789abcdef", Title: "High latency", Source: "llm-gateway",
		Type: incident.Performance, Severity: incident.P2, PeakSeverity: incident.P1, State: st, Resources: []string{"a"},
		FirstSeen: ot0, LastSeen: ot0.Add(5 * time.Minute), CreatedAt: ot0, UpdatedAt: ot0.Add(5 * time.Minute),
		OccurrenceCount: 3, LatestEventAt: ot0.Add(5 * time.Minute), LatestEventID: "e3", Version: 4,
	}
	if st != incident.Detected {
		ack := ot0.Add(time.Minute)
		in.AcknowledgedAt = &ack
	}
	if !st.Active() {
		res := ot0.Add(10 * time.Minute)
		in.ResolvedAt, in.ResolvedBy = &res, incident.ResolvedByEvent
	}
	return in
}

func TestSetState(t *testing.T) {
	now := time.Date(2026, 3, 1, 13, 0, 0, 0, time.FixedZone("CET", 3600)) // stored as UTC
	nowUTC := now.UTC()
	ack, res := ot0.Add(time.Minute), ot0.Add(10*time.Minute)
	type want struct {
		ack        *time.Time
		resolvedAt *time.Time
		resolvedBy incident.ResolvedBy
	}
	cases := []struct {
		from, to incident.State
		want     want   // when allowed
		refused  string // a part of the TransitionError, when refused
	}{
		// Leaving Detected for an active state acknowledges.
		{from: incident.Detected, to: incident.Triaged, want: want{ack: &nowUTC}},
		{from: incident.Detected, to: incident.Investigating, want: want{ack: &nowUTC}},
		{from: incident.Detected, to: incident.Remediating, want: want{ack: &nowUTC}},
		// Already acknowledged: acknowledged_at stays.
		{from: incident.Triaged, to: incident.Investigating, want: want{ack: &ack}},
		{from: incident.Investigating, to: incident.Remediating, want: want{ack: &ack}},
		{from: incident.Remediating, to: incident.Investigating, want: want{ack: &ack}},
		{from: incident.Remediating, to: incident.Triaged, want: want{ack: &ack}},
		// Resolving or closing an active incident: the operator resolved it, now.
		{from: incident.Detected, to: incident.Resolved, want: want{resolvedAt: &nowUTC, resolvedBy: incident.ResolvedByOperator}},
		{from: incident.Triaged, to: incident.Resolved, want: want{ack: &ack, resolvedAt: &nowUTC, resolvedBy: incident.ResolvedByOperator}},
		{from: incident.Investigating, to: incident.Resolved, want: want{ack: &ack, resolvedAt: &nowUTC, resolvedBy: incident.ResolvedByOperator}},
		{from: incident.Remediating, to: incident.Closed, want: want{ack: &ack, resolvedAt: &nowUTC, resolvedBy: incident.ResolvedByOperator}},
		{from: incident.Detected, to: incident.Closed, want: want{resolvedAt: &nowUTC, resolvedBy: incident.ResolvedByOperator}},
		// Closing a resolved incident keeps its resolution.
		{from: incident.Resolved, to: incident.Closed, want: want{ack: &ack, resolvedAt: &res, resolvedBy: incident.ResolvedByEvent}},
		// Refused.
		{from: incident.Triaged, to: incident.Detected, refused: "Detected is only the state a new incident starts in"},
		{from: incident.Resolved, to: incident.Detected, refused: "Detected is only"},
		{from: incident.Resolved, to: incident.Triaged, refused: "does not become active again"},
		{from: incident.Resolved, to: incident.Investigating, refused: "does not become active again"},
		{from: incident.Resolved, to: incident.Remediating, refused: "does not become active again"},
		{from: incident.Closed, to: incident.Resolved, refused: "Closed is final"},
		{from: incident.Closed, to: incident.Investigating, refused: "Closed is final"},
		{from: incident.Closed, to: incident.Detected, refused: "Detected is only"},
	}
	for _, c := range cases {
		t.Run(c.from.String()+"->"+c.to.String(), func(t *testing.T) {
			in := inState(c.from)
			if err := in.Validate(); err != nil {
				t.Fatalf("fixture: %v", err)
			}
			before := in.Clone()
			got, err := incident.SetState(in, c.to, now)
			if !reflect.DeepEqual(in, before) {
				t.Fatalf("SetState modified its argument")
			}
			if c.refused != "" {
				var te *incident.TransitionError
				if !errors.As(err, &te) || te.From != c.from || te.To != c.to || te.ID != "inc-1" || got != nil {
					t.Fatalf("got %v, %v; want a TransitionError %s -> %s", got, err, c.from, c.to)
				}
				for _, part := range []string{c.refused, `incident "inc-1": ` + c.from.String() + " -> " + c.to.String() + " is not allowed"} {
					if !strings.Contains(err.Error(), part) {
						t.Errorf("error %q does not say %q", err, part)
					}
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if err := got.Validate(); err != nil {
				t.Fatalf("result does not validate: %v", err)
			}
			if got.State != c.to || got.Version != in.Version+1 || !got.UpdatedAt.Equal(now) || got.UpdatedAt.Location() != time.UTC {
				t.Errorf("state %s version %d updated_at %v; want %s, %d, %v UTC", got.State, got.Version, got.UpdatedAt, c.to, in.Version+1, now)
			}
			if !sameTime(got.AcknowledgedAt, c.want.ack) || !sameTime(got.ResolvedAt, c.want.resolvedAt) || got.ResolvedBy != c.want.resolvedBy {
				t.Errorf("acknowledged_at %v, resolved_at %v, resolved_by %q; want %v, %v, %q",
					got.AcknowledgedAt, got.ResolvedAt, got.ResolvedBy, c.want.ack, c.want.resolvedAt, c.want.resolvedBy)
			}
			// Every other field is the incident's own.
			rest := got.Clone()
			rest.State, rest.Version, rest.UpdatedAt = in.State, in.Version, in.UpdatedAt
			rest.AcknowledgedAt, rest.ResolvedAt, rest.ResolvedBy = in.AcknowledgedAt, in.ResolvedAt, in.ResolvedBy
			if !reflect.DeepEqual(rest, in) {
				t.Errorf("other fields changed:\n got %+v\nwant %+v", rest, in)
			}
		})
	}
}

func TestSetStateSameStateIsUnchanged(t *testing.T) {
	for _, st := range incident.States {
		got, err := incident.SetState(inState(st), st, ot0.Add(time.Hour))
		if !errors.Is(err, incident.ErrUnchanged) || got != nil {
			t.Errorf("%s -> %s: %v, %v; want ErrUnchanged", st, st, got, err)
		}
	}
	if _, err := incident.SetState(inState(incident.Triaged), incident.State(42), ot0); err == nil {
		t.Error("an unknown target state was accepted")
	}
}

func TestOperatorTargets(t *testing.T) {
	// Every target is reachable from Detected; Detected is none.
	for _, to := range incident.OperatorTargets {
		if _, err := incident.SetState(inState(incident.Detected), to, ot0.Add(time.Hour)); err != nil {
			t.Errorf("Detected -> %s: %v", to, err)
		}
	}
	if len(incident.OperatorTargets) != len(incident.States)-1 || incident.OperatorTargets[0] == incident.Detected {
		t.Errorf("targets %v", incident.OperatorTargets)
	}
}

func sameTime(a, b *time.Time) bool {
	if a == nil || b == nil {
		return a == b
	}
	return a.Equal(*b)
}

// TestFoldAfterOperatorStates: what an operator writes folds like the
// fold's own states. A trigger after an operator's resolved_at opens a new
// incident reopening it, one not after it is late; an acknowledge of an
// Investigating incident changes nothing, a resolve resolves it by event;
// the quiet period still times out an Investigating incident.
func TestFoldAfterOperatorStates(t *testing.T) {
	const fp = "v1:0123456789abcdef0123456789abcdef"
	ids := 0
	f := dedupe.NewFolder(15*time.Minute, func() string { ids++; return "new-" + string(rune('0'+ids)) })
	ev := func(id string, a incident.Action, at time.Time) dedupe.Keyed {
		return dedupe.Keyed{Fingerprint: fp, Event: incident.Event{ID: id, Action: a, Source: "llm-gateway", Title: "High latency",
			Type: incident.Performance, Severity: incident.P3, Resources: []string{"a"}, OccurredAt: at}}
	}
	fold := func(in *incident.Incident, k dedupe.Keyed, now time.Time) dedupe.Result {
		t.Helper()
		res := f.Fold(map[string]*incident.Incident{fp: in}, nil, []dedupe.Keyed{k}, now)
		for _, out := range res.Incidents {
			if err := out.Validate(); err != nil {
				t.Fatalf("fold result %s does not validate: %v", out.ID, err)
			}
		}
		return res
	}
	opAt := ot0.Add(8 * time.Minute) // last_seen is +5m
	resolved, err := incident.SetState(inState(incident.Investigating), incident.Resolved, opAt)
	if err != nil {
		t.Fatal(err)
	}

	t.Run("trigger after the operator's resolved_at reopens", func(t *testing.T) {
		res := fold(resolved, ev("t1", incident.Trigger, opAt.Add(time.Microsecond)), opAt.Add(time.Minute))
		if res.Stats.Reopened != 1 || len(res.Incidents) != 1 || res.Incidents[0].ReopenOf != resolved.ID || res.Incidents[0].State != incident.Detected {
			t.Fatalf("stats %+v, incidents %+v", res.Stats, res.Incidents)
		}
	})
	t.Run("trigger not after it is late", func(t *testing.T) {
		res := fold(resolved, ev("t2", incident.Trigger, opAt), opAt.Add(time.Minute))
		if res.Stats.Late != 1 || len(res.Incidents) != 1 || res.Incidents[0].ID != resolved.ID || res.Incidents[0].LateCount != 1 ||
			res.Incidents[0].ResolvedBy != incident.ResolvedByOperator {
			t.Fatalf("stats %+v, incidents %+v", res.Stats, res.Incidents)
		}
	})
	t.Run("closed by an operator: the same", func(t *testing.T) {
		closed, err := incident.SetState(resolved, incident.Closed, opAt.Add(time.Hour))
		if err != nil {
			t.Fatal(err)
		}
		if res := fold(closed, ev("t3", incident.Trigger, opAt.Add(time.Second)), opAt.Add(2*time.Hour)); res.Stats.Reopened != 1 {
			t.Fatalf("trigger after a closed incident's resolved_at: %+v", res.Stats)
		}
		if res := fold(closed, ev("t4", incident.Trigger, opAt.Add(-time.Second)), opAt.Add(2*time.Hour)); res.Stats.Late != 1 || res.Incidents[0].State != incident.Closed {
			t.Fatalf("late trigger into a closed incident: %+v", res.Stats)
		}
	})
	investigating, err := incident.SetState(inState(incident.Detected), incident.Investigating, opAt)
	if err != nil {
		t.Fatal(err)
	}
	t.Run("acknowledge of an Investigating incident is a no-op", func(t *testing.T) {
		if res := fold(investigating, ev("a1", incident.Acknowledge, opAt.Add(time.Second)), opAt.Add(time.Minute)); res.Stats.Noops != 1 || len(res.Incidents) != 0 {
			t.Fatalf("stats %+v", res.Stats)
		}
	})
	t.Run("resolve event of an Investigating incident", func(t *testing.T) {
		res := fold(investigating, ev("r1", incident.Resolve, opAt.Add(time.Second)), opAt.Add(time.Minute))
		if res.Stats.Resolved != 1 || res.Incidents[0].ResolvedBy != incident.ResolvedByEvent {
			t.Fatalf("stats %+v", res.Stats)
		}
	})
	t.Run("the quiet period still times out an Investigating incident", func(t *testing.T) {
		quiet := investigating.LastSeen.Add(16 * time.Minute)
		exp, ok := f.Expire(investigating, quiet)
		if !ok || exp.State != incident.Resolved || exp.ResolvedBy != incident.ResolvedByTimeout {
			t.Fatalf("expire: %v %+v", ok, exp)
		}
		if err := exp.Validate(); err != nil {
			t.Fatal(err)
		}
	})
}
