package incident

import "fmt"

// Reason is a stable, machine-readable cause of a rejected event. It names the
// dead-letter subject (incidents.dlq.<reason>) and labels the invalid-events
// counter, so the set is closed.
type Reason string

// The reasons an event is rejected.
const (
	ReasonInvalidJSON   Reason = "invalid_json"
	ReasonInvalidUTF8   Reason = "invalid_utf8"
	ReasonTooLarge      Reason = "too_large"
	ReasonMissingField  Reason = "missing_field"
	ReasonInvalidField  Reason = "invalid_field"
	ReasonUnknownAction Reason = "unknown_action"
	// ReasonMaxDeliver is used by the consumer for messages that reached
	// MaxDeliver without being committed.
	ReasonMaxDeliver Reason = "max_deliver"
)

// DecodeReasons lists the reasons decoding and validation give, for
// pre-creating the invalid-events series.
var DecodeReasons = []Reason{ReasonInvalidJSON, ReasonInvalidUTF8, ReasonTooLarge, ReasonMissingField,
	ReasonInvalidField, ReasonUnknownAction}

// Reasons lists every reason a message is dead-lettered for: the decode
// reasons and ReasonMaxDeliver.
var Reasons = append(DecodeReasons[:len(DecodeReasons):len(DecodeReasons)], ReasonMaxDeliver)

// DecodeError says why an event was rejected: a stable reason, the field at
// fault (empty when the whole payload is) and a human message.
type DecodeError struct {
	Reason Reason
	Field  string
	Msg    string
}

// Error returns "incident: <reason>: <field>: <message>".
func (e *DecodeError) Error() string {
	if e.Field == "" {
		return fmt.Sprintf("incident: %s: %s", e.Reason, e.Msg)
	}
	return fmt.Sprintf("incident: %s: field %q: %s", e.Reason, e.Field, e.Msg)
}

func errf(r Reason, field, format string, args ...any) *DecodeError {
	return &DecodeError{Reason: r, Field: field, Msg: fmt.Sprintf(format, args...)}
}
