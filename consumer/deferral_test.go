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
