package consumer_test

import (
	"context"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/llm-im/incidentd/consumer"
)

// TestRestartWaitsForTheDeadWorkersMessages: a worker dies holding the
// first messages of a stream of triggers, acknowledges and resolves (it
// fetched them and never acked), and a new worker starts on the consumer.
// The acknowledges and resolves it receives first follow triggers that
// only come back after ack_wait; it holds them until then instead of
// counting them as orphans, so the incidents end as the stream applied in
// order leaves them: acknowledged and resolved, none open, no orphan.
func TestRestartWaitsForTheDeadWorkersMessages(t *testing.T) {
	e := newEnv(t)
	cfg := testConfig()
	cfg.Consumer.BatchSize = 20
	cfg.Consumer.AckWait.Duration = 2 * time.Second
	log := controlLog(150)
	ex := expect(t, log, cfg.Dedupe)
	if ex.stats.Orphans != 0 || ex.stats.Resolved != 150 {
		t.Fatalf("the log, in order: %+v", ex.stats)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if _, err := consumer.Setup(ctx, e.js, cfg.Consumer); err != nil {
		t.Fatal(err)
	}
	e.publish(payloads(log))

	// The dead worker: fetches the first 60 messages on its own connection,
	// never acks them, and goes away.
	nc, js := connect(t, e.url)
	cons, err := js.Consumer(ctx, cfg.Consumer.Stream, cfg.Consumer.Durable)
	if err != nil {
		t.Fatal(err)
	}
	batch, err := cons.Fetch(60, jetstream.FetchMaxWait(5*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	held := 0
	for range batch.Messages() {
		held++
	}
	if held != 60 {
		t.Fatalf("the dead worker fetched %d messages, want 60 (%v)", held, batch.Error())
	}
	nc.Close()

	store := stores[0].open(t, "")
	w := e.start(cfg, store)
	e.settle(cfg, w)
	requireIncidents(t, store, ex)
	if o := testutil.ToFloat64(w.m.EventsOrphaned); o != 0 {
		t.Errorf("orphaned %v, want 0", o)
	}
	if d := testutil.ToFloat64(w.m.EventsDeferred); d == 0 {
		t.Errorf("nothing was deferred: the test proves nothing")
	}
	t.Logf("deferred %v", testutil.ToFloat64(w.m.EventsDeferred))
}
