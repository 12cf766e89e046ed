package consumer

import (
	"slices"
	"testing"
)

// TestWindow: the window forgets what the ack floor passed; its
// candidates are the sequences of a wanted identity before the deferred
// event, and only those; earliest finds the first trigger of an identity.
func TestWindow(t *testing.T) {
	var w window
	for _, e := range []struct {
		seq     uint64
		fp      string
		trigger bool
	}{{11, "a", false}, {12, "b", true}, {13, "a", true}, {15, "c", false}, {16, "a", true}, {18, "b", false}} {
		w.add(e.seq, e.fp, e.trigger)
	}
	w.next = 19

	cases := []struct {
		want map[string]uint64
		out  []uint64
	}{
		{map[string]uint64{"a": 16}, []uint64{11, 13}},
		{map[string]uint64{"a": 17, "b": 18}, []uint64{11, 12, 13, 16}},
		{map[string]uint64{"c": 15}, nil},
		{map[string]uint64{"z": 19}, nil},
	}
	for _, c := range cases {
		if got := w.candidates(c.want); !slices.Equal(got, c.out) {
			t.Errorf("candidates(%v) = %v, want %v", c.want, got, c.out)
		}
	}
	// The earliest trigger: c has none, a's first event is a resolve.
	if got := w.earliest([]string{"a", "b", "c", "z"}); len(got) != 2 || got["a"] != 13 || got["b"] != 12 {
		t.Errorf("earliest = %v, want a:13 b:12", got)
	}
	w.drop(13)
	if !slices.Equal(w.seqs, []uint64{15, 16, 18}) || len(w.keys) != 3 || w.next != 19 {
		t.Fatalf("after drop(13): seqs %v, %d keys, next %d", w.seqs, len(w.keys), w.next)
	}
	if got := w.candidates(map[string]uint64{"a": 19}); !slices.Equal(got, []uint64{16}) {
		t.Errorf("after drop(13): candidates = %v, want [16]", got)
	}
	w.drop(25)
	if len(w.seqs) != 0 || w.next != 26 {
		t.Fatalf("after drop(25): seqs %v, next %d; want none and 26 (nothing below the floor is read again)", w.seqs, w.next)
	}
	if got := without([]uint64{3, 5, 7, 9}, []uint64{9, 1, 5}); !slices.Equal(got, []uint64{3, 7}) {
		t.Errorf("without = %v, want [3 7]", got)
	}
}
