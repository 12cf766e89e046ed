package pebble

import (
	"encoding/binary"
	"time"

	"github.com/llm-im/incidentd/incident"
)

// Key layout (every key starts with a one-letter family and a slash):
//
//	r/<id>                                      record: codec byte + incident
//	x/<field><value-esc>\x00\x01<suffix>        index membership (empty value)
//	h/<fingerprint-esc>\x00\x01<id>              identity history (empty value)
//	f/<fingerprint>                             identity pointer -> latest id
//	e/<event id>                                applied marker -> applied-at
//	E/<applied-at 12 bytes><first event id>     a batch's event ids, by time
//	c/<field><value-esc>                        counter -> int64 big endian
//
// suffix is ^(last_seen as 8-byte sign-flipped unix seconds + 4-byte nanos)
// followed by ^id and a 0xff terminator, so ascending key order inside one
// index value is newest last_seen first, id descending on ties, and every
// index key of one incident ends with the same suffix (what makes the
// leapfrog intersection work). Values are escaped (0x00 -> 0x00 0xff) and
// terminated by 0x00 0x01, so no value is a prefix of another value's keys.
var (
	famRecord     = []byte("r/")
	famIndex      = []byte("x/")
	famHistory    = []byte("h/")
	famPointer    = []byte("f/")
	famMarker     = []byte("e/")
	famMarkerTime = []byte("E/")
	famCounter    = []byte("c/")
)

// field is the one-byte code of an indexed field.
type field byte

// The indexed fields.
const (
	fieldAll         field = 'a' // a counter only; x/a keys are dropped at open
	fieldState       field = 's'
	fieldSeverity    field = 'v'
	fieldSource      field = 'o'
	fieldType        field = 't'
	fieldFingerprint field = 'f' // x/f keys are converted to h/ keys at open
)

// timeLen is the length of an encoded time.
const timeLen = 12

// entry is one index membership of an incident.
type entry struct {
	field field
	value string
}

// indexedFields is how many index memberships an incident has. The
// fingerprint has none: it never changes, so its h/ key (no last_seen in
// it) is written once, when the incident opens, and a merge moves four
// index keys, not five.
const indexedFields = 4

// entries lists the index memberships of in, in a fixed order. There is no
// "all incidents" index: every incident has exactly one severity, so the
// five severity values, merged, list them all (see planFor); only the
// counter of all incidents is kept.
func entries(in *incident.Incident) [indexedFields]entry {
	return [indexedFields]entry{
		{fieldState, in.State.String()},
		{fieldSeverity, in.Severity.String()},
		{fieldSource, in.Source},
		{fieldType, in.Type.String()},
	}
}

// appendEscaped appends v with 0x00 escaped as 0x00 0xff and the 0x00 0x01
// terminator, which keeps the encoding prefix-free and order-preserving.
func appendEscaped(dst []byte, v string) []byte {
	for i := 0; i < len(v); i++ {
		dst = append(dst, v[i])
		if v[i] == 0 {
			dst = append(dst, 0xff)
		}
	}
	return append(dst, 0, 1)
}

// splitEscaped reads an escaped, terminated value from the start of b and
// returns it and what follows its terminator.
func splitEscaped(b []byte) (string, []byte, bool) {
	v := make([]byte, 0, len(b))
	for i := 0; i < len(b); i++ {
		if b[i] != 0 {
			v = append(v, b[i])
			continue
		}
		if i+1 == len(b) {
			return "", nil, false
		}
		switch b[i+1] {
		case 1:
			return string(v), b[i+2:], true
		case 0xff:
			v = append(v, 0)
			i++
		default:
			return "", nil, false
		}
	}
	return "", nil, false
}

// indexPrefix is the key prefix of every member of one field value.
func indexPrefix(f field, value string) []byte {
	k := make([]byte, 0, len(famIndex)+1+len(value)+2+timeLen+40)
	k = append(k, famIndex...)
	k = append(k, byte(f))
	return appendEscaped(k, value)
}

// appendTime appends t as 12 bytes that sort like t.
func appendTime(dst []byte, t time.Time) []byte {
	dst = binary.BigEndian.AppendUint64(dst, uint64(t.Unix())^(1<<63))
	return binary.BigEndian.AppendUint32(dst, uint32(t.Nanosecond()))
}

// decodeTime is appendTime's inverse.
func decodeTime(b []byte) time.Time {
	sec := int64(binary.BigEndian.Uint64(b) ^ (1 << 63))
	return time.Unix(sec, int64(binary.BigEndian.Uint32(b[8:]))).UTC()
}

// appendInvTime appends t inverted: later times sort first.
func appendInvTime(dst []byte, t time.Time) []byte {
	n := len(dst)
	dst = appendTime(dst, t)
	for i := n; i < len(dst); i++ {
		dst[i] = ^dst[i]
	}
	return dst
}

// appendSuffix appends the newest-first ordering suffix of an incident.
func appendSuffix(dst []byte, lastSeen time.Time, id string) []byte {
	dst = appendInvTime(dst, lastSeen)
	for i := 0; i < len(id); i++ {
		dst = append(dst, ^id[i])
	}
	return append(dst, 0xff)
}

// suffixID returns the incident id a suffix ends with.
func suffixID(suffix []byte) string {
	inv := suffix[timeLen : len(suffix)-1]
	b := make([]byte, len(inv))
	for i, c := range inv {
		b[i] = ^c
	}
	return string(b)
}

// indexKey is the membership key of one field value of an incident.
func indexKey(e entry, lastSeen time.Time, id string) []byte {
	return appendSuffix(indexPrefix(e.field, e.value), lastSeen, id)
}

// historyPrefix is h/<fingerprint-esc>\x00\x01: the prefix of every
// incident of one identity.
func historyPrefix(fp string) []byte {
	return appendEscaped(append([]byte(nil), famHistory...), fp)
}

// historyKey is h/<fingerprint-esc>\x00\x01<id>.
func historyKey(fp, id string) []byte { return append(historyPrefix(fp), id...) }

// recordKey is r/<id>.
func recordKey(id string) []byte { return join(famRecord, id) }

// pointerKey is f/<fingerprint>.
func pointerKey(fp string) []byte { return join(famPointer, fp) }

// markerKey is e/<event id>.
func markerKey(eventID string) []byte { return join(famMarker, eventID) }

// markerTimeKey is E/<at><first event id of the batch>.
func markerTimeKey(at time.Time, eventID string) []byte {
	k := make([]byte, 0, len(famMarkerTime)+timeLen+len(eventID))
	k = append(k, famMarkerTime...)
	k = appendTime(k, at)
	return append(k, eventID...)
}

// counterKey is c/<field><value-esc>.
func counterKey(f field, value string) []byte {
	k := make([]byte, 0, len(famCounter)+1+len(value)+2)
	k = append(k, famCounter...)
	k = append(k, byte(f))
	return appendEscaped(k, value)
}

// parseCounterKey splits a counter key into its field and value.
func parseCounterKey(k []byte) (field, string, bool) {
	if len(k) < len(famCounter)+3 {
		return 0, "", false
	}
	body := k[len(famCounter)+1:]
	if body[len(body)-2] != 0 || body[len(body)-1] != 1 {
		return 0, "", false
	}
	body = body[:len(body)-2]
	v := make([]byte, 0, len(body))
	for i := 0; i < len(body); i++ {
		v = append(v, body[i])
		if body[i] == 0 {
			i++ // skip the 0xff escape
		}
	}
	return field(k[len(famCounter)]), string(v), true
}

func join(fam []byte, s string) []byte {
	k := make([]byte, 0, len(fam)+len(s))
	k = append(k, fam...)
	return append(k, s...)
}

// prefixEnd returns the smallest key greater than every key starting with
// p, or nil when there is none.
func prefixEnd(p []byte) []byte {
	end := append([]byte(nil), p...)
	for i := len(end) - 1; i >= 0; i-- {
		if end[i] != 0xff {
			end[i]++
			return end[:i+1]
		}
	}
	return nil
}
