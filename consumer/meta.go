package consumer

import (
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/llm-im/incidentd/incident"
)

// messageMeta is what the decoder learns from a message besides its
// payload: its Nats-Msg-Id, its place in the stream and its time. A
// HeaderReceivedAt that does not parse is left out (the event then takes
// the message's own timestamp, as any event without occurred_at).
func messageMeta(h nats.Header, stream string, seq uint64, ts time.Time) incident.Meta {
	m := incident.Meta{MsgID: h.Get(jetstream.MsgIDHeader), Stream: stream, Sequence: seq, Timestamp: ts}
	if v := h.Get(HeaderReceivedAt); v != "" {
		if t, err := time.Parse(time.RFC3339Nano, v); err == nil {
			m.ReceivedAt = t
		}
	}
	return m
}

// receivedAt is the value of HeaderReceivedAt for a message: when JetStream
// first received its event (the header it came with, for a replayed one).
func receivedAt(meta incident.Meta) string {
	t := meta.EventTime()
	if t.IsZero() {
		return ""
	}
	return t.UTC().Format(time.RFC3339Nano)
}
