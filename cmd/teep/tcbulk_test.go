package main

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/teep-go/teep/cosekey"
	"github.com/teep-go/teep/internal/keyfile"
	"github.com/teep-go/teep/internal/tam/tamtest"
)

// tam tc add with several envelopes imports them in order, prints every id,
// and stops at the first failure saying how many went in; what was added
// stays, what failed changed nothing.
func TestTAMComponentBulkImport(t *testing.T) {
	dir := t.TempDir()
	data := filepath.Join(dir, "data")
	base, _ := tamStart(t, data)
	S := []string{"--server", base, "--data", data}
	signer := tamtest.Signer(t)
	signerFile := filepath.Join(dir, "signer.pub")
	if err := keyfile.Save(signerFile, signer.PublicKey(), cosekey.FormatPEM, false); err != nil {
		t.Fatal(err)
	}
	tamMust(t, append([]string{"tam", "trust", "add-signer", signerFile}, S...)...)

	var files []string
	for i := range 5 {
		f := filepath.Join(dir, fmt.Sprintf("app%d.suit", i))
		if err := os.WriteFile(f, tamtest.Envelope(t, signer, fmt.Sprintf("app%d", i), 1, []byte("payload")), 0o644); err != nil {
			t.Fatal(err)
		}
		files = append(files, f)
	}
	out := tamMust(t, append(append([]string{"tam", "tc", "add"}, files[:3]...), S...)...)
	if ids := strings.Fields(out); len(ids) != 3 {
		t.Fatalf("bulk add printed %q, want 3 ids", out)
	}
	// files[0] again (its sequence is not newer) fails after files[3] went in.
	args := append([]string{"tam", "tc", "add", files[3], files[0], files[4]}, S...)
	out, errOut, code := teepRun(t, nil, args...)
	if code != 1 || len(strings.Fields(out)) != 1 || !strings.Contains(errOut, files[0]) || !strings.Contains(errOut, "1 of 3 added before it") {
		t.Fatalf("failing bulk add: exit %d, stdout %q, stderr %q", code, out, errOut)
	}
	if strings.Contains(errOut, "\r") {
		t.Fatalf("progress drawn on a non-terminal: %q", errOut)
	}
	list := tamMust(t, append([]string{"tam", "tc", "list"}, S...)...)
	for i, want := range []bool{true, true, true, true, false} {
		if got := strings.Contains(list, fmt.Sprintf("/app%d/", i)); got != want {
			t.Errorf("app%d listed = %v, want %v:\n%s", i, got, want, list)
		}
	}
}
