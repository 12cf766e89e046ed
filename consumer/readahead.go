package consumer

import (
	"context"
	"fmt"
	"slices"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"go.uber.org/zap"

	"github.com/llm-im/incidentd/metrics"
)

// maxAhead bounds the stream sequences above the ack floor that readAhead
// reads: a pod that died holds the floor back for ack_wait, 600,000
// sequences at 20,000 events/s for the default 30 s.
const maxAhead = 1 << 20

// aheadPause is how long readAhead rests after a failed read: with a
// stream the worker may not read (permissions), every deferral would
// otherwise wait for the failure, and log it.
const aheadPause = 30 * time.Second

// readAhead settles acknowledges and resolves of b among the positions
// reach: each is at its last deferral (or past it: batch.finals) and an
// earlier message of the stream is still neither committed nor this
// worker's. The worker reads the stream up to the last of them itself (an
// ephemeral consumer with the durable's filter, into c.ahead). One with no
// earlier trigger of its identity there is an orphan now (the events of
// its identity in between, other acknowledges and resolves, cannot give it
// an incident): it is settled. One with such a trigger waits for its last
// delivery, when a pod that is alive has long committed its batch: what is
// missing by then is most likely held by a pod that died (JetStream
// redelivers it only after ack_wait, too late for the acknowledge or
// resolve that follows it) or stalled. At that delivery the worker commits
// the events of its identity before it itself, in stream order (fetched
// again by sequence, those it has not committed yet), and settles it; what
// another pod still holds is applied twice, which the event markers
// absorb. It returns the positions settled, and whether it committed
// (after waiting for prev to be durable: b must then be folded again
// without prev's overlay). It settles nothing when the span is too long,
// the stream cannot be read (then it rests for aheadPause) or the commit is
// abandoned.
func (c *Consumer) readAhead(ctx context.Context, info *jetstream.ConsumerInfo, floor uint64, b *batch, prev *flight, reach []int) (settled []int, fresh bool) {
	last := uint64(0)
	for _, i := range reach {
		last = max(last, b.seqs[i])
	}
	if last-floor > maxAhead {
		c.log.Debug("too far above the ack floor to read ahead", zap.Uint64("ack_floor_stream_seq", floor), zap.Uint64("stream_seq", last))
		return nil, false
	}
	start := time.Now()
	if !c.ahead.failed.IsZero() && start.Sub(c.ahead.failed) < aheadPause {
		return nil, false
	}
	c.ahead.drop(floor)
	if err := c.readWindow(ctx, info, last); err != nil {
		c.aheadFailed(err, floor, last)
		return nil, false
	}
	fps := make([]string, len(reach))
	for n, i := range reach {
		fps[n] = b.events[i].Fingerprint
	}
	first := c.ahead.earliest(fps)
	want := map[string]uint64{} // fingerprint → the sequence to commit its events before
	for _, i := range reach {
		fp := b.events[i].Fingerprint
		switch {
		case first[fp] == 0 || first[fp] >= b.seqs[i]:
			settled = append(settled, i)
		case b.final(i):
			want[fp] = max(want[fp], b.seqs[i])
			settled = append(settled, i)
		}
	}
	if len(want) == 0 {
		return settled, false
	}
	if prev != nil {
		<-prev.done // its events come first; its seqs are then in recentAcks
	}
	side, err := c.fetchEvents(ctx, without(c.ahead.candidates(want), c.recentAcks.above(floor, nil)), want)
	if err != nil {
		c.aheadFailed(err, floor, last)
		return nil, true
	}
	if len(side.events) > 0 {
		if err := c.commit(ctx, side, nil, time.Now()); err != nil {
			return nil, true
		}
		c.m.EventsDecoded.Add(float64(len(side.events))) // as the catch-up counts what it reads
		c.m.EventsReadAhead.Add(float64(len(side.events)))
	}
	c.log.Debug("committed the earlier events of acknowledges and resolves at their last delivery",
		zap.Int("settled", len(settled)), zap.Int("events", len(side.events)),
		zap.Uint64("ack_floor_stream_seq", floor), zap.Duration("took", time.Since(start)))
	return settled, true
}

// aheadFailed records a failed read: counted, logged, and reading ahead
// rests for aheadPause.
func (c *Consumer) aheadFailed(err error, floor, last uint64) {
	c.m.NATSErrors.WithLabelValues(metrics.NATSErrorKind(err)).Inc()
	c.ahead.failed = time.Now()
	c.log.Warn("could not read the stream ahead of a deferred acknowledge or resolve; it stays deferred, and reading ahead rests",
		zap.Uint64("ack_floor_stream_seq", floor), zap.Uint64("stream_seq", last), zap.Duration("rest", aheadPause), zap.Error(err))
}

// without returns the sequences of seqs (ascending) not in done.
func without(seqs, done []uint64) []uint64 {
	slices.Sort(done)
	return slices.DeleteFunc(seqs, func(s uint64) bool {
		_, found := slices.BinarySearch(done, s)
		return found
	})
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
