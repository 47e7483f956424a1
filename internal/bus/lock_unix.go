//go:build linux || darwin || freebsd || openbsd || netbsd || dragonfly

package bus

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"syscall"

	"github.com/fleetward/fleetward/internal/apperr"
)

// lockDir takes an exclusive advisory lock on dir/LOCK, so that two
// embedded servers (in two processes, or twice in one) never share a
// JetStream store, which would corrupt it. The lock goes with the process.
func lockDir(dir string) (unlock func(), err error) {
	path := filepath.Join(dir, "LOCK")
	f, err := os.OpenFile(path, os.O_CREATE|os.O_RDWR, 0o600)
	if err != nil {
		return nil, fmt.Errorf("embedded bus: open lock %s: %w", path, err)
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		f.Close()
		if errors.Is(err, syscall.EWOULDBLOCK) {
			return nil, apperr.Errorf(apperr.Conflict, "the bus store %s is in use by another fleetward", dir)
		}
		return nil, fmt.Errorf("embedded bus: lock %s: %w", path, err)
	}
	return func() {
		syscall.Flock(int(f.Fd()), syscall.LOCK_UN)
		f.Close()
	}, nil
}
