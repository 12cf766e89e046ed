package redis

import (
	"encoding"
	"encoding/json"
	"fmt"
	"math"
	"slices"
	"strconv"
	"time"
	"unicode/utf8"

	"github.com/llm-im/incidentd/incident"
)

// The records are the JSON of encoding/json (the reference's format, and
// what the API shows). encode and decode produce and read exactly that, a
// few times faster than reflection: encode appends the fields in struct
// order and hands anything it does not reproduce byte for byte (a string
// that needs escaping, a value whose marshalling fails) to json.Marshal;
// decode reads the shape encode writes and hands anything else (escapes,
// whitespace, unknown or repeated keys, odd literals) to json.Unmarshal.
// codec_test.go checks both against encoding/json.

// encode appends the record of an incident to dst, as json.Marshal
// would write it.
func encode(dst []byte, in *incident.Incident) ([]byte, error) {
	if b, ok := appendIncident(dst, in); ok {
		return b, nil
	}
	b, err := json.Marshal(in)
	if err != nil {
		return dst, fmt.Errorf("redis encode incident %s: %w", in.ID, err)
	}
	return append(dst, b...), nil
}

// appendIncident appends in's JSON; false when a field needs json.Marshal.
func appendIncident(b []byte, in *incident.Incident) ([]byte, bool) {
	ok := true
	str := func(key, v string) {
		b = append(b, key...)
		if ok = ok && plain(v); ok {
			b = append(b, '"')
			b = append(b, v...)
			b = append(b, '"')
		}
	}
	text := func(key string, v encoding.TextMarshaler) {
		t, err := v.MarshalText()
		if err != nil {
			ok = false
			return
		}
		str(key, string(t))
	}
	tm := func(key string, t time.Time) {
		b = append(b, key...)
		b = append(b, '"')
		n0 := len(b)
		b = t.AppendFormat(b, time.RFC3339Nano)
		// time.Time.MarshalJSON refuses what RFC 3339 cannot say.
		if b[n0+4] != '-' {
			ok = false
		} else if b[len(b)-1] != 'Z' {
			c := b[len(b)-6]
			h := 10*int(b[len(b)-5]-'0') + int(b[len(b)-4]-'0')
			if ('0' <= c && c <= '9') || h >= 24 {
				ok = false
			}
		}
		b = append(b, '"')
	}
	str(`{"id":`, in.ID)
	str(`,"fingerprint":`, in.Fingerprint)
	if in.DedupKey != "" {
		str(`,"dedup_key":`, in.DedupKey)
	}
	str(`,"title":`, in.Title)
	if in.Description != "" {
		str(`,"description":`, in.Description)
	}
	str(`,"source":`, in.Source)
	text(`,"type":`, in.Type)
	text(`,"severity":`, in.Severity)
	text(`,"peak_severity":`, in.PeakSeverity)
	text(`,"state":`, in.State)
	if in.Resources == nil {
		b = append(b, `,"resources":null`...)
	} else {
		b = append(b, `,"resources":[`...)
		for i, r := range in.Resources {
			sep := ","
			if i == 0 {
				sep = ""
			}
			str(sep, r)
		}
		b = append(b, ']')
	}
	if len(in.Labels) > 0 {
		keys := make([]string, 0, len(in.Labels))
		for k := range in.Labels {
			keys = append(keys, k)
		}
		slices.Sort(keys)
		b = append(b, `,"labels":{`...)
		for i, k := range keys {
			sep := ","
			if i == 0 {
				sep = ""
			}
			str(sep, k)
			str(":", in.Labels[k])
		}
		b = append(b, '}')
	}
	tm(`,"first_seen":`, in.FirstSeen)
	tm(`,"last_seen":`, in.LastSeen)
	tm(`,"created_at":`, in.CreatedAt)
	tm(`,"updated_at":`, in.UpdatedAt)
	b = append(b, `,"occurrence_count":`...)
	b = strconv.AppendInt(b, in.OccurrenceCount, 10)
	if in.LateCount != 0 {
		b = append(b, `,"late_count":`...)
		b = strconv.AppendInt(b, in.LateCount, 10)
	}
	if in.ReopenOf != "" {
		str(`,"reopen_of":`, in.ReopenOf)
	}
	if in.ResolvedAt != nil {
		tm(`,"resolved_at":`, *in.ResolvedAt)
	}
	if in.ResolvedBy != "" {
		str(`,"resolved_by":`, string(in.ResolvedBy))
	}
	if in.AcknowledgedAt != nil {
		tm(`,"acknowledged_at":`, *in.AcknowledgedAt)
	}
	if in.LastValue != nil {
		f := *in.LastValue
		if math.IsNaN(f) || math.IsInf(f, 0) {
			return nil, false
		}
		b = append(b, `,"last_value":`...)
		b = appendFloat(b, f)
	}
	if in.Unit != "" {
		str(`,"unit":`, in.Unit)
	}
	tm(`,"latest_event_at":`, in.LatestEventAt)
	str(`,"latest_event_id":`, in.LatestEventID)
	if !in.FirstReceivedAt.IsZero() {
		tm(`,"first_received_at":`, in.FirstReceivedAt)
	}
	if !in.ResolvedReceivedAt.IsZero() {
		tm(`,"resolved_received_at":`, in.ResolvedReceivedAt)
	}
	if !in.LastReceivedAt.IsZero() {
		tm(`,"last_received_at":`, in.LastReceivedAt)
	}
	b = append(b, `,"version":`...)
	b = strconv.AppendInt(b, in.Version, 10)
	b = append(b, '}')
	return b, ok
}

// appendFloat is encoding/json's float64 format.
func appendFloat(b []byte, f float64) []byte {
	format := byte('f')
	if a := math.Abs(f); a != 0 && (a < 1e-6 || a >= 1e21) {
		format = 'e'
	}
	b = strconv.AppendFloat(b, f, format, -1, 64)
	if format == 'e' {
		// clean up e-09 to e-9
		if n := len(b); n >= 4 && b[n-4] == 'e' && b[n-3] == '-' && b[n-2] == '0' {
			b[n-2] = b[n-1]
			b = b[:n-1]
		}
	}
	return b
}

// plain reports whether encoding/json writes s as is between quotes:
// printable ASCII without '"', '\\' and the HTML characters it escapes.
// It looks at eight bytes at a time: any byte >= 0x80, < 0x20 or equal to
// one of the five is found exactly by the usual SWAR tests.
func plain(s string) bool {
	const ones, highs = 0x0101010101010101, 0x8080808080808080
	has := func(x uint64, c byte) uint64 { // a byte of x equals c
		y := x ^ (ones * uint64(c))
		return (y - ones) &^ y & highs
	}
	i := 0
	for ; i+8 <= len(s); i += 8 {
		x := uint64(s[i]) | uint64(s[i+1])<<8 | uint64(s[i+2])<<16 | uint64(s[i+3])<<24 |
			uint64(s[i+4])<<32 | uint64(s[i+5])<<40 | uint64(s[i+6])<<48 | uint64(s[i+7])<<56
		if x&highs|(x-ones*0x20)&^x&highs|has(x, '"')|has(x, '\\')|has(x, '<')|has(x, '>')|has(x, '&') != 0 {
			return false
		}
	}
	for ; i < len(s); i++ {
		c := s[i]
		if c < 0x20 || c >= utf8.RuneSelf || c == '"' || c == '\\' || c == '<' || c == '>' || c == '&' {
			return false
		}
	}
	return true
}

// decode reads a record, as json.Unmarshal into an incident.Incident would.
func decode(raw string) (*incident.Incident, error) {
	if in, ok := decodeFast(raw); ok {
		return in, nil
	}
	var in incident.Incident
	if err := json.Unmarshal([]byte(raw), &in); err != nil {
		return nil, fmt.Errorf("redis decode incident: %w", err)
	}
	return &in, nil
}

// reader walks a record; bad latches the first surprise.
type reader struct {
	s   string
	i   int
	bad bool
}

func (r *reader) byte(c byte) {
	if r.i < len(r.s) && r.s[r.i] == c {
		r.i++
		return
	}
	r.bad = true
}

// str reads a string without escapes (any escape is a surprise).
func (r *reader) str() string {
	r.byte('"')
	if r.bad {
		return ""
	}
	start := r.i
	ascii := true
	for r.i < len(r.s) {
		switch c := r.s[r.i]; {
		case c == '"':
			r.i++
			v := r.s[start : r.i-1]
			if !ascii && !utf8.ValidString(v) {
				r.bad = true // json.Unmarshal replaces invalid UTF-8
			}
			return v
		case c >= utf8.RuneSelf:
			ascii = false
		case c == '\\' || c < 0x20:
			r.bad = true
			return ""
		}
		r.i++
	}
	r.bad = true
	return ""
}

// literal reads a number, true, false or null, up to the next ',', '}' or ']'.
func (r *reader) literal() string {
	start := r.i
	for r.i < len(r.s) && r.s[r.i] != ',' && r.s[r.i] != '}' && r.s[r.i] != ']' {
		r.i++
	}
	if r.i == start {
		r.bad = true
	}
	return r.s[start:r.i]
}

func (r *reader) null() bool {
	if len(r.s)-r.i >= 4 && r.s[r.i:r.i+4] == "null" {
		r.i += 4
		return true
	}
	return false
}

func (r *reader) int() int64 {
	lit := r.literal()
	v, err := strconv.ParseInt(lit, 10, 64)
	if err != nil || !number(lit) {
		r.bad = true
	}
	return v
}

// number reports whether s is a JSON number.
func number(s string) bool {
	i := 0
	digits := func() int {
		n := 0
		for i < len(s) && '0' <= s[i] && s[i] <= '9' {
			i++
			n++
		}
		return n
	}
	if i < len(s) && s[i] == '-' {
		i++
	}
	if i < len(s) && s[i] == '0' {
		i++
	} else if digits() == 0 {
		return false
	}
	if i < len(s) && s[i] == '.' {
		i++
		if digits() == 0 {
			return false
		}
	}
	if i < len(s) && (s[i] == 'e' || s[i] == 'E') {
		i++
		if i < len(s) && (s[i] == '+' || s[i] == '-') {
			i++
		}
		if digits() == 0 {
			return false
		}
	}
	return i == len(s)
}

func (r *reader) time() time.Time {
	start := r.i
	r.str()
	var t time.Time
	if !r.bad {
		if err := t.UnmarshalJSON([]byte(r.s[start:r.i])); err != nil {
			r.bad = true
		}
	}
	return t
}

func (r *reader) text(v encoding.TextUnmarshaler) {
	if s := r.str(); !r.bad {
		if err := v.UnmarshalText([]byte(s)); err != nil {
			r.bad = true
		}
	}
}

// decodeFast reads the records appendIncident writes (any key order, no
// whitespace, no escapes); false for anything else.
func decodeFast(raw string) (*incident.Incident, bool) {
	in := &incident.Incident{}
	r := &reader{s: raw}
	var seen uint32
	r.byte('{')
	for first := true; !r.bad; first = false {
		if r.i < len(r.s) && r.s[r.i] == '}' && first {
			r.i++
			break
		}
		key := r.str()
		r.byte(':')
		if r.bad {
			break
		}
		f := field(key)
		if f < 0 || seen&(1<<f) != 0 {
			return nil, false
		}
		seen |= 1 << f
		switch key {
		case "id":
			in.ID = r.str()
		case "fingerprint":
			in.Fingerprint = r.str()
		case "dedup_key":
			in.DedupKey = r.str()
		case "title":
			in.Title = r.str()
		case "description":
			in.Description = r.str()
		case "source":
			in.Source = r.str()
		case "type":
			r.text(&in.Type)
		case "severity":
			r.text(&in.Severity)
		case "peak_severity":
			r.text(&in.PeakSeverity)
		case "state":
			r.text(&in.State)
		case "resources":
			if r.null() {
				break
			}
			r.byte('[')
			in.Resources = []string{}
			for k := 0; !r.bad && !(r.i < len(r.s) && r.s[r.i] == ']'); k++ {
				if k > 0 {
					r.byte(',')
				}
				in.Resources = append(in.Resources, r.str())
			}
			r.byte(']')
		case "labels":
			if r.null() {
				break
			}
			r.byte('{')
			in.Labels = map[string]string{}
			for k := 0; !r.bad && !(r.i < len(r.s) && r.s[r.i] == '}'); k++ {
				if k > 0 {
					r.byte(',')
				}
				lk := r.str()
				r.byte(':')
				if _, dup := in.Labels[lk]; dup {
					return nil, false // json.Unmarshal keeps the last
				}
				in.Labels[lk] = r.str()
			}
			r.byte('}')
		case "first_seen":
			in.FirstSeen = r.time()
		case "last_seen":
			in.LastSeen = r.time()
		case "created_at":
			in.CreatedAt = r.time()
		case "updated_at":
			in.UpdatedAt = r.time()
		case "occurrence_count":
			in.OccurrenceCount = r.int()
		case "late_count":
			in.LateCount = r.int()
		case "reopen_of":
			in.ReopenOf = r.str()
		case "resolved_at":
			if !r.null() {
				t := r.time()
				in.ResolvedAt = &t
			}
		case "resolved_by":
			in.ResolvedBy = incident.ResolvedBy(r.str())
		case "acknowledged_at":
			if !r.null() {
				t := r.time()
				in.AcknowledgedAt = &t
			}
		case "last_value":
			if !r.null() {
				lit := r.literal()
				v, err := strconv.ParseFloat(lit, 64)
				if err != nil || !number(lit) {
					return nil, false
				}
				in.LastValue = &v
			}
		case "unit":
			in.Unit = r.str()
		case "latest_event_at":
			in.LatestEventAt = r.time()
		case "latest_event_id":
			in.LatestEventID = r.str()
		case "first_received_at":
			in.FirstReceivedAt = r.time()
		case "resolved_received_at":
			in.ResolvedReceivedAt = r.time()
		case "last_received_at":
			in.LastReceivedAt = r.time()
		case "version":
			in.Version = r.int()
		}
		if r.i < len(r.s) && r.s[r.i] == '}' {
			r.i++
			break
		}
		r.byte(',')
	}
	if r.bad || r.i != len(r.s) {
		return nil, false
	}
	return in, true
}

// field numbers the JSON keys of an incident.Incident; -1 for others.
func field(key string) int {
	switch key {
	case "id":
		return 0
	case "fingerprint":
		return 1
	case "dedup_key":
		return 2
	case "title":
		return 3
	case "description":
		return 4
	case "source":
		return 5
	case "type":
		return 6
	case "severity":
		return 7
	case "peak_severity":
		return 8
	case "state":
		return 9
	case "resources":
		return 10
	case "labels":
		return 11
	case "first_seen":
		return 12
	case "last_seen":
		return 13
	case "created_at":
		return 14
	case "updated_at":
		return 15
	case "occurrence_count":
		return 16
	case "late_count":
		return 17
	case "reopen_of":
		return 18
	case "resolved_at":
		return 19
	case "resolved_by":
		return 20
	case "acknowledged_at":
		return 21
	case "last_value":
		return 22
	case "unit":
		return 23
	case "latest_event_at":
		return 24
	case "latest_event_id":
		return 25
	case "version":
		return 26
	case "first_received_at":
		return 27
	case "resolved_received_at":
		return 28
	case "last_received_at":
		return 29
	}
	return -1
}
