package consumer_test

import (
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"
	"go.uber.org/zap"
	"go.uber.org/zap/zaptest"

	"github.com/llm-im/incidentd/consumer"
	"github.com/llm-im/incidentd/incident"
	"github.com/llm-im/incidentd/metrics"
	"github.com/llm-im/incidentd/storage"
	"github.com/llm-im/incidentd/storage/memory"
	"github.com/llm-im/incidentd/storage/pebble"
	"github.com/llm-im/incidentd/storage/redis"
	"github.com/llm-im/incidentd/storage/redis/redistest"
)

// stores are the embedded backends every end-to-end test runs against. open
// is called again with the same dir to simulate a restart.
var stores = []struct {
	name       string
	open       func(t testing.TB, dir string) storage.Store
	persistent bool
	// shared: opening dir again gives a second client of the same data,
	// as a second pod would have (Redis); otherwise workers share one store.
	shared bool
}{
	{"memory", func(t testing.TB, dir string) storage.Store { return memory.New() }, false, false},
	{"pebble", openPebble, true, false},
	{"redis", openRedis, true, true},
}

// redisServers maps a test's data dir to the redis-server started for it,
// so that opening the same dir again (a restart, a second pod) reaches the
// same data.
var redisServers sync.Map

// openRedis starts (once per dir) a real redis-server with appendonly on
// and returns a new client store on it. Without redis-server installed the
// test skips, except under CI=true.
func openRedis(t testing.TB, dir string) storage.Store {
	t.Helper()
	v, ok := redisServers.Load(dir)
	if !ok {
		srv := redistest.StartStandalone(t, redistest.Options{AppendOnly: true})
		v, _ = redisServers.LoadOrStore(dir, srv)
		t.Cleanup(func() { redisServers.Delete(dir) })
	}
	s, err := redis.New(redis.Config{URL: v.(*redistest.Server).URL()}, zaptest.NewLogger(t, zaptest.Level(zap.WarnLevel)), nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close() })
	return s
}

// openPebble opens a Pebble store with the product defaults (a 256 MiB
// block cache, synced commits).
func openPebble(t testing.TB, dir string) storage.Store {
	t.Helper()
	cfg := pebble.DefaultConfig()
	cfg.Path = dir
	s, err := pebble.New(cfg, zaptest.NewLogger(t, zaptest.Level(zap.WarnLevel)), nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close() })
	return s
}

// requireCounters checks the worker's counters against the expectation.
func requireCounters(t *testing.T, m *metrics.Metrics, ex expectation) {
	t.Helper()
	eq := func(name string, got float64, want int) {
		t.Helper()
		if int(got) != want {
			t.Errorf("%s = %v, want %d", name, got, want)
		}
	}
	eq("events_applied_total", testutil.ToFloat64(m.EventsApplied), ex.uniqueIDs)
	// Redelivered copies are event-id duplicates too, but for the
	// deliveries of orphans that were deferred.
	decoded := int(testutil.ToFloat64(m.EventsDecoded))
	deferred := int(testutil.ToFloat64(m.EventsDeferred))
	if decoded < ex.valid+deferred {
		t.Errorf("events_decoded_total = %d, want at least %d + %d deferred", decoded, ex.valid, deferred)
	}
	eq("events_duplicate_total{kind=event_id}", testutil.ToFloat64(m.EventsDuplicate.WithLabelValues(metrics.DuplicateEventID)), decoded-deferred-ex.uniqueIDs)
	eq("events_duplicate_total{kind=merged}", testutil.ToFloat64(m.EventsDuplicate.WithLabelValues(metrics.DuplicateMerged)), ex.stats.Merged)
	eq("incidents_opened_total", testutil.ToFloat64(m.IncidentsOpened), ex.stats.Opened)
	eq("incidents_reopened_total", testutil.ToFloat64(m.IncidentsReopened), ex.stats.Reopened)
	eq("incidents_acknowledged_total", testutil.ToFloat64(m.IncidentsAcknowledged), ex.stats.Acknowledged)
	eq("incidents_resolved_total{resolved_by=event}", testutil.ToFloat64(m.IncidentsResolved.WithLabelValues("event")), ex.stats.Resolved)
	eq("incidents_resolved_total{resolved_by=timeout}", testutil.ToFloat64(m.IncidentsResolved.WithLabelValues("timeout")), ex.stats.TimedOut)
	eq("events_late_total", testutil.ToFloat64(m.EventsLate), ex.stats.Late)
	eq("events_orphaned_total", testutil.ToFloat64(m.EventsOrphaned), ex.stats.Orphans)
	for _, r := range incident.Reasons {
		eq("events_invalid_total{reason="+string(r)+"}", testutil.ToFloat64(m.EventsInvalid.WithLabelValues(string(r))), ex.bad[r])
		eq("events_dead_lettered_total{reason="+string(r)+"}", testutil.ToFloat64(m.EventsDeadLettered.WithLabelValues(string(r))), ex.bad[r])
	}
}

// requireDLQ checks that the dead-letter stream holds exactly the bad
// messages, each with its reason, error, subject and sequence headers.
func requireDLQ(t *testing.T, e *env, cfg consumer.Config, log []entry) {
	t.Helper()
	got := e.dlq(cfg)
	if want := countBad(log); len(got) != want {
		t.Fatalf("DLQ holds %d messages, want %d", len(got), want)
	}
	seen := map[uint64]bool{}
	for _, m := range got {
		seq, err := strconv.ParseUint(m.Header.Get(consumer.HeaderStreamSeq), 10, 64)
		if err != nil || seq == 0 || seq > uint64(len(log)) {
			t.Fatalf("bad %s header %q", consumer.HeaderStreamSeq, m.Header.Get(consumer.HeaderStreamSeq))
		}
		if seen[seq] {
			t.Fatalf("sequence %d dead-lettered twice", seq)
		}
		seen[seq] = true
		orig := log[seq-1]
		reason := m.Header.Get(consumer.HeaderReason)
		if reason != string(orig.reason) {
			t.Fatalf("seq %d: reason %q, want %q", seq, reason, orig.reason)
		}
		if m.Subject != consumer.Subject(cfg.Consumer.DLQSubjectPrefix, orig.reason) {
			t.Fatalf("seq %d: subject %q", seq, m.Subject)
		}
		if m.Header.Get(consumer.HeaderError) == "" || m.Header.Get(consumer.HeaderSubject) == "" {
			t.Fatalf("seq %d: missing error or subject header: %v", seq, m.Header)
		}
		if string(m.Data) != string(orig.payload) {
			t.Fatalf("seq %d: payload differs from the original", seq)
		}
	}
}

func countBad(log []entry) int {
	n := 0
	for _, e := range log {
		if e.reason != "" {
			n++
		}
	}
	return n
}

// TestEndToEnd publishes 10k events (30 % duplicates, acks, resolves, 1 %
// bad input) and checks the stored incidents, the counters and the DLQ
// against an expectation computed without the worker.
func TestEndToEnd(t *testing.T) {
	for _, st := range stores {
		t.Run(st.name, func(t *testing.T) {
			e := newEnv(t)
			cfg := testConfig()
			cfg.Consumer.BatchSize = 256
			cfg.Consumer.AckWait.Duration = 30 * time.Second // no redelivery in this test, even under -race
			log := logicalLog(10000, 0.01, true, 1)
			ex := expect(t, log, cfg.Dedupe)
			store := st.open(t, t.TempDir())
			w := e.start(cfg, store)
			e.publish(payloads(log))
			e.settle(cfg, w)
			e.waitFor("dead letters counted", 10*time.Second, func() bool {
				return int(testutil.ToFloat64(w.m.EventsDeadLettered.WithLabelValues(string(incident.ReasonTooLarge)))) == ex.bad[incident.ReasonTooLarge]
			})
			requireIncidents(t, store, ex)
			requireCounters(t, w.m, ex)
			requireDLQ(t, e, cfg, log)
			e.waitFor("lag and store gauges polled", 10*time.Second, func() bool {
				return testutil.ToFloat64(w.m.StoreIncidents) == float64(len(ex.incidents)) &&
					testutil.ToFloat64(w.m.ConsumerPending) == 0 && testutil.ToFloat64(w.m.ConsumerAckPending) == 0 &&
					(st.name != "pebble" || testutil.ToFloat64(w.m.StoreSize) > 0) && // Redis reports no size on disk
					byStateIs(w.m, countByState(ex.incidents)) == nil
			})
			if h := metrics.Snapshot(w.m.EndToEndLatency); h.GetSampleCount() != uint64(ex.uniqueIDs) {
				t.Errorf("end-to-end latency samples %d, want one per applied event (%d unique ids of %d valid events; duplicates are not observed)",
					h.GetSampleCount(), ex.uniqueIDs, ex.valid)
			}
			// One worker settles orphans at once, but for those behind a
			// dead letter whose termination the server had not yet
			// processed: those are redelivered once or twice.
			deferred := int(testutil.ToFloat64(w.m.EventsDeferred))
			if got := testutil.ToFloat64(w.m.EventsReceived); int(got) != len(log)+deferred {
				t.Errorf("events_received_total = %v, want %d + %d deferred (no other redelivery expected)", got, len(log), deferred)
			}
			if got := testutil.ToFloat64(w.m.EventsDecoded); int(got) != ex.valid+deferred {
				t.Errorf("events_decoded_total = %v, want %d + %d deferred", got, ex.valid, deferred)
			}
			t.Logf("%d messages: %d valid, %d unique event ids, %d incidents, %d bad, stats %+v",
				len(log), ex.valid, ex.uniqueIDs, len(ex.incidents), countBad(log), ex.stats)
		})
	}
}
