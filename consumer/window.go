package consumer

import (
	"context"
	"errors"
	"fmt"
	"hash/maphash"
	"slices"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/llm-im/incidentd/dedupe"
	"github.com/llm-im/incidentd/incident"
)

// window is what readAhead has read of the stream above the ack floor: for
// each valid event, in stream order, its sequence and a hash of its
// fingerprint marking triggers (16 bytes a sequence, so that the span a dead pod holds back
// for ack_wait fits at a high rate), so that the next read fetches only
// newer sequences. The few events a read-ahead commits are fetched again
// by sequence. It is only touched by the pipeline goroutine.
type window struct {
	next   uint64 // the sequence after the last one read; 0: nothing read
	seqs   []uint64
	keys   []uint64 // key(fingerprint) of the event at the same index, | 1 for a trigger
	seed   maphash.Seed
	seeded bool
	failed time.Time // the last read that failed
}

// key hashes a fingerprint, with the lowest bit clear (it marks triggers
// in keys); a collision only costs an event fetched for nothing
// (fetchEvents checks the fingerprint itself) or a deferral.
func (w *window) key(fp string) uint64 {
	if !w.seeded {
		w.seed, w.seeded = maphash.MakeSeed(), true
	}
	return maphash.String(w.seed, fp) &^ 1
}

// add appends one valid event read from the stream.
func (w *window) add(seq uint64, fp string, trigger bool) {
	k := w.key(fp)
	if trigger {
		k |= 1
	}
	w.seqs = append(w.seqs, seq)
	w.keys = append(w.keys, k)
}

// drop forgets the sequences at or below floor.
func (w *window) drop(floor uint64) {
	n, _ := slices.BinarySearch(w.seqs, floor+1)
	w.seqs = slices.Delete(w.seqs, 0, n)
	w.keys = slices.Delete(w.keys, 0, n)
	if w.next <= floor {
		w.next = floor + 1
	}
}

// candidates are the sequences of the window whose event may be of an
// identity in want (fingerprint → the sequence it must come before) and
// before its sequence there.
func (w *window) candidates(want map[string]uint64) []uint64 {
	before := make(map[uint64]uint64, len(want))
	for fp, s := range want {
		k := w.key(fp)
		before[k] = max(before[k], s)
	}
	var out []uint64
	for j, s := range w.seqs {
		if b, ok := before[w.keys[j]&^1]; ok && s < b {
			out = append(out, s)
		}
	}
	return out
}

// earliest maps each fingerprint of fps that the window may hold a
// trigger of (a hash collision may say so wrongly) to the smallest
// sequence of one.
func (w *window) earliest(fps []string) map[string]uint64 {
	byKey := make(map[uint64][]string, len(fps))
	for _, fp := range fps {
		k := w.key(fp)
		byKey[k] = append(byKey[k], fp)
	}
	out := make(map[string]uint64, len(fps))
	for j, s := range w.seqs {
		if w.keys[j]&1 == 0 {
			continue
		}
		for _, fp := range byKey[w.keys[j]&^1] {
			if _, seen := out[fp]; !seen {
				out[fp] = s
			}
		}
	}
	return out
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
	ev, err := c.dec.Decode(m.Data(), messageMeta(m.Headers(), md.Stream, seq, md.Timestamp))
	if err != nil {
		return
	}
	c.ahead.add(seq, c.fp.Fingerprint(&ev), ev.Action == incident.Trigger)
}

// fetchEvents reads the messages at seqs (ascending) by sequence and
// returns, as a batch for commit, the valid events of an identity in want
// before its sequence there; each is final (no deferral: every event
// before it is applied or in the batch).
func (c *Consumer) fetchEvents(ctx context.Context, seqs []uint64, want map[string]uint64) (*batch, error) {
	side := &batch{ahead: true}
	if len(seqs) == 0 {
		return side, nil
	}
	sctx, cancel := context.WithTimeout(ctx, spanTimeout)
	stream, err := c.js.Stream(sctx, c.cfg.Consumer.Stream)
	cancel()
	if err != nil {
		return nil, fmt.Errorf("stream %s: %w", c.cfg.Consumer.Stream, err)
	}
	for _, s := range seqs {
		gctx, cancel := context.WithTimeout(ctx, spanTimeout)
		raw, err := stream.GetMsg(gctx, s)
		cancel()
		if errors.Is(err, jetstream.ErrMsgNotFound) {
			continue // gone (max_age): nothing to apply
		}
		if err != nil {
			return nil, fmt.Errorf("get message %d: %w", s, err)
		}
		ev, err := c.dec.Decode(raw.Data, messageMeta(raw.Header, c.cfg.Consumer.Stream, s, raw.Time))
		if err != nil {
			continue
		}
		fp := c.fp.Fingerprint(&ev)
		if before, ok := want[fp]; !ok || s >= before {
			continue // a hash collision
		}
		side.seqs = append(side.seqs, s)
		side.events = append(side.events, dedupe.Keyed{Event: ev, Fingerprint: fp, Received: raw.Time})
	}
	return side, nil
}
