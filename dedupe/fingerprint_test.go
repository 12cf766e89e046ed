package dedupe

import (
	"encoding/json"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/llm-im/incidentd/incident"
)

// The worked example of the README, byte for byte.
func TestFingerprintWorkedExample(t *testing.T) {
	fp, err := NewFingerprinter(nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	ev := &incident.Event{Source: "llm-gateway", Type: incident.Performance, Title: "  High  P95 Latency ", Resources: []string{"b", "a", "b"}}
	const canonical = `[["source","llm-gateway"],["type","Performance"],["title","high p95 latency"],["resources",["a","b"]]]`
	if got := string(fp.AppendCanonical(nil, ev)); got != canonical {
		t.Fatalf("canonical\n%s\nwant\n%s", got, canonical)
	}
	if got := fp.Fingerprint(ev); got != "v1:224fb77285d35392f95e2ffd485c139b" {
		t.Fatalf("fingerprint %s", got)
	}
}

func TestFingerprintCanonicalForms(t *testing.T) {
	def, _ := NewFingerprinter(nil, nil)
	custom, err := NewFingerprinter([]string{"source", "labels.model", "description"}, map[string][]string{"guardrails": {"labels.policy"}})
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		fp   *Fingerprinter
		ev   incident.Event
		want string
	}{
		{"absent type and resources", def, incident.Event{Source: "s", Title: "T"},
			`[["source","s"],["type","Unknown"],["title","t"],["resources",[]]]`},
		{"dedup key replaces the fields", def, incident.Event{Source: "s", Title: "ignored", DedupKey: "db/primary", Resources: []string{"x"}},
			`[["source","s"],["dedup_key","db/primary"]]`},
		{"labels and description", custom, incident.Event{Source: "gw", Labels: map[string]string{"model": "gpt-4o"}, Description: "d"},
			`[["source","gw"],["labels.model","gpt-4o"],["description","d"]]`},
		{"absent label is null", custom, incident.Event{Source: "gw"},
			`[["source","gw"],["labels.model",null],["description",""]]`},
		{"per-source list", custom, incident.Event{Source: "guardrails", Labels: map[string]string{"policy": "pii"}},
			`[["labels.policy","pii"]]`},
		{"JCS escapes only what it must", def, incident.Event{Source: "q\"b\\s\u00e9\u2028</>&", Title: "a\tb", Resources: []string{"\x01\x1f", "\b\f\n\r"}},
			"[[\"source\",\"q\\\"b\\\\s\u00e9\u2028</>&\"],[\"type\",\"Unknown\"],[\"title\",\"a b\"],[\"resources\",[\"\\u0001\\u001f\",\"\\b\\f\\n\\r\"]]]"},
		{"unicode lower-casing and white space", def, incident.Event{Source: "s", Title: "\u00a0ÉCHEC  du\u3000Modèle\n"},
			`[["source","s"],["type","Unknown"],["title","échec du modèle"],["resources",[]]]`},
		// The README's definitions, for reimplementers: white space is
		// Unicode's White_Space (U+200B and U+FEFF are not), and lower-casing
		// maps each character alone (İ to i, Σ to σ even at a word's end,
		// the Kelvin sign to k), unlike Python's str.lower().
		{"white space is Unicode White_Space", def, incident.Event{Source: "s", Title: "A\u2028B\u2029C\u1680D\u202fE\u205fF\u0085G\u2000\u200aH\u200bI\ufeffJ"},
			"[[\"source\",\"s\"],[\"type\",\"Unknown\"],[\"title\",\"a b c d e f g h\u200bi\ufeffj\"],[\"resources\",[]]]"},
		{"lower-casing is per character", def, incident.Event{Source: "s", Title: "İSTANBUL ΣΑΣ \u212a"},
			`[["source","s"],["type","Unknown"],["title","istanbul σασ k"],["resources",[]]]`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got := tc.fp.AppendCanonical(nil, &tc.ev)
			if string(got) != tc.want {
				t.Fatalf("canonical\n%s\nwant\n%s", got, tc.want)
			}
			if !json.Valid(got) {
				t.Fatal("canonical form is not JSON")
			}
		})
	}
}

func TestFingerprintIgnoresNonIdentity(t *testing.T) {
	fp, _ := NewFingerprinter(nil, nil)
	v := 3.0
	a := incident.Event{ID: "1", Source: "s", Type: incident.Data, Title: "Disk full", Resources: []string{"a", "b"}, Severity: incident.P4,
		OccurredAt: time.Unix(0, 0), Labels: map[string]string{"x": "1"}}
	b := incident.Event{ID: "2", Source: "s", Type: incident.Data, Title: " disk  FULL ", Resources: []string{"b", "a", "a"}, Severity: incident.P0,
		OccurredAt: time.Unix(9999, 0), Value: &v, Unit: "ms", Action: incident.Resolve, Description: "other"}
	if fp.Fingerprint(&a) != fp.Fingerprint(&b) {
		t.Fatal("severity, time, value, labels, description or action changed the identity")
	}
	if !strings.HasPrefix(fp.Fingerprint(&a), "v1:") || len(fp.Fingerprint(&a)) != 35 {
		t.Fatalf("bad shape %q", fp.Fingerprint(&a))
	}
}

// Field values that would collide under naive concatenation do not.
func TestFingerprintNoBoundaryCollisions(t *testing.T) {
	fp, _ := NewFingerprinter(nil, nil)
	evs := []incident.Event{
		{Source: "ab", Title: "c"},
		{Source: "a", Title: "bc"},
		{Source: "a", Title: "b", Resources: []string{"c"}},
		{Source: "a", Title: "b c"},
		{Source: "a", Title: "b", Resources: []string{"c", "d"}},
		{Source: "a", Title: "b", Resources: []string{"c,d"}},
		{Source: "a", Title: `b","c`},
		{Source: "a", DedupKey: "b"},
		{Source: "a", Title: "b"},
	}
	seen := map[string]int{}
	for i := range evs {
		f := fp.Fingerprint(&evs[i])
		if j, dup := seen[f]; dup {
			t.Fatalf("events %d and %d collide: %+v %+v", i, j, evs[i], evs[j])
		}
		seen[f] = i
	}
}

func TestFingerprintFieldValidation(t *testing.T) {
	for _, bad := range [][]string{{}, {"severity"}, {"source", "source"}, {"labels."}, {"occurred_at"}, {"value"}, {"state"}} {
		if _, err := NewFingerprinter(bad, nil); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
	if _, err := NewFingerprinter(nil, map[string][]string{"x": {"severity"}}); err == nil {
		t.Error("bad per-source list accepted")
	}
	if err := ValidateFields([]string{"title", "labels.model", "resources", "description", "type", "source"}); err != nil {
		t.Error(err)
	}
}

// FuzzJCSString checks the canonical string encoder against the JSON
// decoder: it always yields valid JSON that decodes back to the input.
func FuzzJCSString(f *testing.F) {
	for _, s := range []string{"", "plain", "q\"b\\", "\x00\x1f\x7f", "é\u2028😀", "<&>"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		if !utf8.ValidString(s) {
			return // the decoder rejects invalid UTF-8 before fingerprinting
		}
		enc := appendJCSString(nil, s)
		var back string
		if err := json.Unmarshal(enc, &back); err != nil || back != s {
			t.Fatalf("%q encoded as %s decodes to %q, %v", s, enc, back, err)
		}
		for _, c := range []byte(enc[1 : len(enc)-1]) {
			if c < 0x20 {
				t.Fatalf("raw control character in %q", enc)
			}
		}
	})
}

// FuzzNormalizedTitle checks the allocation-free title writer against its
// definition: JCS(NormalizeTitle(s)).
func FuzzNormalizedTitle(f *testing.F) {
	for _, s := range []string{"", "  High  P95 Latency ", "\u00a0ÉCHEC  du\u3000Modèle\n", "a\"b\\c", "İSTANBUL ΣΑΣ", "\x85x\x01"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		if !utf8.ValidString(s) {
			return // the decoder rejects invalid UTF-8 before fingerprinting
		}
		want := appendJCSString(nil, NormalizeTitle(s))
		if got := appendNormalizedTitle(nil, s); string(got) != string(want) {
			t.Fatalf("%q: got %s, want %s", s, got, want)
		}
	})
}

func TestValidFingerprint(t *testing.T) {
	fp, _ := NewFingerprinter([]string{"source", "labels.team"}, nil)
	for _, ev := range []incident.Event{
		{Source: "a", Title: "b"},
		{Source: "a", DedupKey: "b"},
		{Source: "", DedupKey: strings.Repeat("x", 255)},
	} {
		if f := fp.Fingerprint(&ev); !ValidFingerprint(f) {
			t.Errorf("ValidFingerprint(%q) = false for a computed fingerprint", f)
		}
	}
	for _, s := range []string{
		"", "v1:", "v1:224fb77285d35392f95e2ffd485c139", "v1:224fb77285d35392f95e2ffd485c139bb",
		"v1:224FB77285D35392F95E2FFD485C139B", "v2:224fb77285d35392f95e2ffd485c139b",
		"224fb77285d35392f95e2ffd485c139b", "v1:224fb77285d35392f95e2ffd485c139g", "v1 224fb77285d35392f95e2ffd485c139b",
	} {
		if ValidFingerprint(s) {
			t.Errorf("ValidFingerprint(%q) = true", s)
		}
	}
}
