package pebble

import (
	"fmt"
	"testing"
)

func rec(n int) []byte { return make([]byte, n) }

func TestRecordCacheGenerations(t *testing.T) {
	// Each entry is 2 (id) + 100 (record) + entryOverhead bytes; a
	// generation holds three.
	size := entrySize("00", rec(100))
	c := newRecordCache(2 * 3 * size)
	for i := range 3 {
		c.apply([]cachedRecord{{id: fmt.Sprintf("%02d", i), rec: rec(100)}})
	}
	if n, bytes, _, _ := c.stats(); n != 3 || bytes != 3*size {
		t.Fatalf("after 3 puts: %d entries, %d bytes; want 3, %d", n, bytes, 3*size)
	}
	// The fourth starts a new generation; the first three move to prev.
	c.apply([]cachedRecord{{id: "03", rec: rec(100)}})
	if len(c.cur) != 1 || len(c.prev) != 3 {
		t.Fatalf("cur %d, prev %d; want 1, 3", len(c.cur), len(c.prev))
	}
	// A hit in prev moves the entry to cur, so it survives the next turn.
	if c.get("00") == nil {
		t.Fatal("00 evicted too early")
	}
	if _, ok := c.cur["00"]; !ok || len(c.prev) != 2 {
		t.Fatalf("00 not promoted: cur %v, prev %d", c.cur, len(c.prev))
	}
	c.apply([]cachedRecord{{id: "04", rec: rec(100)}, {id: "05", rec: rec(100)}}) // cur full: 03 00 04, then 05 turns it
	for id, want := range map[string]bool{"00": true, "01": false, "02": false, "03": true, "04": true, "05": true} {
		if got := c.get(id) != nil; got != want {
			t.Errorf("get(%s) cached = %v, want %v", id, got, want)
		}
	}
	if n, bytes, hits, misses := c.stats(); n != 4 || bytes != 4*size || hits != 5 || misses != 2 {
		t.Errorf("stats = %d entries, %d bytes, %d hits, %d misses; want 4, %d, 5, 2", n, bytes, hits, misses, 4*size)
	}
}

func TestRecordCacheApply(t *testing.T) {
	c := newRecordCache(1 << 20)
	c.apply([]cachedRecord{{id: "a", rec: []byte("v1")}, {id: "b", rec: []byte("b1")}})
	c.apply([]cachedRecord{{id: "a", rec: []byte("v2")}}) // an update replaces
	if got := string(c.get("a")); got != "v2" {
		t.Errorf("a = %q, want v2", got)
	}
	c.apply([]cachedRecord{{id: "b"}}) // a deletion drops
	if c.get("b") != nil {
		t.Error("b still cached after its deletion")
	}
	// One batch writing an id twice leaves the later record.
	c.apply([]cachedRecord{{id: "c", rec: []byte("c1")}, {id: "c", rec: []byte("c2")}})
	if got := string(c.get("c")); got != "c2" {
		t.Errorf("c = %q, want c2", got)
	}
	if n, bytes, _, _ := c.stats(); n != 2 || bytes != entrySize("a", []byte("v2"))+entrySize("c", []byte("c2")) {
		t.Errorf("stats = %d entries, %d bytes", n, bytes)
	}
	var hits []string
	missing, err := c.getMany([]string{"a", "b", "c", "d"}, func(id string, r []byte) error {
		hits = append(hits, id+"="+string(r))
		return nil
	})
	if err != nil || fmt.Sprint(missing) != "[b d]" || len(hits) != 2 {
		t.Errorf("getMany: hits %v, missing %v, %v", hits, missing, err)
	}
}

func TestRecordCacheDisabledAndOversized(t *testing.T) {
	off := newRecordCache(0)
	off.apply([]cachedRecord{{id: "a", rec: []byte("v")}})
	if off.get("a") != nil {
		t.Error("a disabled cache returned a record")
	}
	if missing, _ := off.getMany([]string{"a"}, nil); len(missing) != 1 {
		t.Errorf("disabled getMany missing = %v", missing)
	}
	small := newRecordCache(2 * entrySize("a", rec(10)))
	small.apply([]cachedRecord{{id: "a", rec: rec(11)}}) // larger than a generation: not kept
	if n, _, _, _ := small.stats(); n != 0 {
		t.Errorf("an oversized record was kept: %d entries", n)
	}
}
