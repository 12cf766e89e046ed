package consumer_test

import (
	"context"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"
	"go.uber.org/zap"
	"go.uber.org/zap/zaptest/observer"

	"github.com/llm-im/incidentd/consumer"
)

// TestAckPendingLimit: a worker that finds the consumer's num_ack_pending
// at max_ack_pending (here another pod pulled as many messages as the
// limit and holds them) says so once, counts it, shows the limit, and says
// when the consumer is below it again.
func TestAckPendingLimit(t *testing.T) {
	e := newEnv(t)
	cfg := testConfig()
	cfg.Consumer.BatchSize = 50
	cfg.Consumer.MaxAckPending = 50
	cfg.Consumer.AckWait.Duration = time.Minute // the other pod holds its messages for the whole test
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if _, err := consumer.Setup(ctx, e.js, cfg.Consumer); err != nil {
		t.Fatal(err)
	}
	nc, batch := pullFirst(t, e, cfg, 50, true)
	defer nc.Close()
	e.publish(payloads(logicalLog(200, 0, false, 4)))
	var held []interface{ Nak() error }
	for m := range batch.Messages() {
		held = append(held, m)
	}
	if len(held) != 50 || e.consumerInfo(cfg).NumAckPending != 50 {
		t.Fatalf("the other pod holds %d messages, ack pending %d; want 50 and 50", len(held), e.consumerInfo(cfg).NumAckPending)
	}

	core, logs := observer.New(zap.InfoLevel)
	w := e.startLogged(cfg, stores[0].open(t, ""), zap.New(core))
	e.waitFor("the limit seen and counted", 20*time.Second, func() bool { return testutil.ToFloat64(w.m.ConsumerAckPendingLimit) == 1 })
	if got := testutil.ToFloat64(w.m.ConsumerMaxAckPending); got != 50 {
		t.Errorf("max_ack_pending gauge %v, want 50", got)
	}
	warned := logs.FilterMessageSnippet("max_ack_pending reached").All()
	if len(warned) != 1 || warned[0].Level != zap.WarnLevel || warned[0].ContextMap()["max_ack_pending"] != int64(50) ||
		warned[0].ContextMap()["ack_pending"] != int64(50) {
		t.Fatalf("want one warning naming ack_pending 50 and max_ack_pending 50, got %+v", warned)
	}
	time.Sleep(5 * cfg.Consumer.LagPollInterval.Duration) // more samples at the limit: still one spell
	if got := testutil.ToFloat64(w.m.ConsumerAckPendingLimit); got != 1 {
		t.Errorf("one spell counted %v times", got)
	}

	for _, m := range held { // the other pod lets go: the worker takes them
		if err := m.Nak(); err != nil {
			t.Fatal(err)
		}
	}
	e.waitFor("below the limit again", 30*time.Second, func() bool {
		return logs.FilterMessageSnippet("below max_ack_pending again").Len() >= 1
	})
	// Draining the rest 50 at a time may reach the limit again: not
	// counted here.
	e.settle(cfg, w)
}
