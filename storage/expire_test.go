package storage_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/llm-im/incidentd/dedupe"
	"github.com/llm-im/incidentd/incident"
	"github.com/llm-im/incidentd/storage"
	"github.com/llm-im/incidentd/storage/memory"
)

func TestExpireQuietResolvesLikeTheNextEventWould(t *testing.T) {
	ctx := context.Background()
	s := memory.New()
	defer s.Close()
	n := 0
	f := dedupe.NewFolder(10*time.Minute, func() string { n++; return fmt.Sprintf("inc-%d", n) })
	t0 := time.Date(2026, 6, 1, 0, 0, 0, 0, time.UTC)
	ev := func(id, fp string, at time.Duration) dedupe.Keyed {
		return dedupe.Keyed{Fingerprint: fp, Event: incident.Event{ID: id, Source: "s", Title: "t", OccurredAt: t0.Add(at)}}
	}
	if _, _, err := storage.Ingest(ctx, s, f, []dedupe.Keyed{ev("a", "old", 0), ev("b", "fresh", 20*time.Minute)}, func() time.Time { return t0 }); err != nil {
		t.Fatal(err)
	}
	now := t0.Add(25 * time.Minute) // "old" has been quiet 25m > 10m; "fresh" 5m
	got, err := storage.ExpireQuiet(ctx, s, f, now, 100)
	if err != nil || got != 1 {
		t.Fatalf("expired %d, %v; want 1", got, err)
	}
	old, err := s.FindOpen(ctx, "old")
	if err == nil {
		t.Fatalf("old incident still open: %+v", old)
	}
	snap, _ := s.Lookup(ctx, []string{"old", "fresh"}, nil)
	o := snap.Latest["old"]
	if o.State != incident.Resolved || o.ResolvedBy != incident.ResolvedByTimeout || !o.ResolvedAt.Equal(t0.Add(10*time.Minute)) || o.Version != 2 {
		t.Fatalf("expired incident %+v", o)
	}
	if snap.Latest["fresh"].State != incident.Detected {
		t.Fatal("fresh incident expired")
	}
	// A late event inside the old period joins it; a new one reopens.
	res, _, err := storage.Ingest(ctx, s, f, []dedupe.Keyed{ev("c", "old", 5*time.Minute), ev("d", "old", 30*time.Minute)}, func() time.Time { return now })
	if err != nil || res.Stats.Late != 1 || res.Stats.Reopened != 1 {
		t.Fatalf("after expiry: %+v, %v", res.Stats, err)
	}
	if again, err := storage.ExpireQuiet(ctx, s, f, now, 100); err != nil || again != 0 {
		t.Fatalf("second sweep expired %d, %v", again, err)
	}
}
