package redis_test

import (
	"errors"
	"testing"
	"time"

	"github.com/llm-im/incidentd/dedupe"
	"github.com/llm-im/incidentd/loadgen"
	"github.com/llm-im/incidentd/storage"
	"github.com/llm-im/incidentd/storage/redis"
	"github.com/llm-im/incidentd/storage/redis/redistest"
	"github.com/llm-im/incidentd/storage/storetest"
)

// TestUnconfirmedApply: with wait_replicas and no replica to acknowledge,
// Apply writes the batch and says so with storage.ErrUnconfirmed, and
// Ingest returns the fold it wrote, so the worker counts those events once.
func TestUnconfirmedApply(t *testing.T) {
	srv := redistest.StartStandalone(t, redistest.Options{})
	s := open(t, redis.Config{URL: srv.URL(), WaitReplicas: 1, WaitTimeout: 50 * time.Millisecond})
	cfg := loadgen.DefaultConfig()
	cfg.Seed = 7
	batch := loadgen.Batches(loadgen.New(cfg), 1, 64)[0]
	res, _, err := storage.Ingest(ctx, s, dedupe.NewFolder(0, storetest.NewIDs("u")), batch, time.Now)
	if !errors.Is(err, storage.ErrUnconfirmed) {
		t.Fatalf("Ingest: %v, want ErrUnconfirmed", err)
	}
	if len(res.EventIDs) == 0 || res.Stats.Opened == 0 {
		t.Fatalf("no fold returned with the error: %+v", res.Stats)
	}
	plain := open(t, redis.Config{URL: srv.URL()})
	snap, err := plain.Lookup(ctx, nil, res.EventIDs)
	if err != nil {
		t.Fatal(err)
	}
	for _, id := range res.EventIDs {
		if !snap.Applied[id] {
			t.Fatalf("event %s not written", id)
		}
	}
}
