package consumer_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"go.uber.org/zap"
	"go.uber.org/zap/zaptest"

	"github.com/llm-im/incidentd/config"
	"github.com/llm-im/incidentd/consumer"
	"github.com/llm-im/incidentd/metrics"
	"github.com/llm-im/incidentd/natsembed"
	"github.com/llm-im/incidentd/natsembed/natstest"
	"github.com/llm-im/incidentd/storage"
)

// env is one embedded NATS server and a publisher connection.
type env struct {
	t   testing.TB
	url string
	nc  *nats.Conn
	js  jetstream.JetStream
	log *zap.Logger
}

func newEnv(t testing.TB) *env {
	t.Helper()
	log := zaptest.NewLogger(t, zaptest.Level(zap.WarnLevel))
	srv, err := natsembed.New(natsembed.Config{Listen: "127.0.0.1:0", StoreDir: t.TempDir()}, log)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(srv.Shutdown)
	nc, js := natstest.Connect(t, srv.ClientURL())
	return &env{t: t, url: srv.ClientURL(), nc: nc, js: js, log: log}
}

// externalEnv uses the NATS server at url, removing the streams a previous
// run left.
func externalEnv(t testing.TB, url string, cfg consumer.Config) *env {
	t.Helper()
	nc, js := natstest.Connect(t, url)
	ctx := context.Background()
	for _, s := range []string{cfg.Consumer.Stream, cfg.Consumer.DLQStream, cfg.Consumer.MaxDeliveriesStream()} {
		if err := js.DeleteStream(ctx, s); err != nil && !errors.Is(err, jetstream.ErrStreamNotFound) {
			t.Fatal(err)
		}
	}
	return &env{t: t, url: url, nc: nc, js: js, log: zaptest.NewLogger(t, zaptest.Level(zap.WarnLevel))}
}

// testConfig is the product default with test-sized timings.
func testConfig() consumer.Config {
	d := config.Default()
	cc := d.Consumer
	cc.BatchSize = 100
	cc.BatchWait = config.Duration{Duration: 20 * time.Millisecond}
	cc.AckWait = config.Duration{Duration: time.Second}
	cc.MaxAckPending = 2000
	cc.LagPollInterval = config.Duration{Duration: 100 * time.Millisecond}
	cc.RetryInitial = config.Duration{Duration: 20 * time.Millisecond}
	cc.RetryMax = config.Duration{Duration: 200 * time.Millisecond}
	// As the example configurations recommend (the default is no bound):
	// the bad input of the logs includes an event time in 9999.
	cc.MaxClockSkew = config.Duration{Duration: time.Hour}
	cc.OrphanRetryDelay = config.Duration{Duration: 50 * time.Millisecond}
	// The synthetic logs carry fixed 2026 event times: the quiet-period
	// sweep would resolve their incidents, which the expectations (folds of
	// the log alone) do not model. TestSweep turns it on.
	d.Dedupe.SweepInterval = config.Duration{}
	return consumer.Config{Consumer: cc, Dedupe: d.Dedupe, DrainTimeout: 5 * time.Second}
}

// worker is one running consumer with its own connection and registry.
type worker struct {
	c      *consumer.Consumer
	m      *metrics.Metrics
	reg    *prometheus.Registry
	nc     *nats.Conn
	cancel context.CancelFunc
	done   chan error
	once   sync.Once
}

func (e *env) start(cfg consumer.Config, store storage.Store) *worker {
	e.t.Helper()
	return e.startLogged(cfg, store, e.log)
}

// startLogged starts a worker that logs to log.
func (e *env) startLogged(cfg consumer.Config, store storage.Store, log *zap.Logger) *worker {
	e.t.Helper()
	nc, _ := natstest.Connect(e.t, e.url)
	reg := prometheus.NewRegistry()
	m, err := metrics.New(reg, metrics.Build{Version: "test"})
	if err != nil {
		e.t.Fatal(err)
	}
	c, err := consumer.New(cfg, nc, store, m, log)
	if err != nil {
		e.t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	w := &worker{c: c, m: m, reg: reg, nc: nc, cancel: cancel, done: make(chan error, 1)}
	go func() { w.done <- c.Run(ctx) }()
	e.t.Cleanup(func() { w.stop(e.t) })
	e.waitFor("consumer bound", 10*time.Second, func() bool { return c.Ready() == nil })
	return w
}

// stop drains the worker and waits for Run to return nil.
func (w *worker) stop(t testing.TB) { w.stopExpecting(t, nil) }

// stopExpecting drains the worker and waits for Run to return nil or an
// error wrapping allowed (when not nil).
func (w *worker) stopExpecting(t testing.TB, allowed error) {
	w.once.Do(func() {
		w.cancel()
		select {
		case err := <-w.done:
			if err != nil && (allowed == nil || !errors.Is(err, allowed)) {
				t.Errorf("consumer Run: %v", err)
			}
		case <-time.After(30 * time.Second):
			t.Errorf("consumer did not stop")
		}
	})
}

// crash drops the worker's connection without draining: the commit in
// flight, if any, is abandoned, and Run says so.
func (w *worker) crash(t testing.TB) {
	w.nc.Close()
	w.stopExpecting(t, consumer.ErrCommitAbandoned)
}

// waitFor polls cond until it holds or the deadline passes.
func (e *env) waitFor(what string, d time.Duration, cond func() bool) {
	e.t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			e.t.Fatalf("timed out after %s waiting for %s", d, what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// publish sends payloads on incidents.events.<n%4> and waits for every ack.
func (e *env) publish(payloads [][]byte) {
	e.t.Helper()
	futures := make([]jetstream.PubAckFuture, 0, min(len(payloads), 1000))
	for i, p := range payloads {
		f, err := e.js.PublishAsync(fmt.Sprintf("incidents.events.src%d", i%4), p)
		if err != nil {
			e.t.Fatal(err)
		}
		futures = append(futures, f)
		if i%1000 == 999 || i == len(payloads)-1 {
			select {
			case <-e.js.PublishAsyncComplete():
			case <-time.After(30 * time.Second):
				e.t.Fatal("publish did not complete")
			}
			// A publish JetStream refused (no stream, a store error) must
			// fail here, not look like a message the worker never took.
			for _, f := range futures {
				select {
				case err := <-f.Err():
					e.t.Fatalf("publish %q: %v", f.Msg().Data, err)
				default:
				}
			}
			futures = futures[:0]
		}
	}
}

func (e *env) consumerInfo(cfg consumer.Config) *jetstream.ConsumerInfo {
	e.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	c, err := e.js.Consumer(ctx, cfg.Consumer.Stream, cfg.Consumer.Durable)
	if err != nil {
		e.t.Fatal(err)
	}
	info, err := c.Info(ctx)
	if err != nil {
		e.t.Fatal(err)
	}
	return info
}

// drained reports whether every message was delivered and acked (or
// terminated).
func (e *env) drained(cfg consumer.Config) bool {
	return e.caughtUp(cfg.Consumer.Stream, cfg.Consumer.Durable, 0)
}

// caughtUp reports whether the durable consumer of stream delivered every
// message the stream holds and has ackPending of them un-acked. The
// consumer's pending count alone does not say so: nats-server sends the
// PubAck before it tells the stream's consumers of the message (through a
// queue another goroutine serves), so for a moment after a publish the
// consumer can show nothing pending (TestStreamRecreated failed in CI on
// that: its one event was still on the way when the test read the counts).
func (e *env) caughtUp(stream, durable string, ackPending int) bool {
	e.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	s, err := e.js.Stream(ctx, stream) // first: what the consumer must have delivered
	if err != nil {
		e.t.Fatal(err)
	}
	c, err := e.js.Consumer(ctx, stream, durable)
	if err != nil {
		e.t.Fatal(err)
	}
	info, err := c.Info(ctx)
	if err != nil {
		e.t.Fatal(err)
	}
	return info.Delivered.Stream >= s.CachedInfo().State.LastSeq && info.NumPending == 0 && info.NumAckPending == ackPending
}

// settle waits until every message is acked and every decoded event was
// committed or deferred (a redelivered copy may still be in hand after the
// original's ack emptied the consumer).
func (e *env) settle(cfg consumer.Config, ws ...*worker) {
	e.t.Helper()
	e.waitFor("all messages acked", 60*time.Second, func() bool { return e.drained(cfg) })
	e.waitFor("every decoded event committed", 30*time.Second, func() bool {
		for _, w := range ws {
			decoded := testutil.ToFloat64(w.m.EventsDecoded)
			committed := testutil.ToFloat64(w.m.EventsApplied) + testutil.ToFloat64(w.m.EventsDuplicate.WithLabelValues(metrics.DuplicateEventID)) +
				testutil.ToFloat64(w.m.EventsDeferred)
			if decoded != committed {
				return false
			}
		}
		return true
	})
}

// dlq reads every message of the dead-letter stream.
func (e *env) dlq(cfg consumer.Config) []*jetstream.RawStreamMsg {
	e.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	s, err := e.js.Stream(ctx, cfg.Consumer.DLQStream)
	if err != nil {
		e.t.Fatal(err)
	}
	info, err := s.Info(ctx)
	if err != nil {
		e.t.Fatal(err)
	}
	var out []*jetstream.RawStreamMsg
	for seq := info.State.FirstSeq; seq <= info.State.LastSeq && info.State.Msgs > 0; seq++ {
		m, err := s.GetMsg(ctx, seq)
		if errors.Is(err, jetstream.ErrMsgNotFound) {
			continue
		}
		if err != nil {
			e.t.Fatal(err)
		}
		out = append(out, m)
	}
	return out
}

// flaky wraps a store: Apply fails while failing is set, and sleeps
// applySleep first (once per call) while sleepCalls > 0. While down is set,
// Lookup and Apply both wait downDelay and fail, as a client does against a
// Redis that went away (a dial or read timeout). onLookup and onApply, when
// set (before the store is used), run first in every Lookup and Apply; an
// error fails the call. Tests block them on channels to order calls.
type flaky struct {
	storage.Store
	onLookup   func(ctx context.Context) error
	onApply    func(ctx context.Context) error
	failing    atomic.Bool
	down       atomic.Bool
	downDelay  time.Duration
	applies    atomic.Int64
	failures   atomic.Int64
	mu         sync.Mutex
	applySleep time.Duration
	sleepCalls int
}

var errInjected = errors.New("injected store failure")

// errDown is what a flaky store that is down returns.
var errDown = errors.New("injected outage: dial tcp: i/o timeout")

// outage fails a call after downDelay while the store is down.
func (f *flaky) outage() error {
	if !f.down.Load() {
		return nil
	}
	time.Sleep(f.downDelay)
	f.failures.Add(1)
	return errDown
}

func (f *flaky) Lookup(ctx context.Context, fingerprints, eventIDs []string) (storage.Snapshot, error) {
	if f.onLookup != nil {
		if err := f.onLookup(ctx); err != nil {
			return storage.Snapshot{}, err
		}
	}
	if err := f.outage(); err != nil {
		return storage.Snapshot{}, err
	}
	return f.Store.Lookup(ctx, fingerprints, eventIDs)
}

func (f *flaky) Apply(ctx context.Context, b storage.Batch) error {
	f.applies.Add(1)
	if f.onApply != nil {
		if err := f.onApply(ctx); err != nil {
			return err
		}
	}
	if err := f.outage(); err != nil {
		return err
	}
	f.mu.Lock()
	sleep := time.Duration(0)
	if f.sleepCalls > 0 {
		f.sleepCalls--
		sleep = f.applySleep
	}
	f.mu.Unlock()
	if sleep > 0 {
		time.Sleep(sleep)
	}
	if f.failing.Load() {
		f.failures.Add(1)
		return errInjected
	}
	return f.Store.Apply(ctx, b)
}
