package consumer_test

import (
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/llm-im/incidentd/metrics"
)

// TestFlushDurationIncludesRetries fails the store for over a second under
// one batch: its incidentd_flush_duration_seconds sample spans the outage
// (every failed attempt and backoff), as its HELP says. It once recorded
// the last attempt only. The failed attempts count in
// incidentd_commit_errors_total too, by reason.
func TestFlushDurationIncludesRetries(t *testing.T) {
	e := newEnv(t)
	cfg := testConfig()
	store := stores[0].open(t, "")
	f := &flaky{Store: store}
	f.failing.Store(true)
	w := e.start(cfg, f)
	const outage = 1500 * time.Millisecond
	start := time.Now()
	e.publish(payloads(logicalLog(1, 0, false, 12)))
	e.waitFor("failed attempts", 10*time.Second, func() bool { return f.failures.Load() >= 3 })
	time.Sleep(outage - time.Since(start))
	f.failing.Store(false)
	e.settle(cfg, w)
	h := metrics.Snapshot(w.m.FlushDuration)
	if h.GetSampleCount() != 1 {
		t.Fatalf("%d flush samples, want 1 (one batch)", h.GetSampleCount())
	}
	if got := time.Duration(h.GetSampleSum() * float64(time.Second)); got < outage-100*time.Millisecond {
		t.Errorf("flush duration %v, want the outage (%v) included", got, outage)
	}
	failed := testutil.ToFloat64(w.m.BatchesFailed)
	if other := testutil.ToFloat64(w.m.CommitErrors.WithLabelValues(metrics.CommitErrorOther)); failed == 0 || other != failed {
		t.Errorf("commit_errors_total{reason=other} = %v, batches_failed_total = %v: want equal, above 0", other, failed)
	}
}
