package storage_test

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/llm-im/incidentd/dedupe"
	"github.com/llm-im/incidentd/incident"
	"github.com/llm-im/incidentd/storage"
	"github.com/llm-im/incidentd/storage/memory"
)

// mergeBeforeEveryWrite folds a new trigger into the incident before each
// of SetState's writes, as a worker that always gets there first would.
type mergeBeforeEveryWrite struct {
	storage.Store
	t      *testing.T
	f      *dedupe.Folder
	t0     time.Time
	writes int
}

func (m *mergeBeforeEveryWrite) Apply(ctx context.Context, b storage.Batch) error {
	if len(b.EventIDs) == 0 {
		m.writes++
		ev := dedupe.Keyed{Fingerprint: "fp", Event: incident.Event{ID: fmt.Sprintf("e%d", m.writes), Source: "s", Title: "t",
			OccurredAt: m.t0.Add(time.Duration(m.writes) * time.Second)}}
		if _, _, err := storage.Ingest(ctx, m.Store, m.f, []dedupe.Keyed{ev}, func() time.Time { return m.t0 }); err != nil {
			m.t.Fatal(err)
		}
	}
	return m.Store.Apply(ctx, b)
}

func TestSetStateGivesUpAfterMaxStateRetries(t *testing.T) {
	ctx := context.Background()
	s := memory.New()
	defer s.Close()
	t0 := time.Date(2026, 6, 1, 0, 0, 0, 0, time.UTC)
	f := dedupe.NewFolder(time.Hour, func() string { return "inc-1" })
	open := dedupe.Keyed{Fingerprint: "fp", Event: incident.Event{ID: "e0", Source: "s", Title: "t", OccurredAt: t0}}
	if _, _, err := storage.Ingest(ctx, s, f, []dedupe.Keyed{open}, func() time.Time { return t0 }); err != nil {
		t.Fatal(err)
	}
	m := &mergeBeforeEveryWrite{Store: s, t: t, f: f, t0: t0}
	ch, err := storage.SetState(ctx, m, "inc-1", incident.Investigating, func() time.Time { return t0.Add(time.Hour) })
	if !errors.Is(err, storage.ErrConflict) || ch.Changed || ch.Conflicts != storage.MaxStateRetries {
		t.Fatalf("SetState = %+v, %v; want ErrConflict after %d conflicts", ch, err, storage.MaxStateRetries)
	}
	if m.writes != storage.MaxStateRetries+1 {
		t.Fatalf("%d writes tried, want %d", m.writes, storage.MaxStateRetries+1)
	}
	in, err := s.Get(ctx, "inc-1")
	if err != nil || in.State != incident.Detected || in.OccurrenceCount != int64(m.writes)+1 {
		t.Fatalf("stored %+v, %v: want Detected with every merge", in, err)
	}

	// Without the competing writer it goes through at once.
	ch, err = storage.SetState(ctx, s, "inc-1", incident.Investigating, func() time.Time { return t0.Add(time.Hour) })
	if err != nil || !ch.Changed || ch.Conflicts != 0 || ch.From != incident.Detected || ch.Incident.Version != in.Version+1 {
		t.Fatalf("SetState = %+v, %v", ch, err)
	}
}

func TestSetStateContextEndsRetries(t *testing.T) {
	s := memory.New()
	defer s.Close()
	t0 := time.Date(2026, 6, 1, 0, 0, 0, 0, time.UTC)
	f := dedupe.NewFolder(time.Hour, func() string { return "inc-1" })
	open := dedupe.Keyed{Fingerprint: "fp", Event: incident.Event{ID: "e0", Source: "s", Title: "t", OccurredAt: t0}}
	if _, _, err := storage.Ingest(context.Background(), s, f, []dedupe.Keyed{open}, func() time.Time { return t0 }); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	m := &mergeBeforeEveryWrite{Store: s, t: t, f: f, t0: t0}
	_, err := storage.SetState(ctx, cancelAfterApply{m, cancel}, "inc-1", incident.Resolved, func() time.Time { return t0.Add(time.Hour) })
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("SetState = %v, want context.Canceled", err)
	}
}

// cancelAfterApply cancels the context after the first write attempt.
type cancelAfterApply struct {
	*mergeBeforeEveryWrite
	cancel func()
}

func (c cancelAfterApply) Apply(ctx context.Context, b storage.Batch) error {
	err := c.mergeBeforeEveryWrite.Apply(ctx, b)
	c.cancel()
	return err
}
