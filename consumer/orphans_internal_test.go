package consumer

import (
	"slices"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
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

// TestInheritedHold: an event waits for the messages delivered before the
// worker bound the consumer only while the window is open and one of them
// before it is still missing.
func TestInheritedHold(t *testing.T) {
	t0 := time.Date(2026, 11, 27, 10, 0, 0, 0, time.UTC)
	info := &jetstream.ConsumerInfo{NumAckPending: 30, Delivered: jetstream.SequenceInfo{Stream: 100}}
	in := inheritedFrom(info, t0, 30*time.Second, 100*time.Millisecond)
	if want := t0.Add(31 * time.Second); !in.until.Equal(want) || in.upTo != 100 {
		t.Fatalf("inheritedFrom = %+v, want up to 100 until %v (ack_wait plus at least 1 s)", in, want)
	}
	if got := inheritedFrom(&jetstream.ConsumerInfo{Delivered: jetstream.SequenceInfo{Stream: 100}}, t0, 30*time.Second, 0); !got.until.IsZero() {
		t.Fatalf("nothing pending at bind: %+v, want no window", got)
	}
	upTo := func(a, b uint64) []uint64 {
		var s []uint64
		for q := a; q <= b; q++ {
			s = append(s, q)
		}
		return s
	}
	cases := []struct {
		name       string
		floor, seq uint64
		held       []uint64
		at         time.Duration
		want       bool
	}{
		{"an inherited message before it is missing", 70, 150, upTo(101, 149), time.Second, true},
		{"an event inherited itself", 70, 90, nil, time.Second, true},
		{"every inherited message is back; a later one is missing", 70, 150, upTo(71, 120), time.Second, false},
		{"the floor passed the inherited messages", 100, 150, nil, time.Second, false},
		{"the window has closed", 70, 150, upTo(101, 149), 31 * time.Second, false},
		{"nothing before it is missing", 70, 71, nil, time.Second, false},
	}
	for _, c := range cases {
		until, got := in.hold(c.floor, c.seq, c.held, t0.Add(c.at))
		if got != c.want || (got && !until.Equal(in.until)) {
			t.Errorf("%s: hold = %v, %v; want %v", c.name, until, got, c.want)
		}
	}
	if _, got := (inherited{}).hold(0, 50, nil, t0); got {
		t.Errorf("no window: hold = true")
	}
}
