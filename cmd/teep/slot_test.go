package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/fxamacker/cbor/v2"
	"github.com/teep-go/teep/cosekey"
	"github.com/teep-go/teep/suit"
)

// suit process --slot answers condition-component-slot: a manifest that
// checks the slot installs only on a device declaring that slot.
func TestSuitProcessComponentSlot(t *testing.T) {
	dir := t.TempDir()
	_, pub, key := eatKey(t, dir, "signer", "esp256")
	em, _ := cbor.CoreDetEncOptions().EncMode()
	enc := func(v any) []byte {
		b, err := em.Marshal(v)
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	// shared: override component-slot = 1, condition-component-slot;
	// install: override content, directive-write.
	shared := enc([]any{suit.DirOverrideParameters, map[int64]any{suit.ParamComponentSlot: 1}, suit.CondComponentSlot, 15})
	install := enc([]any{suit.DirOverrideParameters, map[int64]any{suit.ParamContent: []byte("slotted")}, suit.DirWrite, 15})
	common := enc(map[int64]any{2: [][][]byte{{[]byte("app")}}, 4: shared})
	manifest := enc(map[int64]any{1: 1, 2: 1, 3: common, 5: [][]byte{[]byte("app.suit")}, 20: install})
	env, err := suit.NewEnvelope(manifest, nil, false)
	if err != nil {
		t.Fatal(err)
	}
	s, _ := cosekey.NewSigner(key, 0)
	if err := env.Sign(s); err != nil {
		t.Fatal(err)
	}
	raw, _ := env.Marshal(suit.MarshalOptions{})
	file := filepath.Join(dir, "slotted.suit")
	os.WriteFile(file, raw, 0o644)

	for _, c := range []struct {
		name string
		args []string
		want int
	}{
		{"no slots declared", nil, 1},
		{"another slot", []string{"--slot", "app=2"}, 1},
		{"another component", []string{"--slot", "lib=1"}, 1},
		{"the slot", []string{"--slot", "app=1"}, 0},
	} {
		t.Run(c.name, func(t *testing.T) {
			args := append([]string{"suit", "process", "--store", filepath.Join(t.TempDir(), "store"), "--trust", pub}, c.args...)
			out, errs, code := suitRun(t, append(args, file)...)
			if code != c.want {
				t.Fatalf("exit %d, want %d\n%s%s", code, c.want, out, errs)
			}
			if c.want == 1 && !strings.Contains(out+errs, "component-slot") {
				t.Fatalf("the failure does not name the condition:\n%s%s", out, errs)
			}
		})
	}
	for _, bad := range []string{"app", "app=x", "=1"} {
		if _, _, code := suitRun(t, "suit", "process", "--store", t.TempDir(), "--trust", pub, "--slot", bad, file); code != 2 {
			t.Errorf("--slot %q: exit %d, want 2", bad, code)
		}
	}
}
