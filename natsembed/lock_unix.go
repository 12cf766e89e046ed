//go:build unix

package natsembed

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"syscall"
)

// lockStoreDir takes an exclusive advisory lock on dir/incidentd.lock,
// creating dir when needed. Two servers on one store directory corrupt each
// other's streams (nats-server itself takes no lock), so a second one must
// not start. The lock goes with the returned file, and with the process.
func lockStoreDir(dir string) (*os.File, error) {
	if dir == "" {
		return nil, nil // nats-server picks a temporary directory of its own
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("natsembed store dir: %w", err)
	}
	f, err := os.OpenFile(filepath.Join(dir, lockFile), os.O_CREATE|os.O_RDWR, 0o644)
	if err != nil {
		return nil, fmt.Errorf("natsembed store dir: %w", err)
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		f.Close()
		if errors.Is(err, syscall.EWOULDBLOCK) {
			return nil, fmt.Errorf("%w: %s is held by another process (another incidentd in the same directory? give each its own nats.embedded_store_dir, or connect both to one NATS server with nats.url)", ErrStoreDirLocked, dir)
		}
		return nil, fmt.Errorf("natsembed lock %s: %w", dir, err)
	}
	return f, nil
}
