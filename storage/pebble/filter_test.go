package pebble

import (
	"fmt"
	"testing"

	pebbledb "github.com/cockroachdb/pebble/v2"
	"github.com/cockroachdb/pebble/v2/bloom"
	"go.uber.org/zap/zaptest"
)

type countingWriter struct{ keys [][]byte }

func (c *countingWriter) AddKey(k []byte)          { c.keys = append(c.keys, k) }
func (c *countingWriter) Finish(buf []byte) []byte { return buf }

func TestPointFilterHashesOnlyPointFamilies(t *testing.T) {
	c := &countingWriter{}
	w := pointFilterWriter{c}
	for _, k := range []string{"r/id", "e/ev", "f/fp", "x/sDetected\x00\x01...", "c/a\x00\x01", "E/time", "", "r", "rx"} {
		w.AddKey([]byte(k))
	}
	if len(c.keys) != 3 {
		t.Fatalf("hashed %q, want only the r/, e/ and f/ keys", c.keys)
	}
	p := pointFilter{bloom.FilterPolicy(10)}
	if !p.MayContain(pebbledb.TableFilter, nil, []byte("x/anything")) {
		t.Fatal("a key of an unfiltered family must be a maybe")
	}
}

// filterHits reads absent markers inside the key range of the markers
// named prefix-0..999 and returns how many sstable filter probes said
// "absent".
func filterHits(t *testing.T, s *Store, prefix string) int64 {
	t.Helper()
	before := s.db.Metrics().Filter.Hits
	for i := range 200 {
		if ok, err := exists(s.db, markerKey(fmt.Sprintf("%s-%dx", prefix, i))); err != nil || ok {
			t.Fatalf("absent marker: %v, %v", ok, err)
		}
	}
	return s.db.Metrics().Filter.Hits - before
}

// TestFiltersOfOldAndNewTablesAreUsed: tables written with the plain bloom
// policy (before pointFilter) and with pointFilter both answer absent point
// reads from their filters.
func TestFiltersOfOldAndNewTablesAreUsed(t *testing.T) {
	dir := t.TempDir()
	oldOpts := &pebbledb.Options{FormatMajorVersion: pebbledb.FormatNewest}
	for i := range oldOpts.Levels {
		oldOpts.Levels[i].FilterPolicy = bloom.FilterPolicy(10)
	}
	old, err := pebbledb.Open(dir, oldOpts)
	if err != nil {
		t.Fatal(err)
	}
	for i := range 1000 {
		if err := old.Set(markerKey(fmt.Sprintf("old-%d", i)), []byte("x"), nil); err != nil {
			t.Fatal(err)
		}
	}
	if err := old.Flush(); err != nil {
		t.Fatal(err)
	}
	if err := old.Close(); err != nil {
		t.Fatal(err)
	}

	cfg := DefaultConfig()
	cfg.Path, cfg.Sync, cfg.CacheSizeMB, cfg.MemtableSizeMB = dir, false, 8, 4
	s, err := New(cfg, zaptest.NewLogger(t), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if n := filterHits(t, s, "old"); n == 0 {
		t.Fatal("the filter of a table written with the plain bloom policy was not used")
	}
	for i := range 1000 {
		if err := s.db.Set(markerKey(fmt.Sprintf("new-%d", i)), []byte("x"), nil); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.db.Flush(); err != nil { // to L0: Pebble skips L6 filters on reads
		t.Fatal(err)
	}
	if n := filterHits(t, s, "new"); n == 0 {
		t.Fatal("the point filter of a rewritten table was not used")
	}
	for _, k := range []string{"old-7", "new-7"} {
		if ok, err := exists(s.db, markerKey(k)); err != nil || !ok {
			t.Fatalf("marker %s: %v, %v; want present", k, ok, err)
		}
	}
}
