package pebble

import (
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"time"

	"github.com/llm-im/incidentd/incident"
)

// Record encodings, the first byte of every r/ value.
const (
	// codecJSON is the incident's JSON, the document the API shows. It is
	// read, never written any more.
	codecJSON byte = 1
	// codecBinary is a compact field-by-field encoding (uvarint-prefixed
	// strings, 12-byte times, varints), about 10x faster than JSON both
	// ways; see appendBinary for the field order. Read, not written any
	// more.
	codecBinary byte = 2
	// codecBinary3 is codecBinary followed by first_received_at,
	// resolved_received_at and last_received_at (each a presence byte, then
	// the time when set).
	codecBinary3 byte = 3
)

// errBadRecord is returned for a record that does not decode.
var errBadRecord = errors.New("pebble: malformed record")

// encodeRecord returns the value stored under r/<id>.
func encodeRecord(in *incident.Incident) ([]byte, error) {
	return appendBinary(make([]byte, 0, 512), in), nil
}

// decodeRecord is encodeRecord's inverse. It does not keep b.
func decodeRecord(b []byte) (*incident.Incident, error) {
	if len(b) == 0 {
		return nil, errBadRecord
	}
	switch b[0] {
	case codecBinary, codecBinary3:
		d := decoder{b: b[1:], src: string(b[1:])}
		in := d.incident()
		if b[0] == codecBinary3 {
			in.FirstReceivedAt = d.optTimeValue()
			in.ResolvedReceivedAt = d.optTimeValue()
			in.LastReceivedAt = d.optTimeValue()
		}
		if d.bad || len(d.b) != 0 {
			return nil, errBadRecord
		}
		return in, nil
	case codecJSON:
		in := new(incident.Incident)
		if err := json.Unmarshal(b[1:], in); err != nil {
			return nil, fmt.Errorf("decode incident: %w", err)
		}
		return in, nil
	}
	return nil, fmt.Errorf("%w: encoding %d", errBadRecord, b[0])
}

// appendBinary appends codecBinary3 and the fields in declaration order.
func appendBinary(b []byte, in *incident.Incident) []byte {
	b = append(b, codecBinary3)
	for _, s := range []string{in.ID, in.Fingerprint, in.DedupKey, in.Title, in.Description, in.Source} {
		b = appendString(b, s)
	}
	b = append(b, byte(in.Type), byte(in.Severity), byte(in.PeakSeverity), byte(in.State))
	b = binary.AppendUvarint(b, uint64(len(in.Resources)))
	for _, r := range in.Resources {
		b = appendString(b, r)
	}
	if in.Labels == nil {
		b = binary.AppendUvarint(b, 0)
	} else {
		b = binary.AppendUvarint(b, uint64(len(in.Labels))+1)
		for k, v := range in.Labels {
			b = appendString(appendString(b, k), v)
		}
	}
	for _, t := range []time.Time{in.FirstSeen, in.LastSeen, in.CreatedAt, in.UpdatedAt} {
		b = appendTime(b, t)
	}
	b = binary.AppendVarint(b, in.OccurrenceCount)
	b = binary.AppendVarint(b, in.LateCount)
	b = appendString(b, in.ReopenOf)
	b = appendOptTime(b, in.ResolvedAt)
	b = appendString(b, string(in.ResolvedBy))
	b = appendOptTime(b, in.AcknowledgedAt)
	if in.LastValue == nil {
		b = append(b, 0)
	} else {
		b = binary.BigEndian.AppendUint64(append(b, 1), math.Float64bits(*in.LastValue))
	}
	b = appendString(b, in.Unit)
	b = appendTime(b, in.LatestEventAt)
	b = appendString(b, in.LatestEventID)
	b = binary.AppendVarint(b, in.Version)
	for _, t := range []time.Time{in.FirstReceivedAt, in.ResolvedReceivedAt, in.LastReceivedAt} {
		if t.IsZero() {
			b = append(b, 0)
		} else {
			b = appendTime(append(b, 1), t)
		}
	}
	return b
}

func appendString(b []byte, s string) []byte {
	return append(binary.AppendUvarint(b, uint64(len(s))), s...)
}

func appendOptTime(b []byte, t *time.Time) []byte {
	if t == nil {
		return append(b, 0)
	}
	return appendTime(append(b, 1), *t)
}

// decoder reads appendBinary's fields; bad latches the first error. When
// src holds b's bytes as one string, the strings decoded are slices of it:
// one allocation per record instead of one per field (about a dozen). A
// string kept from a decoded incident keeps the whole record's bytes alive:
// the write logs of the last logRing commits hold the ids and sources of
// what they wrote, at most about 8 x 512 records (some 3 MB) with the
// default batch. A decoder without src copies each string.
type decoder struct {
	b   []byte
	src string
	bad bool
}

func (d *decoder) incident() *incident.Incident {
	in := &incident.Incident{}
	in.ID, in.Fingerprint, in.DedupKey = d.string(), d.string(), d.string()
	in.Title, in.Description, in.Source = d.string(), d.string(), d.string()
	in.Type, in.Severity = incident.Type(d.byte()), incident.Severity(d.byte())
	in.PeakSeverity, in.State = incident.Severity(d.byte()), incident.State(d.byte())
	if n := d.count(); n > 0 {
		in.Resources = make([]string, n)
		for i := range in.Resources {
			in.Resources[i] = d.string()
		}
	} else {
		in.Resources = []string{}
	}
	if n := d.count(); n > 0 {
		in.Labels = make(map[string]string, n-1)
		for range n - 1 {
			k := d.string()
			in.Labels[k] = d.string()
		}
	}
	in.FirstSeen, in.LastSeen, in.CreatedAt, in.UpdatedAt = d.time(), d.time(), d.time(), d.time()
	in.OccurrenceCount, in.LateCount = d.varint(), d.varint()
	in.ReopenOf = d.string()
	in.ResolvedAt = d.optTime()
	in.ResolvedBy = incident.ResolvedBy(d.string())
	in.AcknowledgedAt = d.optTime()
	if d.byte() == 1 {
		if len(d.b) < 8 {
			d.bad = true
			return in
		}
		v := math.Float64frombits(binary.BigEndian.Uint64(d.b))
		in.LastValue, d.b = &v, d.b[8:]
	}
	in.Unit = d.string()
	in.LatestEventAt = d.time()
	in.LatestEventID = d.string()
	in.Version = d.varint()
	return in
}

func (d *decoder) byte() byte {
	if len(d.b) == 0 {
		d.bad = true
		return 0
	}
	c := d.b[0]
	d.b = d.b[1:]
	return c
}

func (d *decoder) count() int {
	n, k := binary.Uvarint(d.b)
	if k <= 0 || n > uint64(len(d.b)) {
		d.bad = true
		return 0
	}
	d.b = d.b[k:]
	return int(n)
}

func (d *decoder) string() string {
	n := d.count()
	if d.bad || n > len(d.b) {
		d.bad = true
		return ""
	}
	var s string
	if d.src != "" {
		at := len(d.src) - len(d.b)
		s = d.src[at : at+n]
	} else {
		s = string(d.b[:n])
	}
	d.b = d.b[n:]
	return s
}

func (d *decoder) varint() int64 {
	v, k := binary.Varint(d.b)
	if k <= 0 {
		d.bad = true
		return 0
	}
	d.b = d.b[k:]
	return v
}

func (d *decoder) time() time.Time {
	if len(d.b) < timeLen {
		d.bad = true
		return time.Time{}
	}
	t := decodeTime(d.b)
	d.b = d.b[timeLen:]
	return t
}

func (d *decoder) optTime() *time.Time {
	if d.byte() != 1 {
		return nil
	}
	t := d.time()
	return &t
}

// optTimeValue reads an optional time into a value: the zero time when
// absent.
func (d *decoder) optTimeValue() time.Time {
	if d.byte() != 1 {
		return time.Time{}
	}
	return d.time()
}
