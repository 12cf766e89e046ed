package consumer

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"go.uber.org/zap"

	"github.com/llm-im/incidentd/dedupe"
	"github.com/llm-im/incidentd/incident"
	"github.com/llm-im/incidentd/metrics"
	"github.com/llm-im/incidentd/storage"
)

// batch is the valid part of what was pulled: the messages to ack after the
// commit, their events and JetStream timestamps.
type batch struct {
	msgs    []jetstream.Msg
	events  []dedupe.Keyed
	stamps  []time.Time
	seqs    []uint64  // stream sequences
	started time.Time // first message added
	touched time.Time // last InProgress (or first add)
	// holds are the deferred events (by position) to redeliver no
	// earlier than a time: see inherited.
	holds map[int]time.Time
	// ahead marks a batch readAhead commits beside the pipeline's: it
	// does not count among the batches the loop handed over.
	ahead bool
	// unsettled is the fold an earlier Apply of the batch may have written
	// (storage.ErrOutcomeUnknown), with that Apply's error: the next
	// attempt asks the store's Settle about it first, and counts that fold
	// when it was written.
	unsettled *lostWrite
	// finals are the positions (ascending) of events delivered more often
	// than consumer.orphan_retries: Retry is set on them only so that the
	// fold reports an acknowledge or resolve with nothing to act on, which
	// settleOrphans may still settle; it is cleared before anything is
	// written (clearFinals), as they must not be deferred again.
	finals []int
}

// final reports whether position i is in b.finals.
func (b *batch) final(i int) bool {
	_, ok := slices.BinarySearch(b.finals, i)
	return ok
}

// clearFinals clears Retry on every final event; it reports whether one
// among deferred (positions a fold deferred) was, so the fold is stale.
func (b *batch) clearFinals(deferred []int) bool {
	for _, i := range b.finals {
		b.events[i].Retry = false
	}
	for _, i := range deferred {
		if b.final(i) {
			return true
		}
	}
	return false
}

func (b *batch) add(m jetstream.Msg, k dedupe.Keyed, ts time.Time, seq uint64) {
	if len(b.msgs) == 0 {
		b.started = time.Now()
		b.touched = b.started
	}
	b.msgs = append(b.msgs, m)
	b.events = append(b.events, k)
	b.stamps = append(b.stamps, ts)
	b.seqs = append(b.seqs, seq)
}

// loop is the batcher: it decodes messages as they arrive (overlapping the
// commit of the previous batch), hands a batch to the committer whenever the
// committer is idle and the batch is full, has waited batch_wait, or no more
// messages are waiting, and pauses pulling while commits fail.
func (c *Consumer) loop(ctx context.Context, cons jetstream.Consumer) error {
	cc := c.cfg.Consumer
	commitCtx, cancelCommit := context.WithCancel(context.WithoutCancel(ctx))
	defer cancelCommit()
	src, err := c.startSource(cons)
	if err != nil {
		return err
	}
	var (
		cur         = &batch{}
		committing  bool
		commitStart time.Time
		done        = make(chan error, 1)
		paused      bool // a commit fails or is slow: pulling stopped until the store took every batch handed over
		pausedSince time.Time
		// sent counts the batches handed to the pipeline as c.committed
		// counts those committed.
		sent = c.committed.Load()
	)
	pause := func(why string) {
		if paused || src == nil {
			return
		}
		paused, pausedSince = true, time.Now()
		c.log.Warn("pausing pull; holding the messages in hand with InProgress", zap.String("why", why))
		src.drain() // the request in flight still delivers to src.msgs, then it closes
	}
	slow := func() bool { return committing && c.ipEvery > 0 && time.Since(commitStart) >= c.ipEvery }
	// writable: every batch handed over is committed and no failure was
	// recorded after the last commit. One commit succeeding since the pause
	// is not enough while the batch after it is in the pipeline: that
	// batch's read ran during the write before it and may have failed, and
	// the pipeline records the failure only once the write before is
	// durable, after that commit's success was signalled. Paused, no new
	// messages arrive, so the pipeline empties. committed is read before
	// storeErr, which acked clears before counting.
	writable := func() bool {
		return c.committed.Load() == sent && c.storeErr.Load() == nil
	}
	tick := time.NewTicker(c.tickEvery())
	defer tick.Stop()
	batches, exited := make(chan *batch), make(chan error, 1)
	go c.pipeline(commitCtx, batches, done, exited)
	closeBatches := sync.OnceFunc(func() { close(batches) })
	defer func() {
		closeBatches()
		if !c.leftStuck {
			<-exited
		}
	}()
	commit := func() {
		b := cur
		cur = &batch{}
		committing = true
		commitStart = time.Now()
		sent++
		batches <- b
	}
	for {
		var in <-chan jetstream.Msg
		if src != nil && (paused || len(cur.msgs) < cc.BatchSize) {
			in = src.msgs
		}
		var succeeded <-chan struct{}
		if paused {
			succeeded = c.succeeded
		}
		select {
		case <-ctx.Done():
			return c.drain(cancelCommit, src, cur, committing, sent, done, batches, closeBatches, exited)
		case m, ok := <-in:
			if !ok {
				src = nil
				if !paused {
					c.m.PullRestarts.Inc()
					c.log.Warn("pulling ended; setting the pull up again")
					if src, cons, err = c.restartSource(ctx, cons); err != nil {
						return err
					}
				}
				break
			}
			c.receive(cur, m)
			if paused {
				_ = m.InProgress() // it waited in the client buffer
			}
		case err := <-done:
			committing = false
			if err != nil { // only when commitCtx ended
				return c.drain(cancelCommit, src, cur, false, sent, done, batches, closeBatches, exited)
			}
		case <-c.failing:
			// A commit may have succeeded since the signal: then it is
			// stale and the store is not failing.
			if c.storeErr.Load() != nil {
				pause("store failing")
			}
		case <-succeeded: // checked below
		case <-tick.C:
			if slow() {
				pause("slow commit")
			}
			c.keepAlive(cur)
		}
		// Resume once the store took every batch handed over and no commit
		// is slow.
		if paused && !slow() && writable() {
			paused = false
			c.log.Info("store writable, resuming pull", zap.Duration("paused", time.Since(pausedSince)))
			if src == nil {
				if src, cons, err = c.restartSource(ctx, cons); err != nil {
					return err
				}
			}
		}
		if !committing && len(cur.msgs) > 0 &&
			(len(cur.msgs) >= cc.BatchSize || src == nil || len(src.msgs) == 0 ||
				time.Since(cur.started) >= cc.BatchWait.Duration) {
			commit()
		}
	}
}

func (c *Consumer) tickEvery() time.Duration {
	if c.ipEvery > 0 {
		return max(c.ipEvery/2, 10*time.Millisecond)
	}
	return time.Second
}

// keepAlive sends InProgress for messages held longer than ipEvery so they are
// not redelivered while they wait.
func (c *Consumer) keepAlive(b *batch) {
	if c.ipEvery <= 0 || len(b.msgs) == 0 || time.Since(b.touched) < c.ipEvery {
		return
	}
	for _, m := range b.msgs {
		_ = m.InProgress()
	}
	b.touched = time.Now()
}

// receive decodes and fingerprints one message into cur, or dead-letters it.
func (c *Consumer) receive(cur *batch, m jetstream.Msg) {
	c.m.EventsReceived.Inc()
	md, err := m.Metadata()
	if err != nil {
		c.log.Warn("message without JetStream metadata, terminating", zap.String("subject", m.Subject()), zap.Error(err))
		_ = m.Term()
		return
	}
	c.lastReceived.Store(md.Sequence.Stream)
	meta := messageMeta(m.Headers(), md.Stream, md.Sequence.Stream, md.Timestamp)
	ev, err := c.dec.Decode(m.Data(), meta)
	if err != nil {
		var de *incident.DecodeError
		if !errors.As(err, &de) {
			de = &incident.DecodeError{Reason: incident.ReasonInvalidJSON, Msg: err.Error()}
		}
		c.m.EventsInvalid.WithLabelValues(string(de.Reason)).Inc()
		c.dlq.send(m, meta, m.Subject(), de)
		if c.orphanRetries > 0 {
			// Ended here, whenever its Term lands: no later acknowledge or
			// resolve can wait for it (see settleOrphans).
			c.recentAcks.add([]uint64{md.Sequence.Stream}, nil)
		}
		return
	}
	c.m.EventsDecoded.Inc()
	retry := md.NumDelivered <= uint64(c.orphanRetries)
	final := !retry && c.orphanRetries > 0 && c.readingAhead(time.Now())
	cur.add(m, dedupe.Keyed{Event: ev, Fingerprint: c.fp.Fingerprint(&ev), Received: md.Timestamp, Retry: retry || final}, md.Timestamp, md.Sequence.Stream)
	if final {
		cur.finals = append(cur.finals, len(cur.events)-1)
	}
}

// commit writes one batch durably, retrying with backoff while the store
// fails (sending InProgress meanwhile), then acks every message. It returns
// an error only when ctx ends first; the messages then stay un-acked.
// written, when not nil, is the fold an earlier Apply of the batch wrote
// without confirming it (storage.ErrUnconfirmed): its counts are the
// batch's. since is when the batch's commit began (an earlier attempt by
// the caller included): incidentd_flush_duration_seconds records the time
// from then to the durable write, every failed attempt and backoff
// included.
func (c *Consumer) commit(ctx context.Context, b *batch, written *dedupe.Result, since time.Time) error {
	b.clearFinals(nil) // no settleOrphans on this path
	stop := c.heartbeat(b.msgs)
	cc := c.cfg.Consumer
	backoff := cc.RetryInitial.Duration
	for attempt := 1; ; attempt++ {
		res, conflicts, err := c.try(ctx, b)
		if written != nil && (err == nil || errors.Is(err, storage.ErrUnconfirmed)) {
			res = afterUnconfirmed(*written, res)
		}
		if errors.Is(err, storage.ErrUnconfirmed) {
			written = &res
		}
		if err == nil {
			stop()
			c.acked(b, res, conflicts, time.Since(since))
			if attempt > 1 {
				c.log.Info("commit succeeded after retries", zap.Int("attempts", attempt))
			}
			return nil
		}
		if ctx.Err() != nil {
			c.m.CommitFailed(err)
			stop()
			return fmt.Errorf("commit abandoned: %w", ctx.Err())
		}
		c.failed(err)
		c.log.Warn("commit failed, retrying the same batch", zap.Error(err), zap.Int("attempt", attempt),
			zap.Int("events", len(b.events)), zap.Duration("backoff", backoff))
		select {
		case <-ctx.Done():
			stop()
			return fmt.Errorf("commit abandoned: %w", ctx.Err())
		case <-time.After(backoff):
		}
		backoff = min(2*backoff, cc.RetryMax.Duration)
	}
}

// try is one attempt of commit. When an earlier Apply of b may have been
// written (b.unsettled), the store's Settle decides first: written, that
// fold is the batch's result (a read now would find its events applied,
// and count them as duplicates); not written (and never to be), a fresh
// read, fold and apply follow.
func (c *Consumer) try(ctx context.Context, b *batch) (dedupe.Result, int, error) {
	if b.unsettled != nil {
		wrote, err := c.settle(ctx, b.unsettled.err)
		if err != nil {
			return dedupe.Result{}, 0, fmt.Errorf("settle the write whose answer was lost: %w", err)
		}
		res := b.unsettled.res
		b.unsettled = nil
		if wrote {
			c.m.WritesUnanswered.WithLabelValues(metrics.WriteApplied).Inc()
			c.log.Info("the write whose answer was lost had been applied", zap.Int("events", len(res.EventIDs)))
			return res, 0, nil
		}
		c.m.WritesUnanswered.WithLabelValues(metrics.WriteAbandoned).Inc()
		c.log.Info("the write whose answer was lost was abandoned before it ran; writing the batch again", zap.Int("events", len(res.EventIDs)))
	}
	done := c.applying()
	res, conflicts, err := storage.Ingest(ctx, c.store, c.folder, b.events, time.Now)
	done()
	if errors.Is(err, storage.ErrOutcomeUnknown) {
		b.unsettled = &lostWrite{res: res, err: err} // commit logs err
	}
	return res, conflicts, err
}

// lostWrite is a fold an Apply may have written, and that Apply's error
// (storage.ErrOutcomeUnknown), which names the write for Settle.
type lostWrite struct {
	res dedupe.Result
	err error
}

// settle asks a storage.Settler store about the write whose answer was
// lost (lost is its error); another store never returns
// storage.ErrOutcomeUnknown.
func (c *Consumer) settle(ctx context.Context, lost error) (bool, error) {
	s, ok := c.store.(storage.Settler)
	if !ok {
		return false, nil
	}
	return s.Settle(ctx, lost)
}

// afterUnconfirmed is the result of a retry r of a batch whose earlier
// attempt w was written but not confirmed (storage.ErrUnconfirmed): r finds
// w's events applied, and they count as w counted them, not as duplicates.
func afterUnconfirmed(w, r dedupe.Result) dedupe.Result {
	s := w.Stats
	s.Add(r.Stats)
	s.Duplicates = max(r.Stats.Duplicates-len(w.EventIDs), 0)
	s.Deferred = r.Stats.Deferred
	r.Stats = s
	r.EventIDs = append(slices.Clip(w.EventIDs), r.EventIDs...)
	return r
}

// acked records a durable commit, then acks its messages (counters first,
// so they are complete by the time JetStream sees the acks).
func (c *Consumer) acked(b *batch, res dedupe.Result, conflicts int, took time.Duration) {
	c.storeErr.Store(nil)
	if !b.ahead {
		c.committed.Add(1)
		select {
		case c.succeeded <- struct{}{}:
		default:
		}
	}
	now := time.Now()
	c.m.BatchesCommitted.Inc()
	c.m.BatchSize.Observe(float64(len(b.events)))
	c.m.FlushDuration.Observe(took.Seconds())
	c.m.StoreConflicts.Add(float64(conflicts))
	c.m.ObserveFold(res.Stats)
	failed, first := 0, error(nil)
	deferred := res.Deferred
	applied := appliedIDs(res)
	for i, m := range b.msgs {
		var err error
		if len(deferred) > 0 && deferred[0] == i {
			// Not consumed: JetStream redelivers it after the delay.
			deferred = deferred[1:]
			err = m.NakWithDelay(max(c.cfg.Consumer.OrphanRetryDelay.Duration, time.Until(b.holds[i])))
		} else {
			if applied.take(b.events[i].Event.ID) {
				c.m.ObserveLatency(b.stamps[i], now)
			}
			err = m.Ack()
		}
		if err != nil {
			failed++
			first = cmp.Or(first, err)
		}
	}
	if c.nc.IsConnected() {
		c.acksBuffered.Store(0) // a reconnect sends the buffer first
	} else {
		c.acksBuffered.Add(int64(len(b.msgs) - failed))
	}
	if c.orphanRetries > 0 {
		c.recentAcks.add(b.seqs, res.Deferred)
		c.recentDeferred.addAt(b.seqs, res.Deferred)
	}
	if failed > 0 { // one line per batch, not per message
		c.m.AcksFailed.Add(float64(failed))
		c.log.Warn("acks failed after a durable commit; those messages will be redelivered and absorbed as duplicates",
			zap.Int("failed", failed), zap.Int("batch", len(b.msgs)), zap.Error(first))
	}
}

// appliedSet holds the event ids a commit applied, each as often as it
// was applied (once); nil when the fold found no event-id duplicate, so
// that every event not deferred was applied.
type appliedSet map[string]int

// appliedIDs is res's applied event ids: the end-to-end latency is
// observed for those only, not for event-id duplicates (a redelivery, a
// replay of a recreated consumer: incidents that showed up long ago).
// Merged triggers are applied events and count.
func appliedIDs(res dedupe.Result) appliedSet {
	if res.Stats.Duplicates == 0 {
		return nil
	}
	s := make(appliedSet, len(res.EventIDs))
	for _, id := range res.EventIDs {
		s[id]++
	}
	return s
}

// take reports whether id was applied, using that up: of two messages of
// one id in a batch, the first is the one applied.
func (s appliedSet) take(id string) bool {
	if s == nil {
		return true
	}
	if s[id] == 0 {
		return false
	}
	s[id]--
	return true
}

// heartbeat sends InProgress for msgs every ipEvery until stopped.
func (c *Consumer) heartbeat(msgs []jetstream.Msg) (stop func()) {
	if c.ipEvery <= 0 {
		return func() {}
	}
	quit := make(chan struct{})
	finished := make(chan struct{})
	go func() {
		defer close(finished)
		t := time.NewTicker(c.ipEvery)
		defer t.Stop()
		for {
			select {
			case <-quit:
				return
			case <-t.C:
				for _, m := range msgs {
					_ = m.InProgress()
				}
			}
		}
	}()
	return func() { close(quit); <-finished }
}

// drain is the shutdown: stop pulling, take what the client already
// buffered, wait for the commits in flight, commit the rest, each step logged
// with its duration. Commits give up after DrainTimeout. sent is the count
// of batches handed to the pipeline (see c.committed); taking is whether
// the pipeline has yet to take the last one.
func (c *Consumer) drain(cancel context.CancelFunc, src *source, cur *batch, taking bool, sent uint64, ready chan error, batches chan *batch, closeBatches func(), exited chan error) error {
	timer := time.AfterFunc(c.cfg.DrainTimeout, cancel)
	defer timer.Stop()
	t := time.Now()
	if src != nil {
		c.stopPulling(src, cur)
	}
	// in_hand: messages not handed to the pipeline yet; batches_committing:
	// batches it holds, not yet durable and acked (one may be retrying a
	// failing store).
	c.log.Info("shutdown: stopped pulling", zap.Duration("took", time.Since(t)),
		zap.Int("in_hand", len(cur.msgs)), zap.Uint64("batches_committing", sent-min(sent, c.committed.Load())))
	t = time.Now()
	// A commit blocked where ctx cannot reach (a write to a frozen disk)
	// would hold the shutdown for as long: past drainGrace after
	// DrainTimeout, the drain leaves it.
	stuck := time.NewTimer(c.cfg.DrainTimeout + drainGrace)
	defer stuck.Stop()
	if taking {
		select {
		case <-ready:
		case <-stuck.C:
			return c.leaveStuck(t)
		}
	}
	if len(cur.msgs) > 0 {
		select {
		case batches <- cur:
		case <-stuck.C:
			return c.leaveStuck(t)
		}
		select {
		case <-ready:
		case <-stuck.C:
			return c.leaveStuck(t)
		}
	}
	closeBatches()
	var err error
	select {
	case err = <-exited:
	case <-stuck.C:
		return c.leaveStuck(t)
	}
	if err != nil {
		// The step line, in its place in the shutdown sequence; Run
		// returns the error, which incidentd reports once it has stopped.
		c.log.Warn("shutdown: gave up the commit in hand after ack_wait; its messages stay un-acked for redelivery",
			zap.Duration("took", time.Since(t)))
		return fmt.Errorf("%w (after %v): %w", ErrCommitAbandoned, time.Since(t).Round(time.Millisecond), err)
	}
	if n := c.undeliveredAcks(); n > 0 {
		c.m.AcksFailed.Add(float64(n))
		c.log.Warn("shutdown: committed the batches in hand, but NATS is unreachable: their acks are lost with the client's reconnect buffer; JetStream redelivers those messages after ack_wait, absorbed as duplicates",
			zap.Int64("acks", n), zap.Duration("took", time.Since(t)))
		return nil
	}
	c.log.Info("shutdown: committed and acked the batches in hand", zap.Duration("took", time.Since(t)))
	return nil
}

// drainGrace is how long past DrainTimeout a shutdown waits for a commit
// that does not return when cancelled.
const drainGrace = 5 * time.Second

// leaveStuck ends a drain whose commit did not return: its messages stay
// un-acked (or are acked, if it completes before the process ends).
func (c *Consumer) leaveStuck(t time.Time) error {
	c.leftStuck = true
	c.log.Warn("shutdown: the commit in hand did not return after ack_wait (the store blocks it: a frozen or stalled disk?); leaving it, its messages stay un-acked for redelivery",
		zap.Duration("took", time.Since(t)))
	return fmt.Errorf("%w (after %v): the store did not return", ErrCommitAbandoned, time.Since(t).Round(time.Millisecond))
}

// ackFlushWait is how long a shutdown waits for NATS to come back when acks
// were sent while it was unreachable.
const ackFlushWait = 3 * time.Second

// undeliveredAcks returns how many acks, sent while NATS was unreachable,
// may not have reached it: none when the connection comes back within
// ackFlushWait and a flush then succeeds.
func (c *Consumer) undeliveredAcks() int64 {
	n := c.acksBuffered.Load()
	if n == 0 {
		return 0
	}
	deadline := time.Now().Add(ackFlushWait)
	for !c.nc.IsConnected() && !c.nc.IsClosed() && time.Now().Before(deadline) {
		time.Sleep(50 * time.Millisecond)
	}
	if c.nc.IsConnected() && c.nc.FlushTimeout(time.Second) == nil {
		return 0
	}
	return n
}
