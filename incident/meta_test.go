package incident_test

import (
	"testing"
	"time"

	"github.com/llm-im/incidentd/incident"
)

// TestEventTime: an event without occurred_at is dated by ReceivedAt (a
// replayed message's original receipt) when it is known and not after the
// message's own timestamp, else by the timestamp; the decoder uses it.
func TestEventTime(t *testing.T) {
	ts := time.Date(2026, 11, 28, 13, 43, 28, 0, time.UTC)
	earlier := ts.Add(-130 * time.Second)
	for _, c := range []struct {
		name string
		meta incident.Meta
		want time.Time
	}{
		{"no ReceivedAt", incident.Meta{Timestamp: ts}, ts},
		{"replayed", incident.Meta{Timestamp: ts, ReceivedAt: earlier}, earlier},
		{"equal", incident.Meta{Timestamp: ts, ReceivedAt: ts}, ts},
		{"ReceivedAt after the timestamp is ignored", incident.Meta{Timestamp: ts, ReceivedAt: ts.Add(time.Hour)}, ts},
		{"no timestamp", incident.Meta{ReceivedAt: earlier}, earlier},
		{"neither", incident.Meta{}, time.Time{}},
	} {
		t.Run(c.name, func(t *testing.T) {
			if got := c.meta.EventTime(); !got.Equal(c.want) {
				t.Fatalf("EventTime = %s, want %s", got, c.want)
			}
			if c.want.IsZero() {
				return
			}
			c.meta.Sequence = 1
			ev, err := incident.NewDecoder(0).Decode([]byte(`{"source":"s","title":"t"}`), c.meta)
			if err != nil {
				t.Fatal(err)
			}
			if !ev.OccurredAt.Equal(c.want) {
				t.Fatalf("decoded occurred_at %s, want %s", ev.OccurredAt, c.want)
			}
			ev, err = incident.NewDecoder(0).Decode([]byte(`{"source":"s","title":"t","occurred_at":"2026-11-28T10:00:00Z"}`), c.meta)
			if err != nil {
				t.Fatal(err)
			}
			if want := time.Date(2026, 11, 28, 10, 0, 0, 0, time.UTC); !ev.OccurredAt.Equal(want) {
				t.Fatalf("an explicit occurred_at became %s", ev.OccurredAt)
			}
		})
	}
}
