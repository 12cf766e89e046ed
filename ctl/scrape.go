package ctl

import (
	"context"
	"fmt"
	"math"
	"net/http"
	"strings"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/llm-im/incidentd/api"
	"github.com/llm-im/incidentd/metrics"
)

// sample is one reading of a worker's metrics, by family name.
type sample map[string]*dto.MetricFamily

// scraper reads a worker's metrics: in process from its registry, or over
// HTTP from /metrics.
type scraper interface {
	scrape(ctx context.Context) (sample, error)
}

type gatherScraper struct{ g prometheus.Gatherer }

func (s gatherScraper) scrape(context.Context) (sample, error) {
	mfs, err := s.g.Gather()
	if err != nil {
		return nil, fmt.Errorf("gather: %w", err)
	}
	out := make(sample, len(mfs))
	for _, mf := range mfs {
		out[mf.GetName()] = mf
	}
	return out, nil
}

type httpScraper struct{ url string }

func (s httpScraper) scrape(ctx context.Context) (sample, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, strings.TrimRight(s.url, "/")+"/metrics", nil)
	if err != nil {
		return nil, fmt.Errorf("scrape: %w", err)
	}
	req.Header.Set("User-Agent", userAgent())
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, fmt.Errorf("scrape: %w", api.RedactURLError(err))
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("scrape %s: %s", redactURL(s.url), resp.Status)
	}
	p := expfmt.NewTextParser(model.UTF8Validation)
	mfs, err := p.TextToMetricFamilies(resp.Body)
	if err != nil {
		return nil, fmt.Errorf("scrape parse: %w", err)
	}
	return mfs, nil
}

// value sums every series of a counter or gauge family (0 when absent).
func (s sample) value(name string) float64 {
	mf := s[name]
	if mf == nil {
		return 0
	}
	var v float64
	for _, m := range mf.GetMetric() {
		switch {
		case m.Counter != nil:
			v += m.GetCounter().GetValue()
		case m.Gauge != nil:
			v += m.GetGauge().GetValue()
		case m.Untyped != nil:
			v += m.GetUntyped().GetValue()
		}
	}
	return v
}

// histogram is the family's first histogram (a zero one when absent).
func (s sample) histogram(name string) *dto.Histogram {
	mf := s[name]
	if mf == nil || len(mf.GetMetric()) == 0 || mf.GetMetric()[0].Histogram == nil {
		return &dto.Histogram{}
	}
	return mf.GetMetric()[0].GetHistogram()
}

// histDelta is after minus before, bucket by bucket.
func histDelta(after, before *dto.Histogram) *dto.Histogram {
	d := &dto.Histogram{}
	cnt := after.GetSampleCount() - before.GetSampleCount()
	sum := after.GetSampleSum() - before.GetSampleSum()
	d.SampleCount, d.SampleSum = &cnt, &sum
	prev := map[float64]uint64{}
	for _, b := range before.GetBucket() {
		prev[b.GetUpperBound()] = b.GetCumulativeCount()
	}
	for _, b := range after.GetBucket() {
		c := b.GetCumulativeCount() - prev[b.GetUpperBound()]
		ub := b.GetUpperBound()
		d.Bucket = append(d.Bucket, &dto.Bucket{UpperBound: &ub, CumulativeCount: &c})
	}
	return d
}

// quantileMS is a histogram quantile in milliseconds (-1 when empty, so it
// stays valid JSON).
func quantileMS(q float64, h *dto.Histogram) float64 {
	v := metrics.HistogramQuantile(q, h)
	if math.IsNaN(v) || math.IsInf(v, 0) {
		return -1
	}
	return math.Round(v*1e5) / 100
}

// Metric names the benchmark reads.
const (
	mReceived     = "incidentd_events_received_total"
	mApplied      = "incidentd_events_applied_total"
	mOpened       = "incidentd_incidents_opened_total"
	mInvalid      = "incidentd_events_invalid_total"
	mDeadLettered = "incidentd_events_dead_lettered_total"
	mBatches      = "incidentd_batches_committed_total"
	mBatchFailed  = "incidentd_batches_failed_total"
	mFlush        = "incidentd_flush_duration_seconds"
	mLatency      = "incidentd_end_to_end_latency_seconds"
	mRSS          = "process_resident_memory_bytes"
	mCPU          = "process_cpu_seconds_total"
)
