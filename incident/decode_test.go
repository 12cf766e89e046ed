package incident

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"
)

var testMeta = Meta{MsgID: "", Stream: "INCIDENTS", Sequence: 42, Timestamp: time.Date(2026, 3, 1, 12, 0, 0, 123456789, time.UTC)}

func TestDecodeAcceptsSchemaV1(t *testing.T) {
	payload := `{"id":"e-1","action":"trigger","dedup_key":"k","source":"llm-gateway","type":"performance",
	"severity":"high","title":"High latency","description":"p95 over 2s\nsince deploy","resources":["a","b"],
	"labels":{"model":"gpt-4o"},"occurred_at":"2026-03-01T10:00:00.5+01:00","value":2100.5,"unit":"ms","extra":{"ignored":true}}`
	ev, err := NewDecoder(0).Decode([]byte(payload), testMeta)
	if err != nil {
		t.Fatal(err)
	}
	v := 2100.5
	want := Event{ID: "e-1", Action: Trigger, DedupKey: "k", Source: "llm-gateway", Type: Performance, Severity: P1,
		Title: "High latency", Description: "p95 over 2s\nsince deploy", Resources: []string{"a", "b"},
		Labels: map[string]string{"model": "gpt-4o"}, OccurredAt: time.Date(2026, 3, 1, 9, 0, 0, 500000000, time.UTC),
		Value: &v, Unit: "ms"}
	if got, exp := mustJSON(t, ev), mustJSON(t, want); got != exp {
		t.Fatalf("decoded\n%s\nwant\n%s", got, exp)
	}
	if ev.OccurredAt.Location() != time.UTC {
		t.Errorf("occurred_at not normalised to UTC: %v", ev.OccurredAt)
	}
}

func TestDecodeDefaultsAndAliases(t *testing.T) {
	tests := []struct {
		name    string
		payload string
		meta    Meta
		check   func(t *testing.T, ev Event)
	}{
		{"old field names", `{"external_id":"x-9","source":"s","alert_type":"Security","title":"t","affected_services":["svc"]}`, testMeta,
			func(t *testing.T, ev Event) {
				if ev.ID != "x-9" || ev.Type != Security || len(ev.Resources) != 1 || ev.Resources[0] != "svc" {
					t.Errorf("aliases not applied: %+v", ev)
				}
			}},
		{"canonical names win over aliases", `{"alert_type":"Security","type":"Data","id":"a","external_id":"b","source":"s","title":"t","affected_services":["x"],"resources":["y"]}`, testMeta,
			func(t *testing.T, ev Event) {
				if ev.ID != "a" || ev.Type != Data || ev.Resources[0] != "y" {
					t.Errorf("got %+v", ev)
				}
			}},
		{"defaults", `{"source":"s","title":"t"}`, Meta{MsgID: "m-1", Timestamp: testMeta.Timestamp}, func(t *testing.T, ev Event) {
			if ev.ID != "m-1" || ev.Action != Trigger || ev.Type != Unknown || ev.Severity != DefaultSeverity {
				t.Errorf("defaults: %+v", ev)
			}
			if want := testMeta.Timestamp.Truncate(time.Microsecond); !ev.OccurredAt.Equal(want) {
				t.Errorf("occurred_at = %v, want the message timestamp %v", ev.OccurredAt, want)
			}
		}},
		{"stream position when no id at all", `{"source":"s","title":"t"}`, testMeta, func(t *testing.T, ev Event) {
			// testMeta's timestamp, 2026-03-01T12:00:00.123456789Z, in unix ns.
			if ev.ID != "INCIDENTS:42:1772366400123456789" {
				t.Errorf("id = %q", ev.ID)
			}
			other := testMeta
			other.Timestamp = other.Timestamp.Add(time.Nanosecond) // the stream created again
			if ev2, err := NewDecoder(0).Decode([]byte(`{"source":"s","title":"t"}`), other); err != nil || ev2.ID == ev.ID {
				t.Errorf("same sequence of another stream incarnation: id %q (%v), want another than %q", ev2.ID, err, ev.ID)
			}
		}},
		{"nulls are absent", `{"id":null,"source":"s","title":"t","labels":null,"severity":null,"value":null}`, testMeta, func(t *testing.T, ev Event) {
			if ev.ID != "INCIDENTS:42:1772366400123456789" || ev.Labels != nil || ev.Severity != DefaultSeverity || ev.Value != nil {
				t.Errorf("got %+v", ev)
			}
		}},
		{"severity names", `{"source":"s","title":"t","severity":"critical"}`, testMeta, func(t *testing.T, ev Event) {
			if ev.Severity != P0 {
				t.Errorf("severity %v", ev.Severity)
			}
		}},
		{"resolve needs no title", `{"source":"s","action":"resolve","dedup_key":"k"}`, testMeta, func(t *testing.T, ev Event) {
			if ev.Action != Resolve {
				t.Errorf("action %v", ev.Action)
			}
		}},
		{"action is case-insensitive", `{"source":"s","action":"Acknowledge"}`, testMeta, func(t *testing.T, ev Event) {
			if ev.Action != Acknowledge {
				t.Errorf("action %v", ev.Action)
			}
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			ev, err := NewDecoder(0).Decode([]byte(tc.payload), tc.meta)
			if err != nil {
				t.Fatal(err)
			}
			tc.check(t, ev)
		})
	}
}

func TestDecodeRejects(t *testing.T) {
	big := `{"source":"s","title":"` + strings.Repeat("x", 2000) + `"}`
	tests := []struct {
		name, payload string
		reason        Reason
		field         string
	}{
		{"not json", `not json`, ReasonInvalidJSON, ""},
		{"truncated", `{"source":"s"`, ReasonInvalidJSON, ""},
		{"array", `[1,2]`, ReasonInvalidJSON, ""},
		{"empty", ``, ReasonInvalidJSON, ""},
		{"duplicate member", `{"source":"a","source":"b","title":"t"}`, ReasonInvalidJSON, "source"},
		{"duplicate member, one name escaped", `{"source":"a","\u0073ource":"b","title":"t"}`, ReasonInvalidJSON, "source"},
		// null is absent, but a member all the same: refused in either order.
		{"null then the member", `{"source":"s","title":null,"title":"t"}`, ReasonInvalidJSON, "title"},
		{"the member then null", `{"source":"s","title":"t","title":null}`, ReasonInvalidJSON, "title"},
		{"null twice", `{"source":"s","title":"t","unit":null,"unit":null}`, ReasonInvalidJSON, "unit"},
		{"null alias twice", `{"source":"s","title":"t","alert_type":null,"alert_type":"Data"}`, ReasonInvalidJSON, "alert_type"},
		{"null title", `{"source":"s","title":null}`, ReasonMissingField, "title"},
		{"invalid utf8", "{\"source\":\"s\xff\",\"title\":\"t\"}", ReasonInvalidUTF8, ""},
		{"too large", big, ReasonTooLarge, ""},
		{"no source", `{"title":"t"}`, ReasonMissingField, "source"},
		{"blank source", `{"source":"  ","title":"t"}`, ReasonMissingField, "source"},
		{"no title on trigger", `{"source":"s"}`, ReasonMissingField, "title"},
		{"blank title", `{"source":"s","title":" \t"}`, ReasonMissingField, "title"},
		{"unknown action", `{"source":"s","title":"t","action":"explode"}`, ReasonUnknownAction, "action"},
		{"action not a string", `{"source":"s","title":"t","action":1}`, ReasonInvalidField, "action"},
		{"bad severity", `{"source":"s","title":"t","severity":"P9"}`, ReasonInvalidField, "severity"},
		{"bad type", `{"source":"s","title":"t","type":"Weather"}`, ReasonInvalidField, "type"},
		// The old system's names: the error names the member sent.
		{"bad alert_type", `{"id":"a","source":"s","title":"x","alert_type":"Weird"}`, ReasonInvalidField, "alert_type"},
		{"bad type beside an alert_type", `{"source":"s","title":"x","alert_type":"Security","type":"Weird"}`, ReasonInvalidField, "type"},
		{"alert_type not a string", `{"source":"s","title":"x","alert_type":1}`, ReasonInvalidField, "alert_type"},
		{"affected_services not an array", `{"source":"s","title":"x","affected_services":"abc"}`, ReasonInvalidField, "affected_services"},
		{"empty affected service", `{"source":"s","title":"x","affected_services":["a",""]}`, ReasonInvalidField, "affected_services"},
		{"affected service too long", `{"source":"s","title":"x","affected_services":["` + strings.Repeat("r", 600) + `"]}`, ReasonInvalidField, "affected_services"},
		{"bad resources beside affected_services", `{"source":"s","title":"x","affected_services":["a"],"resources":"abc"}`, ReasonInvalidField, "resources"},
		{"external_id too long", `{"external_id":"` + strings.Repeat("i", 300) + `","source":"s","title":"x"}`, ReasonInvalidField, "external_id"},
		{"control char in external_id", `{"external_id":"a\u0001b","source":"s","title":"x"}`, ReasonInvalidField, "external_id"},
		{"external_id not a string", `{"external_id":7,"source":"s","title":"x"}`, ReasonInvalidField, "external_id"},
		{"bad id beside an external_id", `{"id":"a\u0001b","external_id":"e","source":"s","title":"x"}`, ReasonInvalidField, "id"},
		{"bad time", `{"source":"s","title":"t","occurred_at":"yesterday"}`, ReasonInvalidField, "occurred_at"},
		{"resources not strings", `{"source":"s","title":"t","resources":[1]}`, ReasonInvalidField, "resources"},
		{"empty resource", `{"source":"s","title":"t","resources":[""]}`, ReasonInvalidField, "resources"},
		{"labels not strings", `{"source":"s","title":"t","labels":{"a":1}}`, ReasonInvalidField, "labels.a"},
		{"value not a number", `{"source":"s","title":"t","value":"1"}`, ReasonInvalidField, "value"},
		{"value beyond float64", `{"source":"s","title":"t","value":-1e400}`, ReasonInvalidField, "value"},
		{"control char in source", `{"source":"a\u0000b","title":"t"}`, ReasonInvalidField, "source"},
		// Strings with no escape skip Validate's character checks, but not
		// when the payload holds a DEL (0x7f), a control character too.
		{"raw DEL in title", "{\"source\":\"s\",\"title\":\"t\x7f\"}", ReasonInvalidField, "title"},
		{"raw DEL in a label name", "{\"source\":\"s\",\"title\":\"t\",\"labels\":{\"k\x7f\":\"v\"}}", ReasonInvalidField, "labels"},
		{"raw DEL in a resource", "{\"source\":\"s\",\"title\":\"t\",\"resources\":[\"r\x7f\"]}", ReasonInvalidField, "resources"},
		{"escaped control char in a label value", `{"source":"s","title":"t","labels":{"k":"a\u0001"}}`, ReasonInvalidField, "labels.k"},
		{"escaped control char in a resource", `{"source":"s","title":"t","resources":["a\u0001"]}`, ReasonInvalidField, "resources"},
		{"escaped control char in the unit", `{"source":"s","title":"t","unit":"m\u0009s"}`, ReasonInvalidField, "unit"},
		{"escaped control char in the dedup key", `{"source":"s","title":"t","dedup_key":"k\n"}`, ReasonInvalidField, "dedup_key"},
		{"escaped control char in the id", `{"id":"i\r","source":"s","title":"t"}`, ReasonInvalidField, "id"},
		{"over the limit, verbatim", `{"source":"s","title":"t","unit":"` + strings.Repeat("u", MaxUnitBytes+1) + `"}`, ReasonInvalidField, "unit"},
		{"dedup key too long", `{"source":"s","title":"t","dedup_key":"` + strings.Repeat("k", 256) + `"}`, ReasonInvalidField, "dedup_key"},
		{"year out of range", `{"source":"s","title":"t","occurred_at":"0100-01-01T00:00:00Z"}`, ReasonInvalidField, "occurred_at"},
		// Year 1 is Go's zero time: once read as "no event time" (missing_field).
		{"explicit zero time", `{"source":"s","title":"t","occurred_at":"0001-01-01T00:00:00Z"}`, ReasonInvalidField, "occurred_at"},
		{"year after 9999 by offset", `{"source":"s","title":"t","occurred_at":"9999-12-31T23:00:00-02:00"}`, ReasonInvalidField, "occurred_at"},
		// Lone UTF-16 surrogate escapes are not characters; the parser kept
		// them as the six characters \ud800, colliding with an escaped backslash.
		{"lone high surrogate", `{"source":"s","title":"x\ud800y"}`, ReasonInvalidUTF8, ""},
		{"lone low surrogate", `{"source":"s","title":"x\uDC00"}`, ReasonInvalidUTF8, ""},
		{"high surrogate then a non-surrogate", `{"source":"s","title":"\ud83d\u0041"}`, ReasonInvalidUTF8, ""},
		{"surrogates reversed", `{"source":"s","title":"\ude00\ud83d"}`, ReasonInvalidUTF8, ""},
		{"lone surrogate in an ignored member", `{"source":"s","title":"t","extra":"\ud800"}`, ReasonInvalidUTF8, ""},
		// RFC 8259: control characters in strings must be escaped.
		{"raw control character in a string", "{\"source\":\"s\",\"title\":\"t\x02\"}", ReasonInvalidJSON, ""},
		{"raw line break in a string", "{\"source\":\"s\",\"title\":\"t\",\"description\":\"a\nb\"}", ReasonInvalidJSON, ""},
		{"raw tab in an ignored member", "{\"source\":\"s\",\"title\":\"t\",\"x\":\"\t\"}", ReasonInvalidJSON, ""},
		// RFC 8259 in every member: the parser used until 2026-11 kept an
		// unknown escape as its two characters and read numbers loosely.
		{"unknown escape", `{"source":"s","title":"t\q"}`, ReasonInvalidJSON, ""},
		{"short \\u escape", `{"source":"s","title":"t","x":"\u12"}`, ReasonInvalidJSON, ""},
		{"leading zero", `{"source":"s","title":"t","x":01}`, ReasonInvalidJSON, ""},
		{"no digit after the point", `{"source":"s","title":"t","x":1.}`, ReasonInvalidJSON, ""},
		{"no digit before the point", `{"source":"s","title":"t","value":.5}`, ReasonInvalidJSON, ""},
		{"no exponent digit", `{"source":"s","title":"t","value":1e}`, ReasonInvalidJSON, ""},
		{"NaN", `{"source":"s","title":"t","value":NaN}`, ReasonInvalidJSON, ""},
		{"trailing comma", `{"source":"s","title":"t",}`, ReasonInvalidJSON, ""},
		{"trailing comma in an array", `{"source":"s","title":"t","resources":["a",]}`, ReasonInvalidJSON, ""},
		{"after the object", `{"source":"s","title":"t"} {}`, ReasonInvalidJSON, ""},
		{"misspelt literal", `{"source":"s","title":"t","x":ture}`, ReasonInvalidJSON, ""},
		{"unquoted name", `{source:"s","title":"t"}`, ReasonInvalidJSON, ""},
	}
	dec := NewDecoder(1024)
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := dec.Decode([]byte(tc.payload), testMeta)
			var de *DecodeError
			if !errors.As(err, &de) {
				t.Fatalf("err = %v, want a *DecodeError", err)
			}
			if de.Reason != tc.reason || de.Field != tc.field {
				t.Fatalf("reason %q field %q (%v), want %q field %q", de.Reason, de.Field, err, tc.reason, tc.field)
			}
			if de.Msg == "" || !strings.Contains(err.Error(), string(tc.reason)) {
				t.Errorf("message %q should explain and carry the reason", err)
			}
		})
	}
}

// TestLabelNameErrors: a label name that breaks a rule is quoted in the
// message (its value's error names it in the field), under the stable field
// "labels" and reason.
func TestLabelNameErrors(t *testing.T) {
	long := strings.Repeat("n", MaxLabelKeyBytes+1)
	tests := []struct {
		name    string
		payload string
		reason  Reason
		want    string // the whole error
	}{
		{"control character", `{"source":"s","title":"t","labels":{"k\u0001":"v"}}`, ReasonInvalidField,
			`incident: invalid_field: field "labels": name "k\x01": control character 0x01 at byte 1`},
		{"control character first", `{"source":"s","title":"t","labels":{"\u001fenv":"v"}}`, ReasonInvalidField,
			`incident: invalid_field: field "labels": name "\x1fenv": control character 0x1f at byte 0`},
		{"too long", `{"source":"s","title":"t","labels":{"` + long + `":"v"}}`, ReasonInvalidField,
			`incident: invalid_field: field "labels": name "` + long[:64] + `…": 129 bytes, at most 128`},
		{"empty", `{"source":"s","title":"t","labels":{"":"v"}}`, ReasonInvalidField,
			`incident: invalid_field: field "labels": empty label name`},
	}
	dec := NewDecoder(4096)
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := dec.Decode([]byte(tc.payload), testMeta)
			var de *DecodeError
			if !errors.As(err, &de) || de.Reason != tc.reason || de.Field != "labels" {
				t.Fatalf("err = %v, want reason %s in field labels", err, tc.reason)
			}
			if err.Error() != tc.want {
				t.Errorf("err = %s\nwant  %s", err, tc.want)
			}
		})
	}
	ev := Event{ID: "e", Source: "s", Title: "t", Severity: P2, Type: Performance, OccurredAt: time.Now(), Labels: map[string]string{"k\xff": "v"}}
	err := ev.Validate()
	var de *DecodeError
	if !errors.As(err, &de) || de.Reason != ReasonInvalidUTF8 || de.Field != "labels" || de.Msg != `name "k\xff": not valid UTF-8` {
		t.Errorf("Validate of a name that is not UTF-8: %v", err)
	}
}

func TestNoEventIDAnywhere(t *testing.T) {
	_, err := NewDecoder(0).Decode([]byte(`{"source":"s","title":"t"}`), Meta{Timestamp: time.Now()})
	var de *DecodeError
	if !errors.As(err, &de) || de.Reason != ReasonMissingField || de.Field != "id" {
		t.Fatalf("err = %v", err)
	}
}

func TestParseVocabularies(t *testing.T) {
	for _, s := range Severities {
		if got, err := ParseSeverity(strings.ToLower(s.String())); err != nil || got != s {
			t.Errorf("ParseSeverity(%s) = %v, %v", s, got, err)
		}
	}
	for _, s := range States {
		if got, err := ParseState(strings.ToUpper(s.String())); err != nil || got != s {
			t.Errorf("ParseState(%s) = %v, %v", s, got, err)
		}
		if want := s < Resolved; s.Active() != want {
			t.Errorf("%s.Active() = %v", s, s.Active())
		}
	}
	for _, ty := range Types {
		if got, err := ParseType(ty.String()); err != nil || got != ty {
			t.Errorf("ParseType(%s) = %v, %v", ty, got, err)
		}
	}
	if len(Types) != 8 || len(States) != 6 || len(Severities) != 5 {
		t.Errorf("vocabulary sizes changed")
	}
	if _, err := ParseSeverity("urgent"); err == nil {
		t.Error("urgent accepted")
	}
}

func TestIncidentJSONNames(t *testing.T) {
	now := time.Date(2026, 1, 2, 3, 4, 5, 6000, time.UTC)
	v := 1.5
	in := &Incident{ID: "id", Fingerprint: "v1:x", DedupKey: "d", Title: "t", Description: "d", Source: "s", Type: Data,
		Severity: P1, PeakSeverity: P0, State: Triaged, Resources: []string{"r"}, Labels: map[string]string{"a": "b"},
		FirstSeen: now, LastSeen: now, CreatedAt: now, UpdatedAt: now, OccurrenceCount: 3, ReopenOf: "old",
		ResolvedAt: &now, ResolvedBy: ResolvedByTimeout, LastValue: &v, Unit: "ms", Version: 4}
	s := mustJSON(t, in)
	for _, name := range []string{"id", "fingerprint", "dedup_key", "title", "description", "source", "type", "severity",
		"peak_severity", "state", "resources", "labels", "first_seen", "last_seen", "created_at", "updated_at",
		"occurrence_count", "reopen_of", "resolved_at", "resolved_by", "last_value", "unit", "version"} {
		if !strings.Contains(s, `"`+name+`":`) {
			t.Errorf("JSON lacks %q: %s", name, s)
		}
	}
	var back Incident
	if err := json.Unmarshal([]byte(s), &back); err != nil {
		t.Fatal(err)
	}
	if mustJSON(t, &back) != s {
		t.Errorf("round trip differs:\n%s\n%s", mustJSON(t, &back), s)
	}
	if c := in.Clone(); mustJSON(t, c) != s || &c.Resources[0] == &in.Resources[0] {
		t.Error("Clone is not a deep copy")
	}
}

func mustJSON(t testing.TB, v any) string {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// TestDecodeEscapes: surrogate pairs decode to their character, and a text
// that merely looks like an escape (an escaped backslash before "ud800")
// stays the text it is; upper- and lower-case hex both work.
func TestDecodeEscapes(t *testing.T) {
	tests := []struct{ payload, title string }{
		{`{"source":"s","title":"smile \ud83d\ude00"}`, "smile \U0001F600"},
		{`{"source":"s","title":"smile \uD83D\uDE00"}`, "smile \U0001F600"},
		{`{"source":"s","title":"x\\ud800y"}`, `x\ud800y`},
		{`{"source":"s","title":"x\\\ud83d\ude00"}`, "x\\\U0001F600"},
		{`{"source":"s","title":"\u00e9\u2028"}`, "\u00e9\u2028"},
		// member names are matched once unescaped
		{`{"source":"s","\u0074itle":"escaped name"}`, "escaped name"},
		{`{"source":"s","titl\u0065":"a\/b"}`, "a/b"},
	}
	ev, err := NewDecoder(0).Decode([]byte(`{"source":"s","title":"t","description":"\"\\\/\n\r\t\u0041"}`), testMeta)
	if err != nil || ev.Description != "\"\\/\n\r\tA" {
		t.Fatalf("short escapes: %q, %v", ev.Description, err)
	}
	for _, tc := range tests {
		ev, err := NewDecoder(0).Decode([]byte(tc.payload), testMeta)
		if err != nil {
			t.Errorf("%s: %v", tc.payload, err)
			continue
		}
		if ev.Title != tc.title {
			t.Errorf("%s: title %q, want %q", tc.payload, ev.Title, tc.title)
		}
	}
}

// TestDecodeLowerCaseTime: RFC 3339 allows a lower-case "t" and "z".
func TestDecodeLowerCaseTime(t *testing.T) {
	for _, s := range []string{"2026-03-01t10:00:00z", "2026-03-01t10:00:00.5Z", "2026-03-01T11:00:00+01:00"} {
		ev, err := NewDecoder(0).Decode([]byte(`{"source":"s","title":"t","occurred_at":"`+s+`"}`), testMeta)
		if err != nil {
			t.Errorf("%s: %v", s, err)
			continue
		}
		if want := time.Date(2026, 3, 1, 10, 0, 0, 0, time.UTC); !ev.OccurredAt.Truncate(time.Second).Equal(want) {
			t.Errorf("%s: %v, want %v", s, ev.OccurredAt, want)
		}
	}
}

// TestDecodePrettyPrinted: line breaks and tabs between tokens are white
// space, not control characters in strings.
func TestDecodePrettyPrinted(t *testing.T) {
	payload := "{\n\t\"source\": \"s\",\r\n\t\"title\": \"a \\\"quoted\\\" \\\\ title\",\n\t\"description\": \"two\\nlines\"\n}\n"
	ev, err := NewDecoder(0).Decode([]byte(payload), testMeta)
	if err != nil {
		t.Fatal(err)
	}
	if ev.Title != `a "quoted" \ title` || ev.Description != "two\nlines" {
		t.Fatalf("title %q, description %q", ev.Title, ev.Description)
	}
}

func TestHasControl(t *testing.T) {
	for n := 0; n < 40; n++ {
		for pos := -1; pos < n; pos++ {
			for _, c := range []byte{0x00, 0x1f, 0x0a} {
				b := []byte(strings.Repeat("\x20\x7f\x80\xff", 10)[:n])
				if pos >= 0 {
					b[pos] = c
				}
				if got, want := hasControl(b), pos >= 0; got != want {
					t.Fatalf("hasControl(%q) = %v, want %v", b, got, want)
				}
			}
		}
	}
}

// TestSpecial: the word test that finds the first quote or backslash of
// a string is exact: every byte value at every position, behind bytes it
// must skip, in strings long enough for the word loop and the byte loop.
func TestSpecial(t *testing.T) {
	fill := []byte("\x00\x1f\x21\x23\x5b\x5d\x7f\x80\xffabcdefg")
	for n := 1; n <= len(fill); n++ {
		for pos := 0; pos < n; pos++ {
			for c := 0; c < 256; c++ {
				b := append([]byte(nil), fill[:n]...)
				b[pos] = byte(c)
				want := bytes.IndexAny(b, `"\`)
				if want < 0 {
					want = n
				}
				if got := special(b, 0); got != want {
					t.Fatalf("special(%q) = %d, want %d", b, got, want)
				}
			}
		}
	}
}

// TestDecodeClockSkew: with LimitClockSkew, an occurred_at further ahead of
// the message's timestamp than the bound is invalid_field; at the bound, in
// the past, or without a payload time it passes; without the bound anything
// up to year 9999 passes.
func TestDecodeClockSkew(t *testing.T) {
	at := func(d time.Duration) string {
		return `{"source":"s","title":"t","occurred_at":"` + testMeta.Timestamp.Add(d).Format(time.RFC3339Nano) + `"}`
	}
	tests := []struct {
		name    string
		skew    time.Duration
		payload string
		ok      bool
	}{
		{"just over the bound", time.Hour, at(time.Hour + time.Second), false},
		{"far ahead", time.Hour, `{"source":"s","title":"t","occurred_at":"9999-01-01T00:00:00Z"}`, false},
		{"at the bound", time.Hour, at(time.Hour), true},
		{"slightly ahead", time.Hour, at(5 * time.Minute), true},
		{"in the past", time.Hour, at(-1000 * time.Hour), true},
		{"no payload time", time.Hour, `{"source":"s","title":"t"}`, true},
		{"no bound", 0, `{"source":"s","title":"t","occurred_at":"9999-01-01T00:00:00Z"}`, true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := NewDecoder(0).LimitClockSkew(tc.skew).Decode([]byte(tc.payload), testMeta)
			if tc.ok {
				if err != nil {
					t.Fatal(err)
				}
				return
			}
			var de *DecodeError
			if !errors.As(err, &de) || de.Reason != ReasonInvalidField || de.Field != "occurred_at" {
				t.Fatalf("err = %v, want invalid_field on occurred_at", err)
			}
			if !strings.Contains(de.Msg, "clock skew of 1h0m0s") || !strings.Contains(de.Msg, "2026-03-01T12:00:00Z") {
				t.Errorf("message %q should name the bound and the message time", de.Msg)
			}
		})
	}
}

// TestDecodeLenientForms: white space around action and occurred_at is
// ignored, as it is around severity and type; a leap second reads as the
// next instant.
func TestDecodeLenientForms(t *testing.T) {
	ev, err := NewDecoder(0).Decode([]byte(`{"source":"s","title":"t","action":" Resolve ","occurred_at":" 2026-03-01T10:00:00Z "}`), testMeta)
	if err != nil || ev.Action != Resolve || !ev.OccurredAt.Equal(time.Date(2026, 3, 1, 10, 0, 0, 0, time.UTC)) {
		t.Fatalf("padded action and time: %+v, %v", ev, err)
	}
	for in, want := range map[string]time.Time{
		"2016-12-31T23:59:60Z":      time.Date(2017, 1, 1, 0, 0, 0, 0, time.UTC),
		"2016-12-31T23:59:60.5Z":    time.Date(2017, 1, 1, 0, 0, 0, 5e8, time.UTC),
		"2016-12-31t18:59:60-05:00": time.Date(2017, 1, 1, 0, 0, 0, 0, time.UTC),
	} {
		got, err := ParseTime(in)
		if err != nil || !got.Equal(want) {
			t.Errorf("ParseTime(%q) = %v, %v; want %v", in, got, err, want)
		}
	}
	if _, err := ParseTime("2016-12-31T23:59:61Z"); err == nil {
		t.Error("second 61 accepted")
	}
}

// TestDecodeLongHeaderID: a Nats-Msg-Id longer than an id may be, with no
// id in the payload, gives a digest id (the same for the same header)
// instead of dead-lettering a valid event; a payload id that long is still
// invalid.
func TestDecodeLongHeaderID(t *testing.T) {
	long := strings.Repeat("h", 300)
	meta := testMeta
	meta.MsgID = long
	ev, err := NewDecoder(0).Decode([]byte(`{"source":"s","title":"t"}`), meta)
	if err != nil {
		t.Fatal(err)
	}
	if ev.ID != HeaderIDDigest(long) || !strings.HasPrefix(ev.ID, "nats-msg-id-sha256:") || len(ev.ID) > MaxIDBytes {
		t.Fatalf("id %q", ev.ID)
	}
	if HeaderIDDigest(long) == HeaderIDDigest(long+"x") {
		t.Fatal("two headers, one digest")
	}
	_, err = NewDecoder(0).Decode([]byte(`{"id":"`+long+`","source":"s","title":"t"}`), testMeta)
	var de *DecodeError
	if !errors.As(err, &de) || de.Field != "id" {
		t.Fatalf("a 300-byte payload id: %v, want invalid id", err)
	}
}

// TestDecodeNestingLimit: the parser reads 300 levels of values (the event
// object is the first); deeper JSON, valid as it is, is invalid_json with a
// message that says so (the parser's own was one "cannot parse array
// value:" per level, and the dead letter's 1 KiB of it never reached the
// cause).
func TestDecodeNestingLimit(t *testing.T) {
	nested := func(levels int) string { // levels of arrays in an ignored member
		return `{"source":"s","title":"t","extra":` + strings.Repeat("[", levels) + strings.Repeat("]", levels) + `}`
	}
	dec := NewDecoder(1 << 20)
	if _, err := dec.Decode([]byte(nested(299)), testMeta); err != nil {
		t.Fatalf("299 arrays in the event object: %v", err)
	}
	for _, levels := range []int{300, 5000} {
		_, err := dec.Decode([]byte(nested(levels)), testMeta)
		var de *DecodeError
		if !errors.As(err, &de) || de.Reason != ReasonInvalidJSON {
			t.Fatalf("%d levels: err = %v, want invalid_json", levels, err)
		}
		want := fmt.Sprintf("arrays and objects nested %d deep: more than the 300 levels", levels+1)
		if !strings.Contains(de.Msg, want) || len(err.Error()) > 300 {
			t.Fatalf("%d levels: message %q, want it to say %q, briefly", levels, err, want)
		}
	}
	// brackets inside strings are not nesting
	if n := nesting([]byte(`{"a":"[[[{\"[\\","b":[{}]}`)); n != 3 {
		t.Fatalf("nesting = %d, want 3", n)
	}
}

// TestPeek: the id (else external_id) and source of a payload, escapes
// decoded, whether or not the event is valid; nothing from what is not a
// JSON object.
func TestPeek(t *testing.T) {
	tests := []struct{ payload, id, source string }{
		{`{"id":"e-1","source":"llm-gateway","title":"t"}`, "e-1", "llm-gateway"},
		{`{"external_id":"x-1","source":"s"}`, "x-1", "s"},
		{`{"id":"","external_id":"x-1","source":"s"}`, "x-1", "s"},
		{`{"id":"a\u00e9\"b","source":"s\/t"}`, `aé"b`, "s/t"},
		{`{"id":7,"source":["s"]}`, "", ""},
		{`{"source":"s","severity":"P9"}`, "", "s"},
		{`{"id":"e","source":"s"`, "", ""},
		{`["e","s"]`, "", ""},
		{``, "", ""},
	}
	for _, tc := range tests {
		if id, source := Peek([]byte(tc.payload)); id != tc.id || source != tc.source {
			t.Errorf("Peek(%s) = %q, %q; want %q, %q", tc.payload, id, source, tc.id, tc.source)
		}
	}
}

// TestParseTimeStrict: RFC 3339's syntax and nothing wider (Go's parser
// takes a comma before the fraction and offsets past 23:59), and second 60
// only where a leap second can fall: 23:59:60 UTC on a month's last day.
func TestParseTimeStrict(t *testing.T) {
	accepted := map[string]time.Time{
		"2026-11-27T10:00:00.5Z":          time.Date(2026, 11, 27, 10, 0, 0, 5e8, time.UTC),
		"2026-11-27T10:00:00-00:00":       time.Date(2026, 11, 27, 10, 0, 0, 0, time.UTC),
		"2026-11-27T10:00:00+23:59":       time.Date(2026, 11, 26, 10, 1, 0, 0, time.UTC),
		"2017-01-01T05:29:60+05:30":       time.Date(2017, 1, 1, 0, 0, 0, 0, time.UTC),
		"2026-06-30T23:59:60Z":            time.Date(2026, 7, 1, 0, 0, 0, 0, time.UTC),
		"2026-11-27T10:00:00.1234567891Z": time.Date(2026, 11, 27, 10, 0, 0, 123456789, time.UTC),
	}
	for in, want := range accepted {
		if got, err := ParseTime(in); err != nil || !got.Equal(want) {
			t.Errorf("ParseTime(%q) = %v, %v; want %v", in, got, err, want)
		}
	}
	for _, in := range []string{
		"2026-11-27T10:00:00,5Z",    // a comma before the fraction
		"2026-11-27T10:00:00.Z",     // a point without digits
		"2026-11-27T10:00:00+24:00", // offset hours past 23
		"2026-11-27T10:00:00+05:60", // offset minutes past 59
		"2026-11-27T10:00:00+0530",  // no colon in the offset
		"2026-11-27T24:00:00Z",
		"2026-11-27T10:60:00Z",
		"2026-11-27T10:00:60Z",      // second 60 away from a month's end
		"2026-06-15T23:59:60Z",      // 23:59:60 UTC, but mid-month
		"2026-11-27T23:59:60-01:00", // 00:59:60 UTC
		"2026-11-27 10:00:00Z",
		"2026-11-27T10:00:00",
		"26-11-27T10:00:00Z",
		"2026-11-31T10:00:00Z",
	} {
		if got, err := ParseTime(in); err == nil {
			t.Errorf("ParseTime(%q) = %v, want an error", in, got)
		}
		_, err := NewDecoder(0).Decode([]byte(`{"source":"s","title":"t","occurred_at":"`+in+`"}`), testMeta)
		var de *DecodeError
		if !errors.As(err, &de) || de.Reason != ReasonInvalidField || de.Field != "occurred_at" {
			t.Errorf("occurred_at %q: err = %v, want invalid_field on occurred_at", in, err)
		}
	}
}

// TestDecodeAliasNotReadWhenFieldWins: when the field is there, its old
// alias is not read at all, so an alias of the wrong type does not refuse
// the event; when the field is absent or empty, the alias is checked.
func TestDecodeAliasNotReadWhenFieldWins(t *testing.T) {
	for _, p := range []string{
		`{"id":"e1","external_id":7,"source":"s","title":"t"}`,
		`{"type":"Data","alert_type":5,"source":"s","title":"t"}`,
		`{"resources":["a"],"affected_services":5,"source":"s","title":"t"}`,
	} {
		ev, err := NewDecoder(0).Decode([]byte(p), testMeta)
		if err != nil {
			t.Errorf("%s: %v", p, err)
			continue
		}
		if strings.Contains(p, `"id"`) && ev.ID != "e1" || strings.Contains(p, `"type"`) && ev.Type != Data {
			t.Errorf("%s: the field did not win: %+v", p, ev)
		}
	}
	for p, field := range map[string]string{
		`{"external_id":7,"source":"s","title":"t"}`:           "external_id",
		`{"id":"","external_id":7,"source":"s","title":"t"}`:   "external_id",
		`{"type":" ","alert_type":5,"source":"s","title":"t"}`: "alert_type",
		`{"id":7,"external_id":"e","source":"s","title":"t"}`:  "id",
	} {
		_, err := NewDecoder(0).Decode([]byte(p), testMeta)
		var de *DecodeError
		if !errors.As(err, &de) || de.Reason != ReasonInvalidField || de.Field != field {
			t.Errorf("%s: err = %v, want invalid_field on %s", p, err, field)
		}
	}
}

// TestDecodeBlankIsAbsent: action, type, severity and occurred_at ignore
// the white space around them, so white space alone is an empty value:
// absent, with the default (or the alias) taking its place.
func TestDecodeBlankIsAbsent(t *testing.T) {
	ev, err := NewDecoder(0).Decode([]byte(`{"source":"s","title":"t","action":" ","type":"\t","severity":"  ","occurred_at":" "}`), testMeta)
	if err != nil {
		t.Fatal(err)
	}
	if ev.Action != Trigger || ev.Type != Unknown || ev.Severity != DefaultSeverity || !ev.OccurredAt.Equal(testMeta.Timestamp.UTC().Truncate(time.Microsecond)) {
		t.Errorf("blank members were not absent: %+v", ev)
	}
	ev, err = NewDecoder(0).Decode([]byte(`{"source":"s","title":"t","type":" ","alert_type":"Data"}`), testMeta)
	if err != nil || ev.Type != Data {
		t.Errorf("a blank type should leave the alias: %+v, %v", ev, err)
	}
}

// TestDecodeClockSkewFarAhead: a time further ahead than a Duration holds
// (292 years) is named in days, not as the saturated Duration.
func TestDecodeClockSkewFarAhead(t *testing.T) {
	_, err := NewDecoder(0).LimitClockSkew(time.Hour).Decode([]byte(`{"source":"s","title":"t","occurred_at":"9999-12-31T23:59:59Z"}`), testMeta)
	var de *DecodeError
	if !errors.As(err, &de) || strings.Contains(de.Msg, "2562047h") || !strings.Contains(de.Msg, "days after") {
		t.Fatalf("err = %v, want the gap in days", err)
	}
}
