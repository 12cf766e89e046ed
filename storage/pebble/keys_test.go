package pebble

import (
	"bytes"
	"math/rand/v2"
	"slices"
	"testing"
	"time"

	pebbledb "github.com/cockroachdb/pebble/v2"
	"go.uber.org/zap/zaptest"

	"github.com/llm-im/incidentd/incident"
	"github.com/llm-im/incidentd/storage"
	"github.com/llm-im/incidentd/storage/storetest"
)

func TestTimeEncodingRoundTripsAndSorts(t *testing.T) {
	times := []time.Time{
		time.Time{},
		time.Unix(-1, 999_999_999),
		time.Unix(0, 0),
		time.Unix(0, 1),
		time.Date(2026, 11, 25, 21, 0, 0, 123_456_000, time.UTC),
		time.Date(2026, 11, 25, 21, 0, 0, 123_457_000, time.UTC),
		time.Date(9999, 1, 1, 0, 0, 0, 0, time.UTC),
	}
	for i, tm := range times {
		enc := appendTime(nil, tm)
		if got := decodeTime(enc); !got.Equal(tm) {
			t.Errorf("round trip of %v gave %v", tm, got)
		}
		if i > 0 {
			prev := appendTime(nil, times[i-1])
			if bytes.Compare(prev, enc) >= 0 {
				t.Errorf("%v does not sort before %v", times[i-1], tm)
			}
			if bytes.Compare(appendInvTime(nil, times[i-1]), appendInvTime(nil, tm)) <= 0 {
				t.Errorf("inverted %v does not sort after %v", times[i-1], tm)
			}
		}
	}
}

// TestIndexKeysSortNewestFirst checks that key order within one index value
// is List's order: last_seen descending, then id descending.
func TestIndexKeysSortNewestFirst(t *testing.T) {
	base := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	type member struct {
		at time.Time
		id string
	}
	var ms []member
	r := rand.New(rand.NewPCG(1, 2))
	ids := []string{"a", "ab", "b", "abc", "z", "inc-1", "inc-10", "inc-2", "\u00e9t\u00e9"}
	for range 300 {
		ms = append(ms, member{base.Add(time.Duration(r.IntN(5)) * time.Microsecond), ids[r.IntN(len(ids))] + string(rune('a'+r.IntN(3)))})
	}
	keys := make([][]byte, len(ms))
	for i, m := range ms {
		keys[i] = indexKey(entry{fieldSource, "llm-gateway"}, m.at, m.id)
	}
	slices.SortFunc(keys, bytes.Compare)
	want := slices.Clone(ms)
	slices.SortFunc(want, func(a, b member) int {
		if c := b.at.Compare(a.at); c != 0 {
			return c
		}
		return -bytes.Compare([]byte(a.id), []byte(b.id))
	})
	prefix := indexPrefix(fieldSource, "llm-gateway")
	for i, k := range keys {
		suffix := k[len(prefix):]
		if got := suffixID(suffix); got != want[i].id {
			t.Fatalf("position %d: id %q, want %q", i, got, want[i].id)
		}
		if got := decodeTime(invert(suffix[:timeLen])); !got.Equal(want[i].at) {
			t.Fatalf("position %d: time %v, want %v", i, got, want[i].at)
		}
	}
}

func invert(b []byte) []byte {
	out := make([]byte, len(b))
	for i, c := range b {
		out[i] = ^c
	}
	return out
}

// TestValueFramingIsPrefixFree checks that no value's keys fall inside
// another value's key range, whatever bytes the values hold.
func TestValueFramingIsPrefixFree(t *testing.T) {
	values := []string{"", "a", "a\x00", "a\x00b", "a\x01", "ab", "a\xff", "\x00", "llm-gateway", "llm-gateway/eu", "日本"}
	at := time.Unix(1_700_000_000, 0)
	for _, v := range values {
		p := indexPrefix(fieldSource, v)
		for _, w := range values {
			if v == w {
				continue
			}
			k := indexKey(entry{fieldSource, w}, at, "id-1")
			if bytes.HasPrefix(k, p) {
				t.Errorf("key of %q starts with the prefix of %q", w, v)
			}
		}
		f, got, ok := parseCounterKey(counterKey(fieldSource, v))
		if !ok || f != fieldSource || got != v {
			t.Errorf("counter key of %q parsed as %q %q %v", v, f, got, ok)
		}
	}
}

func TestPrefixEnd(t *testing.T) {
	tests := []struct{ in, want []byte }{
		{[]byte("x/a"), []byte("x/b")},
		{[]byte{'x', 0xff}, []byte{'y'}},
		{[]byte{0xff, 0xff}, nil},
	}
	for _, tc := range tests {
		if got := prefixEnd(tc.in); !bytes.Equal(got, tc.want) {
			t.Errorf("prefixEnd(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}

func TestMarkerList(t *testing.T) {
	at := time.Unix(1_700_000_000, 5)
	list := appendString(appendString(nil, "ev-1"), "ev-2")
	tests := []struct {
		name    string
		val     []byte
		want    []string
		wantErr bool
	}{
		{"per batch", list, []string{"ev-1", "ev-2"}, false},
		{"per event (empty value)", nil, []string{"ev-1"}, false},
		{"truncated", list[:len(list)-1], nil, true},
	}
	for _, tc := range tests {
		got, err := markerList(markerTimeKey(at, "ev-1"), tc.val)
		if (err != nil) != tc.wantErr || !slices.Equal(got, tc.want) {
			t.Errorf("%s: %q, %v; want %q (error %v)", tc.name, got, err, tc.want, tc.wantErr)
		}
	}
}

// asOlderVersion stores pop, rewrites each incident's keys with old (what
// an older version wrote), and returns the store reopened on the result.
func asOlderVersion(t *testing.T, pop []*incident.Incident, old func(s *Store, in *incident.Incident) error) *Store {
	t.Helper()
	cfg := DefaultConfig()
	cfg.Path, cfg.Sync, cfg.CacheSizeMB, cfg.MemtableSizeMB = t.TempDir(), false, 8, 4
	s, err := New(cfg, zaptest.NewLogger(t), nil)
	if err != nil {
		t.Fatal(err)
	}
	storetest.Put(t, s, pop...)
	for _, in := range pop {
		if err := old(s, in); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if s, err = New(cfg, zaptest.NewLogger(t), nil); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close() })
	return s
}

// requireNoKeys fails when s holds a key in [lo, hi).
func requireNoKeys(t *testing.T, s *Store, lo, hi string) {
	t.Helper()
	it, err := s.db.NewIter(&pebbledb.IterOptions{LowerBound: []byte(lo), UpperBound: []byte(hi)})
	if err != nil {
		t.Fatal(err)
	}
	defer it.Close()
	if it.First() {
		t.Errorf("key %q left after open", it.Key())
	}
}

// TestOpenDropsTheOldAllIndex: a store written with x/a keys loses them at
// open and still lists and counts everything.
func TestOpenDropsTheOldAllIndex(t *testing.T) {
	pop := storetest.Population(30, 7)
	s := asOlderVersion(t, pop, func(s *Store, in *incident.Incident) error {
		return s.db.Set(indexKey(entry{fieldAll, ""}, in.LastSeen, in.ID), nil, nil)
	})
	requireNoKeys(t, s, "x/a", "x/b")
	storetest.CheckFilters(t, s, pop)
}

// TestOpenConvertsTheOldFingerprintIndex: a store written with x/f keys
// (fingerprint memberships that embed last_seen) gets h/ keys at open, and
// every filter, the fingerprint ones included, still answers exactly.
func TestOpenConvertsTheOldFingerprintIndex(t *testing.T) {
	odd := storetest.SparseIncident("inc-odd", "fp\x00with\x00zeros")
	pop := append(storetest.Population(30, 11), odd)
	s := asOlderVersion(t, pop, func(s *Store, in *incident.Incident) error {
		if err := s.db.Set(indexKey(entry{fieldFingerprint, in.Fingerprint}, in.LastSeen, in.ID), nil, nil); err != nil {
			return err
		}
		return s.db.Delete(historyKey(in.Fingerprint, in.ID), nil)
	})
	requireNoKeys(t, s, "x/f", "x/g")
	for _, in := range pop {
		if ok, err := exists(s.db, historyKey(in.Fingerprint, in.ID)); err != nil || !ok {
			t.Fatalf("no history key for %s: %v", in.ID, err)
		}
	}
	storetest.CheckFilters(t, s, pop)
	got, err := s.List(t.Context(), storage.Filter{Fingerprints: []string{odd.Fingerprint}}, storage.Page{})
	if err != nil || len(got) != 1 || got[0].ID != odd.ID {
		t.Fatalf("fingerprint with zero bytes: %v, %v", got, err)
	}
}

func TestSplitEscaped(t *testing.T) {
	for _, v := range []string{"", "a", "\x00", "a\x00b", "\x00\x00", "\xff", "\x00\xff"} {
		k := append(appendEscaped(nil, v), "rest"...)
		got, rest, ok := splitEscaped(k)
		if !ok || got != v || string(rest) != "rest" {
			t.Errorf("splitEscaped(%q) = %q, %q, %v", k, got, rest, ok)
		}
	}
	for _, bad := range []string{"abc", "a\x00", "a\x00\x02"} {
		if _, _, ok := splitEscaped([]byte(bad)); ok {
			t.Errorf("splitEscaped(%q) accepted", bad)
		}
	}
}
