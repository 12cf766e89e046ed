package consumer_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/llm-im/incidentd/config"
	"github.com/llm-im/incidentd/incident"
	"github.com/llm-im/incidentd/storage"
	"github.com/llm-im/incidentd/storage/memory"
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
