package pebble

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"testing"

	"go.uber.org/zap/zaptest"

	"github.com/llm-im/incidentd/storage"
)

// TestRestoreHoldsTheTargetLock: while a restore places its files, a
// worker starting on the target cannot open it (it once could, and the
// restore then renamed the checkpoint's files over the worker's), and a
// restore that gives up leaves the target as it found it.
func TestRestoreHoldsTheTargetLock(t *testing.T) {
	for _, existed := range []bool{false, true} {
		target := filepath.Join(t.TempDir(), "pebble")
		if existed {
			if err := os.Mkdir(target, 0o750); err != nil {
				t.Fatal(err)
			}
		}
		release, _, err := lockTarget(target)
		if err != nil {
			t.Fatal(err)
		}
		cfg := DefaultConfig()
		cfg.Path = target
		if s, err := New(cfg, zaptest.NewLogger(t), nil); !errors.Is(err, storage.ErrLocked) {
			if s != nil {
				_ = s.Close()
			}
			t.Fatalf("a store opened the target during a restore: %v", err)
		}
		release(false)
		entries, err := os.ReadDir(target)
		switch {
		case existed && (err != nil || len(entries) != 0):
			t.Errorf("the existing target holds %v, %v after a restore that gave up", entries, err)
		case !existed && !os.IsNotExist(err):
			t.Errorf("the target was left behind: %v, %v", entries, err)
		}
	}
}

// TestRestoreKeepsItsLockFile: the files placed are the checkpoint's, never
// its LOCK, and the restored directory opens.
func TestRestoreKeepsItsLockFile(t *testing.T) {
	dir, cfg := checkpointIn(t)
	for _, move := range []bool{false, true} {
		target := filepath.Join(dir, "target", map[bool]string{false: "copy", true: "move"}[move])
		ckpt := filepath.Join(dir, "ckpt")
		if !move {
			ckpt = filepath.Join(dir, "ckpt-copy")
			if err := os.Mkdir(ckpt, 0o750); err != nil {
				t.Fatal(err)
			}
			if err := copyTree(context.Background(), filepath.Join(dir, "ckpt"), ckpt); err != nil {
				t.Fatal(err)
			}
		}
		if _, err := Restore(context.Background(), ckpt, target, move, zaptest.NewLogger(t)); err != nil {
			t.Fatalf("move=%v: %v", move, err)
		}
		cfg.Path = target
		r, err := New(cfg, zaptest.NewLogger(t), nil)
		if err != nil {
			t.Fatalf("move=%v: the restored store does not open: %v", move, err)
		}
		_ = r.Close()
	}
}

// TestRestoreOverlapFollowsLinks: a target reached through a symbolic link
// into the checkpoint is refused, as a plain path inside it is.
func TestRestoreOverlapFollowsLinks(t *testing.T) {
	dir := t.TempDir()
	ckpt := filepath.Join(dir, "ckpt")
	if err := os.Mkdir(ckpt, 0o750); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(ckpt, filepath.Join(dir, "link")); err != nil {
		t.Fatal(err)
	}
	for _, target := range []string{filepath.Join(ckpt, "new"), filepath.Join(dir, "link", "new"), filepath.Join(dir, "link")} {
		if err := checkOverlap(ckpt, target); err == nil {
			t.Errorf("target %s: no overlap found", target)
		}
	}
	if err := checkOverlap(ckpt, filepath.Join(dir, "elsewhere", "new")); err != nil {
		t.Errorf("a separate target: %v", err)
	}
}

// TestRestoreStopsWithItsContext: a copy whose context ends (Ctrl-C)
// stops, restores nothing and leaves no target behind.
func TestRestoreStopsWithItsContext(t *testing.T) {
	dir, _ := checkpointIn(t)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	target := filepath.Join(dir, "target")
	if _, err := Restore(ctx, filepath.Join(dir, "ckpt"), target, false, zaptest.NewLogger(t)); !errors.Is(err, context.Canceled) {
		t.Fatalf("err = %v, want context.Canceled", err)
	}
	if _, err := os.Stat(target); !os.IsNotExist(err) {
		t.Errorf("the target was left behind: %v", err)
	}
}

// checkpointIn writes a checkpoint of a new store to dir/ckpt, returning
// dir and the store's configuration.
func checkpointIn(t *testing.T) (string, Config) {
	t.Helper()
	dir := t.TempDir()
	cfg := DefaultConfig()
	cfg.Path = filepath.Join(dir, "src")
	s, err := New(cfg, zaptest.NewLogger(t), nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Checkpoint(filepath.Join(dir, "ckpt")); err != nil {
		t.Fatal(err)
	}
	_ = s.Close()
	return dir, cfg
}
