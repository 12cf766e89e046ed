// Package dedupe decides which events belong to the same incident and folds
// them into incidents. It sits between decoding and storage in the pipeline
// and is pure: no I/O, no clocks (the caller passes "now").
package dedupe

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"unicode"
	"unicode/utf8"

	"github.com/llm-im/incidentd/incident"
)

// Version is the fingerprint scheme's version, the prefix of every
// fingerprint it makes.
const Version = "v1"

// DefaultFields are the identity fields used when none are configured.
var DefaultFields = []string{"source", "type", "title", "resources"}

// ErrBadField is returned by NewFingerprinter for a field that cannot be part
// of an identity.
var ErrBadField = errors.New("dedupe: invalid fingerprint field")

type fieldKind uint8

const (
	fieldSource fieldKind = iota
	fieldType
	fieldTitle
	fieldDescription
	fieldResources
	fieldLabel
)

type field struct {
	kind  fieldKind
	name  string // the name written into the canonical form
	label string // for fieldLabel
}

// Fingerprinter computes identities. It is immutable and safe for concurrent
// use.
type Fingerprinter struct {
	fields    []field
	perSource map[string][]field
	bufs      sync.Pool
}

// NewFingerprinter builds a fingerprinter from an ordered field list (nil
// means DefaultFields) and optional per-source lists.
func NewFingerprinter(fields []string, perSource map[string][]string) (*Fingerprinter, error) {
	if fields == nil {
		fields = DefaultFields
	}
	def, err := parseFields(fields)
	if err != nil {
		return nil, err
	}
	f := &Fingerprinter{fields: def, perSource: make(map[string][]field, len(perSource))}
	for src, names := range perSource {
		fs, err := parseFields(names)
		if err != nil {
			return nil, fmt.Errorf("source %q: %w", src, err)
		}
		f.perSource[src] = fs
	}
	f.bufs.New = func() any { b := make([]byte, 0, 512); return &b }
	return f, nil
}

// ValidateFields checks a field list the way NewFingerprinter does.
func ValidateFields(names []string) error {
	_, err := parseFields(names)
	return err
}

func parseFields(names []string) ([]field, error) {
	if len(names) == 0 {
		return nil, fmt.Errorf("%w: empty field list", ErrBadField)
	}
	out := make([]field, 0, len(names))
	for i, n := range names {
		if slices.Contains(names[:i], n) {
			return nil, fmt.Errorf("%w: %q listed twice", ErrBadField, n)
		}
		switch {
		case n == "source":
			out = append(out, field{kind: fieldSource, name: n})
		case n == "type":
			out = append(out, field{kind: fieldType, name: n})
		case n == "title":
			out = append(out, field{kind: fieldTitle, name: n})
		case n == "description":
			out = append(out, field{kind: fieldDescription, name: n})
		case n == "resources":
			out = append(out, field{kind: fieldResources, name: n})
		case strings.HasPrefix(n, "labels.") && len(n) > len("labels."):
			out = append(out, field{kind: fieldLabel, name: n, label: n[len("labels."):]})
		default:
			return nil, fmt.Errorf("%w: %q (allowed: source, type, title, description, resources, labels.<key>; severity, state, times and values are never part of an identity)", ErrBadField, n)
		}
	}
	return out, nil
}

// Fingerprint returns "v1:" and the first 32 lower-case hex digits of the
// SHA-256 of the event's canonical identity (see AppendCanonical).
func (f *Fingerprinter) Fingerprint(ev *incident.Event) string {
	bp := f.bufs.Get().(*[]byte)
	buf := f.AppendCanonical((*bp)[:0], ev)
	sum := sha256.Sum256(buf)
	*bp = buf
	f.bufs.Put(bp)
	var out [3 + 32]byte
	copy(out[:], Version+":")
	hex.Encode(out[3:], sum[:16])
	return string(out[:])
}

// ValidFingerprint reports whether s has the form Fingerprint gives every
// identity, dedup_key-based ones included: "v1:" and 32 lower-case hex
// digits.
func ValidFingerprint(s string) bool {
	if len(s) != 3+32 || s[:3] != Version+":" {
		return false
	}
	for i := 3; i < len(s); i++ {
		if c := s[i]; (c < '0' || c > '9') && (c < 'a' || c > 'f') {
			return false
		}
	}
	return true
}

// AppendCanonical appends the canonical identity: the RFC 8785 (JCS) JSON
// array of [name, value] pairs of the event's identity fields, in order. An
// explicit dedup_key replaces the fields with [["source",…],["dedup_key",…]].
func (f *Fingerprinter) AppendCanonical(dst []byte, ev *incident.Event) []byte {
	if ev.DedupKey != "" {
		dst = append(dst, `[["source",`...)
		dst = appendJCSString(dst, ev.Source)
		dst = append(dst, `],["dedup_key",`...)
		dst = appendJCSString(dst, ev.DedupKey)
		return append(dst, "]]"...)
	}
	fields := f.fields
	if ps, ok := f.perSource[ev.Source]; ok {
		fields = ps
	}
	dst = append(dst, '[')
	for i, fd := range fields {
		if i > 0 {
			dst = append(dst, ',')
		}
		dst = append(dst, '[')
		dst = appendJCSString(dst, fd.name)
		dst = append(dst, ',')
		switch fd.kind {
		case fieldSource:
			dst = appendJCSString(dst, ev.Source)
		case fieldType:
			dst = appendJCSString(dst, ev.Type.String())
		case fieldTitle:
			dst = appendNormalizedTitle(dst, ev.Title)
		case fieldDescription:
			dst = appendJCSString(dst, ev.Description)
		case fieldResources:
			dst = appendJCSArray(dst, SortedUnique(ev.Resources))
		case fieldLabel:
			if v, ok := ev.Labels[fd.label]; ok {
				dst = appendJCSString(dst, v)
			} else {
				dst = append(dst, "null"...)
			}
		}
		dst = append(dst, ']')
	}
	return append(dst, ']')
}

// NormalizeTitle trims, collapses runs of white space to one space and
// lower-cases as strings.ToLower does.
func NormalizeTitle(s string) string {
	return strings.ToLower(strings.Join(strings.Fields(s), " "))
}

// appendNormalizedTitle appends NormalizeTitle(s) as a JCS string without
// allocating: runs of unicode.IsSpace (what strings.Fields splits on)
// become one space, runes are lower-cased with unicode.ToLower (what
// strings.ToLower maps with, for valid UTF-8). ASCII bytes, most titles,
// take a path with no rune decoding. FuzzNormalizedTitle checks it against
// NormalizeTitle.
func appendNormalizedTitle(dst []byte, s string) []byte {
	dst = append(dst, '"')
	space, wrote := false, false
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			i++
			if asciiSpace[c] {
				space = true
				continue
			}
			if space && wrote {
				dst = append(dst, ' ')
			}
			space, wrote = false, true
			if 'A' <= c && c <= 'Z' {
				c += 'a' - 'A'
			}
			dst = appendJCSByte(dst, c)
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		i += size
		if unicode.IsSpace(r) {
			space = true
			continue
		}
		if space && wrote {
			dst = append(dst, ' ')
		}
		space, wrote = false, true
		dst = utf8.AppendRune(dst, unicode.ToLower(r))
	}
	return append(dst, '"')
}

// asciiSpace marks the ASCII bytes unicode.IsSpace accepts.
var asciiSpace = [utf8.RuneSelf]bool{'\t': true, '\n': true, '\v': true, '\f': true, '\r': true, ' ': true}

// appendJCSByte appends one ASCII byte as RFC 8785 writes it inside a string.
func appendJCSByte(dst []byte, c byte) []byte {
	if c >= 0x20 && c != '"' && c != '\\' {
		return append(dst, c)
	}
	return appendEscape(dst, c)
}

// SortedUnique returns ss sorted and de-duplicated (never nil): ss itself
// when it already is (as decoded events are), else a copy.
func SortedUnique(ss []string) []string {
	if ss != nil && isSortedUnique(ss) {
		return ss
	}
	out := slices.Clone(ss)
	if out == nil {
		out = []string{}
	}
	slices.Sort(out)
	return slices.Compact(out)
}

func appendJCSArray(dst []byte, ss []string) []byte {
	dst = append(dst, '[')
	for i, s := range ss {
		if i > 0 {
			dst = append(dst, ',')
		}
		dst = appendJCSString(dst, s)
	}
	return append(dst, ']')
}

// appendJCSString writes s as RFC 8785 does: only '"', '\\' and control
// characters are escaped, the latter with the short forms where JSON has
// them and \u00xx (lower-case hex) otherwise. s is valid UTF-8 (validated on
// decode) and is copied byte for byte.
func appendJCSString(dst []byte, s string) []byte {
	dst = append(dst, '"')
	start := 0
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c >= 0x20 && c != '"' && c != '\\' {
			continue
		}
		dst = append(dst, s[start:i]...)
		dst = appendEscape(dst, c)
		start = i + 1
	}
	dst = append(dst, s[start:]...)
	return append(dst, '"')
}

// appendEscape writes the escape of '"', '\\' or a control character: the
// short forms where JSON has them, \u00xx (lower-case hex) otherwise.
func appendEscape(dst []byte, c byte) []byte {
	const hexdigits = "0123456789abcdef"
	switch c {
	case '"':
		return append(dst, '\\', '"')
	case '\\':
		return append(dst, '\\', '\\')
	case '\b':
		return append(dst, '\\', 'b')
	case '\f':
		return append(dst, '\\', 'f')
	case '\n':
		return append(dst, '\\', 'n')
	case '\r':
		return append(dst, '\\', 'r')
	case '\t':
		return append(dst, '\\', 't')
	}
	return append(dst, '\\', 'u', '0', '0', hexdigits[c>>4], hexdigits[c&0xf])
}

func isSortedUnique(ss []string) bool {
	for i := 1; i < len(ss); i++ {
		if ss[i-1] >= ss[i] {
			return false
		}
	}
	return true
}
