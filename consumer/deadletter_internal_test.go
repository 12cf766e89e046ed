package consumer

import (
	"strconv"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/nats-io/nats.go"
)

// TestFit: a dead letter over the server's max_payload keeps the start of
// its payload and says how large the original was; one that fits is left
// alone.
func TestFit(t *testing.T) {
	for _, tc := range []struct {
		name      string
		size      int
		limit     int64
		truncated bool
	}{
		{"fits", 1000, 4096, false},
		{"no limit known", 1 << 20, 0, false},
		{"payload alone fits, headers do not", 4000, 4096, true},
		{"far over", 1 << 20, 4096, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m := nats.NewMsg("incidents.dlq.too_large")
			m.Header.Set(HeaderReason, "too_large")
			m.Header.Set(HeaderError, strings.Repeat("e", 200))
			m.Data = []byte(strings.Repeat("x", tc.size))
			fit(m, tc.limit)
			got := m.Header.Get(HeaderTruncated)
			if !tc.truncated {
				if got != "" || len(m.Data) != tc.size {
					t.Fatalf("changed: %d bytes, header %q", len(m.Data), got)
				}
				return
			}
			if got != strconv.Itoa(tc.size) {
				t.Fatalf("%s = %q, want %d", HeaderTruncated, got, tc.size)
			}
			if total := int64(len(m.Data) + headerBytes(m.Header)); total > tc.limit || len(m.Data) == 0 {
				t.Fatalf("%d bytes with headers, limit %d, payload %d", total, tc.limit, len(m.Data))
			}
		})
	}
}

// TestClip: long error headers are cut on a rune boundary with a mark.
func TestClip(t *testing.T) {
	if got := clip("short", 10); got != "short" {
		t.Fatalf("clip = %q", got)
	}
	long := strings.Repeat("é", 1000) // two bytes each
	got := clip(long, 1024)
	if len(got) > 1024 || !utf8.ValidString(got) || !strings.HasSuffix(got, "…") {
		t.Fatalf("clip: %d bytes, valid %v", len(got), utf8.ValidString(got))
	}
}
