package consumer

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"go.uber.org/zap"

	"github.com/llm-im/incidentd/dedupe"
	"github.com/llm-im/incidentd/incident"
	"github.com/llm-im/incidentd/metrics"
)

// window holds the valid events of the stream sequences above the ack
// floor that readAhead has read, in stream order, so that the next read
// only fetches what is new. It is only touched by the pipeline goroutine.
type window struct {
	next   uint64 // the sequence after the last one read; 0: nothing read
	seqs   []uint64
	events []dedupe.Keyed
	failed time.Time // the last read that failed
}

// aheadPause is how long readAhead rests after a failed read: with a
// stream the worker may not read (permissions), every deferral would
// otherwise wait for the failure, and log it.
const aheadPause = 30 * time.Second

// drop forgets the sequences at or below floor.
func (w *window) drop(floor uint64) {
	n, _ := slices.BinarySearch(w.seqs, floor+1)
	w.seqs = slices.Delete(w.seqs, 0, n)
	w.events = slices.Delete(w.events, 0, n)
	if w.next <= floor {
		w.next = floor + 1
	}
}

// readAhead settles the acknowledges and resolves of b at positions reach:
// each is at its last deferral and an earlier message of the stream is
// still neither committed nor this worker's. A pod that is alive commits
// its batch within the deferrals, so what is missing by then is most
// likely held by a pod that died (JetStream redelivers it only after
// ack_wait, too late for the acknowledge or resolve that follows it) or
// stalled. So the worker reads the stream up to the last of them itself
// (an ephemeral consumer with the durable's filter) and commits, in stream
// order, the events of their identities it has not committed yet; what
// another pod still holds is then applied twice, which the event markers
// absorb. Every earlier event of their identities is then applied, so
// they are decided at once. It reports whether it did that and whether
// it committed anything (after waiting for prev to be durable: b must then
// be folded again without prev's overlay). It gives up, leaving them
// deferred, when the span is too long, the stream cannot be read (then it
// rests for aheadPause) or the commit is abandoned.
func (c *Consumer) readAhead(ctx context.Context, info *jetstream.ConsumerInfo, floor uint64, b *batch, prev *flight, reach []int) (settled, wrote bool) {
	last := uint64(0)
	want := make(map[string]uint64, len(reach)) // fingerprint → the last sequence to apply before
	for _, i := range reach {
		last = max(last, b.seqs[i])
		want[b.events[i].Fingerprint] = max(want[b.events[i].Fingerprint], b.seqs[i])
	}
	if last-floor > maxCatchUp {
		return false, false
	}
	start := time.Now()
	if !c.ahead.failed.IsZero() && start.Sub(c.ahead.failed) < aheadPause {
		return false, false
	}
	c.ahead.drop(floor)
	if err := c.readWindow(ctx, info, last); err != nil {
		c.m.NATSErrors.WithLabelValues(metrics.NATSErrorKind(err)).Inc()
		c.ahead.failed = time.Now()
		c.log.Warn("could not read the stream ahead of a deferred acknowledge or resolve; it stays deferred, and reading ahead rests",
			zap.Uint64("ack_floor_stream_seq", floor), zap.Uint64("stream_seq", last), zap.Duration("rest", aheadPause), zap.Error(err))
		return false, false
	}
	if !c.ahead.matches(want) {
		return true, false
	}
	if prev != nil {
		<-prev.done // its events come first; its seqs are then in recentAcks
	}
	side := c.ahead.pick(want, c.recentAcks.above(floor, nil))
	if len(side.events) > 0 {
		if err := c.commit(ctx, side, nil); err != nil {
			return false, true
		}
		c.m.EventsDecoded.Add(float64(len(side.events))) // as the catch-up counts what it reads
		c.m.EventsReadAhead.Add(float64(len(side.events)))
	}
	c.log.Debug("committed the earlier events of deferred acknowledges and resolves ahead of their delivery",
		zap.Int("deferred", len(reach)), zap.Int("events", len(side.events)),
		zap.Uint64("ack_floor_stream_seq", floor), zap.Duration("took", time.Since(start)))
	return true, true
}

// matches reports whether the window holds an event of an identity in
// want before its sequence there.
func (w *window) matches(want map[string]uint64) bool {
	for j, s := range w.seqs {
		if before, ok := want[w.events[j].Fingerprint]; ok && s < before {
			return true
		}
	}
	return false
}

// pick is the batch of the window's events of an identity in want,
// before its sequence there, but for the sequences in done; each is final
// (no deferral: every event before it is applied or in the batch).
func (w *window) pick(want map[string]uint64, done []uint64) *batch {
	slices.Sort(done)
	side := &batch{ahead: true}
	for j, s := range w.seqs {
		before, ok := want[w.events[j].Fingerprint]
		if _, found := slices.BinarySearch(done, s); !ok || s >= before || found {
			continue
		}
		ev := w.events[j]
		ev.Retry = false
		side.seqs = append(side.seqs, s)
		side.events = append(side.events, ev)
	}
	return side
}

// readWindow reads the stream from c.ahead.next through last into the
// window. Invalid messages are left out: their redelivery dead-letters them.
func (c *Consumer) readWindow(ctx context.Context, info *jetstream.ConsumerInfo, last uint64) error {
	w := &c.ahead
	if w.next > last {
		return nil
	}
	sc, done, err := c.spanFrom(ctx, info, w.next)
	if err != nil {
		return err
	}
	defer done()
	for w.next <= last {
		if len(w.seqs) > maxCatchUp {
			return fmt.Errorf("more than %d sequences above the ack floor", maxCatchUp)
		}
		msgs, err := sc.FetchNoWait(int(min(last-w.next+1, uint64(4*c.cfg.Consumer.BatchSize))))
		if err != nil {
			return fmt.Errorf("fetch: %w", err)
		}
		got := 0
		for m := range msgs.Messages() {
			got++
			c.addToWindow(m)
		}
		if err := msgs.Error(); err != nil && !errors.Is(err, jetstream.ErrNoMessages) {
			return fmt.Errorf("fetch: %w", err)
		}
		if got == 0 {
			return fmt.Errorf("the stream returned nothing at sequence %d, before %d", w.next, last)
		}
	}
	return nil
}

// addToWindow decodes m into the window (valid events only).
func (c *Consumer) addToWindow(m jetstream.Msg) {
	md, err := m.Metadata()
	if err != nil || md.Sequence.Stream < c.ahead.next {
		return
	}
	seq := md.Sequence.Stream
	c.ahead.next = seq + 1
	meta := incident.Meta{MsgID: m.Headers().Get(jetstream.MsgIDHeader), Stream: md.Stream, Sequence: seq, Timestamp: md.Timestamp}
	ev, err := c.dec.Decode(m.Data(), meta)
	if err != nil {
		return
	}
	c.ahead.seqs = append(c.ahead.seqs, seq)
	c.ahead.events = append(c.ahead.events, dedupe.Keyed{Event: ev, Fingerprint: c.fp.Fingerprint(&ev), Received: md.Timestamp})
}

// spanTimeout bounds each JetStream API call of a span read: a worker that
// may not create consumers (permissions) must not stall its pipeline.
const spanTimeout = 2 * time.Second

// spanFrom creates an ephemeral pull consumer of the stream from sequence
// from, with the durable's filter (info's), that needs no acks; done
// deletes it (it would go after InactiveThreshold anyway).
func (c *Consumer) spanFrom(ctx context.Context, info *jetstream.ConsumerInfo, from uint64) (cons jetstream.Consumer, done func(), err error) {
	filters := slices.Clone(info.Config.FilterSubjects)
	if info.Config.FilterSubject != "" {
		filters = append(filters, info.Config.FilterSubject)
	}
	cctx, cancel := context.WithTimeout(ctx, spanTimeout)
	defer cancel()
	cons, err = c.js.CreateConsumer(cctx, c.cfg.Consumer.Stream, jetstream.ConsumerConfig{
		FilterSubjects: filters, DeliverPolicy: jetstream.DeliverByStartSequencePolicy, OptStartSeq: from,
		AckPolicy: jetstream.AckNonePolicy, InactiveThreshold: 10 * time.Second, MemoryStorage: true, Replicas: 1})
	if err != nil {
		return nil, nil, fmt.Errorf("span consumer: %w", err)
	}
	name := cons.CachedInfo().Name
	return cons, func() {
		dctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), spanTimeout)
		defer cancel()
		_ = c.js.DeleteConsumer(dctx, c.cfg.Consumer.Stream, name)
	}, nil
}
