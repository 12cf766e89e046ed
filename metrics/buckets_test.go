package metrics_test

import (
	"slices"
	"testing"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/llm-im/incidentd/metrics"
)

// The end-to-end latency buckets rise in steps of at most 1.5x from 10 s
// (IncidentdEndToEndLatencyHigh's threshold) to 300 s, and 2x up to an hour.
func TestLatencyBucketsResolveBacklogs(t *testing.T) {
	b := metrics.LatencyBuckets
	for i := 1; i < len(b); i++ {
		if b[i] <= b[i-1] {
			t.Fatalf("bucket %v after %v", b[i], b[i-1])
		}
		limit := 2.0
		if b[i-1] >= 10 && b[i] <= 300 {
			limit = 1.5
		}
		if b[i-1] >= 10 && b[i]/b[i-1] > limit {
			t.Errorf("bucket %v after %v: %.2fx, want at most %.1fx", b[i], b[i-1], b[i]/b[i-1], limit)
		}
	}
	if b[len(b)-1] != 3600 {
		t.Errorf("last bucket %v, want 3600 (an hour of backlog)", b[len(b)-1])
	}
}

// A backlog of L seconds drained evenly: latencies spread over (0, L]. The
// p99 read from the buckets (as histogram_quantile reads it) is within 1.5x
// of the true one (0.99 L); with 30, 60, 300, 900 it read up to 4x.
func TestLatencyP99OfADrainedBacklog(t *testing.T) {
	for _, backlog := range []float64{11, 25, 40, 70, 100, 130, 200, 250, 290} {
		h := prometheus.NewHistogram(prometheus.HistogramOpts{Name: "x_seconds", Help: "x", Buckets: metrics.LatencyBuckets})
		const n = 10000
		for i := 1; i <= n; i++ {
			h.Observe(backlog * float64(i) / n)
		}
		got, want := metrics.HistogramQuantile(0.99, metrics.Snapshot(h)), 0.99*backlog
		if got < want/1.5 || got > want*1.5 {
			t.Errorf("backlog %vs: p99 reads %.1fs, true %.1fs", backlog, got, want)
		}
	}
}

// IncidentdSlowCommits compares a flush p99 with 1 s: 1 s must be a bound,
// or histogram_quantile interpolates inside the bucket around it and reads
// over 1 s with no commit that long (with the bucket (0.512, 1.024] it read
// 1.019 s once a fifth of the commits took 0.6 s).
func TestFlushBucketsHoldTheSlowCommitThreshold(t *testing.T) {
	b := metrics.FlushBuckets
	if !slices.Contains(b, 1) {
		t.Fatalf("flush buckets %v lack 1 s", b)
	}
	for i := 1; i < len(b); i++ {
		if b[i] <= b[i-1] {
			t.Fatalf("bucket %v after %v", b[i], b[i-1])
		}
	}
	h := prometheus.NewHistogram(prometheus.HistogramOpts{Name: "x_seconds", Help: "x", Buckets: b})
	for i := range 100 {
		if i < 25 {
			h.Observe(0.9)
		} else {
			h.Observe(0.01)
		}
	}
	if got := metrics.HistogramQuantile(0.99, metrics.Snapshot(h)); got > 1 {
		t.Errorf("p99 of commits all under 1 s reads %.3f s", got)
	}
}
