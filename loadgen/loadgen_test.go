package loadgen

import (
	"slices"
	"testing"

	"github.com/llm-im/incidentd/incident"
)

func TestGeneratedEventsDecodeAndHaveRealisticSizes(t *testing.T) {
	g := New(DefaultConfig())
	dec := incident.NewDecoder(0)
	seen := map[string]bool{}
	dups, total, sum := 0, 5000, 0
	minSize, maxSize := 1<<30, 0
	for i := 0; i < total; i++ {
		ev := g.Next()
		b := Marshal(ev)
		sum += len(b)
		minSize, maxSize = min(minSize, len(b)), max(maxSize, len(b))
		got, err := dec.Decode(b, incident.Meta{})
		if err != nil {
			t.Fatalf("event %d does not decode: %v\n%s", i, err, b)
		}
		if got.ID != ev.ID || got.Title != ev.Title || !got.OccurredAt.Equal(ev.OccurredAt) {
			t.Fatalf("round trip changed the event: %+v vs %+v", got, ev)
		}
		if seen[ev.ID] {
			dups++
		}
		seen[ev.ID] = true
	}
	if avg := sum / total; avg < 300 || avg > 700 {
		t.Errorf("average size %d bytes, want 300..700 (min %d, max %d)", avg, minSize, maxSize)
	}
	// Half the duplicates repeat an id: about 15% of events.
	if r := float64(dups) / float64(total); r < 0.12 || r > 0.18 {
		t.Errorf("same-id repeats %.3f of events, want about 0.15", r)
	}
	if r := float64(g.Identities()) / float64(total); r < 0.67 || r > 0.73 {
		t.Errorf("identities %.3f of events, want about 0.70", r)
	}
}

func TestSameSeedSameStream(t *testing.T) {
	a, b := New(DefaultConfig()), New(DefaultConfig())
	for i := 0; i < 100; i++ {
		if string(Marshal(a.Next())) != string(Marshal(b.Next())) {
			t.Fatalf("event %d differs", i)
		}
	}
}

// TestRepeatsAreIdentical: a repeated event id (a redelivery) carries the
// same bytes as its first publication, and a new event of an existing
// identity keeps the identity's fields, although the generator keeps only
// a seed per identity.
func TestRepeatsAreIdentical(t *testing.T) {
	g := New(DefaultConfig())
	first := map[string]string{}
	byTenant := map[string]incident.Event{}
	repeats, merges := 0, 0
	for range 20000 {
		ev := g.Next()
		b := string(Marshal(ev))
		if prev, ok := first[ev.ID]; ok {
			repeats++
			if prev != b {
				t.Fatalf("event %s repeated with other bytes:\n%s\n%s", ev.ID, prev, b)
			}
			continue
		}
		first[ev.ID] = b
		tenant := ev.Labels["tenant"]
		if base, ok := byTenant[tenant]; ok {
			merges++
			if base.Title != ev.Title || base.Source != ev.Source || base.Type != ev.Type ||
				base.DedupKey != ev.DedupKey || !slices.Equal(base.Resources, ev.Resources) {
				t.Fatalf("identity %s changed: %+v vs %+v", tenant, base, ev)
			}
			continue
		}
		byTenant[tenant] = ev
	}
	if repeats < 2000 || merges < 2000 {
		t.Errorf("%d repeats and %d new events of known identities in 20000, want about 3000 each", repeats, merges)
	}
}
