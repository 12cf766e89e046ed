package consumer

import (
	"slices"
	"testing"
)

// TestCovered: an event may be settled at once when every message before it
// is committed (at or below the floor) or this worker's.
func TestCovered(t *testing.T) {
	cases := []struct {
		floor, seq uint64
		held       []uint64
		want       bool
	}{
		{10, 11, nil, true},           // nothing between
		{10, 5, nil, true},            // below the floor: all before it committed
		{10, 13, []uint64{11}, false}, // 12 is someone else's
		{10, 13, []uint64{12, 11, 11, 40, 3}, true},
		{0, 4, []uint64{1, 2, 3}, true},
		{0, 4, []uint64{1, 3, 3}, false},
	}
	for _, c := range cases {
		if got := covered(c.floor, c.seq, c.held); got != c.want {
			t.Errorf("covered(%d, %d, %v) = %v, want %v", c.floor, c.seq, c.held, got, c.want)
		}
	}
	var a ackedSeqs
	a.add([]uint64{5, 6, 7, 8}, []int{1})
	if got := a.above(5, nil); !slices.Equal(got, []uint64{7, 8}) {
		t.Errorf("above(5) = %v, want [7 8] (6 was skipped, 5 is at the floor)", got)
	}
}
