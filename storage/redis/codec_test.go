package redis

import (
	"encoding/json"
	"math"
	"math/rand/v2"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/llm-im/incidentd/dedupe"
	"github.com/llm-im/incidentd/incident"
	"github.com/llm-im/incidentd/storage/storetest"
)

// codecIncidents are incidents from the fold of realistic events (labels,
// resources, values, reopens) and the conformance population (the usual
// ones, all of them first), then incidents with every optional field set
// to values that need care in JSON.
func codecIncidents(t testing.TB) (all []*incident.Incident, usual int) {
	t.Helper()
	f := dedupe.NewFolder(time.Hour, storetest.NewIDs("c"))
	res := f.Fold(nil, nil, storetest.RealisticEvents(400, 7), storetest.Base)
	out := append(res.Incidents, storetest.Population(60, 3)...)
	usual = len(out)
	rng := rand.New(rand.NewPCG(1, 2))
	awkward := []string{"", "plain", `quote " and \ backslash`, "<html> & co", "tab\tnew\nline\x01", "ünïcödé ☃",
		"bad utf8 \xff\xfe", "line sep \u2028 \u2029", "team a/guardrails:eu", `{"id":"x"}`, "\x7f del"}
	zones := []*time.Location{time.UTC, time.FixedZone("plus", 5*3600+30*60), time.FixedZone("minus", -8*3600), time.Local}
	floats := []float64{0, 1, -1.5, 1e-7, 123456789, 1e21, 1e20, 5e-324, math.MaxFloat64, 0.1, math.Copysign(0, -1)}
	for i := range 300 {
		in := storetest.SparseIncident(awkward[rng.IntN(len(awkward))]+"-id", awkward[rng.IntN(len(awkward))])
		in.DedupKey = awkward[rng.IntN(len(awkward))]
		in.Title = awkward[rng.IntN(len(awkward))]
		in.Description = awkward[rng.IntN(len(awkward))]
		in.Source = awkward[rng.IntN(len(awkward))]
		in.Type = incident.Types[rng.IntN(len(incident.Types))]
		in.Severity = incident.Severities[rng.IntN(len(incident.Severities))]
		in.State = incident.States[rng.IntN(len(incident.States))]
		switch i % 3 {
		case 0:
			in.Resources = nil
		case 1:
			in.Resources = []string{}
		default:
			in.Resources = []string{awkward[rng.IntN(len(awkward))], "model/x"}
		}
		if i%2 == 0 {
			in.Labels = map[string]string{awkward[rng.IntN(len(awkward))]: awkward[rng.IntN(len(awkward))], "env": "prod", "b": ""}
		} else if i%4 == 1 {
			in.Labels = map[string]string{}
		}
		at := time.Unix(rng.Int64N(4e9), rng.Int64N(1e9)).In(zones[rng.IntN(len(zones))])
		in.FirstSeen, in.LastSeen, in.LatestEventAt = at, at.Add(time.Duration(rng.IntN(1e6))), at.Round(time.Second)
		in.OccurrenceCount, in.LateCount = rng.Int64N(1e12), int64(i%2)*rng.Int64N(10)
		in.ReopenOf = awkward[rng.IntN(len(awkward))]
		if i%3 == 0 {
			r := at.Add(time.Hour)
			in.ResolvedAt, in.ResolvedBy = &r, incident.ResolvedByTimeout
			in.AcknowledgedAt = &at
		}
		if i%5 != 0 {
			v := floats[rng.IntN(len(floats))]
			in.LastValue = &v
		}
		in.Unit = awkward[rng.IntN(len(awkward))]
		in.LatestEventID = awkward[rng.IntN(len(awkward))]
		in.Version = rng.Int64N(1 << 40)
		out = append(out, in)
	}
	return out, usual
}

// TestEncodeIsJSONMarshal: encode writes exactly json.Marshal's bytes, and
// takes its own path for the realistic incidents.
func TestEncodeIsJSONMarshal(t *testing.T) {
	ins, usual := codecIncidents(t)
	for i, in := range ins {
		want, err := json.Marshal(in)
		if err != nil {
			t.Fatal(err)
		}
		got, err := encode([]byte("prefix"), in)
		if err == nil {
			if !strings.HasPrefix(string(got), "prefix") {
				t.Fatalf("encode dropped dst: %s", got)
			}
			got = got[len("prefix"):]
		}
		if err != nil || string(got) != string(want) {
			t.Fatalf("encode = %v\n%s\nwant\n%s", err, got, want)
		}
		if _, ok := appendIncident(nil, in); !ok && i < usual {
			t.Errorf("%s took json.Marshal", want)
		}
	}
	bad := storetest.SparseIncident("x", "y")
	bad.Severity = 99
	if _, err := encode(nil, bad); err == nil {
		t.Error("encode of an invalid severity succeeded")
	}
	far := storetest.SparseIncident("x", "y")
	far.LastSeen = time.Date(10000, 1, 1, 0, 0, 0, 0, time.UTC)
	if _, err := encode(nil, far); err == nil {
		t.Error("encode of year 10000 succeeded")
	}
}

// sameDecode checks decode against json.Unmarshal for one input.
func sameDecode(t *testing.T, raw string) {
	t.Helper()
	var want incident.Incident
	wantErr := json.Unmarshal([]byte(raw), &want)
	if in, ok := decodeFast(raw); ok {
		if wantErr != nil {
			t.Fatalf("decodeFast took %q, json.Unmarshal refuses it: %v", raw, wantErr)
		}
		if !reflect.DeepEqual(in, &want) {
			t.Fatalf("decodeFast(%q) =\n%+v\nwant\n%+v", raw, in, &want)
		}
	}
	got, err := decode(raw)
	if (err != nil) != (wantErr != nil) || (err == nil && !reflect.DeepEqual(got, &want)) {
		t.Fatalf("decode(%q) = %+v, %v; want %+v, %v", raw, got, err, &want, wantErr)
	}
}

// TestDecodeIsJSONUnmarshal: decode reads every record as json.Unmarshal
// does, and takes its own path for the realistic ones.
func TestDecodeIsJSONUnmarshal(t *testing.T) {
	ins, usual := codecIncidents(t)
	for i, in := range ins {
		raw, err := json.Marshal(in)
		if err != nil {
			t.Fatal(err)
		}
		sameDecode(t, string(raw))
		if _, ok := decodeFast(string(raw)); !ok && i < usual {
			t.Errorf("%s took json.Unmarshal", raw)
		}
	}
	rec, _ := json.Marshal(storetest.SparseIncident("a", "b"))
	r := string(rec)
	for _, raw := range []string{
		r, " " + r, r + " ", r + "x", "{}", "", "{", "null", `{"id":"a",}`, `{"ID":"a"}`, `{"id":"a","id":"b"}`,
		strings.Replace(r, `"version":1`, `"version":01`, 1), strings.Replace(r, `"version":1`, `"version":1.0`, 1),
		strings.Replace(r, `"version":1`, `"version":-0`, 1), strings.Replace(r, `"version":1`, `"version":null`, 1),
		strings.Replace(r, `"resources":null`, `"resources":[]`, 1), strings.Replace(r, `"resources":null`, `"resources":["a","b"]`, 1),
		strings.Replace(r, `"resources":null`, `"resources":["a",]`, 1), strings.Replace(r, `"resources":null`, `"labels":{"a":"1","a":"2"}`, 1),
		strings.Replace(r, `"resources":null`, `"labels":{}`, 1), strings.Replace(r, `"resources":null`, `"labels":null`, 1),
		strings.Replace(r, `"resources":null`, `"last_value":1e400`, 1), strings.Replace(r, `"resources":null`, `"last_value":0x10`, 1),
		strings.Replace(r, `"resources":null`, `"last_value":Inf`, 1), strings.Replace(r, `"resources":null`, `"last_value":-1.5E-3`, 1),
		strings.Replace(r, `"resources":null`, `"resolved_at":null`, 1), strings.Replace(r, `"severity":"P4"`, `"severity":"critical"`, 1),
		strings.Replace(r, `"severity":"P4"`, `"severity":"P9"`, 1), strings.Replace(r, `"title":"t"`, `"title":"\u00e9"`, 1),
		strings.Replace(r, `"title":"t"`, "\"title\":\"\xff\"", 1), strings.Replace(r, `"title":"t"`, "\"title\":\"é\"", 1),
		strings.Replace(r, `"first_seen":"2026`, `"first_seen":"20261`, 1), strings.Replace(r, `"title":"t"`, `"title":7`, 1),
	} {
		sameDecode(t, raw)
	}
}

// FuzzDecode: whatever decodeFast accepts, json.Unmarshal reads the same.
func FuzzDecode(f *testing.F) {
	ins, _ := codecIncidents(f)
	for _, in := range ins[len(ins)-100:] {
		raw, _ := json.Marshal(in)
		f.Add(string(raw))
	}
	f.Fuzz(func(t *testing.T, raw string) {
		var want incident.Incident
		wantErr := json.Unmarshal([]byte(raw), &want)
		if in, ok := decodeFast(raw); ok && (wantErr != nil || !reflect.DeepEqual(in, &want)) {
			t.Fatalf("decodeFast(%q) = %+v; json.Unmarshal: %+v, %v", raw, in, &want, wantErr)
		}
	})
}

// TestPlain checks the eight-at-a-time test against the byte-by-byte
// definition, with every byte value at every position of a word.
func TestPlain(t *testing.T) {
	slow := func(s string) bool {
		for i := 0; i < len(s); i++ {
			if c := s[i]; c < 0x20 || c >= 0x80 || strings.IndexByte(`"\<>&`, c) >= 0 {
				return false
			}
		}
		return true
	}
	base := []byte("abcdefghijklmnopqrstuvwxyz0123")
	for n := 0; n <= len(base); n++ {
		for pos := 0; pos < n; pos++ {
			for c := 0; c < 256; c++ {
				b := append([]byte(nil), base[:n]...)
				b[pos] = byte(c)
				if got, want := plain(string(b)), slow(string(b)); got != want {
					t.Fatalf("plain(%q) = %v, want %v", b, got, want)
				}
			}
		}
	}
	rng := rand.New(rand.NewPCG(5, 6))
	for range 100000 {
		b := make([]byte, rng.IntN(40))
		for i := range b {
			b[i] = byte(0x1c + rng.IntN(0x66))
		}
		if got, want := plain(string(b)), slow(string(b)); got != want {
			t.Fatalf("plain(%q) = %v, want %v", b, got, want)
		}
	}
}
