package incident

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"math/bits"
	"strconv"
	"unicode/utf8"
	"unsafe"
)

// maxDepth is how deeply arrays and objects may nest, the event object
// counting as the first level.
const maxDepth = 300

// kind is the type of a JSON value.
type kind uint8

const (
	kindAbsent kind = iota
	kindNull
	kindString
	kindNumber
	kindBool
	kindArray
	kindObject
)

// span is one JSON value of the payload: its kind, where its bytes lie (for
// a string, between the quotes), whether a string holds escapes, and how
// many members or items an object or array has.
type span struct {
	kind       kind
	esc        bool
	start, end int
	n          int
}

// scanner reads a payload once, checking it against RFC 8259, and reports
// the values of the event object's members as spans. It also notes, without
// stopping, the first raw control byte inside a string and the first escape
// that is half of a UTF-16 surrogate pair: a payload with either is
// rejected, after syntax errors (which a later part of the payload may
// hold).
type scanner struct {
	data      []byte
	i         int
	err       string // the first syntax error
	deep      bool   // the syntax error is nesting past maxDepth
	ctl       bool   // the payload has bytes below 0x20 (in strings or not)
	control   int    // offset of the first raw control byte in a string, or -1
	surrogate int    // offset of the first lone surrogate escape, or -1
}

// fail records a syntax error at byte i and returns false.
func (s *scanner) fail(i int, format string, args ...any) bool {
	if s.err == "" {
		s.err = fmt.Sprintf("byte %d: ", i) + fmt.Sprintf(format, args...)
	}
	return false
}

// near quotes a few bytes from i for a syntax error.
func (s *scanner) near(i int) string {
	if i >= len(s.data) {
		return "the end of the payload"
	}
	end := min(i+16, len(s.data))
	for end < len(s.data) && end > i+1 && !utf8.RuneStart(s.data[end]) {
		end--
	}
	return strconv.Quote(string(s.data[i:end]))
}

func (s *scanner) ws() {
	for s.i < len(s.data) {
		switch s.data[s.i] {
		case ' ', '\t', '\n', '\r':
			s.i++
		default:
			return
		}
	}
}

// value scans the value at s.i, inside containers nested depth deep.
func (s *scanner) value(depth int) (span, bool) {
	d, start := s.data, s.i
	if start >= len(d) {
		return span{}, s.fail(start, "a value is missing at the end of the payload")
	}
	switch c := d[start]; {
	case c == '"':
		esc, ok := s.str()
		return span{kind: kindString, esc: esc, start: start + 1, end: s.i - 1}, ok
	case c == '{':
		n, ok := s.object(depth+1, nil)
		return span{kind: kindObject, start: start, end: s.i, n: n}, ok
	case c == '[':
		n, ok := s.array(depth+1, nil)
		return span{kind: kindArray, start: start, end: s.i, n: n}, ok
	case c == '-' || (c >= '0' && c <= '9'):
		ok := s.number()
		return span{kind: kindNumber, start: start, end: s.i}, ok
	case c == 't':
		return span{kind: kindBool, start: start, end: start + 4}, s.literal("true")
	case c == 'f':
		return span{kind: kindBool, start: start, end: start + 5}, s.literal("false")
	case c == 'n':
		return span{kind: kindNull, start: start, end: start + 4}, s.literal("null")
	default:
		return span{}, s.fail(start, "expected a value, found %s", s.near(start))
	}
}

func (s *scanner) literal(word string) bool {
	if !bytes.HasPrefix(s.data[s.i:], []byte(word)) {
		return s.fail(s.i, "expected %s, found %s", word, s.near(s.i))
	}
	s.i += len(word)
	return true
}

// object scans the object at s.i, calling member (when not nil) for each
// member with its name (as a string span) and value, and returns how many
// members it has. member returning false stops the scan.
func (s *scanner) object(depth int, member func(name, v span) bool) (int, bool) {
	more, ok := s.open(depth, '}')
	d := s.data
	n := 0
	for ; more && ok; more, ok = s.next('}', "an object") {
		n++
		if s.i >= len(d) || d[s.i] != '"' {
			return n, s.fail(s.i, "expected a member name in quotes, found %s", s.near(s.i))
		}
		name := span{kind: kindString, start: s.i + 1}
		if name.esc, ok = s.str(); !ok {
			return n, false
		}
		name.end = s.i - 1
		if s.ws(); s.i >= len(d) || d[s.i] != ':' {
			return n, s.fail(s.i, "expected ':' after a member name, found %s", s.near(s.i))
		}
		s.i++
		s.ws()
		v, ok := s.value(depth)
		if !ok {
			return n, false
		}
		if member != nil && !member(name, v) {
			return n, true
		}
	}
	return n, ok
}

// array scans the array at s.i, calling item (when not nil) for each item,
// and returns how many items it has.
func (s *scanner) array(depth int, item func(v span) bool) (int, bool) {
	more, ok := s.open(depth, ']')
	n := 0
	for ; more && ok; more, ok = s.next(']', "an array") {
		n++
		v, ok := s.value(depth)
		if !ok {
			return n, false
		}
		if item != nil && !item(v) {
			return n, true
		}
	}
	return n, ok
}

// open enters the object or array at s.i, nested depth deep, and reports
// whether a first member or item follows (not the closing byte).
func (s *scanner) open(depth int, closing byte) (more, ok bool) {
	if depth > maxDepth {
		s.deep = true
		return false, s.fail(s.i, "nested too deep")
	}
	s.i++ // '{' or '['
	s.ws()
	if s.i < len(s.data) && s.data[s.i] == closing {
		s.i++
		return false, true
	}
	return true, true
}

// next reads what follows a member or item: a comma (more follow) or the
// closing byte.
func (s *scanner) next(closing byte, in string) (more, ok bool) {
	d := s.data
	s.ws()
	if s.i < len(d) && d[s.i] == ',' {
		s.i++
		s.ws()
		return true, true
	}
	if s.i < len(d) && d[s.i] == closing {
		s.i++
		return false, true
	}
	return false, s.fail(s.i, "expected ',' or '%c' in %s, found %s", closing, in, s.near(s.i))
}

// number scans a number: -? (0 | [1-9][0-9]*) (. [0-9]+)? ([eE] [+-]? [0-9]+)?
func (s *scanner) number() bool {
	d, i := s.data, s.i
	if d[i] == '-' {
		i++
	}
	switch {
	case i < len(d) && d[i] == '0':
		i++
	case i < len(d) && d[i] >= '1' && d[i] <= '9':
		i = digits(d, i)
	default:
		return s.fail(i, "a number needs a digit here, found %s", s.near(i))
	}
	if i < len(d) && d[i] == '.' {
		if j := digits(d, i+1); j > i+1 {
			i = j
		} else {
			return s.fail(i+1, "a number needs a digit after '.', found %s", s.near(i+1))
		}
	}
	if i < len(d) && (d[i] == 'e' || d[i] == 'E') {
		i++
		if i < len(d) && (d[i] == '+' || d[i] == '-') {
			i++
		}
		j := digits(d, i)
		if j == i {
			return s.fail(i, "a number needs a digit in its exponent, found %s", s.near(i))
		}
		i = j
	}
	s.i = i
	return true
}

func digits(d []byte, i int) int {
	for i < len(d) && d[i] >= '0' && d[i] <= '9' {
		i++
	}
	return i
}

// str scans the string whose opening quote is at s.i, leaving s.i after
// its closing quote, and reports whether it holds escapes. Raw control
// bytes are looked for only in a payload that has some (s.ctl).
func (s *scanner) str() (esc, ok bool) {
	d := s.data
	from := s.i + 1
	i := from
	for {
		i = special(d, i)
		if i >= len(d) {
			return esc, s.fail(s.i, "string not terminated")
		}
		if d[i] == '"' {
			break
		}
		esc = true
		n, ok := s.escape(i)
		if !ok {
			return esc, false
		}
		i += n
	}
	if s.ctl {
		s.controls(from, d[from:i])
	}
	s.i = i + 1
	return esc, true
}

// special returns the offset of the first quote or backslash in d from i
// on, or len(d). Eight bytes at a time: (x - 0x01 in every byte) & ^x &
// 0x80 in every byte marks the zero bytes of x, the lowest mark exactly, so
// with x = w ^ '"' in every byte (or '\\') the lowest mark of either is the
// first byte sought.
func special(d []byte, i int) int {
	const ones, highs = 0x0101010101010101, 0x8080808080808080
	for ; i+8 <= len(d); i += 8 {
		w := binary.LittleEndian.Uint64(d[i:])
		q, b := w^(0x22*ones), w^(0x5c*ones)
		if m := ((q-ones)&^q | (b-ones)&^b) & highs; m != 0 {
			return i + bits.TrailingZeros64(m)>>3
		}
	}
	for ; i < len(d); i++ {
		if c := d[i]; c == '"' || c == '\\' {
			return i
		}
	}
	return i
}

// controls notes the first raw control byte of seg, which starts at byte
// at of the payload (escapes hold none).
func (s *scanner) controls(at int, seg []byte) {
	if s.control >= 0 {
		return
	}
	for i, c := range seg {
		if c < 0x20 {
			s.control = at + i
			return
		}
	}
}

// escape checks the escape at d[i] (a backslash) and returns its length.
func (s *scanner) escape(i int) (int, bool) {
	d := s.data
	if i+1 >= len(d) {
		return 0, s.fail(i, "string not terminated")
	}
	switch d[i+1] {
	case '"', '\\', '/', 'b', 'f', 'n', 'r', 't':
		return 2, true
	case 'u':
	default:
		return 0, s.fail(i, "invalid escape %s", s.near(i))
	}
	r, ok := hex4(d, i+2)
	if !ok {
		return 0, s.fail(i, "invalid escape %s: \\u takes four hex digits", s.near(i))
	}
	switch {
	case r >= 0xd800 && r < 0xdc00: // a high half: a low half must follow
		if i+12 <= len(d) && d[i+6] == '\\' && d[i+7] == 'u' {
			if lo, ok := hex4(d, i+8); ok && lo >= 0xdc00 && lo < 0xe000 {
				return 12, true
			}
		}
		s.lone(i)
	case r >= 0xdc00 && r < 0xe000: // a low half with no high half before it
		s.lone(i)
	}
	return 6, true
}

func (s *scanner) lone(i int) {
	if s.surrogate < 0 {
		s.surrogate = i
	}
}

// hasControl reports whether data holds a byte below 0x20, eight bytes at
// a time: (w - 0x20 in every byte) & ^w & 0x80 in every byte is non-zero
// exactly when some byte of w is below 0x20. Compact JSON has none, and
// then no string needs checking for raw control bytes.
func hasControl(data []byte) bool {
	i := 0
	for ; i+8 <= len(data); i += 8 {
		w := binary.LittleEndian.Uint64(data[i:])
		if (w-0x2020202020202020)&^w&0x8080808080808080 != 0 {
			return true
		}
	}
	for ; i < len(data); i++ {
		if data[i] < 0x20 {
			return true
		}
	}
	return false
}

// hex4 reads four hex digits at data[i:].
func hex4(data []byte, i int) (rune, bool) {
	if i < 0 || i+4 > len(data) {
		return 0, false
	}
	var r rune
	for _, c := range data[i : i+4] {
		switch {
		case c >= '0' && c <= '9':
			r = r<<4 | rune(c-'0')
		case c >= 'a' && c <= 'f':
			r = r<<4 | rune(c-'a'+10)
		case c >= 'A' && c <= 'F':
			r = r<<4 | rune(c-'A'+10)
		default:
			return 0, false
		}
	}
	return r, true
}

// unescape appends the text of a scanned string's raw bytes (escapes
// checked, no lone surrogate) to dst.
func unescape(dst, raw []byte) []byte {
	for len(raw) > 0 {
		j := bytes.IndexByte(raw, '\\')
		if j < 0 {
			return append(dst, raw...)
		}
		dst = append(dst, raw[:j]...)
		raw = raw[j:]
		switch c := raw[1]; c {
		case 'b':
			dst = append(dst, '\b')
		case 'f':
			dst = append(dst, '\f')
		case 'n':
			dst = append(dst, '\n')
		case 'r':
			dst = append(dst, '\r')
		case 't':
			dst = append(dst, '\t')
		case 'u':
			r, _ := hex4(raw, 2)
			if r >= 0xd800 && r < 0xdc00 {
				lo, _ := hex4(raw, 8)
				dst = utf8.AppendRune(dst, 0x10000+(r-0xd800)<<10+(lo-0xdc00))
				raw = raw[12:]
				continue
			}
			dst = utf8.AppendRune(dst, r)
			raw = raw[6:]
			continue
		default: // '"', '\\', '/'
			dst = append(dst, c)
		}
		raw = raw[2:]
	}
	return dst
}

// arena holds the bytes of every string of one decoded event in a single
// allocation. Unescaped JSON strings are never longer than the payload and
// the arena has the payload's capacity, so it never reallocates and the
// strings handed out stay valid and unchanged.
type arena struct{ buf []byte }

// text returns the string value v of data, unescaped, from the arena.
func (a *arena) text(data []byte, v span) string {
	raw := data[v.start:v.end]
	if len(raw) == 0 {
		return ""
	}
	if len(a.buf)+len(raw) > cap(a.buf) {
		return string(unescape(nil, raw)) // cannot happen (see above); a copy keeps it safe anyway
	}
	start := len(a.buf)
	if v.esc {
		a.buf = unescape(a.buf, raw)
	} else {
		a.buf = append(a.buf, raw...)
	}
	if len(a.buf) == start {
		return ""
	}
	return unsafe.String(&a.buf[start], len(a.buf)-start)
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
