package incident

import (
	"fmt"
	"math"
	"strings"
	"unicode/utf8"
)

// Validate checks an event against schema v1's rules. Decode calls it last, so
// a decoded event always validates; producers may call it before publishing.
func (e *Event) Validate() error { return e.validate(0) }

// verbatim marks the strings of a decoded event that are bytes of the
// payload as they were (no escape in them, no DEL byte in the payload):
// the payload is valid UTF-8 with no raw control byte in a string, so they
// are too, and only their length is left to check. The decoder passes it
// to validate; FuzzDecode holds every decoded event to Validate.
type verbatim uint8

const (
	verbatimID verbatim = 1 << iota
	verbatimDedupKey
	verbatimSource
	verbatimTitle
	verbatimDescription
	verbatimUnit
	verbatimResources // every resource
	verbatimLabels    // every label name and value
)

// check is checkString for a string that may be verbatim (v).
func (v verbatim) check(bit verbatim, field, s string, max int, multiline bool) *DecodeError {
	if v&bit != 0 {
		if len(s) > max {
			return tooLong(field, s, max)
		}
		return nil
	}
	return checkString(field, s, max, multiline)
}

func (e *Event) validate(v verbatim) error {
	if e.ID == "" {
		return errf(ReasonMissingField, "id", "no event id in payload, Nats-Msg-Id header or stream position")
	}
	if err := v.check(verbatimID, "id", e.ID, MaxIDBytes, false); err != nil {
		return err
	}
	if e.Action > Resolve {
		return errf(ReasonUnknownAction, "action", "unknown action %d", uint8(e.Action))
	}
	if err := v.check(verbatimDedupKey, "dedup_key", e.DedupKey, MaxDedupKeyBytes, false); err != nil {
		return err
	}
	if strings.TrimSpace(e.Source) == "" {
		return errf(ReasonMissingField, "source", "source is required")
	}
	if err := v.check(verbatimSource, "source", e.Source, MaxSourceBytes, false); err != nil {
		return err
	}
	if !e.Type.Valid() {
		return errf(ReasonInvalidField, "type", "unknown type")
	}
	if !e.Severity.Valid() {
		return errf(ReasonInvalidField, "severity", "unknown severity")
	}
	if e.Action == Trigger && strings.TrimSpace(e.Title) == "" {
		return errf(ReasonMissingField, "title", "title is required for a trigger")
	}
	if err := v.check(verbatimTitle, "title", e.Title, MaxTitleBytes, false); err != nil {
		return err
	}
	if err := v.check(verbatimDescription, "description", e.Description, MaxDescriptionBytes, true); err != nil {
		return err
	}
	if len(e.Resources) > MaxResources {
		return errf(ReasonInvalidField, "resources", "%d resources, at most %d", len(e.Resources), MaxResources)
	}
	for _, r := range e.Resources {
		if r == "" {
			return errf(ReasonInvalidField, "resources", "empty resource name")
		}
		if err := v.check(verbatimResources, "resources", r, MaxResourceBytes, false); err != nil {
			return err
		}
	}
	if len(e.Labels) > MaxLabels {
		return errf(ReasonInvalidField, "labels", "%d labels, at most %d", len(e.Labels), MaxLabels)
	}
	for k, val := range e.Labels {
		if k == "" {
			return errf(ReasonInvalidField, "labels", "empty label name")
		}
		if err := v.check(verbatimLabels, "labels", k, MaxLabelKeyBytes, false); err != nil {
			err.Msg = fmt.Sprintf("name %q: %s", truncate(k), err.Msg) // as Incident.Validate says it
			return err
		}
		if err := v.check(verbatimLabels, "", val, MaxLabelValueBytes, true); err != nil {
			err.Field = "labels." + k // named only on failure: no allocation per label
			return err
		}
	}
	if e.OccurredAt.IsZero() {
		return errf(ReasonMissingField, "occurred_at", "no event time in payload or message timestamp")
	}
	if y := e.OccurredAt.Year(); y < minYear || y > maxYear {
		return errf(ReasonInvalidField, "occurred_at", "year %d out of range %d..%d", y, minYear, maxYear)
	}
	if e.Value != nil && (math.IsNaN(*e.Value) || math.IsInf(*e.Value, 0)) {
		return errf(ReasonInvalidField, "value", "must be a finite number")
	}
	if err := v.check(verbatimUnit, "unit", e.Unit, MaxUnitBytes, false); err != nil {
		return err
	}
	return nil
}

// printableASCII8 reports whether the 8 bytes of s are all in 0x20..0x7e:
// no byte below 0x20 (the exact "has less than" word test) and none of
// 0x7f or above (adding 1 sets the top bit of 0x7f, which bytes from 0x80
// have already).
func printableASCII8(s string) bool {
	_ = s[7]
	x := uint64(s[0]) | uint64(s[1])<<8 | uint64(s[2])<<16 | uint64(s[3])<<24 |
		uint64(s[4])<<32 | uint64(s[5])<<40 | uint64(s[6])<<48 | uint64(s[7])<<56
	const ones, highs = 0x0101010101010101, 0x8080808080808080
	below := (x - 0x20*ones) & ^x & highs
	above := (x | (x + ones)) & highs
	return below|above == 0
}

// checkString enforces UTF-8, a byte limit and, unless multiline, no control
// characters (they would break index keys and log lines), in one pass.
func checkString(field, s string, max int, multiline bool) *DecodeError {
	if len(s) > max {
		return tooLong(field, s, max)
	}
	for i := 0; i < len(s); {
		if i+8 <= len(s) && printableASCII8(s[i:i+8]) {
			i += 8 // the common case: eight plain characters at once
			continue
		}
		c := s[i]
		if c >= utf8.RuneSelf {
			r, size := utf8.DecodeRuneInString(s[i:])
			if r == utf8.RuneError && size == 1 {
				return errf(ReasonInvalidUTF8, field, "not valid UTF-8")
			}
			i += size
			continue
		}
		if c < 0x20 || c == 0x7f {
			if !multiline || (c != '\n' && c != '\t' && c != '\r') {
				return errf(ReasonInvalidField, field, "control character 0x%02x at byte %d", c, i)
			}
		}
		i++
	}
	return nil
}

func tooLong(field, s string, max int) *DecodeError {
	return errf(ReasonInvalidField, field, "%d bytes, at most %d", len(s), max)
}
