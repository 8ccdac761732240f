package keyfile

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/teep-go/teep/cosekey"
)

func TestSaveLoadModes(t *testing.T) {
	dir := t.TempDir()
	k, err := cosekey.Generate(cosekey.AlgESP256)
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range []cosekey.Format{cosekey.FormatCOSE, cosekey.FormatPEM, cosekey.FormatJWK} {
		for _, private := range []bool{true, false} {
			path := filepath.Join(dir, string(f))
			if private {
				path += ".priv"
			}
			if err := Save(path, k, f, private); err != nil {
				t.Fatal(err)
			}
			st, err := os.Stat(path)
			if err != nil {
				t.Fatal(err)
			}
			want := os.FileMode(0o644)
			if private {
				want = 0o600
			}
			if st.Mode().Perm() != want {
				t.Errorf("%s: mode %v, want %v", path, st.Mode().Perm(), want)
			}
			back, err := Load(path)
			if err != nil {
				t.Fatal(err)
			}
			if !back.Equal(k) || back.IsPrivate() != private {
				t.Errorf("%s: round trip changed the key", path)
			}
		}
	}
	entries, _ := os.ReadDir(dir)
	if len(entries) != 6 {
		t.Errorf("temporary files left behind: %d entries", len(entries))
	}
	if _, err := Load(filepath.Join(dir, "missing")); err == nil {
		t.Error("loaded a missing file")
	}
}
