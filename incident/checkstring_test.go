package incident

import (
	"testing"
	"unicode/utf8"
)

// checkStringSlow is checkString's definition, one byte at a time.
func checkStringSlow(s string, multiline bool) bool {
	if !utf8.ValidString(s) {
		return false
	}
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < 0x20 || c == 0x7f {
			if !multiline || (c != '\n' && c != '\t' && c != '\r') {
				return false
			}
		}
	}
	return true
}

func TestPrintableASCII8(t *testing.T) {
	for c := 0; c < 256; c++ {
		for pos := 0; pos < 8; pos++ {
			b := []byte("abcdefgh")
			b[pos] = byte(c)
			want := c >= 0x20 && c <= 0x7e
			if got := printableASCII8(string(b)); got != want {
				t.Fatalf("byte %#x at %d: got %v, want %v", c, pos, got, want)
			}
		}
	}
}

func FuzzCheckString(f *testing.F) {
	for _, s := range []string{"", "plain ascii title here", "tab\there", "new\nline and more text", "\x7fdel in a long string",
		"é accent in a longer string", "bad \xff utf8 in a longer string", "zero\x00byte", "~~~~~~~~\x7f", "        \x1f"} {
		f.Add(s, false)
		f.Add(s, true)
	}
	f.Fuzz(func(t *testing.T, s string, multiline bool) {
		got := checkString("f", s, 1<<20, multiline) == nil
		if want := checkStringSlow(s, multiline); got != want {
			t.Fatalf("checkString(%q, %v) ok = %v, want %v", s, multiline, got, want)
		}
	})
}

func BenchmarkCheckString(b *testing.B) {
	s := "the gateway observed sustained degradation across replicas while the evaluator flagged responses " +
		"whose quality dropped below the agreed service level objective for this tenant and the guardrail " +
		"pipeline rejected a growing share of completions after the last deployment"
	b.SetBytes(int64(len(s)))
	b.Run("word-at-a-time", func(b *testing.B) {
		for b.Loop() {
			if checkString("description", s, 1<<16, true) != nil {
				b.Fatal("rejected")
			}
		}
	})
	b.Run("byte-at-a-time", func(b *testing.B) {
		for b.Loop() {
			if !checkStringSlow(s, true) {
				b.Fatal("rejected")
			}
		}
	})
}
