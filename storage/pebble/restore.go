package pebble

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
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
//
// An interrupted restore is taken up again by the same restore: a copy's
// leftovers in target (its hidden directory, the files it had renamed) are
// removed and the copy starts over; a move writes a journal naming the
// checkpoint into target before its first rename, and a move of the same
// checkpoint finishes the renames. ctx stops a copy between reads; the
// renames, once started, are not stopped.
func Restore(ctx context.Context, checkpoint, target string, move bool, log *zap.Logger) (_ Restored, err error) {
	if err := checkOverlap(checkpoint, target); err != nil {
		return Restored{}, err
	}
	// A checkpoint whose move was interrupted no longer opens where it is;
	// the journal in target says so, under the lock.
	probeErr := probe(checkpoint, "checkpoint")
	if probeErr != nil && !(move && journalOf(target) != "") {
		return Restored{}, probeErr
	}
	release, left, err := lockTarget(target)
	if err != nil {
		return Restored{}, err
	}
	placed := false
	defer func() { release(placed) }()
	if left.moving != "" {
		if !move || !samePath(left.moving, checkpoint) {
			return Restored{}, fmt.Errorf("pebble restore: target %s holds part of checkpoint %s, whose restore --move was interrupted: restore %s --state-path %s --move again to finish it: %w",
				target, left.moving, left.moving, target, ErrNotEmpty)
		}
		if err := finishMove(checkpoint, target); err != nil {
			return Restored{}, err
		}
		placed = true
		release(true)
		release = func(bool) {}
		n, err := incidents(target, log)
		return Restored{Incidents: n}, err
	}
	if probeErr != nil {
		return Restored{}, probeErr
	}
	if len(left.files) > 0 {
		if err := removeAll(target, left.files); err != nil {
			return Restored{}, err
		}
		log.Warn("pebble restore: removed the leftover of an interrupted restore", zap.String("target", target), zap.Strings("entries", left.files))
	}
	if move {
		return restoreMove(checkpoint, target, log, &placed)
	}
	// Staged inside target, under its lock: a target that is a mount point
	// is another filesystem than its parent, and the files must be renamed.
	staging, err := os.MkdirTemp(target, stagingPrefix)
	if err != nil {
		return Restored{}, fmt.Errorf("pebble restore: %w", err)
	}
	defer os.RemoveAll(staging)
	if err := copyTree(ctx, checkpoint, staging); err != nil {
		return Restored{}, err
	}
	n, err := incidents(staging, log)
	if err != nil {
		return Restored{}, err
	}
	if err := moveFiles(staging, target); err != nil {
		return Restored{}, err
	}
	placed = true
	return Restored{Incidents: n}, nil
}

// restoreMove opens the checkpoint where it is, writes the journal into
// target, renames the checkpoint's files into target, then removes the
// journal and the emptied checkpoint.
func restoreMove(checkpoint, target string, log *zap.Logger, placed *bool) (Restored, error) {
	n, err := incidents(checkpoint, log)
	if err != nil {
		return Restored{}, err
	}
	abs, err := filepath.Abs(checkpoint)
	if err != nil {
		return Restored{}, fmt.Errorf("pebble restore: %w", err)
	}
	if err := writeSynced(filepath.Join(target, moveJournal), []byte(abs+"\n")); err != nil {
		return Restored{}, err
	}
	if err := finishMove(checkpoint, target); err != nil {
		return Restored{}, err
	}
	*placed = true
	return Restored{Incidents: n}, nil
}

// finishMove renames the checkpoint's files (those not renamed yet) into
// target, removes the journal and the emptied checkpoint.
func finishMove(checkpoint, target string) error {
	if err := moveFiles(checkpoint, target); err != nil {
		return fmt.Errorf("%w%s", err, crossDevice(err))
	}
	if err := os.Remove(filepath.Join(target, moveJournal)); err != nil {
		return fmt.Errorf("pebble restore: %w", err)
	}
	if err := syncDir(target); err != nil {
		return err
	}
	// The files are in place; what is left is the emptied checkpoint.
	_ = os.Remove(filepath.Join(checkpoint, "LOCK"))
	if err := os.Remove(checkpoint); err != nil {
		return fmt.Errorf("pebble restore: %w", err)
	}
	return nil
}

// The names Restore leaves in a target while it works: the hidden
// directory a copy is staged in (a prefix), and the journal of a move.
const (
	stagingPrefix = ".restore-"
	moveJournal   = ".restore-move"
)

// leftover is what an interrupted restore left in a target: the entries of
// a copy (its staging directory and the files it had renamed), or the
// checkpoint a move was renaming.
type leftover struct {
	files  []string
	moving string
}

// journalOf returns the checkpoint named by the journal of an interrupted
// move in target, "" when there is none.
func journalOf(target string) string {
	b, err := os.ReadFile(filepath.Join(target, moveJournal))
	if err != nil {
		return ""
	}
	return strings.TrimSpace(string(b))
}

// interruptedCopy returns the entries of target when they are what an
// interrupted copy leaves: at least one staging directory, and otherwise
// only Pebble's files, which make no database yet (the markers are renamed
// last).
func interruptedCopy(target string, entries []fs.DirEntry) []string {
	var names []string
	staged := false
	for _, e := range entries {
		switch {
		case e.IsDir() && strings.HasPrefix(e.Name(), stagingPrefix) && e.Name() != moveJournal:
			staged = true
		case !e.Type().IsRegular() || !pebbleFile.MatchString(e.Name()):
			return nil
		}
		names = append(names, e.Name())
	}
	if !staged {
		return nil
	}
	if desc, err := pebbledb.Peek(target, vfs.Default); err != nil || desc.Exists {
		return nil
	}
	return names
}

// pebbleFile matches the names of the files of a Pebble database.
var pebbleFile = regexp.MustCompile(`^(\d+\.(sst|log|blob)|MANIFEST-\d+|OPTIONS-\d+|marker\.[a-z-]+\.\d+\.[^/]+|CURRENT)$`)

// removeAll removes the named entries of dir.
func removeAll(dir string, names []string) error {
	for _, n := range names {
		if err := os.RemoveAll(filepath.Join(dir, n)); err != nil {
			return fmt.Errorf("pebble restore: remove the leftover of an interrupted restore: %w", err)
		}
	}
	return syncDir(dir)
}

// samePath reports whether a and b name one directory, symbolic links
// followed.
func samePath(a, b string) bool {
	ra, err1 := resolved(a)
	rb, err2 := resolved(b)
	return err1 == nil && err2 == nil && ra == rb
}

// writeSynced writes a new file and syncs it and its directory.
func writeSynced(path string, data []byte) error {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o640)
	if err != nil {
		return fmt.Errorf("pebble restore: %w", err)
	}
	_, err = f.Write(data)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("pebble restore: %w", err)
	}
	return syncDir(filepath.Dir(path))
}

// syncDir syncs a directory, so the renames and removals in it are durable.
func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return fmt.Errorf("pebble restore: %w", err)
	}
	defer d.Close()
	if err := d.Sync(); err != nil {
		return fmt.Errorf("pebble restore: sync %s: %w", dir, err)
	}
	return nil
}

// lockTarget creates target when missing, takes its lock and checks that
// nothing but the lock file is in it, or what an interrupted restore left
// (returned). release(placed) unlocks it and, when the restore did not
// place its files and target did not exist before, removes it again.
func lockTarget(target string) (release func(placed bool), left leftover, err error) {
	existed, _, err := emptyTarget(target)
	if err != nil {
		return nil, leftover{}, err
	}
	if err := os.MkdirAll(target, 0o750); err != nil {
		return nil, leftover{}, fmt.Errorf("pebble restore: %w", err)
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
		return nil, leftover{}, fmt.Errorf("pebble restore: target %s is in use (%v; stop the worker first): %w", target, err, storage.ErrLocked)
	}
	// Checked again under the lock: a worker may have started in between.
	if _, left, err = emptyTarget(target); err != nil {
		_ = lock.Close()
		return nil, leftover{}, err
	}
	return func(placed bool) {
		_ = lock.Close()
		if !placed {
			undo()
		}
	}, left, nil
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
// if it does, or hold only what an interrupted restore left.
func emptyTarget(target string) (bool, leftover, error) {
	st, err := os.Stat(target)
	if errors.Is(err, fs.ErrNotExist) {
		return false, leftover{}, nil
	}
	if err != nil {
		return false, leftover{}, fmt.Errorf("pebble restore: target: %w", err)
	}
	if !st.IsDir() {
		return true, leftover{}, fmt.Errorf("pebble restore: target %s is not a directory: %w", target, ErrNotEmpty)
	}
	entries, err := os.ReadDir(target)
	if err != nil {
		return true, leftover{}, fmt.Errorf("pebble restore: target: %w", err)
	}
	entries = slices.DeleteFunc(entries, HoldsNothing)
	if len(entries) == 0 {
		return true, leftover{}, nil
	}
	if moving := journalOf(target); moving != "" {
		return true, leftover{moving: moving}, nil
	}
	if names := interruptedCopy(target, entries); names != nil {
		return true, leftover{files: names}, nil
	}
	if desc, err := pebbledb.Peek(target, vfs.Default); err == nil && desc.Exists {
		if err := unlocked(target); errors.Is(err, storage.ErrLocked) {
			return true, leftover{}, fmt.Errorf("%w (stop the worker first)", err)
		}
	}
	return true, leftover{}, fmt.Errorf("pebble restore: target %s holds %d entries (%s, ...): %w", target, len(entries), entries[0].Name(), ErrNotEmpty)
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
// directory dst, each file synced, leaving out the LOCK file. It stops when
// ctx ends.
func copyTree(ctx context.Context, src, dst string) error {
	return filepath.WalkDir(src, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return fmt.Errorf("pebble restore: copy: %w", err)
		}
		if err := ctx.Err(); err != nil {
			return fmt.Errorf("pebble restore: copy stopped, nothing restored: %w", err)
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
		return copyFile(ctx, p, to)
	})
}

func copyFile(ctx context.Context, from, to string) error {
	in, err := os.Open(from)
	if err != nil {
		return fmt.Errorf("pebble restore: copy: %w", err)
	}
	defer in.Close()
	out, err := os.OpenFile(to, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o640)
	if err != nil {
		return fmt.Errorf("pebble restore: copy: %w", err)
	}
	_, err = io.Copy(out, ctxReader{ctx, in})
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

// ctxReader is a reader that fails once ctx ends, so a large file's copy
// stops within one read.
type ctxReader struct {
	ctx context.Context
	r   io.Reader
}

func (c ctxReader) Read(p []byte) (int, error) {
	if err := c.ctx.Err(); err != nil {
		return 0, fmt.Errorf("copy stopped, nothing restored: %w", err)
	}
	return c.r.Read(p)
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
	return syncDir(dst)
}
