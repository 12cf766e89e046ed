//go:build unix

package backend_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"
	"go.uber.org/zap/zaptest"

	"github.com/llm-im/incidentd/config"
	"github.com/llm-im/incidentd/storage/backend"
)

// TestPebbleOpenGivesUpWithContext: an open that cannot finish (here its
// manifest is a named pipe nothing writes to; on a full disk, a flush of
// the replayed WAL failing in a loop, found by a black-box run that had to
// kill -9 a worker deaf to SIGTERM) returns once ctx ends.
func TestPebbleOpenGivesUpWithContext(t *testing.T) {
	st := config.Default().State
	st.Path = filepath.Join(t.TempDir(), "pebble")
	s, err := backend.Open(st, zaptest.NewLogger(t), prometheus.NewRegistry())
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	manifests, _ := filepath.Glob(filepath.Join(st.Path, "MANIFEST-*"))
	if len(manifests) == 0 {
		t.Fatal("no manifest")
	}
	for _, m := range manifests {
		if err := os.Remove(m); err != nil {
			t.Fatal(err)
		}
		if err := syscall.Mkfifo(m, 0o600); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { // lets the abandoned open finish
			if f, err := os.OpenFile(m, os.O_WRONLY|syscall.O_NONBLOCK, 0); err == nil {
				_ = f.Close()
			}
		})
	}
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	// zap.NewNop: the abandoned open may log after the test ends.
	got, err := backend.OpenContext(ctx, st, zap.NewNop(), prometheus.NewRegistry())
	if !errors.Is(err, context.DeadlineExceeded) || got != nil {
		t.Fatalf("OpenContext = %v, %v; want the context's error", got, err)
	}
}
