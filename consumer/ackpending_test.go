package consumer_test

import (
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"
	"go.uber.org/zap"
	"go.uber.org/zap/zaptest/observer"
)

// TestAckPendingLimit: a worker that finds the consumer's num_ack_pending
// at max_ack_pending (here a failing store holds what it pulled: as many
// messages as the limit) says so once, counts it, shows the limit, and
// says when the consumer is below it again.
func TestAckPendingLimit(t *testing.T) {
	e := newEnv(t)
	cfg := testConfig()
	cfg.Consumer.BatchSize = 50
	cfg.Consumer.MaxAckPending = 50
	f := &flaky{Store: stores[0].open(t, "")}
	f.failing.Store(true)
	core, logs := observer.New(zap.InfoLevel)
	w := e.startLogged(cfg, f, zap.New(core))
	if got := testutil.ToFloat64(w.m.ConsumerAckPendingLimit); got != 0 {
		t.Fatalf("limit counter %v before any message", got)
	}
	e.waitFor("max_ack_pending sampled", 10*time.Second, func() bool { return testutil.ToFloat64(w.m.ConsumerMaxAckPending) == 50 })
	e.publish(payloads(logicalLog(200, 0, true, 4)))
	e.waitFor("the limit reached and counted", 10*time.Second, func() bool { return testutil.ToFloat64(w.m.ConsumerAckPendingLimit) == 1 })
	warned := logs.FilterMessageSnippet("max_ack_pending reached").All()
	if len(warned) != 1 || warned[0].Level != zap.WarnLevel || warned[0].ContextMap()["max_ack_pending"] != int64(50) {
		t.Fatalf("want one warning naming max_ack_pending 50, got %+v", warned)
	}
	time.Sleep(5 * cfg.Consumer.LagPollInterval.Duration) // more samples at the limit
	if got := testutil.ToFloat64(w.m.ConsumerAckPendingLimit); got != 1 {
		t.Errorf("one spell counted %v times", got)
	}
	f.failing.Store(false)
	e.waitFor("below the limit again", 30*time.Second, func() bool {
		return logs.FilterMessageSnippet("below max_ack_pending again").Len() == 1
	})
	// Draining the rest 50 at a time may reach the limit again: not
	// counted here.
	e.settle(cfg, w)
}
