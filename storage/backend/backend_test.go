package backend_test

import (
	"context"
	"errors"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap/zaptest"

	"github.com/llm-im/incidentd/config"
	"github.com/llm-im/incidentd/storage"
	"github.com/llm-im/incidentd/storage/backend"
)

func TestOpen(t *testing.T) {
	for _, c := range []struct {
		backend config.Backend
		err     error
	}{
		{config.BackendMemory, nil},
		{config.BackendPebble, nil},
		{config.BackendSledAlias, nil},
		{"nosuch", backend.ErrUnknownBackend},
		{"", backend.ErrUnknownBackend},
		{"Memory", backend.ErrUnknownBackend},
	} {
		t.Run(string(c.backend), func(t *testing.T) {
			cfg := config.Default().State
			cfg.Backend = c.backend
			cfg.Path = t.TempDir()
			s, err := backend.Open(cfg, zaptest.NewLogger(t), prometheus.NewRegistry())
			if !errors.Is(err, c.err) {
				t.Fatalf("Open(%q) = %v, want %v", c.backend, err, c.err)
			}
			if err != nil {
				return
			}
			defer s.Close()
			if _, err := s.Stats(context.Background()); err != nil {
				t.Fatal(err)
			}
		})
	}
}

// TestPebbleLocked: a second store on the same directory is refused.
func TestPebbleLocked(t *testing.T) {
	cfg := config.Default().State
	cfg.Path = t.TempDir()
	s, err := backend.Open(cfg, zaptest.NewLogger(t), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if _, err := backend.Open(cfg, zaptest.NewLogger(t), nil); !errors.Is(err, storage.ErrLocked) {
		t.Fatalf("second Open: %v, want ErrLocked", err)
	}
}

// A failed open returns a nil interface, so callers' nil checks work.
func TestFailedOpenReturnsNilInterface(t *testing.T) {
	cfg := config.Default().State
	cfg.Path = "/proc/not-a-writable-place/pebble"
	s, err := backend.Open(cfg, zaptest.NewLogger(t), nil)
	if err == nil {
		t.Fatal("opening pebble under /proc succeeded")
	}
	if s != nil {
		t.Fatalf("store = %#v, want a nil interface", s)
	}
}
