package consumer

import (
	"context"
	"time"

	"go.uber.org/zap"

	"github.com/llm-im/incidentd/incident"
	"github.com/llm-im/incidentd/storage"
)

// sweepLimit bounds the incidents one write of a sweep resolves, and
// sweepWrites the writes of one sweep: a large backlog of quiet incidents
// (after a replay of old events, say) is resolved over several ticks
// instead of in one burst that would delay the commits of live batches.
const (
	sweepLimit  = 1000
	sweepWrites = 4
)

// sweep resolves, by timeout, the open incidents whose quiet period ended
// with no further event, so they do not stay open until their identity's
// next event. It runs only when the consumer is caught up (fewer pending
// messages than a batch): while a backlog drains, its events may still
// belong to those incidents, and the next event's fold decides instead. The
// result is the one that event would have produced (resolved_at = last_seen
// + window); a race with a commit is a version conflict, retried next time.
func (c *Consumer) sweep(ctx context.Context, pending uint64) {
	if pending >= uint64(c.cfg.Consumer.BatchSize) {
		return
	}
	for range sweepWrites {
		n, err := storage.ExpireQuiet(ctx, c.store, c.folder, time.Now(), sweepLimit)
		if err != nil {
			if ctx.Err() == nil {
				c.m.SweepFailures.Inc()
				c.log.Warn("quiet-period sweep", zap.Error(err))
			}
			return
		}
		if n == 0 {
			return
		}
		c.m.IncidentsResolved.WithLabelValues(string(incident.ResolvedByTimeout)).Add(float64(n))
		c.log.Info("resolved quiet incidents", zap.Int("incidents", n), zap.Duration("window", c.folder.Window()))
		if n < sweepLimit {
			return
		}
	}
}
