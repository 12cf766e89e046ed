package consumer

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"go.uber.org/zap"

	"github.com/llm-im/incidentd/incident"
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
)

// letter is a bad message waiting for its dead-letter publish to be acked.
type letter struct {
	msg    jetstream.Msg
	future jetstream.PubAckFuture
	reason incident.Reason
}

// deadLetters publishes asynchronously and terminates each message once the
// dead-letter stream has stored its copy.
type deadLetters struct {
	c       *Consumer
	pending chan letter
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
	out.Header.Set(HeaderError, de.Error())
	out.Header.Set(HeaderSubject, subject)
	out.Header.Set(HeaderStreamSeq, strconv.FormatUint(meta.Sequence, 10))
	if meta.MsgID != "" {
		out.Header.Set(HeaderMsgID, meta.MsgID)
	}
	out.Header.Set(jetstream.MsgIDHeader, meta.Position())
	return out
}

// send publishes m's dead letter; run terminates m when it is stored.
func (d *deadLetters) send(m jetstream.Msg, meta incident.Meta, subject string, de *incident.DecodeError) {
	f, err := d.c.js.PublishMsgAsync(d.message(m.Data(), meta, subject, de))
	if err != nil {
		d.retryLater(m, de.Reason, err)
		return
	}
	d.pending <- letter{msg: m, future: f, reason: de.Reason}
}

func (d *deadLetters) retryLater(m jetstream.Msg, r incident.Reason, err error) {
	d.c.log.Error("dead-letter publish failed; message will be redelivered", zap.String("reason", string(r)), zap.Error(err))
	_ = m.NakWithDelay(d.c.cfg.Consumer.RetryMax.Duration)
}

func (d *deadLetters) run() {
	for l := range d.pending {
		select {
		case ack := <-l.future.Ok():
			if !ack.Duplicate {
				d.c.m.EventsDeadLettered.WithLabelValues(string(l.reason)).Inc()
			}
			_ = l.msg.TermWithReason(string(l.reason))
		case err := <-l.future.Err():
			d.retryLater(l.msg, l.reason, err)
		}
	}
}

func (d *deadLetters) close() { close(d.pending) }

// advisory is the part of io.nats.jetstream.advisory.v1.max_deliver we use.
type advisory struct {
	Stream     string `json:"stream"`
	Consumer   string `json:"consumer"`
	StreamSeq  uint64 `json:"stream_seq"`
	Deliveries uint64 `json:"deliveries"`
}

// watchMaxDeliveries subscribes to the max-deliveries advisory of the
// consumer: JetStream stops delivering a message after MaxDeliver attempts
// and says so there. The worker then reads the message by sequence and
// dead-letters it with reason max_deliver, unless its event was applied
// (an ack lost after a commit). Every worker gets the advisory; the dead
// letter's Nats-Msg-Id makes it land once.
func (c *Consumer) watchMaxDeliveries(ctx context.Context) (func(), error) {
	cc := c.cfg.Consumer
	subj := fmt.Sprintf("$JS.EVENT.ADVISORY.CONSUMER.MAX_DELIVERIES.%s.%s", cc.Stream, cc.Durable)
	stream, err := c.js.Stream(ctx, cc.Stream)
	if err != nil {
		return nil, fmt.Errorf("bind stream %s: %w", cc.Stream, err)
	}
	seqs := make(chan advisory, 256)
	sub, err := c.nc.Subscribe(subj, func(m *nats.Msg) {
		var a advisory
		if err := json.Unmarshal(m.Data, &a); err != nil || a.StreamSeq == 0 {
			c.log.Warn("unreadable max-deliveries advisory", zap.ByteString("data", m.Data))
			return
		}
		select {
		case seqs <- a:
		default:
			c.log.Error("max-deliveries advisory dropped (handler busy)", zap.Uint64("stream_seq", a.StreamSeq))
		}
	})
	if err != nil {
		return nil, fmt.Errorf("subscribe %s: %w", subj, err)
	}
	hctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	finished := make(chan struct{})
	go func() {
		defer close(finished)
		for {
			select {
			case <-hctx.Done():
				return
			case a := <-seqs:
				if err := c.deadLetterMaxDeliver(hctx, stream, a); err != nil {
					c.log.Error("dead-letter after max deliveries", zap.Uint64("stream_seq", a.StreamSeq), zap.Error(err))
				}
			}
		}
	}()
	return func() { _ = sub.Unsubscribe(); cancel(); <-finished }, nil
}

func (c *Consumer) deadLetterMaxDeliver(ctx context.Context, stream jetstream.Stream, a advisory) error {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	raw, err := stream.GetMsg(ctx, a.StreamSeq)
	if errors.Is(err, jetstream.ErrMsgNotFound) {
		return nil // expired or removed meanwhile
	}
	if err != nil {
		return fmt.Errorf("get message: %w", err)
	}
	meta := incident.Meta{MsgID: raw.Header.Get(jetstream.MsgIDHeader), Stream: c.cfg.Consumer.Stream, Sequence: raw.Sequence, Timestamp: raw.Time}
	if ev, err := c.dec.Decode(raw.Data, meta); err == nil {
		snap, err := c.store.Lookup(ctx, nil, []string{ev.ID})
		if err == nil && snap.Applied[ev.ID] {
			c.log.Info("message reached max deliveries but its event is applied; not dead-lettered",
				zap.Uint64("stream_seq", a.StreamSeq), zap.String("event_id", ev.ID))
			return nil
		}
	}
	de := &incident.DecodeError{Reason: incident.ReasonMaxDeliver,
		Msg: fmt.Sprintf("delivered %d times without a commit (consumer.max_deliver)", a.Deliveries)}
	ack, err := c.js.PublishMsg(ctx, c.dlq.message(raw.Data, meta, raw.Subject, de))
	if err != nil {
		return fmt.Errorf("publish: %w", err)
	}
	if !ack.Duplicate {
		c.m.EventsDeadLettered.WithLabelValues(string(incident.ReasonMaxDeliver)).Inc()
		c.log.Warn("message dead-lettered after max deliveries", zap.Uint64("stream_seq", a.StreamSeq), zap.Uint64("deliveries", a.Deliveries))
	}
	return nil
}
