package memory

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/llm-im/incidentd/incident"
	"github.com/llm-im/incidentd/storage"
)

func TestAppliedMarkersExpireOnApply(t *testing.T) {
	ctx := context.Background()
	s := NewWithConfig(Config{AppliedRetention: time.Hour})
	t0 := time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)
	if err := s.Apply(ctx, storage.Batch{EventIDs: []string{"e1"}, At: t0}); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name    string
		at      time.Time
		applied bool
	}{
		{"within retention", t0.Add(time.Hour), true},
		{"past retention", t0.Add(time.Hour + time.Microsecond), false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if err := s.Apply(ctx, storage.Batch{EventIDs: []string{"other-" + tt.name}, At: tt.at}); err != nil {
				t.Fatal(err)
			}
			snap, err := s.Lookup(ctx, nil, []string{"e1"})
			if err != nil {
				t.Fatal(err)
			}
			if snap.Applied["e1"] != tt.applied {
				t.Fatalf("e1 applied = %v, want %v", snap.Applied["e1"], tt.applied)
			}
		})
	}
	// An expired marker no longer blocks the event.
	if err := s.Apply(ctx, storage.Batch{EventIDs: []string{"e1"}, At: t0.Add(2 * time.Hour)}); err != nil {
		t.Fatalf("re-apply after expiry: %v", err)
	}
}

func TestNoAliasing(t *testing.T) {
	ctx := context.Background()
	s := New()
	v := 1.5
	in := &incident.Incident{ID: "a", Fingerprint: "fp", Version: 1, Labels: map[string]string{"k": "v"}, Resources: []string{"r"}, LastValue: &v}
	if err := s.Apply(ctx, storage.Batch{Incidents: []*incident.Incident{in}, EventIDs: []string{"e"}}); err != nil {
		t.Fatal(err)
	}
	in.Labels["k"], in.Resources[0], *in.LastValue, in.Title = "x", "x", 9, "x"
	got, err := s.Get(ctx, "a")
	if err != nil {
		t.Fatal(err)
	}
	if got.Labels["k"] != "v" || got.Resources[0] != "r" || *got.LastValue != 1.5 || got.Title != "" {
		t.Fatalf("stored incident aliased the caller's: %+v", got)
	}
	got.Labels["k"], got.Resources[0], *got.LastValue = "y", "y", 7
	again, _ := s.Get(ctx, "a")
	if again.Labels["k"] != "v" || again.Resources[0] != "r" || *again.LastValue != 1.5 {
		t.Fatalf("returned incident aliased the store's: %+v", again)
	}
}

func TestCloseTwice(t *testing.T) {
	s := New()
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); !errors.Is(err, storage.ErrClosed) {
		t.Fatalf("second Close = %v, want ErrClosed", err)
	}
}
