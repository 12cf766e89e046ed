package storetest_test

import (
	"context"
	"sync/atomic"
	"testing"

	"github.com/llm-im/incidentd/incident"
	"github.com/llm-im/incidentd/storage"
	"github.com/llm-im/incidentd/storage/memory"
	"github.com/llm-im/incidentd/storage/storetest"
)

// TestSuiteWithReopen runs the suite, persistence subtests included, on a
// memory store behind handles that close and reopen over the same data, so
// the suite's own persistence logic is exercised without a disk backend.
func TestSuiteWithReopen(t *testing.T) {
	storetest.Run(t, storetest.Harness{
		Open: func(t *testing.T) storage.Store {
			m := memory.New()
			t.Cleanup(func() { _ = m.Close() })
			return &handle{m: m}
		},
		Reopen: func(t *testing.T, s storage.Store) storage.Store {
			h := s.(*handle)
			if err := h.Close(); err != nil {
				t.Fatalf("close: %v", err)
			}
			return &handle{m: h.m}
		},
	})
}

// handle is one open "connection" to a memory store that outlives it.
type handle struct {
	m      *memory.Store
	closed atomic.Bool
}

func (h *handle) err() error {
	if h.closed.Load() {
		return storage.ErrClosed
	}
	return nil
}

func (h *handle) Lookup(ctx context.Context, fps, ids []string) (storage.Snapshot, error) {
	if err := h.err(); err != nil {
		return storage.Snapshot{}, err
	}
	return h.m.Lookup(ctx, fps, ids)
}

func (h *handle) Apply(ctx context.Context, b storage.Batch) error {
	if err := h.err(); err != nil {
		return err
	}
	return h.m.Apply(ctx, b)
}

func (h *handle) Get(ctx context.Context, id string) (*incident.Incident, error) {
	if err := h.err(); err != nil {
		return nil, err
	}
	return h.m.Get(ctx, id)
}

func (h *handle) FindOpen(ctx context.Context, fp string) (*incident.Incident, error) {
	if err := h.err(); err != nil {
		return nil, err
	}
	return h.m.FindOpen(ctx, fp)
}

func (h *handle) Scan(ctx context.Context, fn func(*incident.Incident) error) error {
	if err := h.err(); err != nil {
		return err
	}
	return h.m.Scan(ctx, fn)
}

func (h *handle) List(ctx context.Context, f storage.Filter, p storage.Page) ([]*incident.Incident, error) {
	if err := h.err(); err != nil {
		return nil, err
	}
	return h.m.List(ctx, f, p)
}

func (h *handle) Count(ctx context.Context, f storage.Filter) (int64, error) {
	if err := h.err(); err != nil {
		return 0, err
	}
	return h.m.Count(ctx, f)
}

func (h *handle) Delete(ctx context.Context, id string) error {
	if err := h.err(); err != nil {
		return err
	}
	return h.m.Delete(ctx, id)
}

func (h *handle) DeleteVersions(ctx context.Context, want map[string]int64) (int, error) {
	if err := h.err(); err != nil {
		return 0, err
	}
	return h.m.DeleteVersions(ctx, want)
}

func (h *handle) Flush(ctx context.Context) error {
	if err := h.err(); err != nil {
		return err
	}
	return h.m.Flush(ctx)
}

func (h *handle) Stats(ctx context.Context) (storage.Stats, error) {
	if err := h.err(); err != nil {
		return storage.Stats{}, err
	}
	return h.m.Stats(ctx)
}

func (h *handle) Close() error {
	if h.closed.Swap(true) {
		return storage.ErrClosed
	}
	return nil
}
