//go:build !unix

package natsembed

import (
	"fmt"
	"os"
	"path/filepath"
)

// lockStoreDir creates dir and opens its lock file; without flock it cannot
// refuse a second server on the same directory.
func lockStoreDir(dir string) (*os.File, error) {
	if dir == "" {
		return nil, nil // nats-server picks a temporary directory of its own
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("natsembed store dir: %w", err)
	}
	return os.OpenFile(filepath.Join(dir, lockFile), os.O_CREATE|os.O_RDWR, 0o644)
}
