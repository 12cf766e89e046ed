package pebble

import (
	"encoding/hex"
	"strings"
	"testing"

	"github.com/google/uuid"
)

func TestIdentitiesKeepEveryFormat(t *testing.T) {
	const (
		fp = "v1:224fb77285d35392f95e2ffd485c139b"
		id = "0192f3a4-5b6c-7d8e-9f01-23456789abcd"
	)
	cases := []struct{ name, fp, id string }{
		{"v1 fingerprint, canonical uuid", fp, id},
		{"v1 fingerprint, other id", fp, "inc-7"},
		{"upper-case uuid", fp, strings.ToUpper(id)},
		{"braced uuid", fp, "{" + id + "}"},
		{"upper-case fingerprint", strings.ToUpper(fp[:3]) + strings.ToUpper(fp[3:]), id},
		{"short fingerprint", "v1:abc", id},
		{"old system fingerprint", "3f2a9c-legacy", "legacy-id"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			x := newIdentities(0)
			x.set(tc.fp, tc.id)
			if got := x.get(tc.fp); got != tc.id {
				t.Fatalf("get = %q, want %q", got, tc.id)
			}
			if x.len() != 1 {
				t.Fatalf("len = %d after one set", x.len())
			}
			// Moving the identity between the compact and the string map
			// leaves no stale copy behind.
			for _, next := range []string{id, "inc-8", id} {
				x.set(tc.fp, next)
				if got := x.get(tc.fp); got != next || x.len() != 1 {
					t.Fatalf("after moving to %q: get = %q, len = %d", next, got, x.len())
				}
			}
			x.set(tc.fp, "")
			if got := x.get(tc.fp); got != "" || x.len() != 0 {
				t.Fatalf("after removal: get = %q, len = %d", got, x.len())
			}
		})
	}
}

func TestCompactFormatsRoundTrip(t *testing.T) {
	if _, ok := compactFingerprint("v1:224fb77285d35392f95e2ffd485c139b"); !ok {
		t.Error("a v1 fingerprint is not compact")
	}
	if _, ok := compactFingerprint("v1:224FB77285D35392F95E2FFD485C139B"); ok {
		t.Error("an upper-case fingerprint is compact: it would come back lower-case")
	}
	if _, ok := compactID("0192F3A4-5B6C-7D8E-9F01-23456789ABCD"); ok {
		t.Error("an upper-case uuid is compact: it would come back lower-case")
	}
	if _, ok := compactID("0192f3a45b6c7d8e9f0123456789abcd"); ok {
		t.Error("a uuid without hyphens is compact")
	}
}

func FuzzIdentities(f *testing.F) {
	f.Add("v1:224fb77285d35392f95e2ffd485c139b", "0192f3a4-5b6c-7d8e-9f01-23456789abcd")
	f.Add("v1:224fb77285d35392f95e2ffd485c139B", "urn:uuid:0192f3a4-5b6c-7d8e-9f01-23456789abcd")
	f.Add("fp", "id")
	f.Fuzz(func(t *testing.T, fp, id string) {
		if id == "" {
			return
		}
		if v, ok := compactID(id); ok && uuid.UUID(v).String() != id {
			t.Fatalf("compact id %q formats back as %q", id, uuid.UUID(v).String())
		}
		if k, ok := compactFingerprint(fp); ok && "v1:"+hex.EncodeToString(k[:]) != fp {
			t.Fatalf("compact fingerprint %q formats back differently", fp)
		}
		x := newIdentities(0)
		x.set(fp, id)
		if got := x.get(fp); got != id {
			t.Fatalf("set(%q, %q) then get = %q", fp, id, got)
		}
	})
}
