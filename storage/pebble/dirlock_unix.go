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
// returned file, and with the process. Only a directory another holder
// locked is an error (storage.ErrLocked); where the lock cannot be taken at
// all, the store opens with Pebble's lock alone (nil file).
func lockDir(dir string) (*os.File, error) {
	f, err := os.Open(dir)
	if err != nil {
		return nil, nil // Pebble's LOCK still guards it; its own open reports what is wrong
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		f.Close()
		if errors.Is(err, syscall.EWOULDBLOCK) {
			return nil, fmt.Errorf("pebble: %s is in use by another process or store (the directory is locked, though its LOCK file is not: was LOCK deleted? never delete it, the lock goes with the process that holds it): %w", dir, storage.ErrLocked)
		}
		// A file system that cannot flock a directory (NFS maps flock to
		// POSIX locks, which want a file open for writing) keeps Pebble's
		// lock alone, as before: never a store that no longer opens.
		return nil, nil
	}
	return f, nil
}
