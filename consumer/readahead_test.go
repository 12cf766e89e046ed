package consumer_test

import (
	"context"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/llm-im/incidentd/consumer"
	"github.com/llm-im/incidentd/metrics"
)

// TestReadAheadOfADeadPod: a pod dies holding the first messages of a
// stream of triggers, acknowledges and resolves while another pod runs
// (the running pod never starts after it, so it has no catch-up). The
// acknowledges and resolves the running pod pulls follow triggers that
// JetStream redelivers only after ack_wait, far later than their
// deferrals. At an event's last deferral the running pod reads the stream
// ahead itself and commits the earlier events of its identity first, so
// the incidents end as the stream applied in order leaves them, with no
// orphan. Without the read-ahead, those acknowledges and resolves are
// orphans once their deferrals run out.
func TestReadAheadOfADeadPod(t *testing.T) {
	for _, tc := range []struct {
		name  string
		held  int
		store int // index in stores
	}{
		{"memory", 60, 0},
		{"pebble", 60, 1},
		{"most_of_the_stream", 500, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t)
			cfg := testConfig()
			cfg.Consumer.BatchSize = 20
			// The dead pod's messages come back long after the deferrals
			// (2 × 50 ms) have run out.
			cfg.Consumer.AckWait.Duration = 4 * time.Second
			log := controlLog(150)
			ex := expect(t, log, cfg.Dedupe)
			if ex.stats.Orphans != 0 || ex.stats.Resolved < 100 || ex.stats.Acknowledged < 100 {
				t.Fatalf("the log, in order: %+v", ex.stats)
			}
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			if _, err := consumer.Setup(ctx, e.js, cfg.Consumer); err != nil {
				t.Fatal(err)
			}
			// The dead pod's pull request waits before the running pod's,
			// so it gets the first messages published.
			die := deadPull(t, e, cfg, tc.held)
			store := stores[tc.store].open(t, t.TempDir())
			w := e.start(cfg, store)
			e.publish(payloads(log))
			die()
			e.settle(cfg, w)

			requireIncidents(t, store, ex)
			ahead := testutil.ToFloat64(w.m.EventsReadAhead)
			if o := testutil.ToFloat64(w.m.EventsOrphaned); o != 0 {
				t.Errorf("orphaned %v, want 0", o)
			}
			if ahead == 0 || ahead > float64(tc.held) {
				t.Errorf("read ahead %v events, want some of the %d the dead pod held", ahead, tc.held)
			}
			if got := applied(w); got != ex.uniqueIDs {
				t.Errorf("applied %d, want %d", got, ex.uniqueIDs)
			}
			if got := testutil.ToFloat64(w.m.EventsInherited); got != 0 {
				t.Errorf("inherited %v: the running pod started before the other died, want 0", got)
			}
			t.Logf("read ahead %v, deferred %v, event-id duplicates %v", ahead, testutil.ToFloat64(w.m.EventsDeferred),
				testutil.ToFloat64(w.m.EventsDuplicate.WithLabelValues(metrics.DuplicateEventID)))
		})
	}
}

// deadPull sends a pull request for n messages of the consumer on a
// connection of its own; the function it returns waits for them and closes
// the connection without acking any, as a pod killed mid-batch.
func deadPull(t *testing.T, e *env, cfg consumer.Config, n int) func() {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	nc, js := connect(t, e.url)
	cons, err := js.Consumer(ctx, cfg.Consumer.Stream, cfg.Consumer.Durable)
	if err != nil {
		t.Fatal(err)
	}
	batch, err := cons.Fetch(n, jetstream.FetchMaxWait(20*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	e.waitFor("the dead pod's pull request", 10*time.Second, func() bool {
		return e.consumerInfo(cfg).NumWaiting > 0
	})
	return func() {
		t.Helper()
		held := 0
		for range batch.Messages() {
			held++
		}
		if held != n {
			t.Fatalf("the dead pod fetched %d messages, want %d (%v)", held, n, batch.Error())
		}
		nc.Close()
	}
}
