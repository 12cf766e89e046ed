package consumer_test

import (
	"context"
	"net"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/llm-im/incidentd/metrics"
	"github.com/llm-im/incidentd/natsembed"
)

// TestJetStreamStateLost restarts the NATS server on the same address
// without its JetStream state under a running worker: once reconnected, the
// worker finds its consumer gone, reports not-ready, sets the streams and
// the consumer up again and ingests what is published next.
func TestJetStreamStateLost(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	e := newEnv(t)
	srv, err := natsembed.New(natsembed.Config{Listen: addr, StoreDir: t.TempDir()}, e.log)
	if err != nil {
		t.Fatal(err)
	}
	e.url = srv.ClientURL()
	e.nc, e.js = connect(t, e.url)
	cfg := testConfig()
	log := logicalLog(400, 0, true, 11)
	ex := expect(t, log, cfg.Dedupe)
	store := stores[0].open(t, "")
	w := e.start(cfg, store)
	e.publish(payloads(log[:200]))
	e.settle(cfg, w)

	srv.Shutdown()
	srv, err = natsembed.New(natsembed.Config{Listen: addr, StoreDir: t.TempDir()}, e.log)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(srv.Shutdown)
	e.waitFor("worker not ready", 60*time.Second, func() bool { return w.c.Ready() != nil })
	e.waitFor("streams and consumer set up again", 60*time.Second, func() bool {
		_, err := e.js.Consumer(context.Background(), cfg.Consumer.Stream, cfg.Consumer.Durable)
		return err == nil && w.c.Ready() == nil
	})
	e.publish(payloads(log[200:]))
	e.settle(cfg, w)
	if got := testutil.ToFloat64(w.m.JetStreamRecreated.WithLabelValues(metrics.RecreatedConsumer)); got < 1 {
		t.Errorf("jetstream_recreated_total{object=consumer} = %v, want at least 1", got)
	}
	if got := testutil.ToFloat64(w.m.PullRestarts); got < 1 {
		t.Errorf("pull_restarts_total = %v, want at least 1", got)
	}
	requireIncidents(t, store, ex)
	if got := applied(w); got != ex.uniqueIDs {
		t.Fatalf("applied %d, want %d", got, ex.uniqueIDs)
	}
}
