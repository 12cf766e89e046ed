package consumer

import (
	"context"
	"errors"
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
// next event, then deletes the inactive incidents past
// state.incident_retention when it is set. It runs only when the consumer
// is caught up (fewer pending messages than a batch): while a backlog
// drains, its events may still belong to those incidents, and the next
// event's fold decides instead.
func (c *Consumer) sweep(ctx context.Context, pending uint64) {
	if pending >= uint64(c.cfg.Consumer.BatchSize) {
		return
	}
	c.expireQuiet(ctx)
	if c.cfg.IncidentRetention > 0 {
		c.prune(ctx, time.Now())
	}
}

// expireQuiet resolves the quiet incidents. The result is the one the
// identity's next event would have produced (resolved_at = last_seen +
// window); a race with a commit is a version conflict, retried next time.
func (c *Consumer) expireQuiet(ctx context.Context) {
	for range sweepWrites {
		n, err := storage.ExpireQuiet(ctx, c.store, c.folder, time.Now(), sweepLimit)
		if err != nil {
			if !stopping(ctx) {
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

// prune deletes Resolved and Closed incidents whose last event and last
// change are both older than the retention, walking them from the newest
// expired one down, at most sweepWrites pages per sweep; pruneFrom keeps
// the walk's place between sweeps. An incident changed since it was listed
// (closed by an operator, or a late event merged into it) is kept: each
// delete is conditional on the version listed.
func (c *Consumer) prune(ctx context.Context, now time.Time) {
	cutoff := now.Add(-c.cfg.IncidentRetention)
	total := 0
	for range sweepWrites {
		n, next, err := storage.PruneInactive(ctx, c.store, cutoff, c.pruneFrom, sweepLimit)
		if err != nil {
			if !stopping(ctx) {
				c.m.SweepFailures.Inc()
				c.log.Warn("retention prune", zap.Error(err))
			}
			break
		}
		total += n
		c.pruneFrom = next
		if next.Start() {
			break
		}
	}
	if total > 0 {
		c.m.IncidentsPruned.Add(float64(total))
		c.log.Info("pruned incidents past retention", zap.Int("incidents", total), zap.Duration("retention", c.cfg.IncidentRetention))
	}
}

// stopping reports whether ctx ended because the worker is stopping (its
// parent was cancelled), not because the sweep ran past its time limit: a
// sweep that times out has failed and is counted, one cut short by the
// shutdown is not.
func stopping(ctx context.Context) bool {
	return errors.Is(ctx.Err(), context.Canceled)
}
