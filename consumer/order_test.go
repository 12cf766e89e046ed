package consumer_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/llm-im/incidentd/config"
	"github.com/llm-im/incidentd/consumer"
	"github.com/llm-im/incidentd/incident"
	"github.com/llm-im/incidentd/storage"
)

// step is one event of every identity in an interleaved log: its id
// suffix, action, lag (how many identities later it is published) and its
// event time after the identity's first trigger.
type step struct {
	kind, action string
	lag, ms      int
}

// interleaved makes, for n identities, the steps of each (event times in
// step order), published interleaved: identity i's step s goes out with
// identity i+s.lag's first step, so that every identity's events are a few
// messages apart and two workers with small batches commit them out of
// stream order all the time.
func interleaved(n int, prefix, title string, steps ...step) []entry {
	t0 := time.Date(2026, 4, 1, 9, 0, 0, 0, time.UTC)
	var log []entry
	for k := range n + steps[len(steps)-1].lag {
		for _, s := range steps {
			if i := k - s.lag; i >= 0 && i < n {
				at := t0.Add(time.Duration(i)*time.Second + time.Duration(s.ms)*time.Millisecond)
				log = append(log, entry{payload: fmt.Appendf(nil,
					`{"id":"%s-%d-%s","source":"gateway","title":"%s %d","action":%q,"severity":"P2","occurred_at":%q}`,
					prefix, i, s.kind, title, i, s.action, at.Format(time.RFC3339Nano))})
			}
		}
	}
	return log
}

// controlLog: two triggers, an acknowledge and a resolve per identity.
func controlLog(n int) []entry {
	return interleaved(n, "ord", "latency",
		step{"a", "trigger", 0, 0}, step{"b", "trigger", 1, 100}, step{"ack", "acknowledge", 3, 200}, step{"res", "resolve", 6, 300})
}

// reopenLog: a trigger, an acknowledge, a resolve and a trigger again.
func reopenLog(n int) []entry {
	return interleaved(n, "re", "errors",
		step{"a", "trigger", 0, 0}, step{"ack", "acknowledge", 1, 150}, step{"res", "resolve", 2, 300}, step{"c", "trigger", 4, 600})
}

// raceConfig makes two workers race: batches of 8, and room for many
// retries of deferred acknowledges and resolves.
func raceConfig() consumer.Config {
	cfg := testConfig()
	cfg.Consumer.BatchSize = 8
	cfg.Consumer.AckWait.Duration = 30 * time.Second
	cfg.Consumer.MaxDeliver = 20
	cfg.Consumer.OrphanRetries = 15
	cfg.Consumer.OrphanRetryDelay = config.Duration{Duration: 100 * time.Millisecond}
	return cfg
}

// TestTwoWorkersControlEvents: two workers share the consumer and apply
// acknowledges and resolves a few messages behind their triggers. Whatever
// order their batches commit in, the result is the stream applied in
// order: every incident acknowledged, resolved by its event, two
// occurrences, nothing late, no orphan.
func TestTwoWorkersControlEvents(t *testing.T) {
	for _, st := range stores {
		t.Run(st.name, func(t *testing.T) {
			e := newEnv(t)
			cfg := raceConfig()
			log := controlLog(300)
			ex := expect(t, log, cfg.Dedupe)
			if ex.stats.Resolved != 300 || ex.stats.Acknowledged != 300 || ex.stats.Orphans != 0 || ex.stats.Merged != 300 {
				t.Fatalf("the log, in order: %+v", ex.stats)
			}
			dir := t.TempDir()
			store := st.open(t, dir)
			store2 := store
			if st.shared {
				store2 = st.open(t, dir)
			}
			w1 := e.start(cfg, store)
			w2 := e.start(cfg, store2)
			e.publish(payloads(log))
			e.settle(cfg, w1, w2)
			requireIncidents(t, store, ex)
			sum := func(f func(w *worker) float64) int { return int(f(w1) + f(w2)) }
			got := map[string]int{
				"resolved":     sum(func(w *worker) float64 { return testutil.ToFloat64(w.m.IncidentsResolved.WithLabelValues("event")) }),
				"acknowledged": sum(func(w *worker) float64 { return testutil.ToFloat64(w.m.IncidentsAcknowledged) }),
				"orphaned":     sum(func(w *worker) float64 { return testutil.ToFloat64(w.m.EventsOrphaned) }),
				"late":         sum(func(w *worker) float64 { return testutil.ToFloat64(w.m.EventsLate) }),
				"opened":       sum(func(w *worker) float64 { return testutil.ToFloat64(w.m.IncidentsOpened) }),
			}
			want := map[string]int{"resolved": 300, "acknowledged": 300, "orphaned": 0, "late": 0, "opened": 300}
			if fmt.Sprint(got) != fmt.Sprint(want) {
				t.Errorf("counters %v, want %v", got, want)
			}
			t.Logf("applied %d + %d, deferred %v + %v, conflicts %v + %v", applied(w1), applied(w2),
				testutil.ToFloat64(w1.m.EventsDeferred), testutil.ToFloat64(w2.m.EventsDeferred),
				testutil.ToFloat64(w1.m.StoreConflicts), testutil.ToFloat64(w2.m.StoreConflicts))
			all, err := store.List(context.Background(), storage.Filter{}, storage.Page{})
			if err != nil {
				t.Fatal(err)
			}
			for _, in := range all {
				if in.State != incident.Resolved || in.FirstReceivedAt.IsZero() || in.ResolvedReceivedAt.IsZero() ||
					!in.FirstReceivedAt.Before(in.ResolvedReceivedAt) {
					t.Fatalf("incident %s: state %s, received %v, resolve received %v", in.ID, in.State, in.FirstReceivedAt, in.ResolvedReceivedAt)
				}
			}
		})
	}
}

// TestOneWorkerSettlesOrphansAtOnce: alone on the consumer, a worker holds
// or has committed every message before an acknowledge or resolve that
// finds nothing to act on, so it counts it as an orphan at once instead of
// redelivering it: a burst of stale resolves neither waits nor fills
// max_ack_pending. A trigger after a resolve of its identity opens an
// incident, as the stream order says. The messages it dead-letters count
// as its own too: nothing can depend on them (they once made it defer
// the resolves after them, which then came back after later triggers).
func TestOneWorkerSettlesOrphansAtOnce(t *testing.T) {
	e := newEnv(t)
	cfg := testConfig()
	cfg.Consumer.BatchSize = 16
	cfg.Consumer.OrphanRetryDelay = config.Duration{Duration: 30 * time.Second} // a deferral would show
	var log []entry
	for i := range 300 {
		if i%25 == 0 {
			log = append(log, entry{payload: fmt.Appendf(nil, `{"id":"bad-%d","title":"no source"}`, i)})
		}
		log = append(log, entry{payload: fmt.Appendf(nil, `{"id":"stale-%d","source":"s","title":"t %d","action":"resolve"}`, i, i)})
	}
	for i := range 300 {
		log = append(log, entry{payload: fmt.Appendf(nil, `{"id":"new-%d","source":"s","title":"t %d"}`, i, i)})
	}
	w := e.start(cfg, stores[0].open(t, ""))
	e.publish(payloads(log))
	e.settle(cfg, w)
	if d, o := testutil.ToFloat64(w.m.EventsDeferred), testutil.ToFloat64(w.m.EventsOrphaned); d != 0 || o != 300 {
		t.Fatalf("deferred %v, orphaned %v; want 0 and 300", d, o)
	}
	if n := testutil.ToFloat64(w.m.IncidentsOpened); n != 300 {
		t.Fatalf("opened %v, want 300", n)
	}
}

// TestTwoWorkersTriggerAfterResolve: a trigger that follows a resolve in
// the stream may be committed (merged into the open incident) before the
// resolve: the resolve then finds itself overtaken and leaves the incident
// open. The incidents differ from the stream applied in order (one open
// incident holding both triggers, instead of a resolved one and a reopen),
// but every identity has an open incident, as in order, and only one; and
// an acknowledge committed after the reopen still lands on the incident it
// came before the resolve of.
func TestTwoWorkersTriggerAfterResolve(t *testing.T) {
	for _, st := range stores {
		t.Run(st.name, func(t *testing.T) {
			e := newEnv(t)
			cfg := raceConfig()
			log := reopenLog(300)
			dir := t.TempDir()
			store := st.open(t, dir)
			store2 := store
			if st.shared {
				store2 = st.open(t, dir)
			}
			w1, w2 := e.start(cfg, store), e.start(cfg, store2)
			e.publish(payloads(log))
			e.settle(cfg, w1, w2)
			all, err := store.List(context.Background(), storage.Filter{}, storage.Page{})
			if err != nil {
				t.Fatal(err)
			}
			open := map[string]int{}
			for _, in := range all {
				if in.Active() {
					open[in.Title]++
				}
				// The acknowledge came between the first trigger and the
				// resolve: whatever the commit order, the incident the
				// resolve closed carries it.
				if in.State == incident.Resolved && in.AcknowledgedAt == nil {
					t.Errorf("incident %s (%s) resolved without the acknowledge received before its resolve", in.ID, in.Title)
				}
			}
			for i := range 300 {
				if n := open[fmt.Sprintf("errors %d", i)]; n != 1 {
					t.Fatalf("identity %d: %d open incidents, want 1", i, n)
				}
			}
			overtaken := testutil.ToFloat64(w1.m.EventsOrphaned) + testutil.ToFloat64(w2.m.EventsOrphaned)
			t.Logf("%d incidents for 300 identities; %v resolves overtaken", len(all), overtaken)
		})
	}
}
