package ctl

import (
	"testing"

	"github.com/nats-io/nats.go"

	"github.com/llm-im/incidentd/consumer"
)

// TestLetterReceivedAt: a replay is dated by the letter's
// Incidentd-Received-At, or for a letter written before that header by the
// timestamp in its position; anything else gives no date (the replay's
// own timestamp then dates the event, as before).
func TestLetterReceivedAt(t *testing.T) {
	withHeader := nats.Header{}
	withHeader.Set(consumer.HeaderReceivedAt, "2026-11-28T13:41:18.123456789Z")
	for _, c := range []struct {
		name     string
		h        nats.Header
		position string
		want     string
	}{
		{"header", withHeader, "INCIDENTS:7:1", "2026-11-28T13:41:18.123456789Z"},
		{"position of an older letter", nats.Header{}, "INCIDENTS:7:1796132478123456789", "2026-12-01T13:41:18.123456789Z"},
		{"position without a timestamp", nats.Header{}, "INCIDENTS:7", ""},
		{"another stream", nats.Header{}, "OTHER:7:1796132478123456789", ""},
		{"not numbers", nats.Header{}, "INCIDENTS:x:1796132478123456789", ""},
		{"zero time", nats.Header{}, "INCIDENTS:7:0", ""},
		{"no position", nats.Header{}, "", ""},
	} {
		t.Run(c.name, func(t *testing.T) {
			if got := letterReceivedAt(c.h, "INCIDENTS", c.position); got != c.want {
				t.Fatalf("letterReceivedAt = %q, want %q", got, c.want)
			}
		})
	}
}
