package consumer_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest/observer"

	"github.com/llm-im/incidentd/consumer"
	"github.com/llm-im/incidentd/metrics"
	"github.com/llm-im/incidentd/storage"
	"github.com/llm-im/incidentd/storage/memory"
)

// applied sums events_applied_total over workers.
func applied(ws ...*worker) int {
	n := 0
	for _, w := range ws {
		n += int(testutil.ToFloat64(w.m.EventsApplied))
	}
	return n
}

// TestRestartWithoutDrain crashes a worker in the middle of a run (its
// connection drops, nothing is drained) and starts a new one on the same
// store: nothing is lost and nothing is counted twice.
func TestRestartWithoutDrain(t *testing.T) {
	for _, st := range stores {
		t.Run(st.name, func(t *testing.T) {
			e := newEnv(t)
			cfg := testConfig()
			cfg.Consumer.BatchSize = 50
			cfg.DrainTimeout = 50 * time.Millisecond
			log := logicalLog(3000, 0, false, 2)
			ex := expect(t, log, cfg.Dedupe)
			dir := t.TempDir()
			store := st.open(t, dir)
			slow := &flaky{Store: store, applySleep: 2 * time.Millisecond, sleepCalls: 1 << 30}
			w1 := e.start(cfg, slow)
			e.publish(payloads(log))
			e.waitFor("first worker half way", 30*time.Second, func() bool { return applied(w1) >= ex.uniqueIDs/3 })
			w1.crash(t)
			got1 := applied(w1)
			if got1 >= ex.uniqueIDs {
				t.Fatalf("first worker finished before the crash (%d events); slow it down", got1)
			}
			if st.persistent {
				if err := store.Close(); err != nil {
					t.Fatal(err)
				}
				store = st.open(t, dir)
			}
			w2 := e.start(cfg, store)
			e.settle(cfg, w2)
			requireIncidents(t, store, ex)
			if got := applied(w1, w2); got != ex.uniqueIDs {
				t.Fatalf("events applied by both workers = %d, want %d", got, ex.uniqueIDs)
			}
			t.Logf("first worker applied %d events before the crash, second %d; second saw %v event-id duplicates",
				got1, applied(w2), testutil.ToFloat64(w2.m.EventsDuplicate.WithLabelValues(metrics.DuplicateEventID)))
		})
	}
}

// TestSlowCommit makes the first commit outlast AckWait. With InProgress the
// messages are not redelivered; without it they are, and the redelivered
// copies change nothing.
func TestSlowCommit(t *testing.T) {
	for _, heartbeat := range []bool{true, false} {
		name := "in_progress"
		if !heartbeat {
			name = "redelivered"
		}
		t.Run(name, func(t *testing.T) {
			e := newEnv(t)
			cfg := testConfig()
			cfg.Consumer.BatchSize = 200
			if !heartbeat {
				cfg.InProgressEvery = -1
			}
			log := logicalLog(600, 0, false, 3)
			ex := expect(t, log, cfg.Dedupe)
			store := stores[0].open(t, "")
			slow := &flaky{Store: store, applySleep: 2500 * time.Millisecond, sleepCalls: 1}
			w := e.start(cfg, slow)
			e.publish(payloads(log))
			e.settle(cfg, w)
			// Without InProgress a copy the server redelivered before it
			// had the ack can still reach the worker after the settle:
			// counted once the worker drained and stopped, never halfway
			// (a loaded CI machine read the counters with 61 copies
			// decoded and not yet committed).
			w.stop(t)
			requireIncidents(t, store, ex)
			requireCounters(t, w.m, ex)
			info := e.consumerInfo(cfg)
			redelivered := info.Delivered.Consumer - info.Delivered.Stream
			received := int(testutil.ToFloat64(w.m.EventsReceived))
			if heartbeat && (redelivered != 0 || received != len(log)) {
				t.Fatalf("with InProgress: %d redeliveries, %d received; want none", redelivered, received)
			}
			if !heartbeat && redelivered == 0 {
				t.Fatalf("without InProgress the slow batch was not redelivered; the test proves nothing")
			}
			t.Logf("redeliveries %d, received %d, event-id duplicates %v", redelivered, received,
				testutil.ToFloat64(w.m.EventsDuplicate.WithLabelValues(metrics.DuplicateEventID)))
		})
	}
}

// TestStoreFailure fails every write for a while: the worker reports
// not-ready, stops pulling, holds its messages without redelivery, then
// recovers and ingests everything once.
func TestStoreFailure(t *testing.T) {
	e := newEnv(t)
	cfg := testConfig()
	cfg.Consumer.BatchSize = 50
	log := logicalLog(2000, 0, true, 4)
	ex := expect(t, log, cfg.Dedupe)
	store := stores[0].open(t, "")
	f := &flaky{Store: store}
	f.failing.Store(true)
	w := e.start(cfg, f)
	e.publish(payloads(log))
	e.waitFor("not ready", 10*time.Second, func() bool { return errors.Is(w.c.Ready(), consumer.ErrStoreFailing) })
	// Keep failing across several AckWait periods (1s each): with backoff
	// 20ms doubling to 200ms, 25 attempts take more than 4s.
	e.waitFor("25 failed attempts", 30*time.Second, func() bool { return f.failures.Load() >= 25 })
	info := e.consumerInfo(cfg)
	if info.NumPending < 1000 {
		t.Fatalf("pulling did not stop: only %d messages left undelivered", info.NumPending)
	}
	if r := info.Delivered.Consumer - info.Delivered.Stream; r != 0 {
		t.Fatalf("%d redeliveries while the store failed; in-hand messages must be kept with InProgress", r)
	}
	if testutil.ToFloat64(w.m.BatchesFailed) == 0 {
		t.Fatal("batches_failed_total is 0")
	}
	f.failing.Store(false)
	e.settle(cfg, w)
	e.waitFor("ready", 5*time.Second, func() bool { return w.c.Ready() == nil })
	requireIncidents(t, store, ex)
	requireCounters(t, w.m, ex)
	t.Logf("held %d messages (ack pending) during the failure, %d failed attempts",
		info.NumAckPending, f.failures.Load())
}

// TestStoreOutageLog takes the store away under a running worker (reads and
// writes wait, then fail, as against a Redis that was killed) and back, and
// reads the worker's log: pulling pauses once and resumes only after the
// store took a commit again, never with "store writable" while it was down;
// the messages in hand are held without redelivery.
func TestStoreOutageLog(t *testing.T) {
	e := newEnv(t)
	cfg := testConfig()
	cfg.Consumer.BatchSize = 50
	log := logicalLog(1000, 0, true, 7)
	ex := expect(t, log, cfg.Dedupe)
	store := stores[0].open(t, "")
	// Each failing call outlasts InProgressEvery (ack_wait/3), so the commit
	// in flight is first slow, then failed.
	f := &flaky{Store: store, downDelay: 600 * time.Millisecond}
	core, logs := observer.New(zap.InfoLevel)
	w := e.startLogged(cfg, f, zap.New(zapcore.NewTee(e.log.Core(), core)))
	e.publish(payloads(log[:500]))
	e.settle(cfg, w)

	count := func(entries []observer.LoggedEntry, msg string) int {
		n := 0
		for _, en := range entries {
			if en.Message == msg {
				n++
			}
		}
		return n
	}
	before := logs.Len()
	f.down.Store(true)
	e.publish(payloads(log[500:]))
	e.waitFor("a pause and 6 failed store calls", 30*time.Second, func() bool {
		return count(logs.All()[before:], paused) > 0 && f.failures.Load() >= 6
	})
	outage := logs.All()[before:]
	f.down.Store(false)
	e.settle(cfg, w)
	e.waitFor("ready", 5*time.Second, func() bool { return w.c.Ready() == nil })
	e.waitFor("resumed", 5*time.Second, func() bool { return count(logs.All()[before:], resumed) > 0 })
	requireIncidents(t, store, ex)
	requireCounters(t, w.m, ex)

	seq := pauses(logs.All()[before:])
	t.Logf("during and after the outage: %v", seq)
	if n := count(outage, resumed); n != 0 {
		t.Errorf("%q logged %d times while every store call failed", resumed, n)
	}
	if n := count(outage, paused); n != 1 {
		t.Errorf("pulling paused %d times during one outage, want once", n)
	}
	if seq[len(seq)-1] != "resume" {
		t.Errorf("the log ends paused: %v", seq)
	}
	// Deferred orphans are the only redeliveries.
	deferred := uint64(testutil.ToFloat64(w.m.EventsDeferred))
	if info := e.consumerInfo(cfg); info.Delivered.Consumer != info.Delivered.Stream+deferred {
		t.Errorf("%d redeliveries across the outage, %d of them deferred orphans; in-hand messages must be kept with InProgress",
			info.Delivered.Consumer-info.Delivered.Stream, deferred)
	}
}

// The log lines that pause and resume pulling.
const paused, resumed = "pausing pull; holding the messages in hand with InProgress", "store writable, resuming pull"

// pauses lists the pauses (with why) and resumes in entries, in order.
func pauses(entries []observer.LoggedEntry) []string {
	var seq []string
	for _, en := range entries {
		switch en.Message {
		case paused:
			seq = append(seq, "pause("+en.ContextMap()["why"].(string)+")")
		case resumed:
			seq = append(seq, "resume")
		}
	}
	return seq
}

// TestFailedReadDuringSlowCommit holds a batch's write past InProgressEvery
// (pulling pauses: slow commit) and fails the read of the next batch, which
// runs meanwhile; then the write succeeds. Pulling must stay paused until
// the batch whose read failed is committed too: one pause and one resume,
// not a resume on the slow write's success followed by a pause for the read
// failure the pipeline records just after. The old resume raced that
// recording (about 2 runs in 3), so the test does it over several rounds,
// each with a fresh worker (a pipeline whose last batch was refolded takes
// the slow path for the next one, which would change the scenario).
func TestFailedReadDuringSlowCommit(t *testing.T) {
	e := newEnv(t)
	cfg := testConfig()
	cfg.Consumer.BatchSize = 50
	const rounds, perRound = 5, 150
	// Every event id new, so that every batch is written (a batch of
	// repeated ids only is acked without an Apply).
	var log []entry
	t0 := time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC)
	for i := range rounds * perRound {
		log = append(log, entry{payload: fmt.Appendf(nil, `{"id":"read-%d","source":"s%d","title":"t","occurred_at":%q}`,
			i, i%7, t0.Add(time.Duration(i)*time.Second).Format(time.RFC3339))})
	}
	ex := expect(t, log, cfg.Dedupe)
	store := stores[0].open(t, "")

	// One round: the first Apply waits for release; the second Lookup (the
	// next batch's read, while that write is held) waits for the hold, then
	// fails. The first Lookup is the first batch's read.
	type round struct {
		lookups, applies            int
		applyHeld, release, readBad chan struct{}
	}
	var (
		mu    sync.Mutex
		armed *round
	)
	f := &flaky{Store: store}
	f.onApply = func(ctx context.Context) error {
		mu.Lock()
		r, n := armed, 0
		if r != nil {
			r.applies++
			n = r.applies
		}
		mu.Unlock()
		if n != 1 {
			return nil
		}
		close(r.applyHeld)
		select {
		case <-r.release:
			return nil
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	f.onLookup = func(ctx context.Context) error {
		mu.Lock()
		r, n := armed, 0
		if r != nil {
			r.lookups++
			n = r.lookups
		}
		mu.Unlock()
		if n != 2 {
			return nil
		}
		select {
		case <-r.applyHeld:
		case <-ctx.Done():
			return ctx.Err()
		}
		close(r.readBad)
		return errDown
	}

	total, restarts := 0, 0
	for i := range rounds {
		r := &round{applyHeld: make(chan struct{}), release: make(chan struct{}), readBad: make(chan struct{})}
		release := sync.OnceFunc(func() { close(r.release) })
		t.Cleanup(release) // before the worker's stop, which waits for the held write
		core, logs := observer.New(zap.InfoLevel)
		w := e.startLogged(cfg, f, zap.New(zapcore.NewTee(e.log.Core(), core)))
		mu.Lock()
		armed = r
		mu.Unlock()
		e.publish(payloads(log[i*perRound : (i+1)*perRound]))
		e.waitFor("the next batch's read failed during the held write, and a slow-commit pause", 10*time.Second, func() bool {
			select {
			case <-r.readBad:
				return slices.Contains(pauses(logs.All()), "pause(slow commit)")
			default:
				return false
			}
		})
		release()
		e.settle(cfg, w)
		e.waitFor("ready", 5*time.Second, func() bool { return w.c.Ready() == nil })
		e.waitFor("resumed", 5*time.Second, func() bool {
			seq := pauses(logs.All())
			return len(seq) > 0 && seq[len(seq)-1] == "resume"
		})
		w.stop(t)
		mu.Lock()
		armed = nil
		mu.Unlock()
		if seq := pauses(logs.All()); !slices.Equal(seq, []string{"pause(slow commit)", "resume"}) {
			t.Errorf("round %d: %v, want [pause(slow commit) resume]", i, seq)
		}
		total += int(testutil.ToFloat64(w.m.EventsApplied))
		restarts += int(testutil.ToFloat64(w.m.PullRestarts))
	}
	requireIncidents(t, store, ex)
	if total != ex.uniqueIDs {
		t.Errorf("applied %d events, want %d", total, ex.uniqueIDs)
	}
	// Messages the server had sent to a pull that ended (its heartbeats
	// missed on a loaded machine: "pulling ended") are redelivered after
	// ack_wait whatever the worker does; only without such an end do
	// redeliveries mean that messages in hand were not kept.
	info := e.consumerInfo(cfg)
	switch redelivered := info.Delivered.Consumer - info.Delivered.Stream; {
	case redelivered > 0 && restarts == 0:
		t.Errorf("%d redeliveries; in-hand messages must be kept with InProgress", redelivered)
	case redelivered > 0:
		t.Logf("%d redeliveries after %d pulls ended; in-hand messages not checked", redelivered, restarts)
	}
}

// TestSetupMismatch reports what JetStream cannot update in place.
func TestSetupMismatch(t *testing.T) {
	e := newEnv(t)
	cfg := testConfig()
	ctx := context.Background()
	sc := consumer.StreamConfig(cfg.Consumer)
	sc.Storage = jetstream.MemoryStorage
	if _, err := e.js.CreateStream(ctx, sc); err != nil {
		t.Fatal(err)
	}
	_, err := consumer.Setup(ctx, e.js, cfg.Consumer)
	if !errors.Is(err, consumer.ErrMismatch) {
		t.Fatalf("Setup over a memory stream: %v, want ErrMismatch", err)
	}
	t.Log(err)
	e = newEnv(t) // a fresh server: re-creating a deleted stream's name races its removal
	rep, err := consumer.Setup(ctx, e.js, cfg.Consumer)
	if err != nil {
		t.Fatal(err)
	}
	t.Log(rep.Actions)
	cfg.Consumer.MaxAge.Duration = time.Hour
	cfg.Consumer.MaxDeliver = 9
	rep, err = consumer.Setup(ctx, e.js, cfg.Consumer)
	if err != nil || len(rep.Actions) != 5 {
		t.Fatalf("update: %v %v", rep.Actions, err)
	}
	t.Log(rep.Actions)
	rep, err = consumer.Setup(ctx, e.js, cfg.Consumer)
	if err != nil {
		t.Fatal(err)
	}
	for _, a := range rep.Actions {
		if len(a) < 9 || a[len(a)-9:] != "unchanged" {
			t.Fatalf("second identical setup changed something: %v", rep.Actions)
		}
	}
}

var _ storage.Store = (*flaky)(nil)

// TestConsumerDeleted removes the durable consumer under a running worker:
// it sets the consumer up again and carries on; the replay from the start of
// the stream changes nothing.
func TestConsumerDeleted(t *testing.T) {
	e := newEnv(t)
	cfg := testConfig()
	log := logicalLog(400, 0, true, 5)
	ex := expect(t, log, cfg.Dedupe)
	store := stores[0].open(t, "")
	w := e.start(cfg, store)
	e.publish(payloads(log[:200]))
	e.settle(cfg, w)
	if err := e.js.DeleteConsumer(context.Background(), cfg.Consumer.Stream, cfg.Consumer.Durable); err != nil {
		t.Fatal(err)
	}
	e.waitFor("consumer set up again", 30*time.Second, func() bool {
		_, err := e.js.Consumer(context.Background(), cfg.Consumer.Stream, cfg.Consumer.Durable)
		return err == nil && w.c.Ready() == nil
	})
	e.publish(payloads(log[200:]))
	e.settle(cfg, w)
	requireIncidents(t, store, ex)
	if got := applied(w); got != ex.uniqueIDs {
		t.Fatalf("applied %d, want %d", got, ex.uniqueIDs)
	}
}

// TestTwoWorkers runs two workers on one consumer and one store, as two pods
// do: their batches race on the same identities, conflicts are re-folded,
// and the result is exactly that of one worker.
func TestTwoWorkers(t *testing.T) {
	for _, st := range stores {
		t.Run(st.name, func(t *testing.T) {
			e := newEnv(t)
			cfg := testConfig()
			cfg.Consumer.BatchSize = 64
			cfg.Consumer.AckWait.Duration = 30 * time.Second
			log := logicalLog(6000, 0, false, 6)
			ex := expect(t, log, cfg.Dedupe)
			dir := t.TempDir()
			store := st.open(t, dir)
			store2 := store
			if st.shared {
				store2 = st.open(t, dir) // a second pod: its own client of the same Redis
			}
			w1 := e.start(cfg, store)
			w2 := e.start(cfg, store2)
			e.publish(payloads(log))
			e.settle(cfg, w1, w2)
			requireIncidents(t, store, ex)
			if got := applied(w1, w2); got != ex.uniqueIDs {
				t.Fatalf("applied %d, want %d", got, ex.uniqueIDs)
			}
			opened := testutil.ToFloat64(w1.m.IncidentsOpened) + testutil.ToFloat64(w2.m.IncidentsOpened)
			if int(opened) != ex.stats.Opened {
				t.Fatalf("opened %v, want %d", opened, ex.stats.Opened)
			}
			t.Logf("applied %d + %d, conflicts %v + %v", applied(w1), applied(w2),
				testutil.ToFloat64(w1.m.StoreConflicts), testutil.ToFloat64(w2.m.StoreConflicts))
		})
	}
}

// TestOneConflictRefoldsOneBatch: after one batch's write conflicts (and is
// folded again), the next batch, prepared on top of the discarded fold, is
// read and folded again once; the batches after it go through the fast
// path. It once cascaded: every later batch was read twice and written
// through the slow path for as long as the worker ran.
func TestOneConflictRefoldsOneBatch(t *testing.T) {
	e := newEnv(t)
	cfg := testConfig()
	cfg.Consumer.BatchSize = 50
	var log []entry
	t0 := time.Date(2026, 3, 2, 0, 0, 0, 0, time.UTC)
	for i := range 1000 {
		log = append(log, entry{payload: fmt.Appendf(nil, `{"id":"cf-%d","source":"s%d","title":"t","occurred_at":%q}`,
			i, i%7, t0.Add(time.Duration(i)*time.Second).Format(time.RFC3339))})
	}
	ex := expect(t, log, cfg.Dedupe)
	store := stores[0].open(t, "")
	var lookups, applies atomic.Int64
	f := &flaky{Store: store}
	f.onLookup = func(context.Context) error { lookups.Add(1); return nil }
	f.onApply = func(context.Context) error {
		if applies.Add(1) == 2 { // the second batch's first write
			return fmt.Errorf("injected: %w", storage.ErrConflict)
		}
		return nil
	}
	w := e.start(cfg, f)
	e.publish(payloads(log))
	e.settle(cfg, w)
	requireIncidents(t, store, ex)
	batches := int64(testutil.ToFloat64(w.m.BatchesCommitted))
	if c := testutil.ToFloat64(w.m.StoreConflicts); c != 1 {
		t.Fatalf("%v conflicts, want the one injected", c)
	}
	// One read per batch, one more for the conflicted batch's slow commit
	// and at most one for the batch prepared on top of it.
	if n := lookups.Load(); n > batches+2 {
		t.Errorf("%d reads for %d batches: later batches were folded again too (refolded: %v)",
			n, batches, testutil.ToFloat64(w.m.BatchesRefolded))
	}
	if r := testutil.ToFloat64(w.m.BatchesRefolded); r > 1 {
		t.Errorf("%v batches refolded, want at most 1", r)
	}
}

// TestShutdownAbandonsAFailingCommit: a shutdown whose commit cannot finish
// (the store is down) gives up after DrainTimeout and says so: Run returns
// ErrCommitAbandoned instead of nil, so incidentd does not report a clean
// stop. The message stays un-acked and the next worker applies it once.
func TestShutdownAbandonsAFailingCommit(t *testing.T) {
	e := newEnv(t)
	cfg := testConfig()
	cfg.DrainTimeout = 300 * time.Millisecond
	cfg.Consumer.AckWait.Duration = time.Second
	store := memory.New()
	down := &flaky{Store: store}
	down.down.Store(true)
	core, logs := observer.New(zap.InfoLevel)
	w1 := e.startLogged(cfg, down, zap.New(zapcore.NewTee(e.log.Core(), core)))
	log := logicalLog(20, 0, false, 5)
	ex := expect(t, log, cfg.Dedupe)
	e.publish(payloads(log))
	e.waitFor("a failed commit", 10*time.Second, func() bool { return down.failures.Load() > 0 })
	w1.cancel()
	select {
	case err := <-w1.done:
		if !errors.Is(err, consumer.ErrCommitAbandoned) {
			t.Fatalf("Run after an abandoned commit = %v, want ErrCommitAbandoned", err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("the worker did not stop")
	}
	w1.once.Do(func() {}) // stopped here; the cleanup must not wait again
	if n := logs.FilterMessageSnippet("shutdown: gave up the commit in hand").Len(); n != 1 {
		t.Errorf("%d shutdown step lines for the abandoned commit, want 1", n)
	}
	// The first step line counts the batch the pipeline was retrying
	// (it once said nothing was in hand, with a commit failing).
	if l := logs.FilterMessage("shutdown: stopped pulling").All(); len(l) != 1 {
		t.Errorf("%d stopped-pulling lines, want 1", len(l))
	} else if f := l[0].ContextMap(); f["batches_committing"] == uint64(0) && f["in_hand"] == int64(0) || f["batches_committing"] == nil {
		t.Errorf("stopped pulling with %v: the failing batch is not counted", f)
	}
	w2 := e.start(cfg, store)
	e.settle(cfg, w2)
	requireIncidents(t, store, ex)
}

// TestStreamRecreated deletes the stream under a running worker, which sets
// it up again: the new stream numbers its messages from 1 again, and events
// without any id (and dead letters) at the same sequence numbers as before
// are new events, not copies of the old ones.
func TestStreamRecreated(t *testing.T) {
	e := newEnv(t)
	cfg := testConfig()
	store := stores[0].open(t, "")
	w := e.start(cfg, store)
	run := func(n int) {
		e.publish([][]byte{fmt.Appendf(nil, `{"source":"s","title":"run %d"}`, n), []byte(`not json`)})
		e.settle(cfg, w)
		if got := applied(w); got != n {
			// Say where the event went. (It failed twice in CI when settle
			// trusted the consumer's pending count: see caughtUp.)
			v := func(c prometheus.Collector) float64 { return testutil.ToFloat64(c) }
			t.Fatalf("run %d: %d events applied, want %d; decoded %v, event-id duplicates %v, merged %v, deferred %v, orphaned %v, inherited %v, read ahead %v; consumer num_pending %v",
				n, got, n, v(w.m.EventsDecoded), v(w.m.EventsDuplicate.WithLabelValues(metrics.DuplicateEventID)),
				v(w.m.EventsDuplicate.WithLabelValues(metrics.DuplicateMerged)), v(w.m.EventsDeferred), v(w.m.EventsOrphaned),
				v(w.m.EventsInherited), v(w.m.EventsReadAhead), e.consumerInfo(cfg).NumPending)
		}
		e.waitFor(fmt.Sprintf("run %d: %d dead letters", n, n), 10*time.Second, func() bool { return len(e.dlq(cfg)) == n })
	}
	run(1)
	if err := e.js.DeleteStream(context.Background(), cfg.Consumer.Stream); err != nil {
		t.Fatal(err)
	}
	e.waitFor("stream and consumer set up again", 30*time.Second, func() bool {
		_, err := e.js.Consumer(context.Background(), cfg.Consumer.Stream, cfg.Consumer.Durable)
		return err == nil && w.c.Ready() == nil
	})
	run(2)
	if n, err := store.Count(context.Background(), storage.Filter{}); err != nil || n != 2 {
		t.Fatalf("%d incidents (%v), want 2", n, err)
	}
}

// TestShutdownLeavesNothingUnacked stops a worker (as SIGTERM does) while
// events stream in: every message JetStream delivered to it is committed
// and acked before it stops, so none waits for ack_wait to be redelivered
// behind later ones. A black-box run of three pods pulling with a
// Messages() iterator (whose client buffer had dropped messages as a slow
// consumer before) saw 155 left so by a pod stopped under load, and five
// incidents left open that the stream in order resolves; this test did not
// reproduce that with the iterator, and guards the drain of the pull
// requests that replaced it.
func TestShutdownLeavesNothingUnacked(t *testing.T) {
	e := newEnv(t)
	cfg := testConfig()
	cfg.Consumer.AckWait.Duration = 30 * time.Second // a stranded message stays un-acked through the test
	cfg.Consumer.BatchSize = 200
	cfg.Consumer.MaxAckPending = 20000
	log := logicalLog(8000, 0, true, 23)
	ex := expect(t, log, cfg.Dedupe)
	store := stores[0].open(t, "")
	w1 := e.start(cfg, &flaky{Store: store, applySleep: 10 * time.Millisecond, sleepCalls: 1 << 30})
	published := make(chan struct{})
	go func() {
		defer close(published)
		for i := 0; i < len(log); i += 500 {
			e.publish(payloads(log[i:min(i+500, len(log))]))
			time.Sleep(20 * time.Millisecond)
		}
	}()
	e.waitFor("the worker busy", 30*time.Second, func() bool { return applied(w1) > 1000 })
	w1.stop(t)
	// Its last acks may still be on their way: far less than ack_wait.
	deadline := time.Now().Add(5 * time.Second)
	for e.consumerInfo(cfg).NumAckPending != 0 && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	if n := e.consumerInfo(cfg).NumAckPending; n != 0 {
		t.Errorf("%d messages delivered to the stopped worker and not acked 5 s after it stopped", n)
	}
	<-published
	w2 := e.start(cfg, store)
	e.settle(cfg, w2)
	requireIncidents(t, store, ex)
	if got := applied(w1, w2); got != ex.uniqueIDs {
		t.Errorf("applied %d, want %d", got, ex.uniqueIDs)
	}
}

// lostReply is a store whose first Apply answers
// storage.ErrOutcomeUnknown, as a Redis reply lost to a stall does. With
// ran, that Apply wrote the batch and Settle says so; without, it wrote
// nothing and Settle abandons it.
type lostReply struct {
	storage.Store
	ran     bool
	lost    atomic.Bool
	settled atomic.Int64
}

func (l *lostReply) Apply(ctx context.Context, b storage.Batch) error {
	first := l.lost.CompareAndSwap(false, true)
	if first && !l.ran {
		return fmt.Errorf("redis apply: i/o timeout (%w)", storage.ErrOutcomeUnknown)
	}
	if err := l.Store.Apply(ctx, b); err != nil {
		return err
	}
	if first {
		return fmt.Errorf("redis apply: i/o timeout (%w)", storage.ErrOutcomeUnknown)
	}
	return nil
}

func (l *lostReply) Settle(_ context.Context, lost error) (bool, error) {
	if !errors.Is(lost, storage.ErrOutcomeUnknown) {
		return false, fmt.Errorf("settle of %v", lost)
	}
	l.settled.Add(1)
	return l.ran, nil
}

// TestLostReplyCountsOnce: a batch whose write got no answer is settled
// before it is retried. Written, its events count as applied and its
// incidents as opened, not as event-id duplicates; abandoned, the batch
// is written again. Either way every counter is exact, and
// incidentd_writes_unanswered_total says which it was.
func TestLostReplyCountsOnce(t *testing.T) {
	for _, ran := range []bool{true, false} {
		t.Run(fmt.Sprintf("ran=%v", ran), func(t *testing.T) {
			e := newEnv(t)
			cfg := testConfig()
			log := logicalLog(300, 0, false, 29)
			ex := expect(t, log, cfg.Dedupe)
			store := &lostReply{Store: memory.New(), ran: ran}
			w := e.start(cfg, store)
			e.publish(payloads(log))
			e.settle(cfg, w)
			requireIncidents(t, store.Store, ex)
			requireCounters(t, w.m, ex)
			if !store.lost.Load() || store.settled.Load() != 1 {
				t.Errorf("lost %v, settled %d times; want one lost reply settled once", store.lost.Load(), store.settled.Load())
			}
			want := map[string]float64{metrics.WriteApplied: 0, metrics.WriteAbandoned: 1}
			if ran {
				want = map[string]float64{metrics.WriteApplied: 1, metrics.WriteAbandoned: 0}
			}
			for outcome, n := range want {
				if got := testutil.ToFloat64(w.m.WritesUnanswered.WithLabelValues(outcome)); got != n {
					t.Errorf("writes_unanswered_total{outcome=%q} = %v, want %v", outcome, got, n)
				}
			}
		})
	}
}

// TestShutdownLeavesABlockedCommit: a commit blocked where cancelling
// cannot reach it (a write to a frozen disk: found by a black-box run,
// whose worker outlived SIGTERM by the 58 s the disk stayed frozen) holds
// the shutdown for DrainTimeout plus a grace at most, then Run returns
// ErrCommitAbandoned. While it is blocked, the worker is not ready.
func TestShutdownLeavesABlockedCommit(t *testing.T) {
	e := newEnv(t)
	cfg := testConfig()
	cfg.DrainTimeout = 300 * time.Millisecond
	release := make(chan struct{})
	blocked := make(chan struct{}, 1)
	frozen := &flaky{Store: memory.New(), onApply: func(context.Context) error {
		select {
		case blocked <- struct{}{}:
		default:
		}
		<-release // deaf to ctx, as a write(2) is
		return nil
	}}
	defer close(release)
	cfg.InProgressEvery = 200 * time.Millisecond
	w := e.start(cfg, frozen)
	e.publish(payloads(logicalLog(5, 0, false, 1)))
	<-blocked
	// Not ready once the commit has run for the InProgress interval
	// (the worker said ready throughout a 90 s freeze before).
	e.waitFor("not ready while the commit is stuck", 10*time.Second, func() bool {
		return errors.Is(w.c.Ready(), consumer.ErrCommitStuck)
	})
	start := time.Now()
	w.cancel()
	select {
	case err := <-w.done:
		if !errors.Is(err, consumer.ErrCommitAbandoned) {
			t.Fatalf("Run = %v, want ErrCommitAbandoned", err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("the shutdown waited for the blocked commit")
	}
	w.once.Do(func() {})
	t.Logf("stopped %v after the stop", time.Since(start).Round(time.Millisecond))
}
