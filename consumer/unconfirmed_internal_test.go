package consumer

import (
	"testing"

	"github.com/llm-im/incidentd/dedupe"
)

// TestAfterUnconfirmed: a batch whose first Apply was written but not
// confirmed counts as that Apply counted it; the retry, which finds its
// events applied, adds no duplicates for them (black-box finding: after a
// Redis WAIT timeout 512 events counted as redeliveries, not as applied).
func TestAfterUnconfirmed(t *testing.T) {
	w := dedupe.Result{EventIDs: []string{"a", "b", "c"},
		Stats: dedupe.Stats{Applied: 3, Duplicates: 1, Opened: 2, Merged: 1, Deferred: 1}}
	r := dedupe.Result{Stats: dedupe.Stats{Duplicates: 4}, Deferred: []int{4}} // a, b, c, and the true duplicate
	got := afterUnconfirmed(w, r)
	want := dedupe.Stats{Applied: 3, Duplicates: 1, Opened: 2, Merged: 1}
	if got.Stats != want {
		t.Fatalf("stats %+v, want %+v", got.Stats, want)
	}
	if len(got.EventIDs) != 3 || len(got.Deferred) != 1 {
		t.Fatalf("event ids %v, deferred %v", got.EventIDs, got.Deferred)
	}
	// A retry that wrote more (an event deferred the first time) adds it.
	r = dedupe.Result{EventIDs: []string{"d"}, Stats: dedupe.Stats{Applied: 1, Duplicates: 4, Acknowledged: 1}}
	got = afterUnconfirmed(w, r)
	want = dedupe.Stats{Applied: 4, Duplicates: 1, Opened: 2, Merged: 1, Acknowledged: 1}
	if got.Stats != want || len(got.EventIDs) != 4 {
		t.Fatalf("stats %+v, want %+v; ids %v", got.Stats, want, got.EventIDs)
	}
}
