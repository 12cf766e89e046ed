package consumer

import (
	"context"
	"errors"
	"time"

	"go.uber.org/zap"

	"github.com/llm-im/incidentd/dedupe"
	"github.com/llm-im/incidentd/incident"
	"github.com/llm-im/incidentd/storage"
)

// flight is one batch from its fold to its ack.
type flight struct {
	b        *batch
	res      dedupe.Result
	prepared bool          // res is the fold that Apply is writing
	refolded bool          // res was discarded: the batch was folded again
	err      error         // the commit was abandoned (shutdown)
	done     chan struct{} // closed once durable and acked, or abandoned
}

// pipeline commits batches in order with one stage of overlap: while batch N
// is applied (the durable write and its fsync), batch N+1 is read and folded
// on top of N's result (N's incidents and event ids overlaid on what the store
// returned). N+1 is applied only after N is durable; when N had to be folded
// again (or abandoned), N+1's fold is discarded and redone at once on a fresh
// read, which then holds N's final state: N+1 goes on through the fast path,
// so one conflict does not make every later batch fold twice. At most two
// batches are in the pipeline. It sends on ready once per batch taken, when it
// can take the next one, and closes exited (after the last commit ended) when
// in is closed.
func (c *Consumer) pipeline(ctx context.Context, in <-chan *batch, ready chan<- error, exited chan<- error) {
	var prev *flight
	var firstErr error
	for b := range in {
		start := time.Now()
		stop := c.heartbeat(b.msgs)
		f := &flight{b: b, done: make(chan struct{})}
		at, err := c.prepare(ctx, b, prev, f)
		if prev != nil {
			<-prev.done
			if err == nil && (prev.err != nil || prev.refolded) {
				// Folded on top of a result that was not the one written:
				// read again now that prev is final, without an overlay.
				c.m.BatchesRefolded.Inc()
				at, err = c.prepare(ctx, b, nil, f)
			}
		}
		go func(prepErr error) {
			defer close(f.done)
			defer stop()
			f.err = c.finish(ctx, b, f, at, start, prepErr)
		}(err)
		if prev != nil && prev.err != nil && firstErr == nil {
			firstErr = prev.err
		}
		prev = f
		if c.cfg.Serial {
			<-f.done
		}
		ready <- nil
	}
	if prev != nil {
		<-prev.done
		if prev.err != nil && firstErr == nil {
			firstErr = prev.err
		}
	}
	exited <- firstErr
	close(exited)
}

// prepare reads what batch b needs, overlays the result of prev (which may
// still be in flight), and folds b into f.res. When the fold defers events
// that settleOrphans then settles, it reads and folds again: the ack floor
// was read after the first read, and every message it counts as committed
// must be in the snapshot the orphans are judged on. The fold after a
// settling can defer events the one before did not (an acknowledge that
// acted on an incident which an earlier resolve, settled now, times out
// first), so settling and folding go on until a fold defers nothing more
// that can be settled: a worker alone never defers (found by a black-box
// run, where one deferral a refold made delayed later resolves behind
// triggers). Every round but the last clears a Retry, so there are at most
// as many as events.
func (c *Consumer) prepare(ctx context.Context, b *batch, prev *flight, f *flight) (time.Time, error) {
	at, err := c.fold(ctx, b, prev, f)
	for round := 0; err == nil && len(f.res.Deferred) > 0 && round <= len(b.events); round++ {
		cleared, fresh := c.settleOrphans(ctx, b, prev, f.res.Deferred)
		cleared = b.clearFinals(f.res.Deferred) || cleared
		if fresh {
			prev = nil // durable, and the store holds what was committed after it
		}
		if !cleared && !fresh {
			break
		}
		at, err = c.fold(ctx, b, prev, f)
	}
	b.clearFinals(nil) // for the slow path, after a failed read
	return at, err
}

// fold is one read and fold of prepare.
func (c *Consumer) fold(ctx context.Context, b *batch, prev *flight, f *flight) (time.Time, error) {
	fps, ids, want := storage.LookupKeys(b.events)
	snap, err := c.store.Lookup(ctx, fps, ids)
	if err != nil {
		return time.Time{}, err
	}
	var pending []*incident.Incident
	if prev != nil && prev.prepared {
		storage.Overlay(&snap, prev.res, want, ids)
		pending = prev.res.Incidents
	}
	earlier, err := storage.Earlier(ctx, c.store, snap.Latest, b.events, pending)
	if err != nil {
		return time.Time{}, err
	}
	at := time.Now()
	f.res = c.folder.FoldEarlier(snap.Latest, earlier, snap.Applied, b.events, at)
	f.prepared = true
	return at, nil
}

// finish applies the prepared fold; when there is none, it is stale or
// Apply fails, it commits the batch the slow way (fresh read, fold, apply,
// retried with backoff while the store fails). Then it acks.
func (c *Consumer) finish(ctx context.Context, b *batch, f *flight, at, start time.Time, prepErr error) error {
	if prepErr == nil {
		if len(f.res.EventIDs) == 0 {
			c.acked(b, f.res, 0, time.Since(start))
			return nil
		}
		done := c.applying()
		err := c.store.Apply(ctx, storage.Batch{Incidents: f.res.Incidents, EventIDs: f.res.EventIDs, At: at})
		done()
		if err == nil {
			c.acked(b, f.res, 0, time.Since(start))
			return nil
		}
		switch {
		case errors.Is(err, storage.ErrLeased):
			// Another pod holds the write lease for its batch: the
			// commit below waits for it; no race was lost.
		case errors.Is(err, storage.ErrConflict):
			c.m.StoreConflicts.Inc()
		default:
			c.failed(err)
		}
		if errors.Is(err, storage.ErrUnconfirmed) {
			f.refolded = true
			return c.commit(ctx, b, &f.res, start)
		}
		if errors.Is(err, storage.ErrOutcomeUnknown) {
			b.unsettled = &lostWrite{res: f.res, err: err}
			c.log.Warn("a write got no answer; settling it before the batch is retried", zap.Int("events", len(f.res.EventIDs)), zap.Error(err))
		}
	} else {
		c.failed(prepErr)
	}
	f.refolded = true
	return c.commit(ctx, b, nil, start)
}

// failed records a failing store: not ready, and the loop pauses pulling.
func (c *Consumer) failed(err error) {
	c.m.CommitFailed(err)
	c.storeErr.Store(&err)
	select {
	case c.failing <- struct{}{}:
	default:
	}
}
