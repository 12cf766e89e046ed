package consumer_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/llm-im/incidentd/consumer"
	"github.com/llm-im/incidentd/incident"
	"github.com/llm-im/incidentd/metrics"
)

// TestMaxDeliver lets a message exhaust MaxDeliver outside the worker: the
// max-deliveries advisory makes the worker dead-letter it. (The worker
// does not read the message itself at start, as it would a dead worker's:
// see TestRestartAfterADeadWorker; it would then be applied, and the
// advisory find it so.)
func TestMaxDeliver(t *testing.T) {
	e := newEnv(t)
	cfg := maxDeliverOnce()
	ctx := context.Background()
	if _, err := consumer.Setup(ctx, e.js, cfg.Consumer); err != nil {
		t.Fatal(err)
	}
	e.publish([][]byte{[]byte(`{"id":"lost-1","source":"s","title":"never acked"}`)})
	stealDelivery(t, e, cfg)
	w := e.start(cfg, stores[0].open(t, ""))
	e.waitFor("dead letter", 20*time.Second, func() bool { return len(e.dlq(cfg)) == 1 })
	m := e.dlq(cfg)[0]
	if got := m.Header.Get(consumer.HeaderReason); got != string(incident.ReasonMaxDeliver) {
		t.Fatalf("reason %q, want max_deliver", got)
	}
	if m.Header.Get(consumer.HeaderStreamSeq) != "1" || m.Header.Get(consumer.HeaderSubject) == "" {
		t.Fatalf("headers %v", m.Header)
	}
	e.waitFor("counter", 5*time.Second, func() bool {
		return testutil.ToFloat64(w.m.EventsDeadLettered.WithLabelValues(string(incident.ReasonMaxDeliver))) == 1
	})
}

// TestCatchUpLeavesMaxDelivered: a worker starting while messages a
// stopped worker held are un-acked reads that span itself (the catch-up),
// but not a message JetStream already gave up on (its max-deliveries
// advisory is in the advisory stream): that one is dead-lettered, as
// max_deliver promises, and the others are applied.
func TestCatchUpLeavesMaxDelivered(t *testing.T) {
	e := newEnv(t)
	cfg := testConfig()
	cfg.Consumer.MaxDeliver = 1
	cfg.Consumer.AckWait.Duration = 4 * time.Second // the worker starts well within it
	ctx := context.Background()
	if _, err := consumer.Setup(ctx, e.js, cfg.Consumer); err != nil {
		t.Fatal(err)
	}
	e.publish([][]byte{[]byte(`{"id":"gave-up","source":"s","title":"a"}`), []byte(`{"id":"held-1","source":"s","title":"b"}`),
		[]byte(`{"id":"held-2","source":"s","title":"c"}`)})
	stealDelivery(t, e, cfg) // seq 1, its only delivery
	adv, err := e.js.Stream(ctx, cfg.Consumer.MaxDeliveriesStream())
	if err != nil {
		t.Fatal(err)
	}
	e.waitFor("the advisory of seq 1", 30*time.Second, func() bool {
		info, err := adv.Info(ctx)
		return err == nil && info.State.Msgs == 1
	})
	stealDelivery(t, e, cfg) // seqs 2 and 3: held by a "dead" worker,
	stealDelivery(t, e, cfg) // not given up on yet
	store := stores[0].open(t, "")
	w := e.start(cfg, store)
	e.waitFor("the held messages caught up", 10*time.Second, func() bool { return testutil.ToFloat64(w.m.EventsInherited) == 2 })
	e.waitFor("seq 1 dead-lettered", 20*time.Second, func() bool { return len(e.dlq(cfg)) == 1 })
	if m := e.dlq(cfg)[0]; m.Header.Get(consumer.HeaderReason) != string(incident.ReasonMaxDeliver) || m.Header.Get(consumer.HeaderStreamSeq) != "1" {
		t.Fatalf("dead letter %v, want seq 1 with reason max_deliver", m.Header)
	}
	snap, err := store.Lookup(ctx, nil, []string{"gave-up", "held-1", "held-2"})
	if err != nil {
		t.Fatal(err)
	}
	if ap := snap.Applied; ap["gave-up"] || !ap["held-1"] || !ap["held-2"] {
		t.Fatalf("applied %v: want held-1 and held-2 only", ap)
	}
}

// TestMaxDeliverWhileNoWorkerRuns lets a burst of messages exhaust
// MaxDeliver while no worker runs, as in a crash loop: the advisories wait
// in the advisory stream, and the worker started afterwards dead-letters
// every message, far more than one fetch of advisories holds.
func TestMaxDeliverWhileNoWorkerRuns(t *testing.T) {
	e := newEnv(t)
	cfg := testConfig()
	cfg.Consumer.MaxDeliver = 1
	ctx := context.Background()
	if _, err := consumer.Setup(ctx, e.js, cfg.Consumer); err != nil {
		t.Fatal(err)
	}
	const n = 1000
	payloads := make([][]byte, n)
	for i := range payloads {
		payloads[i] = fmt.Appendf(nil, `{"id":"burst-%d","source":"s","title":"never acked %d"}`, i, i%7)
	}
	e.publish(payloads)
	cons, err := e.js.Consumer(ctx, cfg.Consumer.Stream, cfg.Consumer.Durable)
	if err != nil {
		t.Fatal(err)
	}
	for taken := 0; taken < n; {
		b, err := cons.Fetch(n-taken, jetstream.FetchMaxWait(5*time.Second))
		if err != nil {
			t.Fatal(err)
		}
		for range b.Messages() {
			taken++
		}
	}
	adv, err := e.js.Stream(ctx, cfg.Consumer.MaxDeliveriesStream())
	if err != nil {
		t.Fatal(err)
	}
	e.waitFor("every advisory kept", 30*time.Second, func() bool {
		info, err := adv.Info(ctx)
		return err == nil && info.State.Msgs == n
	})
	w := e.start(cfg, stores[0].open(t, ""))
	e.waitFor("every message dead-lettered", 60*time.Second, func() bool {
		return testutil.ToFloat64(w.m.EventsDeadLettered.WithLabelValues(string(incident.ReasonMaxDeliver))) == n
	})
	if got := len(e.dlq(cfg)); got != n {
		t.Fatalf("%d dead letters, want %d", got, n)
	}
	e.waitFor("every advisory acked", 10*time.Second, func() bool {
		return e.caughtUp(cfg.Consumer.MaxDeliveriesStream(), cfg.Consumer.Durable, 0)
	})
	if got := testutil.ToFloat64(w.m.DeadLettersAbandoned.WithLabelValues(string(incident.ReasonMaxDeliver))); got != 0 {
		t.Fatalf("%v messages given up", got)
	}
}

// TestMaxDeliveriesStreamRecreated deletes the advisory stream under a
// running worker: the worker sets it up again by itself (after
// rebindDelay, so that nats-server has moved the old stream's files aside),
// and a message that exhausts MaxDeliver afterwards has its advisory there
// and is dead-lettered by the next worker.
func TestMaxDeliveriesStreamRecreated(t *testing.T) {
	e := newEnv(t)
	cfg := maxDeliverOnce()
	ctx := context.Background()
	w := e.start(cfg, stores[0].open(t, ""))
	e.waitFor("worker ready", 10*time.Second, func() bool { return w.c.Ready() == nil })
	if err := e.js.DeleteStream(ctx, cfg.Consumer.MaxDeliveriesStream()); err != nil {
		t.Fatal(err)
	}
	e.waitFor("advisory stream and consumer set up again", 30*time.Second, func() bool {
		_, err := e.js.Consumer(ctx, cfg.Consumer.MaxDeliveriesStream(), cfg.Consumer.Durable)
		return err == nil && testutil.ToFloat64(w.m.JetStreamRecreated.WithLabelValues(metrics.RecreatedMaxDeliveries)) == 1
	})
	// With the worker stopped, a thief takes a message's only delivery
	// and never acks it: its advisory must land in the stream set up
	// again, for the next worker to dead-letter the message.
	w.stop(t)
	e.publish([][]byte{[]byte(`{"id":"lost-2","source":"s","title":"never acked"}`)})
	stealDelivery(t, e, cfg)
	e.start(cfg, stores[0].open(t, ""))
	e.waitFor("dead letter", 30*time.Second, func() bool { return len(e.dlq(cfg)) == 1 })
	if got := e.dlq(cfg)[0].Header.Get(consumer.HeaderReason); got != string(incident.ReasonMaxDeliver) {
		t.Fatalf("reason %q, want max_deliver", got)
	}
}

// stealDelivery has a thief take the next delivery of one message and
// never ack it (with MaxDeliver 1, its only one).
func stealDelivery(t *testing.T, e *env, cfg consumer.Config) {
	t.Helper()
	ctx := context.Background()
	cons, err := e.js.Consumer(ctx, cfg.Consumer.Stream, cfg.Consumer.Durable)
	if err != nil {
		t.Fatal(err)
	}
	b, err := cons.Fetch(1, jetstream.FetchMaxWait(5*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for range b.Messages() {
		n++
	}
	if n != 1 {
		t.Fatalf("the thief took %d messages, want 1 (%v)", n, b.Error())
	}
}

// maxDeliverOnce is the test configuration with one delivery per message
// and no catch-up at start (which would read a thief's message itself).
func maxDeliverOnce() consumer.Config {
	cfg := testConfig()
	cfg.Consumer.MaxDeliver = 1
	cfg.SkipCatchUp = true
	return cfg
}
