package consumer

import (
	"context"
	"errors"
	"strconv"
	"time"
	"unicode/utf8"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"go.uber.org/zap"

	"github.com/llm-im/incidentd/incident"
	"github.com/llm-im/incidentd/metrics"
)

// Headers of a dead-lettered message. The payload is the original one.
const (
	// HeaderReason is the stable reason (incident.Reason), also the last
	// subject token.
	HeaderReason = "Incidentd-Reason"
	// HeaderError is the human-readable error.
	HeaderError = "Incidentd-Error"
	// HeaderSubject is the subject the message was published on.
	HeaderSubject = "Incidentd-Subject"
	// HeaderStreamSeq is its sequence in the incident stream.
	HeaderStreamSeq = "Incidentd-Stream-Seq"
	// HeaderMsgID is the original Nats-Msg-Id, when it had one. The
	// dead letter's own Nats-Msg-Id is the original's position,
	// "<stream>:<seq>:<timestamp ns>" (incident.Meta.Position), so a message
	// dead-lettered twice (redelivery, several workers) is stored once, and
	// one of a stream created again is not taken for it.
	HeaderMsgID = "Incidentd-Msg-Id"
	// HeaderTruncated is set when the dead letter carries only the start
	// of the payload: the original's size in bytes. A payload that fitted
	// the stream can exceed the server's max_payload once the headers are
	// added; cut, it still lands (with its reason) instead of being lost.
	HeaderTruncated = "Incidentd-Truncated"
	// HeaderReceivedAt is when JetStream first received the event (RFC 3339,
	// nanoseconds): on a dead letter, the original message's timestamp (or
	// the value it came with, if it was itself a replay); incidentctl dlq
	// replay sets it on the message it publishes again, and the worker takes
	// it, not the replay's timestamp, as the time of an event without
	// occurred_at.
	HeaderReceivedAt = "Incidentd-Received-At"
)

// maxErrorHeader bounds HeaderError: a decoder message quoting a deeply
// nested member once made a 14 KB header.
const maxErrorHeader = 1024

// maxDeadLetterAttempts is how often the worker tries to publish the dead
// letter of a message that reached max_deliver (backoff 1 s, doubling)
// before it gives up on it.
const maxDeadLetterAttempts = 5

// letter is a bad message waiting for its dead-letter publish to be acked.
type letter struct {
	msg     jetstream.Msg
	future  jetstream.PubAckFuture
	reason  incident.Reason
	subject string // the original's
	seq     uint64 // the original's stream sequence
	err     string // the decoder's message, as in HeaderError
}

// deadLetterLogEvery is how often a stored dead letter is logged at most:
// a producer sending only bad events must not flood the log (the counter
// by reason counts them all).
const deadLetterLogEvery = 10 * time.Second

// deadLetters publishes asynchronously and terminates each message once the
// dead-letter stream has stored its copy.
type deadLetters struct {
	c       *Consumer
	pending chan letter
	// logged and unlogged rate-limit the log line of stored dead letters;
	// only run uses them.
	logged   time.Time
	unlogged int64
}

func newDeadLetters(c *Consumer) *deadLetters {
	return &deadLetters{c: c, pending: make(chan letter, 1024)}
}

// Subject returns the dead-letter subject of a reason.
func Subject(prefix string, r incident.Reason) string { return prefix + "." + string(r) }

func (d *deadLetters) message(data []byte, meta incident.Meta, subject string, de *incident.DecodeError) *nats.Msg {
	cc := d.c.cfg.Consumer
	out := nats.NewMsg(Subject(cc.DLQSubjectPrefix, de.Reason))
	out.Data = data
	out.Header.Set(HeaderReason, string(de.Reason))
	out.Header.Set(HeaderError, clip(de.Error(), maxErrorHeader))
	out.Header.Set(HeaderSubject, subject)
	out.Header.Set(HeaderStreamSeq, strconv.FormatUint(meta.Sequence, 10))
	if meta.MsgID != "" {
		out.Header.Set(HeaderMsgID, meta.MsgID)
	}
	if at := receivedAt(meta); at != "" {
		out.Header.Set(HeaderReceivedAt, at)
	}
	out.Header.Set(jetstream.MsgIDHeader, meta.Position())
	fit(out, d.c.nc.MaxPayload())
	return out
}

// fit cuts m's payload so that m, headers included, stays within limit
// bytes (the server's max_payload; <= 0: no limit known), noting the
// original size in HeaderTruncated.
func fit(m *nats.Msg, limit int64) {
	if limit <= 0 || int64(len(m.Data)+headerBytes(m.Header)) <= limit {
		return
	}
	size := len(m.Data)
	m.Header.Set(HeaderTruncated, strconv.Itoa(size))
	room := limit - int64(headerBytes(m.Header)) - 64 // the protocol line's share
	m.Data = m.Data[:min(int64(size), max(room, 0))]
}

// headerBytes is the encoded size of h: "NATS/1.0\r\n", a line per value,
// and the blank line.
func headerBytes(h nats.Header) int {
	n := len("NATS/1.0\r\n\r\n")
	for k, vs := range h {
		for _, v := range vs {
			n += len(k) + len(": \r\n") + len(v)
		}
	}
	return n
}

// clip cuts s to at most n bytes, on a rune boundary, marking the cut.
func clip(s string, n int) string {
	if len(s) <= n {
		return s
	}
	cut := n - len("…")
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return s[:cut] + "…"
}

// send publishes m's dead letter; run terminates m when it is stored.
func (d *deadLetters) send(m jetstream.Msg, meta incident.Meta, subject string, de *incident.DecodeError) {
	f, err := d.c.js.PublishMsgAsync(d.message(m.Data(), meta, subject, de))
	if err != nil {
		d.retryLater(m, de.Reason, err)
		return
	}
	d.pending <- letter{msg: m, future: f, reason: de.Reason, subject: subject, seq: meta.Sequence, err: clip(de.Error(), maxErrorHeader)}
}

func (d *deadLetters) retryLater(m jetstream.Msg, r incident.Reason, err error) {
	d.c.deadLetterFailed(r, err)
	d.c.log.Error("dead-letter publish failed; message will be redelivered", zap.String("reason", string(r)), zap.Error(err))
	_ = m.NakWithDelay(d.c.cfg.Consumer.RetryMax.Duration)
}

// deadLetterFailed counts a failed dead-letter publish and, when no stream
// answered (the dead-letter stream was deleted), sets that stream up again
// in the background after rebindDelay, unless SkipSetup.
func (c *Consumer) deadLetterFailed(r incident.Reason, err error) {
	c.m.DeadLetterFailures.WithLabelValues(string(r)).Inc()
	if c.cfg.SkipSetup || !(errors.Is(err, jetstream.ErrNoStreamResponse) || errors.Is(err, nats.ErrNoResponders)) {
		return
	}
	if !c.dlqSetup.CompareAndSwap(false, true) {
		return // one at a time
	}
	go func() {
		defer c.dlqSetup.Store(false)
		time.Sleep(rebindDelay) // the deleted stream's files may not be moved aside yet
		if c.nc.IsClosed() {
			return
		}
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		act, err := setupStream(ctx, c.js, DLQStreamConfig(c.cfg.Consumer), "consumer.dlq_stream")
		if err != nil {
			c.log.Error("dead-letter stream missing and not set up again", zap.Error(err))
			return
		}
		if created(act) { // another worker may have set it up first
			c.m.JetStreamRecreated.WithLabelValues(metrics.RecreatedDeadLetterStream).Inc()
		}
		c.log.Warn("dead-letter stream was missing", zap.String("action", act))
	}()
}

func (d *deadLetters) run() {
	for l := range d.pending {
		select {
		case ack := <-l.future.Ok():
			if !ack.Duplicate {
				d.c.m.EventsDeadLettered.WithLabelValues(string(l.reason)).Inc()
				d.logStored(l, ack.Sequence)
			}
			_ = l.msg.TermWithReason(string(l.reason))
		case err := <-l.future.Err():
			d.retryLater(l.msg, l.reason, err)
		}
	}
}

// logStored logs a stored dead letter, at most once every
// deadLetterLogEvery; not_logged_since_last counts those left out.
func (d *deadLetters) logStored(l letter, dlqSeq uint64) {
	now := time.Now()
	if !d.logged.IsZero() && now.Sub(d.logged) < deadLetterLogEvery {
		d.unlogged++
		return
	}
	n := d.unlogged
	d.logged, d.unlogged = now, 0
	d.c.log.Warn("event dead-lettered", zap.String("reason", string(l.reason)), zap.String("error", l.err),
		zap.String("subject", l.subject), zap.Uint64("stream_seq", l.seq), zap.Uint64("dlq_seq", dlqSeq),
		zap.Int64("not_logged_since_last", n))
}

func (d *deadLetters) close() { close(d.pending) }
