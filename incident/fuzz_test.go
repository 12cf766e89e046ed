package incident

import (
	"encoding/json"
	"errors"
	"testing"
	"unicode/utf8"
)

// FuzzDecode proves the decoder never panics, only fails with a
// *DecodeError, and never accepts what validation rejects; an accepted event
// re-encoded and decoded again is the same event, and its strings are the
// ones encoding/json reads from the same payload (no escape is decoded
// differently: a lone surrogate escape once came through as six characters).
func FuzzDecode(f *testing.F) {
	for _, s := range []string{
		`{"id":"1","source":"llm-gateway","type":"Performance","severity":"P1","title":"High P95","resources":["a"],"labels":{"k":"v"},"occurred_at":"2026-01-01T00:00:00Z","value":1.5,"unit":"ms"}`,
		`{"external_id":"2","source":"s","alert_type":"security","title":"t","affected_services":["x","x"]}`,
		`{"source":"s","action":"resolve","dedup_key":"k"}`,
		`{"source":"s","title":"t\u0007"}`,
		`{"source":"s","title":"\ud83d\ude00"}`,
		`{"source":"s","title":"x\ud800y"}`, `{"source":"s","title":"x\\ud800y"}`,
		`{"source":1}`, `[]`, `null`, `{`, "\xff",
	} {
		f.Add([]byte(s))
	}
	dec := NewDecoder(4096)
	f.Fuzz(func(t *testing.T, data []byte) {
		ev, err := dec.Decode(data, testMeta)
		if err != nil {
			var de *DecodeError
			if !errors.As(err, &de) || de.Reason == "" {
				t.Fatalf("error is not a *DecodeError with a reason: %v", err)
			}
			return
		}
		if verr := ev.Validate(); verr != nil {
			t.Fatalf("decoded an event that does not validate: %v", verr)
		}
		// Where encoding/json reads the payload (FuzzScan: whenever the
		// decoder accepts it), both must read the same strings.
		var raw map[string]any
		_ = json.Unmarshal(data, &raw)
		for key, got := range map[string]string{"title": ev.Title, "source": ev.Source, "description": ev.Description, "dedup_key": ev.DedupKey, "unit": ev.Unit} {
			if want, ok := raw[key].(string); ok && want != got {
				t.Fatalf("%s decoded as %q, encoding/json reads %q", key, got, want)
			}
		}
		b, err := json.Marshal(ev)
		if err != nil {
			t.Fatalf("accepted event does not encode: %v", err)
		}
		again, err := NewDecoder(len(b)+1).Decode(b, Meta{})
		if err != nil {
			t.Fatalf("re-encoded event rejected: %v\n%s", err, b)
		}
		if a, b := mustJSON(t, again), mustJSON(t, ev); a != b {
			t.Fatalf("round trip changed the event:\n%s\n%s", a, b)
		}
	})
}

// FuzzScan holds the scanner to encoding/json: a UTF-8 payload is JSON for
// one exactly when it is for the other. The scanner's own refusals are set
// aside: nesting past 300 levels, and lone surrogate escapes (which
// encoding/json reads as U+FFFD); a raw control byte in a string is a
// syntax error for encoding/json and a noted fault for the scanner.
func FuzzScan(f *testing.F) {
	for _, s := range []string{
		`{"x":.}`, `{"x":01}`, `{"x":1.}`, `{"x":-}`, `{"x":1e}`, `{"x":1e+}`, `{"x":-0.5E-3}`,
		`{"x":"\x"}`, `{"x":"\u00zz"}`, `{"x":"\u00e9"}`, `{"x":tru}`, `{"x":nulls}`, `{"a":1,}`,
		`[1,]`, ` {} `, `{}x`, `{"a" 1}`, `{"a":[{"b":[]},true,false,null]}`, "{\"a\":\"\x01\"}",
		`"\ud800"`, `{"a":"\ud83d\ude00"}`, `{,}`, `{"a":1 "b":2}`, ``, ` `, `1 2`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		if !utf8.Valid(data) {
			return
		}
		var fl fields
		s := scanner{data: data, control: -1, surrogate: -1}
		s.top(&fl)
		if s.deep {
			return
		}
		ours, theirs := s.err == "" && s.control < 0, json.Valid(data)
		if ours != theirs {
			t.Fatalf("scanner says JSON %v (%s), encoding/json %v: %q", ours, s.err, theirs, data)
		}
	})
}
