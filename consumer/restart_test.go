package consumer_test

import (
	"context"
	"errors"
	"net"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest/observer"

	"github.com/llm-im/incidentd/metrics"
	"github.com/llm-im/incidentd/natsembed"
	"github.com/llm-im/incidentd/natsembed/natstest"
)

// TestJetStreamStateLost restarts the NATS server on the same address
// without its JetStream state under a running worker: once reconnected, the
// worker finds its consumer gone, reports not-ready, sets the streams and
// the consumer up again and ingests what is published next.
func TestJetStreamStateLost(t *testing.T) {
	e, addr, srv := restartableEnv(t, t.TempDir())
	var err error
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

// TestNATSRestartDropsNothing restarts the NATS server (its JetStream
// state kept) while a worker with slow commits holds a full client buffer
// of a large backlog, and keeps it down for 11 s. A Messages() iterator
// could miss its 5 s heartbeats meanwhile and send a pull request that
// waited in the reconnect buffer, besides the one after the reconnect: the
// server delivered more than the iterator's buffer held, and the client
// dropped the rest (this test failed about one run in four so, with 21 s
// one in three, incidents differing from the stream in order included).
// The client must drop no message as a slow consumer (JetStream would
// redeliver it only after ack_wait, behind later ones), and every event
// must be applied once.
func TestNATSRestartDropsNothing(t *testing.T) {
	dir := t.TempDir()
	e, addr, srv := restartableEnv(t, dir)
	var err error
	cfg := testConfig()
	cfg.Consumer.AckWait.Duration = 5 * time.Second // room for the slow commits
	cfg.Consumer.BatchSize = 512                    // the default
	cfg.Consumer.MaxAckPending = 20000
	log := logicalLog(10000, 0, true, 17)
	ex := expect(t, log, cfg.Dedupe)
	store := stores[0].open(t, "")
	slow := &flaky{Store: store, applySleep: 200 * time.Millisecond, sleepCalls: 1 << 30}
	w := e.start(cfg, slow)
	var dropped atomic.Int64
	w.nc.SetErrorHandler(func(_ *nats.Conn, _ *nats.Subscription, err error) {
		if errors.Is(err, nats.ErrSlowConsumer) {
			dropped.Add(1)
		}
	})
	e.publish(payloads(log))
	srv.Shutdown()
	e.waitFor("the worker disconnected", 10*time.Second, func() bool { return !w.nc.IsConnected() })
	time.Sleep(11 * time.Second) // longer than two missed 5 s heartbeats of a waiting pull request
	srv, err = natsembed.New(natsembed.Config{Listen: addr, StoreDir: dir}, e.log)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(srv.Shutdown)
	e.waitFor("the worker reconnected", 30*time.Second, func() bool { return w.nc.IsConnected() && e.nc.IsConnected() })
	e.settle(cfg, w)

	if n := dropped.Load(); n != 0 {
		t.Errorf("%d slow-consumer errors: the client dropped messages", n)
	}
	// Every event once. (Not the incidents of the stream in order: what
	// the server was delivering as it went down comes back after ack_wait,
	// behind later messages, see Redelivery reorders in the README; one
	// CI run of this test had two incidents fewer so.)
	if got := applied(w); got != ex.uniqueIDs {
		t.Errorf("applied %d, want %d", got, ex.uniqueIDs)
	}
	// Acks sent as the server went down are lost with it: those messages
	// come back after ack_wait as event-id duplicates, which change nothing.
	info := e.consumerInfo(cfg)
	t.Logf("redeliveries %d, event-id duplicates %v", info.Delivered.Consumer-info.Delivered.Stream,
		testutil.ToFloat64(w.m.EventsDuplicate.WithLabelValues(metrics.DuplicateEventID)))
}

// restartableEnv is an env whose NATS server (JetStream in dir) listens on
// a fixed free address, so a test can shut it down and start another there.
func restartableEnv(t *testing.T, dir string) (e *env, addr string, srv *natsembed.Server) {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr = l.Addr().String()
	l.Close()
	e = newEnv(t)
	srv, err = natsembed.New(natsembed.Config{Listen: addr, StoreDir: dir}, e.log)
	if err != nil {
		t.Fatal(err)
	}
	e.url = srv.ClientURL()
	e.nc, e.js = natstest.Connect(t, e.url)
	return e, addr, srv
}

// TestShutdownWhileNATSIsDown: batches committed while NATS is away are
// acked into the client's reconnect buffer; a shutdown before it comes
// back loses those acks. The worker says so (a warning, not "committed
// and acked"), counts them in incidentd_acks_failed_total, and JetStream
// still holds the messages as delivered and not acked, for redelivery
// (found by a black-box run: the log said acked and stopped cleanly).
func TestShutdownWhileNATSIsDown(t *testing.T) {
	dir := t.TempDir()
	e, addr, srv := restartableEnv(t, dir)
	cfg := testConfig()
	cfg.Consumer.BatchSize = 50
	cfg.Consumer.AckWait.Duration = 30 * time.Second
	log := logicalLog(2000, 0, false, 23)
	store := stores[0].open(t, "")
	slow := &flaky{Store: store, applySleep: 300 * time.Millisecond, sleepCalls: 1 << 30}
	core, logs := observer.New(zap.InfoLevel)
	w := e.startLogged(cfg, slow, zap.New(zapcore.NewTee(core, e.log.Core())))
	e.publish(payloads(log))
	e.waitFor("a first batch committed", 30*time.Second, func() bool { return testutil.ToFloat64(w.m.BatchesCommitted) >= 1 })
	srv.Shutdown()
	e.waitFor("the worker disconnected", 10*time.Second, func() bool { return !w.nc.IsConnected() })
	committed := testutil.ToFloat64(w.m.BatchesCommitted)
	e.waitFor("a batch committed while NATS is down", 30*time.Second, func() bool { return testutil.ToFloat64(w.m.BatchesCommitted) > committed })
	w.stop(t)
	w.nc.Close() // as incidentd does next: the reconnect buffer goes with it

	if got := testutil.ToFloat64(w.m.AcksFailed); got < 1 {
		t.Errorf("acks_failed_total = %v, want the acks lost with NATS counted", got)
	}
	if logs.FilterMessageSnippet("NATS is unreachable: their acks are lost").Len() != 1 ||
		logs.FilterMessage("shutdown: committed and acked the batches in hand").Len() != 0 {
		t.Errorf("shutdown lines: %v", logs.FilterMessageSnippet("shutdown:").All())
	}
	srv2, err := natsembed.New(natsembed.Config{Listen: addr, StoreDir: dir}, e.log)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(srv2.Shutdown)
	e.waitFor("the test's connection back", 30*time.Second, func() bool { return e.nc.IsConnected() })
	if n := e.consumerInfo(cfg).NumAckPending; n == 0 {
		t.Errorf("no message delivered and un-acked after the shutdown: the lost acks were not lost?")
	}
}
