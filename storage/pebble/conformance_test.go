package pebble_test

import (
	"errors"
	"fmt"
	"testing"
	"time"

	"go.uber.org/zap/zaptest"

	"github.com/llm-im/incidentd/storage"
	"github.com/llm-im/incidentd/storage/pebble"
	"github.com/llm-im/incidentd/storage/storetest"
)

// testConfig is a small, unsynced store in a fresh directory (fsync adds
// nothing to what the tests check and costs seconds on shared disks).
func testConfig(t testing.TB) pebble.Config {
	cfg := pebble.DefaultConfig()
	cfg.Path = t.TempDir()
	cfg.CacheSizeMB = 8
	cfg.MemtableSizeMB = 4
	cfg.Sync = false
	return cfg
}

// open opens a store on cfg and closes it at the end of the test.
func open(t *testing.T, cfg pebble.Config) *pebble.Store {
	t.Helper()
	s, err := pebble.New(cfg, zaptest.NewLogger(t), nil)
	if err != nil {
		t.Fatalf("open: %v", err)
	}
	t.Cleanup(func() {
		if err := s.Close(); err != nil && !errors.Is(err, storage.ErrClosed) {
			t.Errorf("close: %v", err)
		}
	})
	return s
}

// TestConformance runs the suite with the record cache off (the default)
// and on: reads must not depend on it.
func TestConformance(t *testing.T) {
	for _, cacheMB := range []int{0, 32} {
		t.Run(fmt.Sprintf("record_cache_mb=%d", cacheMB), func(t *testing.T) {
			paths := map[storage.Store]pebble.Config{}
			storetest.Run(t, storetest.Harness{
				Open: func(t *testing.T) storage.Store {
					cfg := testConfig(t)
					cfg.RecordCacheMB = cacheMB
					s := open(t, cfg)
					paths[s] = cfg
					return s
				},
				Reopen: func(t *testing.T, s storage.Store) storage.Store {
					cfg := paths[s]
					if err := s.Close(); err != nil {
						t.Fatalf("close: %v", err)
					}
					r := open(t, cfg)
					paths[r] = cfg
					return r
				},
			})
		})
	}
}

// TestConformanceSynced runs the persistence subtests with Sync on.
func TestConformanceSynced(t *testing.T) {
	cfg := testConfig(t)
	cfg.Sync = true
	cfg.PurgeInterval = time.Hour
	s := open(t, cfg)
	storetest.Put(t, s, storetest.FullPair("a", "fp-a")...)
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	r := open(t, cfg)
	if n, err := r.Count(t.Context(), storage.Filter{}); err != nil || n != 2 {
		t.Fatalf("count after reopen = %d, %v; want 2", n, err)
	}
}
