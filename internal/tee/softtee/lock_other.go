//go:build !unix

package softtee

import (
	"fmt"
	"os"

	"github.com/teep-go/teep/internal/tee"
)

// lockDir uses an exclusively created lock file where flock is unavailable;
// a crash leaves it behind, and the error names it so it can be removed.
func lockDir(path string) (unlock func() error, err error) {
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		if os.IsExist(err) {
			return nil, fmt.Errorf("%w: %s exists (remove it if no process uses this TEE)", tee.ErrBusy, path)
		}
		return nil, err
	}
	return func() error {
		f.Close()
		return os.Remove(path)
	}, nil
}
