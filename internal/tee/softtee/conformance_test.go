package softtee

import (
	"crypto/ecdsa"
	"crypto/ed25519"
	"os"
	"path/filepath"
	"testing"

	"github.com/teep-go/teep/cosekey"
	"github.com/teep-go/teep/internal/tee"
	"github.com/teep-go/teep/internal/tee/teetest"
)

// TestConformance runs the TEE backend suite on the software TEE.
func TestConformance(t *testing.T) {
	teetest.Run(t, func(t *testing.T) *teetest.Backend {
		dir := t.TempDir()
		var fault error // armed by FailNextCommit, fired once at FaultStaged
		var cur *TEE
		return &teetest.Backend{
			Open: func() (tee.TEE, error) {
				tt, err := Open(dir, Options{FaultHook: func(p string, _ []string) error {
					if p != FaultStaged || fault == nil {
						return nil
					}
					err := fault
					fault = nil
					return err
				}})
				if err != nil {
					return nil, err
				}
				cur = tt
				return tt, nil
			},
			// A flipped bit in the middle of the object's sealed file.
			Tamper: func(t *testing.T, name string) {
				path := objectFile(t, cur, name)
				fi, err := os.Stat(path)
				if err != nil {
					t.Fatal(err)
				}
				flip(t, path, int(fi.Size()/2))
			},
			// Everything but the counter file, which stands for the
			// hardware monotonic counter, and the lock.
			Snapshot: func(t *testing.T) func(t *testing.T) {
				saved := t.TempDir()
				copyTree(t, dir, saved)
				return func(t *testing.T) {
					if err := os.RemoveAll(filepath.Join(dir, objectsDir)); err != nil {
						t.Fatal(err)
					}
					copyTree(t, saved, dir)
				}
			},
			FailNextCommit: func(err error) { fault = err },
			Secrets: func(t *testing.T, tt tee.TEE) [][]byte {
				s := tt.(*TEE)
				keys := append([]*cosekey.Key{s.agent, s.attest}, s.dkeys...)
				var out [][]byte
				for _, k := range keys {
					switch p := k.PrivateSigner().(type) {
					case *ecdsa.PrivateKey:
						d, err := p.Bytes()
						if err != nil {
							t.Fatal(err)
						}
						out = append(out, d)
					case ed25519.PrivateKey:
						out = append(out, p.Seed())
					default:
						t.Fatalf("key type %T", p)
					}
				}
				return out
			},
		}
	})
}

// copyTree copies the TEE's files from one directory to another, leaving
// out the counter and the lock.
func copyTree(t *testing.T, from, to string) {
	t.Helper()
	err := filepath.WalkDir(from, func(path string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(from, path)
		if rel == counterFile || rel == lockFile {
			return nil
		}
		if d.IsDir() {
			return os.MkdirAll(filepath.Join(to, rel), 0o700)
		}
		copyFile(t, path, filepath.Join(to, rel))
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}
