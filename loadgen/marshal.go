package loadgen

import (
	"encoding/json"
	"fmt"
	"math"
	"slices"
	"strconv"
	"time"

	"github.com/llm-im/incidentd/incident"
)

// Marshal encodes an event in the wire format, byte for byte what
// encoding/json gives, written by hand: the bench's publisher shares the
// worker's two cores, and reflection-based encoding cost it about 10 µs an
// event (a fifth of a core at 20k events/s). It panics on what
// encoding/json rejects (invalid enum values, non-finite values), which
// loadgen never makes.
func Marshal(ev incident.Event) []byte {
	return AppendJSON(make([]byte, 0, 768), &ev)
}

// AppendJSON appends Marshal's encoding of ev to dst.
func AppendJSON(dst []byte, ev *incident.Event) []byte {
	if !ev.Type.Valid() || !ev.Severity.Valid() ||
		(ev.Value != nil && (math.IsNaN(*ev.Value) || math.IsInf(*ev.Value, 0))) {
		panic(fmt.Sprintf("loadgen: marshal: event %q is not encodable", ev.ID))
	}
	b := append(dst, '{')
	if ev.ID != "" {
		b = appendString(append(b, `"id":`...), ev.ID)
		b = append(b, ',')
	}
	b = appendString(append(b, `"action":`...), ev.Action.String())
	if ev.DedupKey != "" {
		b = appendString(append(b, `,"dedup_key":`...), ev.DedupKey)
	}
	b = appendString(append(b, `,"source":`...), ev.Source)
	b = appendString(append(b, `,"type":`...), ev.Type.String())
	b = appendString(append(b, `,"severity":`...), ev.Severity.String())
	if ev.Title != "" {
		b = appendString(append(b, `,"title":`...), ev.Title)
	}
	if ev.Description != "" {
		b = appendString(append(b, `,"description":`...), ev.Description)
	}
	if len(ev.Resources) > 0 {
		b = append(b, `,"resources":[`...)
		for i, r := range ev.Resources {
			if i > 0 {
				b = append(b, ',')
			}
			b = appendString(b, r)
		}
		b = append(b, ']')
	}
	if len(ev.Labels) > 0 {
		b = appendLabels(append(b, `,"labels":`...), ev.Labels)
	}
	if !ev.OccurredAt.IsZero() {
		b = append(b, `,"occurred_at":"`...)
		b = ev.OccurredAt.AppendFormat(b, time.RFC3339Nano)
		b = append(b, '"')
	}
	if ev.Value != nil {
		b = appendFloat(append(b, `,"value":`...), *ev.Value)
	}
	if ev.Unit != "" {
		b = appendString(append(b, `,"unit":`...), ev.Unit)
	}
	return append(b, '}')
}

// appendLabels writes the map with sorted keys, as encoding/json does.
func appendLabels(b []byte, m map[string]string) []byte {
	var buf [8]string
	keys := buf[:0]
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	b = append(b, '{')
	for i, k := range keys {
		if i > 0 {
			b = append(b, ',')
		}
		b = appendString(b, k)
		b = appendString(append(b, ':'), m[k])
	}
	return append(b, '}')
}

// appendString quotes s. Printable ASCII without the characters
// encoding/json escapes is copied; any other string goes through
// encoding/json, so the output stays identical to it.
func appendString(b []byte, s string) []byte {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < 0x20 || c >= 0x7f || c == '"' || c == '\\' || c == '<' || c == '>' || c == '&' {
			q, _ := json.Marshal(s) // a string always encodes
			return append(b, q...)
		}
	}
	b = append(b, '"')
	b = append(b, s...)
	return append(b, '"')
}

// appendFloat formats f as encoding/json does: the shortest representation,
// in exponent form only below 1e-6 or from 1e21, with a one-digit negative
// exponent written without its leading zero.
func appendFloat(b []byte, f float64) []byte {
	format := byte('f')
	if abs := math.Abs(f); abs != 0 && (abs < 1e-6 || abs >= 1e21) {
		format = 'e'
	}
	n := len(b)
	b = strconv.AppendFloat(b, f, format, -1, 64)
	if format == 'e' {
		// e-09 -> e-9
		if m := len(b) - n; m >= 4 && b[len(b)-4] == 'e' && b[len(b)-3] == '-' && b[len(b)-2] == '0' {
			b[len(b)-2] = b[len(b)-1]
			b = b[:len(b)-1]
		}
	}
	return b
}
