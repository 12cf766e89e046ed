package app_test

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"go.uber.org/zap/zaptest"

	"github.com/llm-im/incidentd/api"
	"github.com/llm-im/incidentd/app"
	"github.com/llm-im/incidentd/config"
	"github.com/llm-im/incidentd/incident"
	"github.com/llm-im/incidentd/storage"
	"github.com/llm-im/incidentd/storage/redis/redistest"
)

// startWorker runs a worker on cfg until the test ends.
func startWorker(t *testing.T, cfg config.Config) *app.App {
	t.Helper()
	a, err := app.New(cfg, zaptest.NewLogger(t), prometheus.NewRegistry())
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- a.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Run: %v", err)
		}
	})
	waitFor(t, "ready", func() bool { return httpGet(t, a.HTTPURL()+"/readyz", nil) == http.StatusOK })
	return a
}

// TestOperatorStateChangesDuringIngestion: an operator moves an incident
// through Investigating and Remediating to Resolved through the API of a
// worker that keeps folding triggers into that very incident. No change is
// lost to the worker's concurrent writes (storage.SetState reads again
// after a conflict, the worker folds again after one), no trigger is lost
// or counted twice, the triggers older than the operator's resolved_at
// that arrive after it are late, and the next trigger after it opens a new
// incident reopening the resolved one.
func TestOperatorStateChangesDuringIngestion(t *testing.T) {
	for _, backend := range []config.Backend{config.BackendMemory, config.BackendPebble, config.BackendRedis} {
		t.Run(string(backend), func(t *testing.T) {
			cfg := testConfig(t, backend)
			if backend == config.BackendRedis {
				cfg.State.RedisURL = redistest.StartStandalone(t, redistest.Options{}).URL()
			}
			cfg.HTTP.AllowWrites = true
			cfg.Consumer.BatchSize = 64 // many commits, each touching the incident
			a := startWorker(t, cfg)
			nc, err := nats.Connect(a.NATSURL())
			if err != nil {
				t.Fatal(err)
			}
			defer nc.Close()
			t0 := time.Now().UTC().Add(-10 * time.Minute).Truncate(time.Millisecond) // within the quiet period, before the operator
			trigger := func(i int, at time.Time) {
				ev := fmt.Sprintf(`{"id":"op-%d","source":"gw","type":"Performance","severity":"P2","title":"slow","occurred_at":%q}`, i, at.Format(time.RFC3339Nano))
				if err := nc.Publish("incidents.events.gw", []byte(ev)); err != nil {
					t.Error(err)
				}
			}
			const half = 1500
			published := make(chan struct{})
			go func() { // the first half, paced, while the operator works
				defer close(published)
				for i := range half {
					trigger(i, t0.Add(time.Duration(i)*time.Millisecond))
					if i%30 == 29 {
						time.Sleep(10 * time.Millisecond)
					}
				}
			}()
			c := api.NewClient(a.HTTPURL(), nil)
			ctx := context.Background()
			var list api.ListResponse
			waitFor(t, "the incident", func() bool {
				return httpGet(t, a.HTTPURL()+"/api/v1/incidents", &list) == http.StatusOK && list.Total == 1
			})
			id := list.Incidents[0].ID
			var resolved *incident.Incident
			for _, to := range []incident.State{incident.Investigating, incident.Remediating, incident.Resolved} {
				in, changed, err := c.SetState(ctx, id, to)
				if err != nil || !changed || in.State != to {
					t.Fatalf("%s: %+v, %v, %v", to, in, changed, err)
				}
				resolved = in
			}
			select {
			case <-published:
				t.Log("the first half was all published before the operator was done: a slow machine")
			default:
			}
			<-published
			for i := half; i < 2*half; i++ { // older than the operator's resolved_at: late
				trigger(i, t0.Add(time.Duration(i)*time.Millisecond))
			}
			m := a.Metrics()
			waitFor(t, "every trigger applied", func() bool { return testutil.ToFloat64(m.EventsApplied) == 2*half })
			in, err := a.Store().Get(ctx, id)
			if err != nil {
				t.Fatal(err)
			}
			if in.State != incident.Resolved || in.ResolvedBy != incident.ResolvedByOperator || !in.ResolvedAt.Equal(*resolved.ResolvedAt) ||
				in.AcknowledgedAt == nil || in.OccurrenceCount != 2*half || in.LateCount < half || in.LateCount >= 2*half {
				t.Fatalf("after ingestion: state %s by %q at %v (operator's %v), occurrences %d, late %d; want Resolved by operator, %d, %d..%d late",
					in.State, in.ResolvedBy, in.ResolvedAt, resolved.ResolvedAt, in.OccurrenceCount, in.LateCount, 2*half, half, 2*half-1)
			}
			if err := in.Validate(); err != nil {
				t.Fatal(err)
			}

			// The next trigger after the operator's resolved_at reopens.
			trigger(2*half, in.ResolvedAt.Add(time.Second))
			waitFor(t, "the reopen", func() bool {
				return httpGet(t, a.HTTPURL()+"/api/v1/incidents", &list) == http.StatusOK && list.Total == 2
			})
			next := list.Incidents[0]
			if next.ID == id || next.ReopenOf != id || next.State != incident.Detected || next.OccurrenceCount != 1 {
				t.Fatalf("after the resolve: %+v, want a Detected reopen of %s", next, id)
			}
			open, err := a.Store().FindOpen(ctx, in.Fingerprint)
			if err != nil || open.ID != next.ID {
				t.Fatalf("FindOpen = %+v, %v; want %s", open, err, next.ID)
			}

			// The old one can still be closed; the identity stays on the reopen.
			if _, _, err := c.SetState(ctx, id, incident.Closed); err != nil {
				t.Fatal(err)
			}
			trigger(2*half+1, in.ResolvedAt.Add(2*time.Second))
			waitFor(t, "the merge into the reopen", func() bool {
				got, err := a.Store().Get(ctx, next.ID)
				return err == nil && got.OccurrenceCount == 2
			})
			if n, err := a.Store().Count(ctx, storage.Filter{}); err != nil || n != 2 {
				t.Fatalf("%d incidents, %v; want 2", n, err)
			}
			for _, c := range []struct {
				name string
				got  float64
				want float64
			}{
				{"resolved_total{resolved_by=operator}", testutil.ToFloat64(m.IncidentsResolved.WithLabelValues("operator")), 1},
				{"operator_transitions_total{to=Investigating}", testutil.ToFloat64(m.IncidentsOperatorTransitions.WithLabelValues("Investigating")), 1},
				{"operator_transitions_total{to=Remediating}", testutil.ToFloat64(m.IncidentsOperatorTransitions.WithLabelValues("Remediating")), 1},
				{"operator_transitions_total{to=Resolved}", testutil.ToFloat64(m.IncidentsOperatorTransitions.WithLabelValues("Resolved")), 1},
				{"operator_transitions_total{to=Closed}", testutil.ToFloat64(m.IncidentsOperatorTransitions.WithLabelValues("Closed")), 1},
				{"events_late_total", testutil.ToFloat64(m.EventsLate), float64(in.LateCount)},
			} {
				if c.got != c.want {
					t.Errorf("%s = %v, want %v", c.name, c.got, c.want)
				}
			}
			t.Logf("store conflicts during the run: %v", testutil.ToFloat64(m.StoreConflicts))
		})
	}
}

// TestOperatorWritesOffByDefault: a worker on the defaults answers 403 to a
// state change, saying how to turn writes on, and serves no write.
func TestOperatorWritesOffByDefault(t *testing.T) {
	a := startWorker(t, testConfig(t, config.BackendMemory))
	_, _, err := api.NewClient(a.HTTPURL(), nil).SetState(context.Background(), "any", incident.Closed)
	if !errors.Is(err, api.ErrWritesDisabled) || !strings.Contains(err.Error(), "http.allow_writes = true") {
		t.Fatalf("SetState on a default worker: %v", err)
	}
}
