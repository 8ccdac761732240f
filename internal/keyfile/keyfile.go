package keyfile

import (
	"fmt"
	"io"
	"os"
	"path/filepath"

	"github.com/teep-go/teep/cosekey"
)

// Load reads a key file (COSE_Key, PEM or JWK, detected from its content).
func Load(path string) (*cosekey.Key, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("key file: %w", err)
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, cosekey.MaxKeyFileSize+1))
	if err != nil {
		return nil, fmt.Errorf("key file %s: %w", path, err)
	}
	k, err := cosekey.Parse(data)
	if err != nil {
		return nil, fmt.Errorf("key file %s: %w", path, err)
	}
	return k, nil
}

// LoadAll loads several key files, failing on the first bad one.
func LoadAll(paths []string) ([]*cosekey.Key, error) {
	keys := make([]*cosekey.Key, 0, len(paths))
	for _, p := range paths {
		k, err := Load(p)
		if err != nil {
			return nil, err
		}
		keys = append(keys, k)
	}
	return keys, nil
}

// Save writes k to path in format f. Private keys get mode 0600, public keys
// 0644. The file is written to a temporary name and renamed into place.
func Save(path string, k *cosekey.Key, f cosekey.Format, private bool) error {
	data, err := k.Marshal(f, private)
	if err != nil {
		return err
	}
	mode := os.FileMode(0o644)
	if private {
		mode = 0o600
	}
	return WriteAtomic(path, data, mode)
}

// WriteAtomic writes data to a temporary file in path's directory with the
// given mode, syncs it, and renames it over path.
func WriteAtomic(path string, data []byte, mode os.FileMode) error {
	dir := filepath.Dir(path)
	tmp, err := os.CreateTemp(dir, ".tmp-"+filepath.Base(path)+"-*")
	if err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	name := tmp.Name()
	defer os.Remove(name) // no-op after a successful rename
	if err := tmp.Chmod(mode); err != nil {
		tmp.Close()
		return fmt.Errorf("write %s: %w", path, err)
	}
	if _, err := tmp.Write(data); err != nil {
		tmp.Close()
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err := os.Rename(name, path); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	return nil
}
