package metrics

import (
	"math"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
)

// HistogramQuantile estimates the q-quantile (0..1) of a histogram the way
// PromQL's histogram_quantile does: linear interpolation inside the bucket
// holding the rank. It returns NaN for an empty histogram. The benchmark
// reads flush and latency percentiles with it.
func HistogramQuantile(q float64, h *dto.Histogram) float64 {
	total := float64(h.GetSampleCount())
	if total == 0 {
		return math.NaN()
	}
	rank := q * total
	lower, below := 0.0, 0.0
	for _, b := range h.GetBucket() {
		upper, cum := b.GetUpperBound(), float64(b.GetCumulativeCount())
		if cum >= rank {
			if math.IsInf(upper, 1) {
				return lower
			}
			if cum == below {
				return upper
			}
			return lower + (upper-lower)*(rank-below)/(cum-below)
		}
		lower, below = upper, cum
	}
	return lower
}

// Snapshot reads a histogram collector's current state.
func Snapshot(h prometheus.Histogram) *dto.Histogram {
	var m dto.Metric
	if err := h.Write(&m); err != nil {
		return &dto.Histogram{}
	}
	return m.GetHistogram()
}
