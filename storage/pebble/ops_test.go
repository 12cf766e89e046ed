package pebble

import (
	"bytes"
	"fmt"
	"math/rand/v2"
	"slices"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/llm-im/incidentd/dedupe"
	"github.com/llm-im/incidentd/loadgen"
)

// referenceOrder is the order sorted must produce: by key, ties (one key
// written twice) in arrival order.
func referenceOrder(o ops) []int32 {
	idx := make([]int32, len(o))
	for i := range idx {
		idx[i] = int32(i)
	}
	slices.SortStableFunc(idx, func(a, b int32) int { return bytes.Compare(o[a].key, o[b].key) })
	return idx
}

func randomOps(rng *rand.Rand, n int) ops {
	var o ops
	t0 := time.Date(2026, 11, 26, 1, 0, 0, 0, time.UTC)
	values := []string{"", "a", "ab", "ab\x00", "ab\x00c", "Detected", "P1", "llm-gateway", "v1:0123456789abcdef0123456789abcdef", "\x00\x01", "\xff"}
	fields := []field{fieldState, fieldSeverity, fieldSource, fieldType, fieldFingerprint}
	for len(o) < n {
		id := fmt.Sprintf("0192f3a4-5b6c-7d8e-9f01-%012x", rng.IntN(64))
		switch rng.IntN(6) {
		case 0:
			o.set(recordKey(id), []byte("rec"))
		case 1:
			o.set(markerKey(fmt.Sprintf("ev-%d", rng.IntN(1000))), nil)
		case 2:
			o.set(pointerKey(values[rng.IntN(len(values))]), []byte(id))
		case 3:
			o.set(counterKey(fields[rng.IntN(len(fields))], values[rng.IntN(len(values))]), nil)
		default:
			e := entry{fields[rng.IntN(len(fields))], values[rng.IntN(len(values))]}
			at := t0.Add(time.Duration(rng.IntN(4)) * time.Nanosecond * time.Duration(rng.IntN(3)+1))
			k := indexKey(e, at, id)
			if rng.IntN(3) == 0 {
				o.del(k)
			} else {
				o.set(k, nil)
			}
			if rng.IntN(4) == 0 { // the same key again
				o.set(append([]byte(nil), k...), nil)
			}
		}
	}
	o.set([]byte("r/"), nil)
	o.set([]byte("r/a"), nil)
	o.set([]byte("r/a\x00"), nil)
	return o
}

func TestSortedIsKeyOrder(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	for round := range 200 {
		o := randomOps(rng, 1+rng.IntN(400))
		want := referenceOrder(o)
		got := o.sorted()
		for i := range want {
			if !bytes.Equal(o[got[i]].key, o[want[i]].key) || (bytes.Equal(o[got[i]].key, o[want[i]].key) && got[i] != want[i]) {
				t.Fatalf("round %d, position %d: got key %q (op %d), want %q (op %d)", round, i, o[got[i]].key, got[i], o[want[i]].key, want[i])
			}
		}
	}
}

// realisticOps are the writes of a 512-event Apply: loadgen incidents
// (new ones, and updates of them with a later last_seen) and markers.
func realisticOps(b *testing.B) ops {
	cfg := loadgen.DefaultConfig()
	cfg.DuplicateRatio = 0
	g := loadgen.New(cfg)
	fp, _ := dedupe.NewFingerprinter(nil, nil)
	f := dedupe.NewFolder(0, func() string { return uuid.Must(uuid.NewV7()).String() })
	var w ops
	delta := map[entry]int64{}
	for i := range 512 {
		ev := g.Next()
		res := f.Fold(nil, nil, []dedupe.Keyed{{Event: ev, Fingerprint: fp.Fingerprint(&ev)}}, time.Now())
		in := res.Incidents[0]
		var old *meta
		if i%6 == 0 { // an update: the same incident seen earlier
			old = metaOf(in)
			up := *in
			up.LastSeen = in.LastSeen.Add(time.Second)
			up.Version++
			in = &up
		}
		if _, _, err := putIncident(&w, old, in, delta); err != nil {
			b.Fatal(err)
		}
		w.set(markerKey(ev.ID), nil)
	}
	return w
}

func BenchmarkSorted(b *testing.B) {
	o := realisticOps(b)
	b.Logf("%d ops", len(o))
	b.Run("indexes", func(b *testing.B) {
		for b.Loop() {
			o.sorted()
		}
	})
	b.Run("ops in place", func(b *testing.B) {
		type numbered struct {
			op
			n int
		}
		src := make([]numbered, len(o))
		for i := range o {
			src[i] = numbered{o[i], i}
		}
		c := slices.Clone(src)
		for b.Loop() {
			copy(c, src)
			slices.SortFunc(c, func(a, b numbered) int {
				if c := bytes.Compare(a.key, b.key); c != 0 {
					return c
				}
				return a.n - b.n
			})
		}
	})
}
