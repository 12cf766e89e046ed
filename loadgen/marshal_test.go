package loadgen

import (
	"bytes"
	"encoding/json"
	"math"
	"testing"
	"time"

	"github.com/llm-im/incidentd/incident"
)

// TestMarshalIsEncodingJSON: the hand-written encoder gives exactly what
// encoding/json gives, for generated events and for awkward ones.
func TestMarshalIsEncodingJSON(t *testing.T) {
	var events []incident.Event
	for seed := uint64(1); seed <= 4; seed++ {
		cfg := DefaultConfig()
		cfg.Seed, cfg.AckRatio, cfg.ResolveRatio = seed, 0.05, 0.05
		g := New(cfg)
		for range 2000 {
			events = append(events, g.Next())
		}
	}
	for _, v := range []float64{0, -0.5, 1e-7, 1.5e-7, 1e-6, 123456789, 1e20, 1e21, 1.5e300, -2e-300, math.MaxFloat64, math.SmallestNonzeroFloat64} {
		events = append(events, incident.Event{Source: "s", Value: &v})
	}
	events = append(events,
		incident.Event{},
		incident.Event{ID: "x", Action: incident.Resolve, DedupKey: "k", Source: `a "quoted" \ source`, Type: incident.Security,
			Severity: incident.P0, Title: "<script>&amp;</script>", Description: "tab\tnew\nline\rnul\x00 bell\x07 del\x7f",
			Resources: []string{"é", "日本", "\u2028\u2029", "bad\xffutf8"}, Labels: map[string]string{"z": "1", "a": "2", "é": "<"},
			OccurredAt: time.Date(2026, 11, 25, 1, 2, 3, 4000, time.FixedZone("x", 3600)), Unit: "ms"},
		incident.Event{Source: "s", Labels: map[string]string{"a": "", "b": "c", "c": "", "d": "", "e": "", "f": "", "g": "", "h": "", "i": ""}},
		incident.Event{Source: "s", OccurredAt: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)},
	)
	for i := range events {
		want, err := json.Marshal(events[i])
		if err != nil {
			t.Fatalf("event %d: %v", i, err)
		}
		if got := Marshal(events[i]); !bytes.Equal(got, want) {
			t.Fatalf("event %d:\n got %s\nwant %s", i, got, want)
		}
	}
}

func TestMarshalPanicsOnWhatEncodingJSONRejects(t *testing.T) {
	nan := math.NaN()
	defer func() {
		if recover() == nil {
			t.Fatal("a NaN value was encoded")
		}
	}()
	Marshal(incident.Event{Source: "s", Value: &nan})
}

func BenchmarkMarshal(b *testing.B) {
	g := New(DefaultConfig())
	ev := g.Next()
	b.Run("hand-written", func(b *testing.B) {
		for b.Loop() {
			Marshal(ev)
		}
	})
	b.Run("encoding/json", func(b *testing.B) {
		for b.Loop() {
			_, _ = json.Marshal(ev)
		}
	})
}
