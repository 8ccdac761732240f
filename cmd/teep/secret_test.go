package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// MAC keys and KEKs are read in an explicit form: a raw key made only of
// hex-digit characters is refused, not silently read as a shorter hex key.
func TestSuitMACKeyFormats(t *testing.T) {
	dir := t.TempDir()
	write := func(name, content string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	digits := "0123456789abcdef0123456789abcdef"
	payload := write("ta", "a trusted app")
	create := func(macKey, out string) (string, int) {
		_, errs, code := suitRun(t, "suit", "create", "--component-id", "ta", "--payload", payload, "--integrated",
			"--sequence", "1", "--mac-key", macKey, "--out", filepath.Join(dir, out))
		return errs, code
	}
	if errs, code := create(write("ambiguous.key", digits+"\n"), "a.suit"); code != 1 || !strings.Contains(errs, "ambiguous") {
		t.Fatalf("hex-digit raw key: exit %d %q, want a refusal naming the ambiguity", code, errs)
	}
	if errs, code := create(write("hex.key", "hex:"+digits+"\n"), "hex.suit"); code != 0 {
		t.Fatalf("hex: key: exit %d %s", code, errs)
	}
	if errs, code := create(write("raw.key", "raw:"+digits), "raw.suit"); code != 0 {
		t.Fatalf("raw: key: exit %d %s", code, errs)
	}
	// The two forms are different keys: each envelope verifies only with its own.
	hexKey, rawKey := filepath.Join(dir, "hex.key"), filepath.Join(dir, "raw.key")
	suitMust(t, "suit", "verify", "--mac-key", hexKey, filepath.Join(dir, "hex.suit"))
	suitMust(t, "suit", "verify", "--mac-key", rawKey, filepath.Join(dir, "raw.suit"))
	if _, _, code := suitRun(t, "suit", "verify", "--mac-key", rawKey, filepath.Join(dir, "hex.suit")); code != 1 {
		t.Fatalf("hex-key envelope verified with the raw key: exit %d", code)
	}
}
