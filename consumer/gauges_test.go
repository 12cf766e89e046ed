package consumer_test

import (
	"context"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/llm-im/incidentd/incident"
	"github.com/llm-im/incidentd/metrics"
	"github.com/llm-im/incidentd/storage"
	"github.com/llm-im/incidentd/storage/memory"
)

// countByState counts incidents per state.
func countByState(ins []*incident.Incident) map[incident.State]int {
	n := map[incident.State]int{}
	for _, in := range ins {
		n[in.State]++
	}
	return n
}

// byStateIs reports how incidentd_store_incidents_by_state differs from
// want (a state absent from want must read 0), or nil.
func byStateIs(m *metrics.Metrics, want map[incident.State]int) error {
	for _, st := range incident.States {
		if got := testutil.ToFloat64(m.StoreIncidentsByState.WithLabelValues(st.String())); got != float64(want[st]) {
			return fmt.Errorf("state %s: gauge %v, want %d", st, got, want[st])
		}
	}
	return nil
}

// countFailing wraps a store whose Count fails while failing is set, as it
// would against a store gone away; every other call reaches the store.
type countFailing struct {
	storage.Store
	failing atomic.Bool
	calls   atomic.Int64
}

func (c *countFailing) Count(ctx context.Context, f storage.Filter) (int64, error) {
	c.calls.Add(1)
	if c.failing.Load() {
		return 0, errInjected
	}
	return c.Store.Count(ctx, f)
}

// TestStateGaugesFollowTheStore: the by-state gauges read the store's
// incidents per state after ingesting, and follow an operator's state
// change; while Count fails they keep their last values and the lag and
// size gauges are sampled all the same.
func TestStateGaugesFollowTheStore(t *testing.T) {
	e := newEnv(t)
	cfg := testConfig()
	log := logicalLog(2000, 0, true, 3)
	ex := expect(t, log, cfg.Dedupe)
	want := countByState(ex.incidents)
	if len(want) < 3 {
		t.Fatalf("the log gives states %v: too few to tell the gauges apart", want)
	}
	store := &countFailing{Store: memory.New()}
	store.failing.Store(true)
	w := e.start(cfg, store)
	e.publish(payloads(log))
	e.settle(cfg, w)

	// Count fails: the store size and the lag are sampled anyway, the
	// state gauges stay at zero (they were never read).
	e.waitFor("store size and lag sampled while Count fails", 10*time.Second, func() bool {
		return testutil.ToFloat64(w.m.StoreIncidents) == float64(len(ex.incidents)) &&
			testutil.ToFloat64(w.m.ConsumerPending) == 0 && testutil.ToFloat64(w.m.ConsumerAckPending) == 0
	})
	calls := store.calls.Load()
	e.waitFor("Count tried again", 10*time.Second, func() bool { return store.calls.Load() > calls })
	if err := byStateIs(w.m, nil); err != nil {
		t.Fatalf("state gauges moved while every Count failed: %v", err)
	}

	store.failing.Store(false)
	e.waitFor("state gauges follow the store", 10*time.Second, func() bool { return byStateIs(w.m, want) == nil })
	if err := byStateIs(w.m, want); err != nil {
		t.Fatal(err)
	}

	// An operator closes an open incident: Closed gains it, its state loses
	// it, on the next sample.
	var open *incident.Incident
	for _, in := range ex.incidents {
		if in.State.Active() {
			open = in
			break
		}
	}
	if open == nil {
		t.Fatal("no open incident in the log")
	}
	stored, err := store.FindOpen(context.Background(), open.Fingerprint)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := storage.SetState(context.Background(), store, stored.ID, incident.Closed, time.Now); err != nil {
		t.Fatal(err)
	}
	want[stored.State]--
	want[incident.Closed]++
	e.waitFor("state gauges follow an operator's change", 10*time.Second, func() bool { return byStateIs(w.m, want) == nil })

	// Failing again: the last values stay.
	store.failing.Store(true)
	calls = store.calls.Load()
	e.waitFor("Count tried again", 10*time.Second, func() bool { return store.calls.Load() > calls+int64(len(incident.States)) })
	if err := byStateIs(w.m, want); err != nil {
		t.Fatalf("a failing Count changed the gauges: %v", err)
	}
}
