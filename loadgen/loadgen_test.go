package loadgen

import (
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
