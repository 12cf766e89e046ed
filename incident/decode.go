package incident

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"
	"unsafe"
)

// Decoder turns wire payloads into validated events. It is safe for
// concurrent use.
type Decoder struct {
	maxBytes int
	maxSkew  time.Duration // 0: occurred_at has no bound nearer than maxYear
}

// NewDecoder returns a decoder that rejects payloads over maxBytes
// (DefaultMaxEventBytes when maxBytes <= 0).
func NewDecoder(maxBytes int) *Decoder {
	if maxBytes <= 0 {
		maxBytes = DefaultMaxEventBytes
	}
	return &Decoder{maxBytes: maxBytes}
}

// LimitClockSkew makes Decode reject, as invalid_field, an event whose
// occurred_at is more than skew after the message's timestamp (Meta.Timestamp,
// when JetStream stored it): a producer clock that far ahead would give an
// incident that sorts first and cannot time out until that time comes. Zero
// or negative removes the bound. Call it before the decoder is used.
func (d *Decoder) LimitClockSkew(skew time.Duration) *Decoder {
	d.maxSkew = max(skew, 0)
	return d
}

// Decode parses and validates one payload. Missing ids and times come from
// meta. Every failure is a *DecodeError.
//
// The payload is read in one pass (see scanner) that checks it is JSON as
// RFC 8259 defines it, then the event object's members are decoded from
// where that pass found them. The checks run in this order, so the reason
// given does not depend on where in the payload the faults lie: size,
// UTF-8, syntax (nesting depth included), raw control characters in
// strings, lone surrogate escapes, members given twice, then each field.
func (d *Decoder) Decode(data []byte, meta Meta) (Event, error) {
	var ev Event
	if len(data) > d.maxBytes {
		return ev, errf(ReasonTooLarge, "", "%d bytes, at most %d", len(data), d.maxBytes)
	}
	if !utf8.Valid(data) {
		return ev, errf(ReasonInvalidUTF8, "", "payload is not valid UTF-8")
	}
	var f fields
	s := scanner{data: data, control: -1, surrogate: -1}
	object := s.top(&f)
	switch {
	case s.deep:
		return ev, errf(ReasonInvalidJSON, "", "arrays and objects nested %d deep: more than the %d levels of values the decoder reads (in any member, ignored ones included)", nesting(data), maxDepth)
	case s.err != "":
		return ev, errf(ReasonInvalidJSON, "", "not JSON: %s", s.err)
	case s.control >= 0:
		return ev, errf(ReasonInvalidJSON, "", "control character 0x%02x at byte %d inside a string: JSON requires it escaped", data[s.control], s.control)
	case s.surrogate >= 0:
		return ev, errf(ReasonInvalidUTF8, "", "escape %s at byte %d is half of a UTF-16 surrogate pair, not a character", data[s.surrogate:s.surrogate+6], s.surrogate)
	case !object:
		return ev, errf(ReasonInvalidJSON, "", "event must be a JSON object")
	case f.dup != "":
		return ev, errf(ReasonInvalidJSON, f.dup, "member appears twice")
	}
	a := arena{buf: make([]byte, 0, len(data))}
	if derr := f.build(&ev, data, meta, &a); derr != nil {
		return ev, derr
	}
	if bytes.IndexByte(data, 0x7f) >= 0 {
		f.verbatim = 0 // DEL is a control character for Validate
	}
	if err := ev.validate(f.verbatim); err != nil {
		return ev, f.sentAs(err)
	}
	if d.maxSkew > 0 && !meta.Timestamp.IsZero() {
		if ahead := ev.OccurredAt.Sub(meta.Timestamp); ahead > d.maxSkew {
			return ev, errf(ReasonInvalidField, "occurred_at", "%s is %s after the message was published (%s): more than the allowed clock skew of %s",
				ev.OccurredAt.Format(time.RFC3339Nano), gapText(ev.OccurredAt, meta.Timestamp), meta.Timestamp.UTC().Format(time.RFC3339), d.maxSkew)
		}
	}
	return ev, nil
}

// top scans the whole payload, filing the members of the event object in
// f, and reports whether the payload is an object.
func (s *scanner) top(f *fields) bool {
	s.ctl = hasControl(s.data)
	s.ws()
	object := s.i < len(s.data) && s.data[s.i] == '{'
	if object {
		s.object(1, func(name, v span) bool {
			f.set(s.data, name, v)
			return true
		})
	} else {
		s.value(0)
	}
	if s.err == "" {
		if s.ws(); s.i < len(s.data) {
			s.fail(s.i, "more after the JSON value: %s", s.near(s.i))
		}
	}
	return object
}

// fields collects the members' values; aliases lose to the canonical names
// whatever their order in the payload. The *Name fields are the members
// the id, the type and the resources were taken from, for the errors.
type fields struct {
	id, externalID, action, dedupKey, source     span
	typ, alertType, severity, title, description span
	resources, affected, labels, occurredAt      span
	value, unit                                  span
	dup                                          string // the first member given twice
	idName, typeName, resourcesName              string
	verbatim                                     verbatim // the strings taken as they are in the payload
}

// sentAs renames the field of a validation error about the id, the type
// or the resources to the member the publisher sent them in (external_id,
// alert_type, affected_services), so that the error names what is in the
// payload.
func (f *fields) sentAs(err error) error {
	de, ok := err.(*DecodeError)
	if !ok {
		return err
	}
	switch de.Field {
	case "id":
		de.Field = f.idName
	case "type":
		de.Field = f.typeName
	case "resources":
		de.Field = f.resourcesName
	}
	return de
}

// gapText is how far later is after earlier: a Duration up to three days,
// whole days beyond (a Duration saturates at 292 years, and event times
// reach year 9999).
func gapText(later, earlier time.Time) string {
	if secs := later.Unix() - earlier.Unix(); secs > 3*86400 {
		return strconv.FormatInt(secs/86400, 10) + " days"
	}
	return later.Sub(earlier).Round(time.Second).String()
}

// blankAbsent returns "" for a value that is only white space, which
// for the fields that ignore white space around them means absent.
func blankAbsent(v string) string {
	if v != "" && strings.TrimSpace(v) == "" {
		return ""
	}
	return v
}

// pick returns the canonical member's value when it is not empty, else the
// alias's, with the name of the member it came from.
func pick(canonical, alias, name, aliasName string) (string, string) {
	if canonical != "" || alias == "" {
		return canonical, name
	}
	return alias, aliasName
}

// set files one member. The name is switched on as bytes (no string is
// made unless it ends up in an error).
func (f *fields) set(data []byte, name, v span) {
	key := data[name.start:name.end]
	var buf [32]byte
	if name.esc {
		key = unescape(buf[:0], key)
	}
	var slot *span
	switch string(key) {
	case "id":
		slot = &f.id
	case "external_id":
		slot = &f.externalID
	case "action":
		slot = &f.action
	case "dedup_key":
		slot = &f.dedupKey
	case "source":
		slot = &f.source
	case "type":
		slot = &f.typ
	case "alert_type":
		slot = &f.alertType
	case "severity":
		slot = &f.severity
	case "title":
		slot = &f.title
	case "description":
		slot = &f.description
	case "resources":
		slot = &f.resources
	case "affected_services":
		slot = &f.affected
	case "labels":
		slot = &f.labels
	case "occurred_at":
		slot = &f.occurredAt
	case "value":
		slot = &f.value
	case "unit":
		slot = &f.unit
	default:
		return // unknown members are ignored for forward compatibility
	}
	// A null member is absent, but present all the same: the slot keeps
	// it until build, so a second one is refused in either order
	// ({"title":null,"title":"x"} was accepted, {"title":"x","title":null}
	// refused).
	if slot.kind != kindAbsent {
		if f.dup == "" {
			f.dup = string(key)
		}
		return
	}
	*slot = v
}

func (f *fields) build(ev *Event, data []byte, meta Meta, a *arena) *DecodeError {
	// null is the same as absent (set kept it only to see a repeat).
	for _, p := range [...]*span{&f.id, &f.externalID, &f.action, &f.dedupKey, &f.source,
		&f.typ, &f.alertType, &f.severity, &f.title, &f.description,
		&f.resources, &f.affected, &f.labels, &f.occurredAt, &f.value, &f.unit} {
		if p.kind == kindNull {
			p.kind = kindAbsent
		}
	}
	var err *DecodeError
	str := func(name string, v span) string {
		if err != nil || v.kind == kindAbsent {
			return ""
		}
		if v.kind != kindString {
			err = errf(ReasonInvalidField, name, "must be a string")
			return ""
		}
		return a.text(data, v)
	}
	// The field wins over its alias: the alias is read, and its type
	// checked, only when the field is absent or empty.
	alias := func(field, name, aliasName string, v span) (string, string) {
		if field != "" {
			return field, name
		}
		return pick(field, str(aliasName, v), name, aliasName)
	}
	ev.ID, f.idName = alias(str("id", f.id), "id", "external_id", f.externalID)
	// These four are names and a time: white space around them is
	// ignored, so white space alone is the same as an empty string, absent.
	action := blankAbsent(str("action", f.action))
	ev.DedupKey = str("dedup_key", f.dedupKey)
	ev.Source = str("source", f.source)
	var typ string
	typ, f.typeName = alias(blankAbsent(str("type", f.typ)), "type", "alert_type", f.alertType)
	typ = blankAbsent(typ)
	sev := blankAbsent(str("severity", f.severity))
	ev.Title = str("title", f.title)
	ev.Description = str("description", f.description)
	occurred := blankAbsent(str("occurred_at", f.occurredAt))
	ev.Unit = str("unit", f.unit)
	if err != nil {
		return err
	}
	f.verbatim = verbatimOf(f.dedupKey, verbatimDedupKey) | verbatimOf(f.source, verbatimSource) |
		verbatimOf(f.title, verbatimTitle) | verbatimOf(f.description, verbatimDescription) | verbatimOf(f.unit, verbatimUnit)
	if ev.ID != "" {
		if f.idName == "id" {
			f.verbatim |= verbatimOf(f.id, verbatimID)
		} else {
			f.verbatim |= verbatimOf(f.externalID, verbatimID)
		}
	}
	if action != "" {
		a, ok := ParseAction(action)
		if !ok {
			return errf(ReasonUnknownAction, "action", "unknown action %q (want trigger, acknowledge or resolve)", truncate(action))
		}
		ev.Action = a
	}
	if f.source.kind == kindAbsent {
		return errf(ReasonMissingField, "source", "source is required")
	}
	if typ != "" {
		t, e := ParseType(typ)
		if e != nil {
			return errf(ReasonInvalidField, f.typeName, "unknown type %q", truncate(typ))
		}
		ev.Type = t
	}
	ev.Severity = DefaultSeverity
	if sev != "" {
		s, e := ParseSeverity(sev)
		if e != nil {
			return errf(ReasonInvalidField, "severity", "unknown severity %q (want P0..P4)", truncate(sev))
		}
		ev.Severity = s
	}
	res := f.resources
	if f.resourcesName = "resources"; res.kind == kindAbsent && f.affected.kind != kindAbsent {
		res, f.resourcesName = f.affected, "affected_services"
	}
	var plain bool
	if ev.Resources, plain, err = stringList(f.resourcesName, data, res, a); err != nil {
		return err
	}
	if plain {
		f.verbatim |= verbatimResources
	}
	// Resources are a set: keep them sorted and unique from here on, so the
	// fingerprint and the fold never sort again.
	slices.Sort(ev.Resources)
	ev.Resources = slices.Compact(ev.Resources)
	if ev.Labels, plain, err = labelMap(data, f.labels, a); err != nil {
		return err
	}
	if plain {
		f.verbatim |= verbatimLabels
	}
	if occurred != "" {
		t, e := ParseTime(occurred)
		if e != nil {
			return errf(ReasonInvalidField, "occurred_at", "not an RFC 3339 time: %q", truncate(occurred))
		}
		// Checked here, not only in Validate: an explicit year-1 time is
		// the zero time, which Validate reads as "no time at all".
		if y := t.UTC().Year(); y < minYear || y > maxYear {
			return errf(ReasonInvalidField, "occurred_at", "year %d out of range %d..%d", y, minYear, maxYear)
		}
		ev.OccurredAt = t.UTC().Truncate(time.Microsecond)
	} else {
		ev.OccurredAt = meta.EventTime().UTC().Truncate(time.Microsecond)
	}
	if f.value.kind != kindAbsent {
		if f.value.kind != kindNumber {
			return errf(ReasonInvalidField, "value", "must be a number")
		}
		// The syntax is checked; out of range, ParseFloat gives ±Inf (which
		// Validate refuses) or zero.
		raw := data[f.value.start:f.value.end]
		x, _ := strconv.ParseFloat(unsafe.String(&raw[0], len(raw)), 64)
		ev.Value = &x
	}
	if ev.ID == "" {
		ev.ID = meta.FallbackID()
		if len(ev.ID) > MaxIDBytes && ev.ID == meta.MsgID {
			ev.ID = HeaderIDDigest(meta.MsgID)
		}
	}
	return nil
}

// HeaderIDDigest is the event id of an event whose only id is a Nats-Msg-Id
// header longer than MaxIDBytes (which JetStream accepts):
// "nats-msg-id-sha256:" and the header's SHA-256 in hex. The same header
// gives the same id, so its copies still count once.
func HeaderIDDigest(msgID string) string {
	sum := sha256.Sum256([]byte(msgID))
	return "nats-msg-id-sha256:" + hex.EncodeToString(sum[:])
}

// stringList decodes an array of strings, and reports whether none of them
// held an escape.
func stringList(name string, data []byte, v span, a *arena) ([]string, bool, *DecodeError) {
	if v.kind == kindAbsent {
		return nil, true, nil
	}
	if v.kind != kindArray {
		return nil, false, errf(ReasonInvalidField, name, "must be an array of strings")
	}
	if v.n > MaxResources {
		return nil, false, errf(ReasonInvalidField, name, "%d entries, at most %d", v.n, MaxResources)
	}
	out := make([]string, 0, v.n)
	ok, plain := true, true
	s := scanner{data: data, i: v.start, control: -1, surrogate: -1}
	s.array(1, func(it span) bool {
		if ok = it.kind == kindString; ok {
			out = append(out, a.text(data, it))
			plain = plain && !it.esc
		}
		return ok
	})
	if !ok {
		return nil, false, errf(ReasonInvalidField, name, "must be an array of strings")
	}
	return out, plain, nil
}

// labelMap decodes an object of strings, and reports whether none of its
// names and values held an escape.
func labelMap(data []byte, v span, a *arena) (map[string]string, bool, *DecodeError) {
	if v.kind == kindAbsent {
		return nil, true, nil
	}
	if v.kind != kindObject {
		return nil, false, errf(ReasonInvalidField, "labels", "must be an object of strings")
	}
	if v.n > MaxLabels {
		return nil, false, errf(ReasonInvalidField, "labels", "%d labels, at most %d", v.n, MaxLabels)
	}
	out := make(map[string]string, v.n)
	var err *DecodeError
	plain := true
	s := scanner{data: data, i: v.start, control: -1, surrogate: -1}
	s.object(1, func(name, val span) bool {
		plain = plain && !name.esc && !val.esc
		key := a.text(data, name)
		if val.kind != kindString {
			err = errf(ReasonInvalidField, "labels."+truncate(key), "label values must be strings")
			return false
		}
		n := len(out)
		if out[key] = a.text(data, val); len(out) == n {
			err = errf(ReasonInvalidJSON, "labels."+truncate(key), "label appears twice")
			return false
		}
		return true
	})
	return out, plain, err
}

// truncate keeps error messages short when echoing input.
func truncate(s string) string {
	const max = 64
	if len(s) <= max {
		return s
	}
	for i := max; i > 0; i-- {
		if utf8.RuneStart(s[i]) {
			return s[:i] + "…"
		}
	}
	return s[:max]
}

// verbatimOf returns bit when v is a string with no escape in it, or
// absent.
func verbatimOf(v span, bit verbatim) verbatim {
	if v.esc {
		return 0
	}
	return bit
}

// Peek returns a payload's event id (id, else external_id) and source
// without validating the event: empty strings when the payload is not a
// JSON object or the member is not a string. incidentctl publish picks the
// Nats-Msg-Id and the subject with it.
func Peek(data []byte) (id, source string) {
	var f fields
	s := scanner{data: data, control: -1, surrogate: -1}
	if !s.top(&f) || s.err != "" {
		return "", ""
	}
	text := func(v span) string {
		if v.kind != kindString {
			return ""
		}
		return string(unescape(nil, data[v.start:v.end]))
	}
	if id = text(f.id); id == "" {
		id = text(f.externalID)
	}
	return id, text(f.source)
}
