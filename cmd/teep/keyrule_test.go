package main

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/teep-go/teep/internal/keyrule"
)

// TestGoldenKeys walks every golden file, so that a file added by hand or
// left behind by a renamed test is held to the rule as well.
func TestGoldenKeys(t *testing.T) {
	files, err := filepath.Glob(filepath.Join(goldenDir, "*.json"))
	if err != nil {
		t.Fatal(err)
	}
	if len(files) == 0 {
		t.Fatal("no golden files")
	}
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		if bad := keyrule.Violations(b); len(bad) > 0 {
			t.Errorf("%s: keys break the naming rule: %q", f, bad)
		}
	}
}
