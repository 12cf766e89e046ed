package consumer_test

import (
	"bytes"
	"context"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/llm-im/incidentd/consumer"
	"github.com/llm-im/incidentd/natsembed/natstest"
)

// TestReadAheadOfAStuckPod: a pod holds the first messages of a stream of
// triggers, acknowledges and resolves and cannot commit them (its store
// fails; it keeps them with InProgress, so JetStream does not redeliver
// them), while it goes on saying it is alive, and that it is stuck. The
// running pod reads ahead for it as for a dead pod: the acknowledges and
// resolves after the stuck pod's triggers are applied, not counted as
// orphans, while the stuck pod still holds its messages. When it lets
// them go, the incidents end as the stream applied in order leaves them.
func TestReadAheadOfAStuckPod(t *testing.T) {
	e := newEnv(t)
	cfg := testConfig()
	cfg.Consumer.BatchSize = 20
	cfg.Consumer.AckWait.Duration = 4 * time.Second
	cfg.Consumer.OrphanRetryDelay.Duration = time.Second
	const held = 60
	log, ex := controlSetup(t, e, cfg)
	release := stuckPull(t, e, cfg, held)
	store := stores[0].open(t, t.TempDir())
	w := e.start(cfg, store)
	time.Sleep(300 * time.Millisecond) // the running pod hears the other
	e.publish(payloads(log))
	e.waitFor("everything but the stuck pod's messages committed", 30*time.Second, func() bool {
		return e.caughtUp(cfg.Consumer.Stream, cfg.Consumer.Durable, held)
	})
	if got := testutil.ToFloat64(w.m.EventsOrphaned); got != 0 {
		t.Errorf("orphaned %v while the other pod was stuck, want 0", got)
	}
	if got := testutil.ToFloat64(w.m.EventsReadAhead); got == 0 || got > held {
		t.Errorf("read ahead %v events, want some of the %d the stuck pod holds", got, held)
	}
	if stuck, lost := testutil.ToFloat64(w.m.PeersStuck), testutil.ToFloat64(w.m.PeersLost); stuck != 1 || lost != 0 {
		t.Errorf("peers stuck %v, lost %v; want 1 and 0", stuck, lost)
	}
	release()
	e.settle(cfg, w)
	requireIncidents(t, store, ex)
	if got := testutil.ToFloat64(w.m.EventsOrphaned); got != 0 {
		t.Errorf("orphaned %v, want 0", got)
	}
	if got := applied(w); got != ex.uniqueIDs {
		t.Errorf("applied %d, want %d", got, ex.uniqueIDs)
	}
}

// controlSetup sets up the stream and consumer for a run of
// controlLog(150), and returns the log with what applying it in order
// gives (checked to hold acknowledges and resolves, and no orphan).
func controlSetup(t *testing.T, e *env, cfg consumer.Config) ([]entry, expectation) {
	t.Helper()
	log := controlLog(150)
	ex := expect(t, log, cfg.Dedupe)
	if ex.stats.Orphans != 0 || ex.stats.Resolved < 100 || ex.stats.Acknowledged < 100 {
		t.Fatalf("the log, in order: %+v", ex.stats)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if _, err := consumer.Setup(ctx, e.js, cfg.Consumer); err != nil {
		t.Fatal(err)
	}
	return log, ex
}

// stuckPull pulls the first n messages as a pod whose commits fail would:
// it keeps them with InProgress and says it is alive and stuck. release
// lets them go as that pod's shutdown would after giving up (a nak each),
// says goodbye and disconnects.
func stuckPull(t *testing.T, e *env, cfg consumer.Config, n int) (release func()) {
	t.Helper()
	nc, batch := pullFirst(t, e, cfg, n, true)
	var mu sync.Mutex
	var msgs []jetstream.Msg
	go func() {
		for m := range batch.Messages() {
			mu.Lock()
			msgs = append(msgs, m)
			mu.Unlock()
		}
	}()
	subject := "incidentd.peers." + cfg.Consumer.Stream + "." + cfg.Consumer.Durable
	done := make(chan struct{})
	finished := make(chan struct{})
	go func() {
		defer close(finished)
		beat := time.NewTicker(100 * time.Millisecond)
		defer beat.Stop()
		for i := 0; ; i++ {
			select {
			case <-done:
				return
			case <-beat.C:
				_ = nc.Publish(subject, []byte("stuck-pod stuck"))
				if i%5 == 0 { // InProgress every 0.5 s, well inside ack_wait
					mu.Lock()
					for _, m := range msgs {
						_ = m.InProgress()
					}
					mu.Unlock()
				}
			}
		}
	}()
	return func() {
		t.Helper()
		close(done)
		<-finished
		mu.Lock()
		defer mu.Unlock()
		if len(msgs) != n {
			t.Fatalf("the stuck pod holds %d messages, want %d", len(msgs), n)
		}
		for _, m := range msgs {
			_ = m.Nak()
		}
		_ = nc.Publish(subject, []byte("stuck-pod bye"))
		_ = nc.Flush()
		nc.Close()
	}
}

// TestStuckBeat: a worker whose commits fail says so in its beat, as does
// one whose commit under way has run for a second, and stops saying so
// when the store has taken its commit.
func TestStuckBeat(t *testing.T) {
	for _, tc := range []struct {
		name string
		slow bool // one commit takes 3 s; else commits fail until told
	}{
		{"failing", false},
		{"slow", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t)
			cfg := testConfig()
			cfg.Consumer.BatchSize = 50
			store := stores[0].open(t, "")
			f := &flaky{Store: store}
			if tc.slow {
				f.applySleep, f.sleepCalls = 3*time.Second, 1
			} else {
				f.failing.Store(true)
			}
			beats := listen(t, e, cfg)
			w := e.start(cfg, f)
			e.publish(payloads(logicalLog(200, 0, true, 4)))
			e.waitFor("a stuck beat", 10*time.Second, func() bool { return bytes.HasSuffix(beats(), []byte(" stuck")) })
			f.failing.Store(false)
			e.waitFor("a plain beat", 10*time.Second, func() bool {
				b := beats()
				return b != nil && !bytes.HasSuffix(b, []byte(" stuck"))
			})
			e.settle(cfg, w)
		})
	}
}

// listen subscribes to the workers' beats and returns the last one heard.
func listen(t *testing.T, e *env, cfg consumer.Config) (last func() []byte) {
	t.Helper()
	nc, _ := natstest.Connect(t, e.url)
	var mu sync.Mutex
	var beat []byte
	subject := "incidentd.peers." + cfg.Consumer.Stream + "." + cfg.Consumer.Durable
	if _, err := nc.Subscribe(subject, func(m *nats.Msg) {
		mu.Lock()
		beat = m.Data
		mu.Unlock()
	}); err != nil {
		t.Fatal(err)
	}
	return func() []byte {
		mu.Lock()
		defer mu.Unlock()
		return beat
	}
}
