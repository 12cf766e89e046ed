package incident

import (
	"strconv"
	"time"
)

// Limits on wire fields. A field over its limit is invalid_field.
const (
	MaxIDBytes          = 255
	MaxDedupKeyBytes    = 255
	MaxSourceBytes      = 255
	MaxTitleBytes       = 1024
	MaxDescriptionBytes = 16 * 1024
	MaxResources        = 256
	// MaxIncidentResources bounds the union of resources an incident
	// accumulates over its events: past it, the first ones in sorted
	// order are kept (the same whatever order the events came in).
	MaxIncidentResources = 1024
	MaxResourceBytes     = 512
	MaxLabels            = 64
	MaxLabelKeyBytes     = 128
	MaxLabelValueBytes   = 1024
	MaxUnitBytes         = 64
	// DefaultMaxEventBytes is the default limit on one encoded event.
	DefaultMaxEventBytes = 64 * 1024
)

// Event is one incident event as publishers send it (wire schema v1), after
// decoding and defaulting. Its JSON tags are the wire names.
type Event struct {
	ID          string            `json:"id,omitempty"`
	Action      Action            `json:"action"`
	DedupKey    string            `json:"dedup_key,omitempty"`
	Source      string            `json:"source"`
	Type        Type              `json:"type"`
	Severity    Severity          `json:"severity"`
	Title       string            `json:"title,omitempty"`
	Description string            `json:"description,omitempty"`
	Resources   []string          `json:"resources,omitempty"` // sorted and unique once decoded
	Labels      map[string]string `json:"labels,omitempty"`
	OccurredAt  time.Time         `json:"occurred_at,omitzero"`
	Value       *float64          `json:"value,omitempty"`
	Unit        string            `json:"unit,omitempty"`
}

// Meta is what the transport knows about a message; it supplies the event id
// and time when the payload has none.
type Meta struct {
	MsgID     string    // the Nats-Msg-Id header
	Stream    string    // JetStream stream name
	Sequence  uint64    // stream sequence
	Timestamp time.Time // JetStream timestamp
	// ReceivedAt is when JetStream first received the event, for a message
	// published again (incidentctl dlq replay) whose Timestamp is the
	// replay's; zero otherwise.
	ReceivedAt time.Time
}

// EventTime is the event's time when its payload has no occurred_at:
// ReceivedAt when known and not after Timestamp, else Timestamp.
func (m Meta) EventTime() time.Time {
	if !m.ReceivedAt.IsZero() && (m.Timestamp.IsZero() || !m.ReceivedAt.After(m.Timestamp)) {
		return m.ReceivedAt
	}
	return m.Timestamp
}

// FallbackID is the event id used when the payload has none: the
// Nats-Msg-Id header, else Position.
func (m Meta) FallbackID() string {
	if m.MsgID != "" {
		return m.MsgID
	}
	return m.Position()
}

// Position names the message's place in its stream:
// "<stream>:<sequence>:<timestamp>", the timestamp in unix nanoseconds (left
// out when unknown). It is the same on every delivery of one message, and
// differs between two messages that got one sequence number from two
// incarnations of the stream (deleted and created again, or its directory
// wiped), which "<stream>:<sequence>" alone would take for one event.
func (m Meta) Position() string {
	if m.Stream == "" && m.Sequence == 0 {
		return ""
	}
	p := m.Stream + ":" + strconv.FormatUint(m.Sequence, 10)
	if !m.Timestamp.IsZero() {
		p += ":" + strconv.FormatInt(m.Timestamp.UnixNano(), 10)
	}
	return p
}
