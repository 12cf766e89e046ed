package consumer_test

import (
	"cmp"
	"context"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/llm-im/incidentd/consumer"
	"github.com/llm-im/incidentd/incident"
	"github.com/llm-im/incidentd/metrics"
)

// TestRestartAfterADeadWorker: a worker dies holding the first messages of
// a stream of triggers, acknowledges and resolves (it fetched them and
// never acked), and a new worker starts on the consumer. JetStream would
// redeliver those messages only after ack_wait, behind the ones the new
// worker pulls. The new worker reads them from the stream and commits them
// first, so the incidents end as the stream applied in order leaves them,
// reopens included, with no orphan and nothing deferred; the redelivered
// copies are duplicates. Without that catch-up (the fallback), it holds
// the last retry of the acknowledges and resolves that find nothing until
// the redelivery: the same incidents for a log without reopens. The
// catch-up runs on every store.
func TestRestartAfterADeadWorker(t *testing.T) {
	// Bad input inside the span the dead worker held: skipped by the
	// catch-up, dead-lettered when redelivered.
	withBad := controlLog(150)
	withBad = append(withBad[:10:10], append([]entry{{payload: []byte(`{"id":"bad-1","title":"no source"}`), reason: incident.ReasonMissingField}}, withBad[10:]...)...)
	cases := []struct {
		name    string
		log     []entry
		held    int // messages the dead worker holds; 0: every one
		catchUp bool
		store   int // index in stores
	}{
		{"catch_up", controlLog(150), 60, true, 0},
		{"catch_up_pebble", controlLog(150), 60, true, 1},
		{"catch_up_redis", reopenLog(150), 60, true, 2},
		{"catch_up_reopens", reopenLog(150), 60, true, 0},
		{"catch_up_everything", controlLog(40), 0, true, 0},
		{"catch_up_bad_input", withBad, 60, true, 0},
		{"redelivery", controlLog(150), 60, false, 0},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t)
			cfg := testConfig()
			cfg.Consumer.BatchSize = 20
			cfg.Consumer.AckWait.Duration = 2 * time.Second
			cfg.SkipCatchUp = !tc.catchUp
			ex := expect(t, tc.log, cfg.Dedupe)
			held := cmp.Or(tc.held, len(tc.log))
			if ex.stats.Orphans != 0 || ex.stats.Resolved < 40 {
				t.Fatalf("the log, in order: %+v", ex.stats)
			}
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			if _, err := consumer.Setup(ctx, e.js, cfg.Consumer); err != nil {
				t.Fatal(err)
			}
			e.publish(payloads(tc.log))
			deadWorker(t, e, cfg, held)

			store := stores[tc.store].open(t, t.TempDir())
			w := e.start(cfg, store)
			e.settle(cfg, w)
			requireIncidents(t, store, ex)
			inherited := testutil.ToFloat64(w.m.EventsInherited)
			deferred := testutil.ToFloat64(w.m.EventsDeferred)
			if o := testutil.ToFloat64(w.m.EventsOrphaned); o != 0 {
				t.Errorf("orphaned %v, want 0", o)
			}
			validHeld := held
			for _, en := range tc.log[:held] {
				if en.reason != "" {
					validHeld--
				}
			}
			if tc.catchUp && (inherited != float64(validHeld) || deferred != 0) {
				t.Errorf("inherited %v, deferred %v; want %d and 0", inherited, deferred, validHeld)
			}
			bad := 0
			for _, n := range ex.bad {
				bad += n
			}
			if n := len(e.dlq(cfg)); n != bad {
				t.Errorf("%d dead letters, want %d", n, bad)
			}
			if !tc.catchUp && (inherited != 0 || deferred == 0) {
				t.Errorf("inherited %v, deferred %v; want 0 and some (or the test proves nothing)", inherited, deferred)
			}
			if got := applied(w); got != ex.uniqueIDs {
				t.Errorf("applied %d, want %d", got, ex.uniqueIDs)
			}
			t.Logf("inherited %v, deferred %v, event-id duplicates %v", inherited, deferred,
				testutil.ToFloat64(w.m.EventsDuplicate.WithLabelValues(metrics.DuplicateEventID)))
		})
	}
}

// deadWorker fetches the first n messages of the consumer on a connection of its own,
// never acks them and closes the connection, as a worker killed mid-batch.
func deadWorker(t *testing.T, e *env, cfg consumer.Config, n int) {
	t.Helper()
	deadPull(t, e, cfg, n, false)()
}
