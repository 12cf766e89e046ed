package consumer_test

import (
	"context"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/llm-im/incidentd/storage"
	"github.com/llm-im/incidentd/storage/redis/redistest"
)

// TestLeasedBatchIsNoConflict: a batch refused because another pod holds
// the Redis write lease waits for it (here until its TTL ends, a pod that
// died holding it) and lands whole; the refusal is not an
// optimistic-concurrency conflict, so incidentd_store_conflicts_total
// stays 0 (README, Redis Apply: "not counted as a conflict").
func TestLeasedBatchIsNoConflict(t *testing.T) {
	e := newEnv(t)
	cfg := testConfig()
	cfg.Consumer.AckWait.Duration = 30 * time.Second // no redelivery while the lease holds the batch
	dir := t.TempDir()
	store := openRedis(t, dir)
	other, ok := openRedis(t, dir).(storage.WriteLeaser)
	if !ok {
		t.Fatal("the Redis store is not a WriteLeaser")
	}
	if err := other.LeaseWrites(context.Background()); err != nil {
		t.Fatal(err)
	}
	log := logicalLog(300, 0, false, 3)
	ex := expect(t, log, cfg.Dedupe)
	w := e.start(cfg, store)
	e.publish(payloads(log))
	e.waitFor("a batch in hand", 10*time.Second, func() bool { return e.consumerInfo(cfg).NumAckPending > 0 })
	v, _ := redisServers.Load(dir)
	if n, err := v.(*redistest.Server).Client(t).Exists(context.Background(), "llm-im:lease").Result(); err != nil || n != 1 {
		t.Fatalf("the lease ended before the worker had a batch (exists=%d, %v): too slow to test", n, err)
	}
	e.settle(cfg, w)
	requireIncidents(t, store, ex)
	if got := applied(w); got != ex.uniqueIDs {
		t.Fatalf("events applied = %d, want %d", got, ex.uniqueIDs)
	}
	if c := testutil.ToFloat64(w.m.StoreConflicts); c != 0 {
		t.Fatalf("store_conflicts_total = %v after batches that only waited for another pod's lease, want 0", c)
	}
}
