package consumer

import (
	"context"
	"slices"
	"sync"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"go.uber.org/zap"
)

// maxAcked bounds ackedSeqs: past it, the oldest half is forgotten (a
// forgotten sequence can only make an event wait for a retry).
const maxAcked = 1 << 16

// ackedSeqs remembers the stream sequences this worker acked, until the
// consumer's ack floor passes them: acks are asynchronous, so the floor a
// moment after a commit may not show them yet.
type ackedSeqs struct {
	mu   sync.Mutex
	seqs []uint64
}

// add remembers seqs but for the positions in skip (sorted).
func (a *ackedSeqs) add(seqs []uint64, skip []int) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if len(a.seqs)+len(seqs) > maxAcked {
		a.seqs = append(a.seqs[:0], a.seqs[len(a.seqs)/2:]...)
	}
	for i, s := range seqs {
		if len(skip) > 0 && skip[0] == i {
			skip = skip[1:]
			continue
		}
		a.seqs = append(a.seqs, s)
	}
}

// addAt remembers the seqs at the positions in at.
func (a *ackedSeqs) addAt(seqs []uint64, at []int) {
	if len(at) == 0 {
		return
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	if len(a.seqs)+len(at) > maxAcked {
		a.seqs = append(a.seqs[:0], a.seqs[len(a.seqs)/2:]...)
	}
	for _, i := range at {
		a.seqs = append(a.seqs, seqs[i])
	}
}

// above drops the sequences at or below floor and appends the others to dst.
func (a *ackedSeqs) above(floor uint64, dst []uint64) []uint64 {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.seqs = slices.DeleteFunc(a.seqs, func(s uint64) bool { return s <= floor })
	return append(dst, a.seqs...)
}

// settleOrphans clears Retry on the deferred events of b (positions in
// deferred) that no other worker can be holding a predecessor of: every
// message the stream received before one is committed (at or below the
// consumer's ack floor, or acked or dead-lettered by this worker), in prev (the batch in
// flight before b), or earlier in b. A retry could not change their
// outcome, so they count as orphans now instead of being redelivered: one
// worker alone never defers. (Deferred messages of prev and b, and those
// this worker deferred in earlier batches, count as held: they are
// acknowledges and resolves, which no later orphan depends on; without
// the earlier ones, one deferral made every orphan after it wait too.) Those at their last deferral that are still not settled
// are settled by readAhead, while a peer that died may hold what they
// follow (readingAhead). It reports whether it cleared any, and whether
// b must be folded without prev's overlay (readAhead committed after prev);
// the caller reads and folds again. It asks the server for the ack floor
// once; when that fails, the events stay deferred.
func (c *Consumer) settleOrphans(ctx context.Context, b *batch, prev *flight, deferred []int) (cleared, fresh bool) {
	ictx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	cons, err := c.js.Consumer(ictx, c.cfg.Consumer.Stream, c.cfg.Consumer.Durable)
	if err != nil {
		c.log.Debug("consumer info for deferred events", zap.Error(err))
		return false, false
	}
	info := cons.CachedInfo()
	floor := info.AckFloor.Stream
	held := c.recentAcks.above(floor, nil)
	held = c.recentDeferred.above(floor, held)
	if prev != nil {
		held = append(held, prev.b.seqs...)
	}
	clear(b.holds)
	now := time.Now()
	next := 0
	var reach []int
	for _, i := range deferred {
		held = append(held, b.seqs[next:i]...)
		next = i
		if covered(floor, b.seqs[i], held) {
			b.events[i].Retry = false
			cleared = true
			continue
		}
		if b.final(i) {
			// Its deferrals were used up, by this worker or by a pod
			// that died holding it: it cannot wait any more.
			reach = append(reach, i)
			continue
		}
		if !c.lastRetry(b.msgs[i]) {
			continue
		}
		if until, ok := c.inherit.hold(floor, b.seqs[i], held, now); ok {
			if b.holds == nil {
				b.holds = make(map[int]time.Time)
			}
			b.holds[i] = until
			continue
		}
		reach = append(reach, i)
	}
	if len(reach) == 0 || !c.readingAhead(now) {
		c.ahead.drop(floor) // what was read ahead is not kept past its use
		return cleared, false
	}
	settled, fresh := c.readAhead(ctx, info, floor, b, prev, reach)
	for _, i := range settled {
		b.events[i].Retry = false
	}
	return cleared || len(settled) > 0, fresh
}

// lastRetry reports whether m's delivery is the last one that may be
// deferred (consumer.orphan_retries): the next counts it as an orphan.
func (c *Consumer) lastRetry(m jetstream.Msg) bool {
	md, err := m.Metadata()
	return err == nil && md.NumDelivered >= uint64(c.orphanRetries)
}

// covered reports whether every sequence after floor and before seq is in
// held (which may hold others too, and repeats).
func covered(floor, seq uint64, held []uint64) bool {
	if seq <= floor+1 {
		return true
	}
	need := seq - floor - 1
	if uint64(len(held)) < need {
		return false
	}
	in := make([]uint64, 0, len(held))
	for _, s := range held {
		if s > floor && s < seq {
			in = append(in, s)
		}
	}
	slices.Sort(in)
	return uint64(len(slices.Compact(in))) == need
}
