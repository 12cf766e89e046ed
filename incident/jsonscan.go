package incident

import (
	"bytes"
	"encoding/binary"
)

// rawControl reports the offset of the first raw control byte (below 0x20)
// inside a JSON string. RFC 8259 requires them escaped; the parser would
// take them as they are. A word-at-a-time check spares the scan of strings
// when the payload holds no control byte at all (no line breaks between
// tokens either), which is the usual case.
func rawControl(data []byte) (int, bool) {
	if !hasControl(data) {
		return 0, false
	}
	in := false
	for i := 0; i < len(data); i++ {
		switch c := data[i]; {
		case c == '"':
			in = !in
		case c == '\\' && in:
			i++ // the escaped character, a quote among them
		case c < 0x20 && in:
			return i, true
		}
	}
	return 0, false
}

// hasControl reports whether data holds a byte below 0x20, eight bytes at
// a time: (w - 0x20 in every byte) & ^w & 0x80 in every byte is non-zero
// exactly when some byte of w is below 0x20.
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

// loneSurrogate reports the first \u escape in a JSON text that encodes
// half of a UTF-16 surrogate pair without its other half ("\ud800" alone,
// or "\udc00" not preceded by a high half), and its offset. Such an escape
// is not a Unicode character: the parser would keep it as the six
// characters \ud800, so "x\ud800y" and "x\\ud800y" would decode to one
// string and share a fingerprint. data must be valid JSON (backslashes only
// inside strings).
func loneSurrogate(data []byte) (string, int, bool) {
	for i := 0; i < len(data); i++ {
		j := bytes.IndexByte(data[i:], '\\')
		if j < 0 {
			return "", 0, false
		}
		i += j
		if i+1 < len(data) && data[i+1] != 'u' {
			i++ // a two-character escape such as \\ or \"
			continue
		}
		r, ok := hex4(data, i+2)
		if !ok {
			continue
		}
		switch {
		case r >= 0xd800 && r < 0xdc00: // a high half: a low half must follow
			if lo, ok := hex4(data, i+8); ok && data[i+6] == '\\' && data[i+7] == 'u' && lo >= 0xdc00 && lo < 0xe000 {
				i += 11
				continue
			}
			return string(data[i : i+6]), i, true
		case r >= 0xdc00 && r < 0xe000: // a low half with no high half before it
			return string(data[i : i+6]), i, true
		}
		i += 5
	}
	return "", 0, false
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
