package consumer_test

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/llm-im/incidentd/config"
	"github.com/llm-im/incidentd/incident"
	"github.com/llm-im/incidentd/storage"
	"github.com/llm-im/incidentd/storage/memory"
	"github.com/llm-im/incidentd/storage/storetest"
)

// An incident whose quiet period ended with no further event is resolved by
// the worker's sweep (as the next event would have done), and the next
// trigger of that identity opens a new incident that reopens it.
func TestSweepResolvesQuietIncidents(t *testing.T) {
	e := newEnv(t)
	cfg := testConfig()
	cfg.Dedupe.Window = config.Duration{Duration: time.Minute}
	cfg.Dedupe.SweepInterval = config.Duration{Duration: time.Second}
	store := memory.New()
	w := e.start(cfg, store)

	now := time.Now().UTC()
	ev := func(id, source string, at time.Time) []byte {
		return []byte(fmt.Sprintf(`{"id":%q,"source":%q,"title":"High P95 latency","occurred_at":%q}`, id, source, at.Format(time.RFC3339Nano)))
	}
	e.publish([][]byte{ev("stale", "llm-gateway", now.Add(-5*time.Minute)), ev("fresh", "evaluator", now)})
	e.settle(cfg, w)

	ctx := context.Background()
	timeouts := func() float64 {
		return testutil.ToFloat64(w.m.IncidentsResolved.WithLabelValues(string(incident.ResolvedByTimeout)))
	}
	e.waitFor("quiet incident resolved by the sweep", 20*time.Second, func() bool { return timeouts() == 1 })
	active := true
	open, err := store.List(ctx, storage.Filter{Active: &active}, storage.Page{})
	if err != nil {
		t.Fatal(err)
	}
	if len(open) != 1 || open[0].Source != "evaluator" {
		t.Fatalf("open incidents %+v, want only the fresh one", open)
	}
	stale, err := store.List(ctx, storage.Filter{Sources: []string{"llm-gateway"}}, storage.Page{})
	if err != nil || len(stale) != 1 {
		t.Fatalf("stale incident: %v, %v", stale, err)
	}
	s := stale[0]
	if s.State != incident.Resolved || s.ResolvedBy != incident.ResolvedByTimeout || !s.ResolvedAt.Equal(s.LastSeen.Add(time.Minute)) {
		t.Fatalf("swept incident %+v", s)
	}

	// A trigger from inside the swept period is late and joins it; a new
	// one reopens the identity.
	e.publish([][]byte{ev("late", "llm-gateway", now.Add(-4*time.Minute-30*time.Second)), ev("again", "llm-gateway", now)})
	e.settle(cfg, w)
	got, err := store.List(ctx, storage.Filter{Sources: []string{"llm-gateway"}}, storage.Page{})
	if err != nil || len(got) != 2 {
		t.Fatalf("after reopen: %d incidents, %v", len(got), err)
	}
	newer, older := got[0], got[1]
	if newer.ReopenOf != older.ID || !newer.Active() || older.OccurrenceCount != 2 || older.LateCount != 1 {
		t.Fatalf("reopen %+v\nof %+v", newer, older)
	}
	if timeouts() != 1 {
		t.Fatalf("%v timeouts, want 1", timeouts())
	}
	w.stop(t)
}

// With state.incident_retention set, the sweep deletes the Resolved and
// Closed incidents whose last event and last change are older, and keeps
// the rest: an incident closed lately, and open ones. The next trigger of a
// pruned identity opens a new incident that reopens nothing.
func TestSweepPrunesPastRetention(t *testing.T) {
	e := newEnv(t)
	cfg := testConfig()
	cfg.Dedupe.Window = config.Duration{Duration: time.Minute}
	cfg.Dedupe.SweepInterval = config.Duration{Duration: time.Second}
	cfg.IncidentRetention = time.Hour
	store := memory.New()
	w := e.start(cfg, store)

	now := time.Now().UTC()
	ev := func(id, source string) []byte {
		return []byte(fmt.Sprintf(`{"id":%q,"source":%q,"title":"High P95 latency","occurred_at":%q}`, id, source, now.Format(time.RFC3339Nano)))
	}
	e.publish([][]byte{ev("a1", "expired"), ev("b1", "closed-lately"), ev("c1", "open")})
	e.settle(cfg, w)

	ctx := context.Background()
	bySource := func(source string) []*incident.Incident {
		t.Helper()
		got, err := store.List(ctx, storage.Filter{Sources: []string{source}}, storage.Page{})
		if err != nil {
			t.Fatal(err)
		}
		return got
	}
	if pruned := testutil.ToFloat64(w.m.IncidentsPruned); pruned != 0 {
		t.Fatalf("%v pruned before any incident expired", pruned)
	}
	// Age two incidents as if they had ended three hours ago; one of them
	// was closed by an operator ten minutes ago.
	old := now.Add(-3 * time.Hour)
	age := func(in *incident.Incident, state incident.State, updated time.Time) *incident.Incident {
		return storetest.Update(in, func(c *incident.Incident) {
			c.State, c.FirstSeen, c.LastSeen, c.CreatedAt, c.UpdatedAt = state, old, old, old, updated
			resolved := old.Add(time.Minute)
			c.ResolvedAt, c.ResolvedBy = &resolved, incident.ResolvedByEvent
		})
	}
	expired := bySource("expired")[0]
	closed := age(bySource("closed-lately")[0], incident.Closed, now.Add(-10*time.Minute))
	storetest.Put(t, store, age(expired, incident.Resolved, old.Add(time.Minute)), closed)

	e.waitFor("expired incident pruned", 20*time.Second, func() bool { return testutil.ToFloat64(w.m.IncidentsPruned) == 1 })
	if _, err := store.Get(ctx, expired.ID); !errors.Is(err, storage.ErrNotFound) {
		t.Fatalf("get pruned incident = %v, want ErrNotFound", err)
	}
	if got := bySource("closed-lately"); len(got) != 1 || got[0].Version != closed.Version {
		t.Fatalf("incident closed lately: %+v, want it kept at version %d", got, closed.Version)
	}
	if got := bySource("open"); len(got) != 1 || !got[0].Active() {
		t.Fatalf("open incident: %+v, want it kept open", got)
	}

	e.publish([][]byte{ev("a2", "expired")})
	e.settle(cfg, w)
	got := bySource("expired")
	if len(got) != 1 || got[0].ID == expired.ID || got[0].ReopenOf != "" || got[0].OccurrenceCount != 1 || !got[0].Active() {
		t.Fatalf("trigger after the prune: %+v, want one new open incident reopening nothing", got)
	}
	if pruned := testutil.ToFloat64(w.m.IncidentsPruned); pruned != 1 {
		t.Fatalf("%v pruned, want 1", pruned)
	}
	if failed := testutil.ToFloat64(w.m.SweepFailures); failed != 0 {
		t.Fatalf("%v sweep failures", failed)
	}
	w.stop(t)
}

// slowInactiveList wraps a store whose List of inactive incidents (the
// retention walk's) waits until its context ends, as a store too slow for
// the sweep's time limit would.
type slowInactiveList struct {
	storage.Store
}

func (s slowInactiveList) List(ctx context.Context, f storage.Filter, p storage.Page) ([]*incident.Incident, error) {
	if f.Active != nil && !*f.Active {
		<-ctx.Done()
		return nil, ctx.Err()
	}
	return s.Store.List(ctx, f, p)
}

// A retention prune that runs past the lag poll's time limit is a failure,
// counted and logged, not a silent shutdown.
func TestSweepTimeoutIsAFailure(t *testing.T) {
	e := newEnv(t)
	cfg := testConfig()
	cfg.Dedupe.SweepInterval = config.Duration{Duration: time.Second}
	cfg.IncidentRetention = time.Hour
	w := e.start(cfg, slowInactiveList{memory.New()})
	e.waitFor("a timed-out prune counted as a sweep failure", 20*time.Second, func() bool {
		return testutil.ToFloat64(w.m.SweepFailures) >= 1
	})
	w.stop(t)
}
