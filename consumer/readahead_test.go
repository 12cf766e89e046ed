package consumer_test

import (
	"context"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"go.uber.org/zap"
	"go.uber.org/zap/zaptest"
	"go.uber.org/zap/zaptest/observer"

	"github.com/llm-im/incidentd/consumer"
	"github.com/llm-im/incidentd/incident"
	"github.com/llm-im/incidentd/metrics"
	"github.com/llm-im/incidentd/natsembed/natstest"
	"github.com/llm-im/incidentd/storage"
)

// TestReadAheadOfADeadPod: a pod dies holding the first messages of a
// stream of triggers, acknowledges and resolves while another pod runs
// (the running pod never starts after it, so it has no catch-up). The
// acknowledges and resolves the running pod pulls follow triggers that
// JetStream redelivers only after ack_wait, far later than their
// deferrals. At an event's last deferral the running pod reads the stream
// ahead itself and commits the earlier events of its identity first, so
// the incidents end as the stream applied in order leaves them, with no
// orphan. Without the read-ahead (consumer.read_ahead = false), those
// acknowledges and resolves are orphans once their deferrals run out.
func TestReadAheadOfADeadPod(t *testing.T) {
	for _, tc := range []struct {
		name  string
		held  int
		store int  // index in stores
		off   bool // consumer.read_ahead = false
	}{
		{"memory", 60, 0, false},
		{"pebble", 60, 1, false},
		// Half the stream: the dead pod must fill its batch with fresh
		// messages. Holding 500 of the 600, it waited for redeliveries of
		// acknowledges the running pod had deferred and died holding
		// them, so they came back after ack_wait behind their resolves
		// (Redelivery reorders, a known limit): one run in about twenty.
		{"half_of_the_stream", 300, 0, false},
		{"read_ahead_off", 60, 0, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t)
			cfg := testConfig()
			cfg.Consumer.BatchSize = 20
			// The dead pod's messages come back after the deferrals
			// (2 × 1 s) have run out.
			cfg.Consumer.AckWait.Duration = 4 * time.Second
			cfg.Consumer.ReadAhead = !tc.off
			// The running pod notices the death within about a second,
			// before the deferrals end.
			cfg.Consumer.OrphanRetryDelay.Duration = time.Second
			log, ex := controlSetup(t, e, cfg)
			// The dead pod's pull request waits before the running pod's,
			// so it gets most of the first messages published (waiting
			// pull requests share what arrives).
			die := deadPull(t, e, cfg, tc.held, true)
			store := stores[tc.store].open(t, t.TempDir())
			w := e.start(cfg, store)
			time.Sleep(300 * time.Millisecond) // the running pod hears the other alive
			e.publish(payloads(log))
			die()
			e.settle(cfg, w)

			ahead := testutil.ToFloat64(w.m.EventsReadAhead)
			orphaned := testutil.ToFloat64(w.m.EventsOrphaned)
			if tc.off {
				// As before the read-ahead: the resolves and acknowledges
				// after the dead pod's triggers end as orphans.
				if orphaned == 0 || ahead != 0 {
					t.Errorf("read_ahead off: orphaned %v, read ahead %v; want some and 0", orphaned, ahead)
				}
				return
			}
			requireIncidents(t, store, ex)
			if orphaned != 0 {
				t.Errorf("orphaned %v, want 0", orphaned)
			}
			if ahead == 0 || ahead > float64(tc.held) {
				t.Errorf("read ahead %v events, want some of the %d the dead pod held", ahead, tc.held)
			}
			if lost := testutil.ToFloat64(w.m.PeersLost); lost != 1 {
				t.Errorf("peers_lost_total %v, want 1", lost)
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

// TestReadAheadAtTheFinalDelivery: a pod dies holding a trigger while the
// resolve after it uses up its deferrals elsewhere (here a thief naks it
// orphan_retries times; in production, a pod that deferred it and died
// holding it). Its next delivery is final, after the worker noticed the
// death; the worker still reads ahead and
// commits the trigger first, so the incident is resolved, not left open
// with the resolve counted as an orphan. The worker starts without its
// catch-up, which would otherwise commit both before pulling.
func TestReadAheadAtTheFinalDelivery(t *testing.T) {
	e := newEnv(t)
	cfg := testConfig()
	cfg.Consumer.ReadAhead = true
	cfg.SkipCatchUp = true
	// The resolve's final delivery comes about 3 s after the trigger's
	// first, the trigger's redelivery ack_wait after it: 8 s leaves the
	// worker 5 s to take the resolve alone (with 4 s, a run under the race
	// detector got both in one batch, nothing to read ahead).
	cfg.Consumer.AckWait.Duration = 8 * time.Second
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if _, err := consumer.Setup(ctx, e.js, cfg.Consumer); err != nil {
		t.Fatal(err)
	}
	e.publish([][]byte{
		[]byte(`{"id":"t-1","source":"gateway","title":"latency","action":"trigger","occurred_at":"2026-04-01T10:00:00Z"}`),
		[]byte(`{"id":"r-1","source":"gateway","title":"latency","action":"resolve","occurred_at":"2026-04-01T10:01:00Z"}`),
	})
	die := deadPull(t, e, cfg, 1, false) // holds the trigger
	cons, err := e.js.Consumer(ctx, cfg.Consumer.Stream, cfg.Consumer.Durable)
	if err != nil {
		t.Fatal(err)
	}
	for n := range cfg.Consumer.OrphanRetries {
		b, err := cons.Fetch(1, jetstream.FetchMaxWait(5*time.Second))
		if err != nil {
			t.Fatal(err)
		}
		for m := range b.Messages() {
			// The last time, late enough for the worker to notice the death.
			if err := m.NakWithDelay(time.Duration(n) * 3 * time.Second); err != nil {
				t.Fatal(err)
			}
		}
	}
	store := stores[0].open(t, "")
	w := e.start(cfg, store)
	time.Sleep(300 * time.Millisecond) // the worker hears the other pod alive
	die()
	e.waitFor("the resolve committed", 10*time.Second, func() bool { return applied(w) == 2 })
	list, err := store.List(ctx, storage.Filter{}, storage.Page{})
	if err != nil || len(list) != 1 {
		t.Fatalf("List = %d incidents, %v; want 1", len(list), err)
	}
	if in := list[0]; in.State != incident.Resolved || in.ResolvedBy != incident.ResolvedByEvent {
		t.Errorf("incident %s, resolved by %q; want Resolved by the event", in.State, in.ResolvedBy)
	}
	if o, ra := testutil.ToFloat64(w.m.EventsOrphaned), testutil.ToFloat64(w.m.EventsReadAhead); o != 0 || ra != 1 {
		t.Errorf("orphaned %v, read ahead %v; want 0 and 1", o, ra)
	}
	e.settle(cfg, w) // the trigger comes back after ack_wait: a duplicate
}

// deadPull sends a pull request for n messages of the consumer on a
// connection of its own (with waiting, it returns once the server holds
// the request, for messages published later); the function it returns
// waits for them and closes the connection without acking any, as a pod
// killed mid-batch.
func deadPull(t *testing.T, e *env, cfg consumer.Config, n int, waiting bool) func() {
	t.Helper()
	nc, batch := pullFirst(t, e, cfg, n, waiting)
	// It says it is alive as a worker does, until it dies.
	beats := make(chan struct{})
	subject := "incidentd.peers." + cfg.Consumer.Stream + "." + cfg.Consumer.Durable
	go func() {
		_ = nc.Publish(subject, []byte("dead-pod"))
		tick := time.NewTicker(100 * time.Millisecond)
		defer tick.Stop()
		for {
			select {
			case <-beats:
				return
			case <-tick.C:
				_ = nc.Publish(subject, []byte("dead-pod"))
			}
		}
	}()
	return func() {
		t.Helper()
		defer close(beats)
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

// pullFirst fetches n messages on its own connection, as another pod
// would; with waiting, it returns once its pull request waits at the
// server, so it gets the first messages published after; without, once
// the server has delivered it n messages already in the stream.
func pullFirst(t *testing.T, e *env, cfg consumer.Config, n int, waiting bool) (*nats.Conn, jetstream.MessageBatch) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	nc, js := natstest.Connect(t, e.url)
	cons, err := js.Consumer(ctx, cfg.Consumer.Stream, cfg.Consumer.Durable)
	if err != nil {
		t.Fatal(err)
	}
	batch, err := cons.Fetch(n, jetstream.FetchMaxWait(20*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	if waiting {
		e.waitFor("the other pod's pull request", 10*time.Second, func() bool {
			return e.consumerInfo(cfg).NumWaiting > 0
		})
		return nc, batch
	}
	// The messages are already in the stream: wait until the server has
	// delivered them to this request. The request leaves through the
	// connection's own flusher, so a pull sent on another connection just
	// after (a test's thief) could otherwise be served first and take the
	// messages meant for this pod (seen once under the race detector).
	e.waitFor("the other pod's messages", 10*time.Second, func() bool {
		return e.consumerInfo(cfg).NumAckPending >= n
	})
	return nc, batch
}

// TestSpanReadDenied: a worker whose NATS user may not create consumers on
// the stream cannot read it itself. Starting while a dead worker's messages
// are un-acked, it warns and falls back to holding the acknowledges and
// resolves that find nothing until the redelivery; running while a pod
// dies, its read-ahead fails, warns once (the next attempt waits
// aheadPause), and those acknowledges and resolves count as orphans, as
// they did before the read-ahead. Neither stalls the worker for long or
// loses an event.
func TestSpanReadDenied(t *testing.T) {
	for _, tc := range []struct {
		name    string
		running bool // the worker runs when the other pod dies; else it starts after
		warning string
	}{
		{"catch_up", false, "could not read the messages a stopped worker held"},
		{"read_ahead", true, "could not read the stream ahead of a deferred acknowledge or resolve"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e, workerURL := restrictedEnv(t)
			cfg := testConfig()
			cfg.Consumer.ReadAhead = true
			cfg.Consumer.OrphanRetryDelay.Duration = time.Second
			cfg.SkipSetup = true
			cfg.Consumer.BatchSize = 20
			cfg.Consumer.AckWait.Duration = 4 * time.Second
			if tc.running {
				// The deferred acknowledges and resolves (orphan_retries 2,
				// a second apart) must reach their final delivery before
				// the dead pod's triggers come back, or they find them and
				// nothing is orphaned: with 4 s, a CI run under load 10 had
				// none (deferred 22, orphaned 0).
				cfg.Consumer.AckWait.Duration = 12 * time.Second
			}
			log, ex := controlSetup(t, e, cfg)
			core, logs := observer.New(zap.WarnLevel)
			store := stores[0].open(t, "")
			var w *worker
			start := func() {
				adminURL := e.url
				e.url = workerURL
				w = e.startLogged(cfg, store, zap.New(core))
				e.url = adminURL
			}
			if tc.running {
				die := deadPull(t, e, cfg, 60, true)
				start()
				time.Sleep(300 * time.Millisecond) // the worker hears the other alive
				e.publish(payloads(log))
				die()
			} else {
				e.publish(payloads(log))
				deadWorker(t, e, cfg, 60)
				start()
			}
			e.settle(cfg, w)

			if n := logs.FilterMessageSnippet(tc.warning).Len(); n != 1 {
				t.Errorf("%d warnings %q, want 1", n, tc.warning)
			}
			if got := testutil.ToFloat64(w.m.NATSErrors.WithLabelValues(metrics.NATSOther)); got < 1 {
				t.Errorf("nats_errors_total{kind=other} = %v, want at least 1", got)
			}
			if got := testutil.ToFloat64(w.m.EventsReadAhead) + testutil.ToFloat64(w.m.EventsInherited); got != 0 {
				t.Errorf("read ahead or inherited %v events, want 0: the worker may not read the stream", got)
			}
			orphaned := testutil.ToFloat64(w.m.EventsOrphaned)
			if tc.running && orphaned == 0 {
				t.Errorf("orphaned 0: the test proves nothing (no acknowledge or resolve followed the dead pod's triggers)")
			}
			if !tc.running {
				// The fallback holds them until the redelivery.
				requireIncidents(t, store, ex)
			}
			if got := applied(w); got != ex.uniqueIDs {
				t.Errorf("applied %d, want %d", got, ex.uniqueIDs)
			}
			t.Logf("orphaned %v, deferred %v", orphaned, testutil.ToFloat64(w.m.EventsDeferred))
		})
	}
}

// restrictedEnv is an embedded NATS server with two users: admin, whose
// URL the env uses, and worker, whose URL it returns, who may not create
// consumers on the INCIDENTS stream.
func restrictedEnv(t *testing.T) (*env, string) {
	t.Helper()
	srv, err := server.NewServer(&server.Options{Host: "127.0.0.1", Port: -1, JetStream: true, StoreDir: t.TempDir(),
		NoLog: true, NoSigs: true, Users: []*server.User{
			{Username: "admin", Password: "admin"},
			{Username: "worker", Password: "worker", Permissions: &server.Permissions{Publish: &server.SubjectPermission{
				Allow: []string{">"}, Deny: []string{"$JS.API.CONSUMER.CREATE.INCIDENTS.>"}}}},
		}})
	if err != nil {
		t.Fatal(err)
	}
	go srv.Start()
	t.Cleanup(srv.Shutdown)
	if !srv.ReadyForConnections(10 * time.Second) {
		t.Fatal("nats server not ready")
	}
	addr := srv.Addr().String()
	url := "nats://admin:admin@" + addr
	nc, js := natstest.Connect(t, url)
	return &env{t: t, url: url, nc: nc, js: js, log: zaptest.NewLogger(t, zaptest.Level(zap.WarnLevel))}, "nats://worker:worker@" + addr
}
