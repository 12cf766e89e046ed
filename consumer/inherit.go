package consumer

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"go.uber.org/zap"

	"github.com/llm-im/incidentd/dedupe"
	"github.com/llm-im/incidentd/metrics"
)

// maxCatchUp bounds the stream sequences a starting worker reads itself;
// past it, it only waits for their redelivery (see inherited).
const maxCatchUp = 1 << 16

// inheritPending deals with the messages delivered before this worker bound
// cons that were still un-acked then. A worker that stopped without
// draining (a crash, a killed pod) held them, and JetStream redelivers them
// only after ack_wait, behind the messages this worker is about to pull:
// acknowledges and resolves among those would find the triggers they follow
// missing, and a trigger could overtake the resolve before it. So the
// worker first reads that span of the stream itself and commits it, in
// stream order (catchUp); what a worker still alive holds is applied twice,
// which the event markers absorb, and the redelivered copies count as
// duplicates. When catching up fails, it falls back to holding the last
// retry of such acknowledges and resolves until the redelivery (inherited).
func (c *Consumer) inheritPending(ctx context.Context, cons jetstream.Consumer) error {
	info := cons.CachedInfo()
	if info == nil || info.NumAckPending == 0 || info.Delivered.Stream <= info.AckFloor.Stream {
		return nil
	}
	floor, last := info.AckFloor.Stream, info.Delivered.Stream
	fields := []zap.Field{zap.Int("ack_pending", info.NumAckPending), zap.Uint64("ack_floor_stream_seq", floor),
		zap.Uint64("delivered_stream_seq", last)}
	if c.cfg.SkipCatchUp || last-floor > maxCatchUp {
		c.holdForRedelivery(info, fields)
		return nil
	}
	start := time.Now()
	skip, err := c.exhausted(ctx, floor, last)
	if err != nil {
		if ctx.Err() != nil {
			return fmt.Errorf("catch up: %w", ctx.Err())
		}
		c.m.NATSErrors.WithLabelValues(metrics.NATSErrorKind(err)).Inc()
		c.log.Warn("could not read which messages reached max_deliver; catching up on all of them", append(fields, zap.Error(err))...)
	}
	if len(skip) > 0 {
		fields = append(fields, zap.Int("left_to_max_deliver", len(skip)))
	}
	n, err := c.catchUp(ctx, info, floor, last, skip)
	if err != nil {
		if ctx.Err() != nil {
			return fmt.Errorf("catch up: %w", ctx.Err())
		}
		c.m.NATSErrors.WithLabelValues(metrics.NATSErrorKind(err)).Inc() // reading the stream is all that can fail
		c.log.Warn("could not read the messages a stopped worker held; waiting for their redelivery instead",
			append(fields, zap.Error(err))...)
		c.holdForRedelivery(info, fields)
		return nil
	}
	c.log.Info("committed the messages delivered before this worker started and un-acked then",
		append(fields, zap.Int("events", n), zap.Duration("took", time.Since(start)))...)
	return nil
}

// holdForRedelivery sets the inherited window (see inherited) and says so.
func (c *Consumer) holdForRedelivery(info *jetstream.ConsumerInfo, fields []zap.Field) {
	if c.orphanRetries == 0 {
		return
	}
	cc := c.cfg.Consumer
	c.inherit = inheritedFrom(info, time.Now(), cc.AckWait.Duration, cc.OrphanRetryDelay.Duration)
	c.log.Info("messages delivered before this worker started are un-acked; acknowledges and resolves that find nothing to act on wait for their redelivery",
		append(fields, zap.Time("until", c.inherit.until))...)
}

// catchUp reads the stream sequences after floor up to last (those the
// durable's filter selects) with an ephemeral consumer (spanFrom), and commits their
// valid events in batches, in stream order; it returns how many. Invalid
// messages are left to their redelivery, which dead-letters them, and
// those in skip (they reached max_deliver: see exhausted) to the advisory
// handler. The sequences read count as this worker's commits for
// settleOrphans.
func (c *Consumer) catchUp(ctx context.Context, info *jetstream.ConsumerInfo, floor, last uint64, skip map[uint64]bool) (int, error) {
	cc := c.cfg.Consumer
	sc, done, err := c.spanFrom(ctx, info, floor+1)
	if err != nil {
		return 0, err
	}
	defer done()
	total, next := 0, floor+1
	for done := false; !done; {
		b, invalid, end, err := c.readInherited(sc, last, int(min(uint64(cc.BatchSize), last-next+1)), skip)
		if err != nil {
			return total, err
		}
		done = end
		if n := len(b.seqs); n > 0 {
			next = max(next, b.seqs[n-1]+1)
		}
		if n := len(invalid); n > 0 {
			next = max(next, invalid[n-1]+1)
		}
		done = done || next > last
		c.recentAcks.add(invalid, nil) // nothing can depend on them
		if len(b.events) == 0 {
			continue
		}
		if err := c.commit(ctx, b, nil, time.Now()); err != nil {
			return total, err
		}
		c.m.EventsInherited.Add(float64(len(b.events)))
		total += len(b.events)
	}
	return total, nil
}

// readInherited fetches up to n messages from sc (no more than the span
// has left, so that the last fetch does not wait for messages after it),
// stopping after last: the valid events in b, the sequences of invalid
// messages and of those in skip in invalid; end reports that there is
// nothing more to read.
func (c *Consumer) readInherited(sc jetstream.Consumer, last uint64, n int, skip map[uint64]bool) (b *batch, invalid []uint64, end bool, err error) {
	msgs, err := sc.Fetch(n, jetstream.FetchMaxWait(2*time.Second))
	if err != nil {
		return nil, nil, false, fmt.Errorf("fetch: %w", err)
	}
	b = &batch{}
	got := 0
	for m := range msgs.Messages() {
		got++
		md, err := m.Metadata()
		if err != nil {
			continue
		}
		seq := md.Sequence.Stream
		if seq > last {
			end = true
			continue
		}
		end = end || seq == last
		if skip[seq] {
			invalid = append(invalid, seq) // the advisory handler dead-letters it
			continue
		}
		meta := messageMeta(m.Headers(), md.Stream, seq, md.Timestamp)
		ev, err := c.dec.Decode(m.Data(), meta)
		if err != nil {
			invalid = append(invalid, seq) // dead-lettered when redelivered
			continue
		}
		c.m.EventsDecoded.Inc()
		b.seqs = append(b.seqs, seq)
		b.events = append(b.events, dedupe.Keyed{Event: ev, Fingerprint: c.fp.Fingerprint(&ev), Received: md.Timestamp})
	}
	if err := msgs.Error(); err != nil && !errors.Is(err, jetstream.ErrNoMessages) {
		return nil, nil, false, fmt.Errorf("fetch: %w", err)
	}
	return b, invalid, end || got == 0, nil
}

// inherited describes the messages delivered before this worker bound the
// consumer that were still un-acked then, when the worker could not read
// them itself (catchUp). A worker that died holding them (a crash, a killed
// pod) no longer sends InProgress, so JetStream redelivers them only after
// ack_wait; an acknowledge or resolve that follows one of their triggers
// waits for that instead of counting as an orphan after its few short
// retries. Workers that are alive commit theirs within those retries, so
// the wait only applies to what is still missing at an event's last retry.
type inherited struct {
	upTo  uint64    // the stream sequence last delivered before binding
	until time.Time // when every one of them has been redelivered; zero: none was pending
}

// inheritedFrom reads info, taken as the worker bound the consumer at now:
// the messages pending then are redelivered by ack_wait after it at the
// latest, and the margin leaves time to commit them.
func inheritedFrom(info *jetstream.ConsumerInfo, now time.Time, ackWait, margin time.Duration) inherited {
	if info == nil || info.NumAckPending == 0 {
		return inherited{}
	}
	return inherited{upTo: info.Delivered.Stream, until: now.Add(ackWait + max(margin, time.Second))}
}

// hold reports until when a deferred event at seq should be redelivered:
// while the inherited window is open and some message before seq that was
// delivered before binding is neither at or below floor nor in held.
func (in inherited) hold(floor, seq uint64, held []uint64, now time.Time) (time.Time, bool) {
	if in.until.IsZero() || !now.Before(in.until) || floor >= in.upTo {
		return time.Time{}, false
	}
	return in.until, !covered(floor, min(seq, in.upTo+1), held)
}
