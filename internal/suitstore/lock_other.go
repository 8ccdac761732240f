//go:build !unix

package suitstore

import (
	"errors"
	"os"
)

// lockDir creates the lock file exclusively where flock is unavailable; a
// stale file after a crash must be removed by hand.
func lockDir(path string) (func() error, error) {
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return nil, errors.New("lock file exists (remove it if no other process uses the store)")
	}
	f.Close()
	return func() error { return os.Remove(path) }, nil
}
