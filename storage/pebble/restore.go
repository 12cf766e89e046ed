package pebble

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"

	pebbledb "github.com/cockroachdb/pebble/v2"
	"github.com/cockroachdb/pebble/v2/vfs"
	"go.uber.org/zap"

	"github.com/llm-im/incidentd/storage"
)

// Errors of Restore.
var (
	// ErrNoDatabase means a directory holds no Pebble database.
	ErrNoDatabase = errors.New("pebble: no Pebble database in the directory")
	// ErrNotEmpty means the restore target exists and holds files.
	ErrNotEmpty = errors.New("pebble: target is not an empty directory")
)

// Restored describes a restore: the incidents of the restored store.
type Restored struct {
	Incidents int64
}

// Restore puts a checkpoint (a directory written by Checkpoint, or a copy of
// a stopped store's directory) in place as the data directory target, and
// checks that it opens as a store. The checkpoint must hold a database
// (ErrNoDatabase) that no process or Store holds (storage.ErrLocked);
// target must not exist or be an empty directory (a directory held by a
// running store is refused with storage.ErrLocked, anything else in the way
// with ErrNotEmpty).
//
// Restore holds target's lock from the emptiness check until the files are
// in place, so a worker that starts meanwhile fails to lock it instead of
// having its files replaced. Without move the checkpoint is copied into a
// hidden directory inside target and opened there, then its files are
// renamed into target: the checkpoint is never written to, and one that does not open
// leaves target as it was. With move the checkpoint is opened where it is,
// then its files are renamed into target; both must be on one filesystem.
func Restore(checkpoint, target string, move bool, log *zap.Logger) (_ Restored, err error) {
	if err := checkOverlap(checkpoint, target); err != nil {
		return Restored{}, err
	}
	if err := probe(checkpoint, "checkpoint"); err != nil {
		return Restored{}, err
	}
	release, err := lockTarget(target)
	if err != nil {
		return Restored{}, err
	}
	placed := false
	defer func() { release(placed) }()
	var n int64
	if move {
		if n, err = incidents(checkpoint, log); err != nil {
			return Restored{}, err
		}
		if err := moveFiles(checkpoint, target); err != nil {
			return Restored{}, fmt.Errorf("%w%s", err, crossDevice(err))
		}
		placed = true
		// The files are in place; what is left is the emptied checkpoint.
		_ = os.Remove(filepath.Join(checkpoint, "LOCK"))
		if err := os.Remove(checkpoint); err != nil {
			return Restored{}, fmt.Errorf("pebble restore: %w", err)
		}
		return Restored{Incidents: n}, nil
	}
	// Staged inside target, under its lock: a target that is a mount point
	// is another filesystem than its parent, and the files must be renamed.
	staging, err := os.MkdirTemp(target, ".restore-")
	if err != nil {
		return Restored{}, fmt.Errorf("pebble restore: %w", err)
	}
	defer os.RemoveAll(staging)
	if err := copyTree(checkpoint, staging); err != nil {
		return Restored{}, err
	}
	if n, err = incidents(staging, log); err != nil {
		return Restored{}, err
	}
	if err := moveFiles(staging, target); err != nil {
		return Restored{}, err
	}
	placed = true
	return Restored{Incidents: n}, nil
}

// lockTarget creates target when missing, takes its lock and checks that
// nothing but the lock file is in it. release(placed) unlocks it and, when
// the restore did not place its files and target did not exist before,
// removes it again.
func lockTarget(target string) (release func(placed bool), err error) {
	existed, err := emptyTarget(target)
	if err != nil {
		return nil, err
	}
	if err := os.MkdirAll(target, 0o750); err != nil {
		return nil, fmt.Errorf("pebble restore: %w", err)
	}
	lockFile := filepath.Join(target, "LOCK")
	_, statErr := os.Stat(lockFile)
	hadLock := statErr == nil
	undo := func() { // leave target as it was found
		if !hadLock {
			_ = os.Remove(lockFile)
		}
		if !existed {
			_ = os.Remove(target)
		}
	}
	lock, err := pebbledb.LockDirectory(target, vfs.Default)
	if err != nil {
		undo()
		return nil, fmt.Errorf("pebble restore: target %s is in use (%v; stop the worker first): %w", target, err, storage.ErrLocked)
	}
	// Checked again under the lock: a worker may have started in between.
	if _, err := emptyTarget(target); err != nil {
		_ = lock.Close()
		return nil, err
	}
	return func(placed bool) {
		_ = lock.Close()
		if !placed {
			undo()
		}
	}, nil
}

// crossDevice explains a rename across filesystems.
func crossDevice(err error) string {
	if errors.Is(err, syscall.EXDEV) {
		return " (a move is a rename: the checkpoint and the target must be on one filesystem; copy instead)"
	}
	return ""
}

// checkOverlap refuses a target inside the checkpoint or the other way
// round, symbolic links followed.
func checkOverlap(checkpoint, target string) error {
	a, err := resolved(checkpoint)
	if err != nil {
		return fmt.Errorf("pebble restore: %w", err)
	}
	b, err := resolved(target)
	if err != nil {
		return fmt.Errorf("pebble restore: %w", err)
	}
	inside := func(dir, p string) bool { return p == dir || strings.HasPrefix(p, dir+string(filepath.Separator)) }
	if inside(a, b) || inside(b, a) {
		return fmt.Errorf("pebble restore: checkpoint %s and target %s overlap", checkpoint, target)
	}
	return nil
}

// resolved is p made absolute with the symbolic links of its longest
// existing prefix followed (the rest need not exist yet).
func resolved(p string) (string, error) {
	abs, err := filepath.Abs(p)
	if err != nil {
		return "", err
	}
	rest := ""
	for dir := abs; ; dir = filepath.Dir(dir) {
		if real, err := filepath.EvalSymlinks(dir); err == nil {
			return filepath.Join(real, rest), nil
		}
		if dir == filepath.Dir(dir) {
			return abs, nil
		}
		rest = filepath.Join(filepath.Base(dir), rest)
	}
}

// probe checks, without opening it, that dir holds a database no process
// holds.
func probe(dir, what string) error {
	st, err := os.Stat(dir)
	if err != nil {
		return fmt.Errorf("pebble restore: %s: %w", what, err)
	}
	if !st.IsDir() {
		return fmt.Errorf("pebble restore: %s %s is not a directory: %w", what, dir, ErrNoDatabase)
	}
	desc, err := pebbledb.Peek(dir, vfs.Default)
	if err != nil {
		return fmt.Errorf("pebble restore: %s %s: %w", what, dir, err)
	}
	if !desc.Exists {
		return fmt.Errorf("pebble restore: %s %s: %w", what, dir, ErrNoDatabase)
	}
	if err := unlocked(dir); err != nil {
		return fmt.Errorf("%w (the directory of a running store, not a checkpoint)", err)
	}
	return nil
}

// unlocked returns an error wrapping storage.ErrLocked when a process (or a
// Store of this one) holds the database in dir. Without a LOCK file (a
// checkpoint never opened) nothing can hold it, and none is created.
func unlocked(dir string) error {
	if _, err := os.Stat(filepath.Join(dir, "LOCK")); errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	lock, err := pebbledb.LockDirectory(dir, vfs.Default)
	if err != nil {
		var pe *fs.PathError
		if errors.As(err, &pe) {
			return fmt.Errorf("pebble restore: lock %s: %w", dir, err)
		}
		return fmt.Errorf("pebble restore: %s is in use (%v): %w", dir, err, storage.ErrLocked)
	}
	if err := lock.Close(); err != nil {
		return fmt.Errorf("pebble restore: unlock %s: %w", dir, err)
	}
	return nil
}

// emptyTarget reports whether target exists; it must be an empty directory
// if it does.
func emptyTarget(target string) (bool, error) {
	st, err := os.Stat(target)
	if errors.Is(err, fs.ErrNotExist) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("pebble restore: target: %w", err)
	}
	if !st.IsDir() {
		return true, fmt.Errorf("pebble restore: target %s is not a directory: %w", target, ErrNotEmpty)
	}
	entries, err := os.ReadDir(target)
	if err != nil {
		return true, fmt.Errorf("pebble restore: target: %w", err)
	}
	entries = slices.DeleteFunc(entries, HoldsNothing)
	if len(entries) == 0 {
		return true, nil
	}
	if desc, err := pebbledb.Peek(target, vfs.Default); err == nil && desc.Exists {
		if err := unlocked(target); errors.Is(err, storage.ErrLocked) {
			return true, fmt.Errorf("%w (stop the worker first)", err)
		}
	}
	return true, fmt.Errorf("pebble restore: target %s holds %d entries (%s, ...): %w", target, len(entries), entries[0].Name(), ErrNotEmpty)
}

// incidents opens the store in dir and counts its incidents.
func incidents(dir string, log *zap.Logger) (int64, error) {
	cfg := DefaultConfig()
	cfg.Path = dir
	s, err := New(cfg, log, nil)
	if err != nil {
		return 0, fmt.Errorf("pebble restore: the checkpoint does not open: %w", err)
	}
	st, err := s.Stats(context.Background())
	if cerr := s.Close(); err == nil && cerr != nil {
		err = cerr
	}
	if err != nil {
		return 0, fmt.Errorf("pebble restore: the checkpoint does not open: %w", err)
	}
	return st.Incidents, nil
}

// copyTree copies the files and directories of src into the existing
// directory dst, each file synced, leaving out the LOCK file.
func copyTree(src, dst string) error {
	return filepath.WalkDir(src, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return fmt.Errorf("pebble restore: copy: %w", err)
		}
		rel, err := filepath.Rel(src, p)
		if err != nil || rel == "." {
			return err
		}
		to := filepath.Join(dst, rel)
		switch {
		case d.IsDir():
			if err := os.Mkdir(to, 0o750); err != nil {
				return fmt.Errorf("pebble restore: copy: %w", err)
			}
			return nil
		case rel == "LOCK":
			return nil
		case !d.Type().IsRegular():
			return fmt.Errorf("pebble restore: copy: %s is not a regular file", p)
		}
		return copyFile(p, to)
	})
}

func copyFile(from, to string) error {
	in, err := os.Open(from)
	if err != nil {
		return fmt.Errorf("pebble restore: copy: %w", err)
	}
	defer in.Close()
	out, err := os.OpenFile(to, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o640)
	if err != nil {
		return fmt.Errorf("pebble restore: copy: %w", err)
	}
	_, err = io.Copy(out, in)
	if err == nil {
		err = out.Sync()
	}
	if cerr := out.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("pebble restore: copy %s: %w", from, err)
	}
	return nil
}

// moveFiles renames every entry of src but its LOCK into dst, the markers that name the
// current manifest and format last, so that dst is a database only once
// everything it refers to is there; then it syncs dst.
func moveFiles(src, dst string) error {
	entries, err := os.ReadDir(src)
	if err != nil {
		return fmt.Errorf("pebble restore: %w", err)
	}
	last := func(name string) bool { return strings.HasPrefix(name, "marker.") || name == "CURRENT" }
	slices.SortStableFunc(entries, func(a, b fs.DirEntry) int {
		switch la, lb := last(a.Name()), last(b.Name()); {
		case la == lb:
			return 0
		case lb:
			return -1
		}
		return 1
	})
	for _, e := range entries {
		if e.Name() == "LOCK" { // dst has its own, held by Restore
			continue
		}
		if err := os.Rename(filepath.Join(src, e.Name()), filepath.Join(dst, e.Name())); err != nil {
			return fmt.Errorf("pebble restore: move: %w", err)
		}
	}
	d, err := os.Open(dst)
	if err != nil {
		return fmt.Errorf("pebble restore: %w", err)
	}
	defer d.Close()
	if err := d.Sync(); err != nil {
		return fmt.Errorf("pebble restore: sync %s: %w", dst, err)
	}
	return nil
}
