package metrics_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/llm-im/incidentd/dedupe"
	"github.com/llm-im/incidentd/incident"
	"github.com/llm-im/incidentd/metrics"
)

func newMetrics(t *testing.T) (*metrics.Metrics, *prometheus.Registry) {
	t.Helper()
	reg := prometheus.NewRegistry()
	m, err := metrics.New(reg, metrics.Build{Version: "v0.0.0-test"})
	if err != nil {
		t.Fatal(err)
	}
	return m, reg
}

func TestLint(t *testing.T) {
	_, reg := newMetrics(t)
	problems, err := testutil.GatherAndLint(reg)
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range problems {
		t.Errorf("%s: %s", p.Metric, p.Text)
	}
}

// TestSeriesExistAtStart checks that every labelled series reads zero
// before the first event.
func TestSeriesExistAtStart(t *testing.T) {
	_, reg := newMetrics(t)
	want := map[string]int{
		"incidentd_events_invalid_total":       len(incident.DecodeReasons), // max_deliver is no decode failure
		"incidentd_events_dead_lettered_total": len(incident.Reasons),
		"incidentd_events_duplicate_total":     2,
		"incidentd_incidents_resolved_total":   3, // event, timeout, operator
		"incidentd_events_received_total":      1,
		"incidentd_batches_committed_total":    1,
		"incidentd_flush_duration_seconds":     1,
		"incidentd_end_to_end_latency_seconds": 1,
		"incidentd_consumer_pending_messages":  1,
		"incidentd_store_size_bytes":           1,
		"incidentd_store_incidents_by_state":   len(incident.States),
		"incidentd_ready":                      1,
		"incidentd_build_info":                 1,
		"incidentd_nats_errors_total":          len(metrics.NATSErrorKinds),
		"incidentd_acks_failed_total":          1,
		"incidentd_store_unreachable_total":    1,
	}
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]int{}
	for _, mf := range mfs {
		got[mf.GetName()] = len(mf.GetMetric())
	}
	for name, n := range want {
		if got[name] != n {
			t.Errorf("%s: %d series, want %d", name, got[name], n)
		}
	}
	if len(got) < 25 {
		t.Errorf("only %d metric families registered", len(got))
	}
}

func TestObserveFold(t *testing.T) {
	m, _ := newMetrics(t)
	m.ObserveFold(dedupe.Stats{Applied: 10, Duplicates: 3, Opened: 4, Reopened: 1, Merged: 5, Late: 1,
		Acknowledged: 2, Resolved: 2, TimedOut: 1, Orphans: 1})
	for _, c := range []struct {
		name string
		c    prometheus.Collector
		want float64
	}{
		{"applied", m.EventsApplied, 10},
		{"dup event_id", m.EventsDuplicate.WithLabelValues(metrics.DuplicateEventID), 3},
		{"dup merged", m.EventsDuplicate.WithLabelValues(metrics.DuplicateMerged), 5},
		{"opened", m.IncidentsOpened, 4},
		{"reopened", m.IncidentsReopened, 1},
		{"late", m.EventsLate, 1},
		{"acknowledged", m.IncidentsAcknowledged, 2},
		{"resolved event", m.IncidentsResolved.WithLabelValues("event"), 2},
		{"resolved timeout", m.IncidentsResolved.WithLabelValues("timeout"), 1},
		{"orphaned", m.EventsOrphaned, 1},
	} {
		if got := testutil.ToFloat64(c.c); got != c.want {
			t.Errorf("%s = %v, want %v", c.name, got, c.want)
		}
	}
}

// TestObserveOperator: a series per operator target from start, then one
// transition per change and a resolution by the operator when an active
// incident ends.
func TestObserveOperator(t *testing.T) {
	m, reg := newMetrics(t)
	if n, err := testutil.GatherAndCount(reg, "incidentd_incidents_operator_transitions_total"); err != nil || n != len(incident.OperatorTargets) {
		t.Fatalf("operator transition series at start: %d, %v; want %d", n, err, len(incident.OperatorTargets))
	}
	m.ObserveOperator(incident.Detected, incident.Investigating)
	m.ObserveOperator(incident.Investigating, incident.Resolved)
	m.ObserveOperator(incident.Resolved, incident.Closed) // no second resolution
	m.ObserveOperator(incident.Triaged, incident.Closed)
	for _, c := range []struct {
		name string
		c    prometheus.Collector
		want float64
	}{
		{"to Investigating", m.IncidentsOperatorTransitions.WithLabelValues("Investigating"), 1},
		{"to Resolved", m.IncidentsOperatorTransitions.WithLabelValues("Resolved"), 1},
		{"to Closed", m.IncidentsOperatorTransitions.WithLabelValues("Closed"), 2},
		{"to Triaged", m.IncidentsOperatorTransitions.WithLabelValues("Triaged"), 0},
		{"resolved operator", m.IncidentsResolved.WithLabelValues("operator"), 2},
		{"resolved event", m.IncidentsResolved.WithLabelValues("event"), 0},
	} {
		if got := testutil.ToFloat64(c.c); got != c.want {
			t.Errorf("%s = %v, want %v", c.name, got, c.want)
		}
	}
}

func TestReadiness(t *testing.T) {
	m, reg := newMetrics(t)
	h := m.Health
	get := func() (int, metrics.ReadyResponse) {
		rec := httptest.NewRecorder()
		h.ReadyzHandler().ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/readyz", nil))
		var body metrics.ReadyResponse
		if err := json.NewDecoder(rec.Body).Decode(&body); err != nil {
			t.Fatal(err)
		}
		return rec.Code, body
	}
	if code, _ := get(); code != http.StatusServiceUnavailable {
		t.Fatalf("no checks: %d, want 503", code)
	}
	var storeErr error
	h.Add("nats", func() error { return nil })
	h.Add("store", func() error { return storeErr })
	if code, body := get(); code != http.StatusOK || !body.Ready {
		t.Fatalf("healthy: %d %+v", code, body)
	}
	if v := gaugeValue(t, reg, "incidentd_ready"); v != 1 {
		t.Fatalf("incidentd_ready = %v while ready", v)
	}
	storeErr = errors.New("disk full")
	code, body := get()
	if code != http.StatusServiceUnavailable || body.Failing["store"] != "disk full" || len(body.Failing) != 1 {
		t.Fatalf("failing store: %d %+v", code, body)
	}
	if v := gaugeValue(t, reg, "incidentd_ready"); v != 0 {
		t.Fatalf("incidentd_ready = %v while not ready", v)
	}
	rec := httptest.NewRecorder()
	metrics.HealthzHandler().ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/healthz", nil))
	if rec.Code != http.StatusOK {
		t.Fatalf("/healthz = %d", rec.Code)
	}
	rec = httptest.NewRecorder()
	metrics.Handler(reg).ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/metrics", nil))
	if !strings.Contains(rec.Body.String(), `incidentd_build_info{goversion="`) {
		t.Fatalf("/metrics lacks build info:\n%s", rec.Body.String())
	}
}

func gaugeValue(t *testing.T, g prometheus.Gatherer, name string) float64 {
	t.Helper()
	mfs, err := g.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() == name {
			return mf.GetMetric()[0].GetGauge().GetValue()
		}
	}
	t.Fatalf("%s not gathered", name)
	return 0
}

func TestHistogramQuantile(t *testing.T) {
	h := prometheus.NewHistogram(prometheus.HistogramOpts{Name: "x_seconds", Help: "x", Buckets: []float64{1, 2, 4}})
	if q := metrics.HistogramQuantile(0.5, metrics.Snapshot(h)); q == q {
		t.Fatalf("empty histogram: %v, want NaN", q)
	}
	for range 50 {
		h.Observe(0.5)
	}
	for range 50 {
		h.Observe(3)
	}
	for _, c := range []struct{ q, want float64 }{{0.25, 0.5}, {0.5, 1}, {0.75, 3}, {1, 4}} {
		if got := metrics.HistogramQuantile(c.q, metrics.Snapshot(h)); got != c.want {
			t.Errorf("q%v = %v, want %v", c.q, got, c.want)
		}
	}
}

func TestNATSErrorKind(t *testing.T) {
	for _, tc := range []struct {
		err  error
		want string
	}{
		{nats.ErrSlowConsumer, metrics.NATSSlowConsumer},
		{fmt.Errorf("sub 3: %w", nats.ErrSlowConsumer), metrics.NATSSlowConsumer},
		{nats.ErrPermissionViolation, metrics.NATSPermission},
		{jetstream.ErrNoHeartbeat, metrics.NATSMissedHeartbeat},
		{nats.ErrStaleConnection, metrics.NATSOther},
		{errors.New("something else"), metrics.NATSOther},
	} {
		if got := metrics.NATSErrorKind(tc.err); got != tc.want {
			t.Errorf("NATSErrorKind(%v) = %q, want %q", tc.err, got, tc.want)
		}
	}
}

// TestStoreIncidentsByStateStartsAtZero: one series per state, named as the
// API names states, each reading zero before the first sample.
func TestStoreIncidentsByStateStartsAtZero(t *testing.T) {
	m, reg := newMetrics(t)
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]float64{}
	for _, mf := range mfs {
		if mf.GetName() != "incidentd_store_incidents_by_state" {
			continue
		}
		for _, s := range mf.GetMetric() {
			for _, l := range s.GetLabel() {
				if l.GetName() == "state" {
					got[l.GetValue()] = s.GetGauge().GetValue()
				}
			}
		}
	}
	if len(got) != len(incident.States) {
		t.Fatalf("states %v, want the %d of incident.States", got, len(incident.States))
	}
	for _, st := range incident.States {
		if v, ok := got[st.String()]; !ok || v != 0 {
			t.Errorf("state %s: %v (present %v), want 0", st, v, ok)
		}
		if v := testutil.ToFloat64(m.StoreIncidentsByState.WithLabelValues(st.String())); v != 0 {
			t.Errorf("state %s reads %v", st, v)
		}
	}
}

type timeoutErr struct{}

func (timeoutErr) Error() string   { return "read tcp 10.0.0.1:6379: i/o timeout" }
func (timeoutErr) Timeout() bool   { return true }
func (timeoutErr) Temporary() bool { return true }

// The commit errors' reasons, from the errors the stores wrap.
func TestCommitErrorReason(t *testing.T) {
	for _, c := range []struct {
		err  error
		want string
	}{
		{fmt.Errorf("apply: redis apply: %w", errors.New("OOM command not allowed when used memory > 'maxmemory'.")), metrics.CommitErrorOOM},
		{fmt.Errorf("apply: %w", errors.New("READONLY You can't write against a read only replica.")), metrics.CommitErrorReadOnly},
		{fmt.Errorf("lookup: %w", context.DeadlineExceeded), metrics.CommitErrorTimeout},
		{fmt.Errorf("apply: %w", &net.OpError{Op: "read", Net: "tcp", Err: timeoutErr{}}), metrics.CommitErrorTimeout},
		{errors.New("pebble: disk full"), metrics.CommitErrorOther},
		{context.Canceled, metrics.CommitErrorOther},
	} {
		if got := metrics.CommitErrorReason(c.err); got != c.want {
			t.Errorf("%v: %s, want %s", c.err, got, c.want)
		}
	}
	reg := prometheus.NewRegistry()
	m, err := metrics.New(reg, metrics.Build{Version: "test"})
	if err != nil {
		t.Fatal(err)
	}
	if n := testutil.CollectAndCount(m.CommitErrors); n != len(metrics.CommitErrorReasons) {
		t.Errorf("%d commit_errors_total series at start, want %d", n, len(metrics.CommitErrorReasons))
	}
	m.CommitFailed(errors.New("OOM command not allowed"))
	if testutil.ToFloat64(m.BatchesFailed) != 1 || testutil.ToFloat64(m.CommitErrors.WithLabelValues(metrics.CommitErrorOOM)) != 1 {
		t.Error("CommitFailed did not count the attempt in both")
	}
}
