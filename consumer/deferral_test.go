package consumer_test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/llm-im/incidentd/consumer"
)

// TestAloneNeverDefers: one worker applies a backlog in stream order,
// however the batches fall, and defers no acknowledge or resolve. Found by
// a black-box run: in a batch [trigger x, resolve x at +20m, resolve x at
// +5m], the first fold deferred the resolve at +20m (it times x out and
// finds nothing), so the one at +5m resolved x; settling the first and
// folding again then deferred the second, which nothing settled, and a
// later resolve of another identity waited behind it, after a trigger of
// its own identity.
func TestAloneNeverDefers(t *testing.T) {
	logs := map[string]string{
		"acknowledge after a timeout": `{"id":"t1","source":"gw","dedup_key":"x","title":"t","occurred_at":"2026-03-01T00:00:00Z"}
{"id":"r1","source":"gw","dedup_key":"x","action":"acknowledge","occurred_at":"2026-03-01T00:20:00Z"}
{"id":"r2","source":"gw","dedup_key":"x","action":"acknowledge","occurred_at":"2026-03-01T00:06:00Z"}`,
		"resolves across batches": `{"id":"x1","source":"gw","dedup_key":"x","title":"t","occurred_at":"2026-03-01T00:00:00Z"}
{"id":"y1","source":"gw","dedup_key":"y","title":"t","occurred_at":"2026-03-01T00:00:00Z"}
{"id":"x2","source":"gw","dedup_key":"x","action":"resolve","occurred_at":"2026-03-01T00:20:00Z"}
{"id":"x3","source":"gw","dedup_key":"x","action":"resolve","occurred_at":"2026-03-01T00:05:00Z"}
{"id":"f1","source":"gw","dedup_key":"f","title":"t","occurred_at":"2026-03-01T00:00:00Z"}
{"id":"f2","source":"gw","dedup_key":"f","title":"t","occurred_at":"2026-03-01T00:00:00Z"}
{"id":"y2","source":"gw","dedup_key":"y","action":"resolve","occurred_at":"2026-03-01T00:20:00Z"}
{"id":"y3","source":"gw","dedup_key":"y","title":"t","occurred_at":"2026-03-01T00:10:00Z"}`,
	}
	for name, text := range logs {
		for _, size := range []int{2, 3, 64} {
			t.Run(fmt.Sprintf("%s/batch=%d", name, size), func(t *testing.T) {
				var log []entry
				for _, line := range strings.Split(text, "\n") {
					log = append(log, entry{payload: []byte(line)})
				}
				e := newEnv(t)
				cfg := testConfig()
				cfg.Consumer.BatchSize = size
				ex := expect(t, log, cfg.Dedupe)
				store := stores[0].open(t, "")
				ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
				defer cancel()
				if _, err := consumer.Setup(ctx, e.js, cfg.Consumer); err != nil {
					t.Fatal(err)
				}
				e.publish(payloads(log)) // a backlog: batches fill from it
				w := e.start(cfg, store)
				e.settle(cfg, w)
				if got := testutil.ToFloat64(w.m.EventsDeferred); got != 0 {
					t.Errorf("events_deferred_total = %v, want 0: a worker alone never defers", got)
				}
				requireIncidents(t, store, ex)
				requireCounters(t, w.m, ex)
			})
		}
	}
}

// TestEarlierDeferralHoldsNothingBack: another pod holds a trigger, and
// this worker defers the resolve after it. Once the other pod has acked
// the trigger, a resolve of another identity, with no trigger anywhere,
// counts as an orphan at its first delivery: the deferred resolve between
// them is not something it can follow. Before, a message this worker had
// deferred in an earlier batch was neither acked nor held, so every
// acknowledge or resolve with no incident after it waited out its
// deferrals too.
func TestEarlierDeferralHoldsNothingBack(t *testing.T) {
	e := newEnv(t)
	cfg := testConfig()
	cfg.Consumer.AckWait.Duration = 30 * time.Second // the other pod's trigger stays with it
	cfg.Consumer.ReadAhead = false
	cfg.SkipCatchUp = true // the catch-up would read the held trigger
	cfg.Consumer.OrphanRetryDelay.Duration = 5 * time.Second
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	if _, err := consumer.Setup(ctx, e.js, cfg.Consumer); err != nil {
		t.Fatal(err)
	}
	e.publish([][]byte{[]byte(`{"id":"t-x","source":"gw","dedup_key":"x","title":"t","occurred_at":"2026-03-01T00:00:00Z"}`)})
	nc, held := pullFirst(t, e, cfg, 1, false)
	defer nc.Close()
	e.publish([][]byte{[]byte(`{"id":"r-x","source":"gw","dedup_key":"x","action":"resolve","occurred_at":"2026-03-01T00:01:00Z"}`)})
	w := e.start(cfg, stores[0].open(t, ""))
	e.waitFor("the resolve after the held trigger deferred", 10*time.Second, func() bool {
		return testutil.ToFloat64(w.m.EventsDeferred) == 1
	})
	for m := range held.Messages() { // the other pod is done with its trigger
		if err := m.DoubleAck(ctx); err != nil {
			t.Fatal(err)
		}
	}
	e.waitFor("the ack floor past the trigger", 10*time.Second, func() bool {
		return e.consumerInfo(cfg).AckFloor.Stream >= 1
	})
	// A batch between them: the batch in flight just before counts as
	// held anyway, so without it this passes on the old code.
	e.publish([][]byte{[]byte(`{"id":"t-z","source":"gw","dedup_key":"z","title":"t","occurred_at":"2026-03-01T00:00:00Z"}`)})
	e.waitFor("the trigger of z applied", 10*time.Second, func() bool { return applied(w) == 1 })
	e.publish([][]byte{[]byte(`{"id":"r-y","source":"gw","dedup_key":"y","action":"resolve","occurred_at":"2026-03-01T00:02:00Z"}`)})
	e.waitFor("the resolve of y orphaned or deferred", 10*time.Second, func() bool {
		return testutil.ToFloat64(w.m.EventsOrphaned) >= 1 || testutil.ToFloat64(w.m.EventsDeferred) >= 2
	})
	if got := testutil.ToFloat64(w.m.EventsDeferred); got != 1 {
		t.Fatalf("events_deferred_total = %v, want 1: the resolve of y waited behind the deferred resolve of x", got)
	}
	// The resolve of x comes back after its delay; its trigger went to
	// the other pod, which committed nothing, so it is an orphan too.
	e.settle(cfg, w)
	if got := testutil.ToFloat64(w.m.EventsOrphaned); got != 2 {
		t.Errorf("events_orphaned_total = %v, want 2", got)
	}
	if got := testutil.ToFloat64(w.m.EventsDeferred); got != 1 {
		t.Errorf("events_deferred_total = %v at the end, want 1", got)
	}
}
