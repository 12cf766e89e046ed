//go:build unix

package pebble

import (
	"errors"
	"fmt"
	"os"
	"syscall"

	"github.com/llm-im/incidentd/storage"
)

// lockDir takes an exclusive advisory lock (flock) on the data directory
// itself, beside Pebble's lock on its LOCK file. Pebble's lock lives on that
// file's inode: once the file is deleted (as the old system's guide told
// operators to do with sled's db.lock), a second process creates a new LOCK,
// takes it and opens the directory a running worker holds. The directory
// cannot be deleted from under a holder, so this lock stays. It goes with the
// returned file, and with the process.
func lockDir(dir string) (*os.File, error) {
	f, err := os.Open(dir)
	if err != nil {
		return nil, fmt.Errorf("pebble: lock %s: %w", dir, err)
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		f.Close()
		if errors.Is(err, syscall.EWOULDBLOCK) {
			return nil, fmt.Errorf("pebble: %s is in use by another process or store (the directory is locked, though its LOCK file is not: was LOCK deleted? never delete it, the lock goes with the process that holds it): %w", dir, storage.ErrLocked)
		}
		return nil, fmt.Errorf("pebble: lock %s: %w", dir, err)
	}
	return f, nil
}
