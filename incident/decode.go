package incident

import (
	"crypto/sha256"
	"encoding/hex"
	"slices"
	"strings"
	"time"
	"unicode/utf8"
	"unsafe"

	"github.com/valyala/fastjson"
)

// Decoder turns wire payloads into validated events. It is safe for
// concurrent use; parsers are pooled so decoding does not allocate a tree per
// event.
type Decoder struct {
	maxBytes int
	maxSkew  time.Duration // 0: occurred_at has no bound nearer than maxYear
	pool     fastjson.ParserPool
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
func (d *Decoder) Decode(data []byte, meta Meta) (Event, error) {
	var ev Event
	if len(data) > d.maxBytes {
		return ev, errf(ReasonTooLarge, "", "%d bytes, at most %d", len(data), d.maxBytes)
	}
	if !utf8.Valid(data) {
		return ev, errf(ReasonInvalidUTF8, "", "payload is not valid UTF-8")
	}
	p := d.pool.Get()
	defer d.pool.Put(p)
	v, err := p.ParseBytes(data)
	if err != nil {
		if strings.Contains(err.Error(), "too big depth") {
			// fastjson's own message is one "cannot parse array value:"
			// per level: the dead letter's 1 KiB of it never got to the cause.
			return ev, errf(ReasonInvalidJSON, "", "arrays and objects nested %d deep: more than the %d levels of values the decoder reads (in any member, ignored ones included)", nesting(data), fastjson.MaxDepth)
		}
		return ev, errf(ReasonInvalidJSON, "", "%v", err)
	}
	if at, ok := rawControl(data); ok {
		return ev, errf(ReasonInvalidJSON, "", "control character 0x%02x at byte %d inside a string: JSON requires it escaped", data[at], at)
	}
	if esc, at, ok := loneSurrogate(data); ok {
		return ev, errf(ReasonInvalidUTF8, "", "escape %s at byte %d is half of a UTF-16 surrogate pair, not a character", esc, at)
	}
	obj, err := v.Object()
	if err != nil {
		return ev, errf(ReasonInvalidJSON, "", "event must be a JSON object")
	}
	var f fields
	var derr *DecodeError
	obj.Visit(func(key []byte, val *fastjson.Value) {
		if derr == nil {
			derr = f.set(key, val)
		}
	})
	if derr != nil {
		return ev, derr
	}
	a := arena{buf: make([]byte, 0, len(data))}
	if derr := f.build(&ev, meta, &a); derr != nil {
		return ev, derr
	}
	if err := ev.Validate(); err != nil {
		return ev, f.sentAs(err)
	}
	if d.maxSkew > 0 && !meta.Timestamp.IsZero() {
		if ahead := ev.OccurredAt.Sub(meta.Timestamp); ahead > d.maxSkew {
			return ev, errf(ReasonInvalidField, "occurred_at", "%s is %s after the message was published (%s): more than the allowed clock skew of %s",
				ev.OccurredAt.Format(time.RFC3339Nano), ahead.Round(time.Second), meta.Timestamp.UTC().Format(time.RFC3339), d.maxSkew)
		}
	}
	return ev, nil
}

// fields collects the raw members; aliases lose to the canonical names
// whatever their order in the payload. The *Name fields are the members
// the id, the type and the resources were taken from, for the errors.
type fields struct {
	id, externalID, action, dedupKey, source     *fastjson.Value
	typ, alertType, severity, title, description *fastjson.Value
	resources, affected, labels, occurredAt      *fastjson.Value
	value, unit                                  *fastjson.Value
	idName, typeName, resourcesName              string
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

// pick returns the canonical member's value when it is not empty, else the
// alias's, with the name of the member it came from.
func pick(canonical, alias, name, aliasName string) (string, string) {
	if canonical != "" || alias == "" {
		return canonical, name
	}
	return alias, aliasName
}

// set files one member. The key is switched on as bytes (no string is
// made unless it ends up in an error): this saved a third of Decode's
// allocations.
func (f *fields) set(key []byte, v *fastjson.Value) *DecodeError {
	var slot **fastjson.Value
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
		return nil // unknown members are ignored for forward compatibility
	}
	if *slot != nil {
		return errf(ReasonInvalidJSON, string(key), "member appears twice")
	}
	// A null member is absent, but present all the same: the slot keeps
	// it until build, so a second one is refused in either order
	// ({"title":null,"title":"x"} was accepted, {"title":"x","title":null}
	// refused).
	*slot = v
	return nil
}

func (f *fields) build(ev *Event, meta Meta, a *arena) *DecodeError {
	// null is the same as absent (set kept it only to see a repeat).
	for _, p := range [...]**fastjson.Value{&f.id, &f.externalID, &f.action, &f.dedupKey, &f.source,
		&f.typ, &f.alertType, &f.severity, &f.title, &f.description,
		&f.resources, &f.affected, &f.labels, &f.occurredAt, &f.value, &f.unit} {
		if *p != nil && (*p).Type() == fastjson.TypeNull {
			*p = nil
		}
	}
	var err *DecodeError
	str := func(name string, v *fastjson.Value) string {
		if err != nil || v == nil {
			return ""
		}
		b, e := v.StringBytes()
		if e != nil {
			err = errf(ReasonInvalidField, name, "must be a string")
			return ""
		}
		return a.str(b)
	}
	ev.ID, f.idName = pick(str("id", f.id), str("external_id", f.externalID), "id", "external_id")
	action := str("action", f.action)
	ev.DedupKey = str("dedup_key", f.dedupKey)
	ev.Source = str("source", f.source)
	var typ string
	typ, f.typeName = pick(str("type", f.typ), str("alert_type", f.alertType), "type", "alert_type")
	sev := str("severity", f.severity)
	ev.Title = str("title", f.title)
	ev.Description = str("description", f.description)
	occurred := str("occurred_at", f.occurredAt)
	ev.Unit = str("unit", f.unit)
	if err != nil {
		return err
	}
	if action != "" {
		a, ok := ParseAction(action)
		if !ok {
			return errf(ReasonUnknownAction, "action", "unknown action %q (want trigger, acknowledge or resolve)", truncate(action))
		}
		ev.Action = a
	}
	if f.source == nil {
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
	if f.resourcesName = "resources"; res == nil && f.affected != nil {
		res, f.resourcesName = f.affected, "affected_services"
	}
	if ev.Resources, err = stringList(f.resourcesName, res, a); err != nil {
		return err
	}
	// Resources are a set: keep them sorted and unique from here on, so the
	// fingerprint and the fold never sort again.
	slices.Sort(ev.Resources)
	ev.Resources = slices.Compact(ev.Resources)
	if ev.Labels, err = labelMap(f.labels, a); err != nil {
		return err
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
		ev.OccurredAt = meta.Timestamp.UTC().Truncate(time.Microsecond)
	}
	if f.value != nil {
		x, e := f.value.Float64()
		if e != nil {
			return errf(ReasonInvalidField, "value", "must be a number")
		}
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

func stringList(name string, v *fastjson.Value, a *arena) ([]string, *DecodeError) {
	if v == nil {
		return nil, nil
	}
	arr, e := v.Array()
	if e != nil {
		return nil, errf(ReasonInvalidField, name, "must be an array of strings")
	}
	if len(arr) > MaxResources {
		return nil, errf(ReasonInvalidField, name, "%d entries, at most %d", len(arr), MaxResources)
	}
	out := make([]string, 0, len(arr))
	for _, it := range arr {
		b, e := it.StringBytes()
		if e != nil {
			return nil, errf(ReasonInvalidField, name, "must be an array of strings")
		}
		out = append(out, a.str(b))
	}
	return out, nil
}

func labelMap(v *fastjson.Value, a *arena) (map[string]string, *DecodeError) {
	if v == nil {
		return nil, nil
	}
	obj, e := v.Object()
	if e != nil {
		return nil, errf(ReasonInvalidField, "labels", "must be an object of strings")
	}
	if obj.Len() > MaxLabels {
		return nil, errf(ReasonInvalidField, "labels", "%d labels, at most %d", obj.Len(), MaxLabels)
	}
	out := make(map[string]string, obj.Len())
	var err *DecodeError
	obj.Visit(func(k []byte, val *fastjson.Value) {
		if err != nil {
			return
		}
		b, e := val.StringBytes()
		if e != nil {
			err = errf(ReasonInvalidField, "labels."+truncate(string(k)), "label values must be strings")
			return
		}
		key := a.str(k)
		if _, dup := out[key]; dup {
			err = errf(ReasonInvalidJSON, "labels."+truncate(string(k)), "label appears twice")
			return
		}
		out[key] = a.str(b)
	})
	return out, err
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

// arena holds the bytes of every string of one decoded event in a single
// allocation. Unescaped JSON strings are never longer than the payload and
// the arena has the payload's capacity, so it never reallocates and the
// strings handed out stay valid and unchanged.
type arena struct{ buf []byte }

func (a *arena) str(b []byte) string {
	if len(b) == 0 {
		return ""
	}
	if len(a.buf)+len(b) > cap(a.buf) {
		return string(b) // cannot happen (see above); a copy keeps it safe anyway
	}
	start := len(a.buf)
	a.buf = append(a.buf, b...)
	return unsafe.String(&a.buf[start], len(b))
}

// nesting returns how deep arrays and objects nest in data (the event
// object counts 1; strings are skipped).
func nesting(data []byte) int {
	depth, deepest, inString := 0, 0, false
	for i := 0; i < len(data); i++ {
		c := data[i]
		switch {
		case inString:
			if c == '\\' {
				i++
			} else if c == '"' {
				inString = false
			}
		case c == '"':
			inString = true
		case c == '[' || c == '{':
			depth++
			deepest = max(deepest, depth)
		case c == ']' || c == '}':
			depth--
		}
	}
	return deepest
}
