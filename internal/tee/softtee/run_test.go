package softtee

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/teep-go/teep/internal/tee"
	"github.com/teep-go/teep/internal/tee/wasmta"
	"github.com/teep-go/teep/internal/tee/wasmta/handta"
	"github.com/teep-go/teep/internal/tee/wasmta/tabuild"
	"github.com/teep-go/teep/suit"
)

// install writes image as component id the way the component store does
// (a SUIT install is tested end to end in internal/agent).
func install(t *testing.T, tt *TEE, id suit.ComponentID, image []byte) {
	t.Helper()
	err := tee.Update(context.Background(), tt.Storage(), func(tx tee.Tx) error {
		// An update deletes and rewrites the image in one transaction.
		if err := tx.Delete(tee.ComponentObject(id)); err != nil && !errors.Is(err, tee.ErrNotFound) {
			return err
		}
		return tx.Put(tee.ComponentObject(id), image)
	})
	if err != nil {
		t.Fatal(err)
	}
}

func remove(t *testing.T, tt *TEE, id suit.ComponentID) {
	t.Helper()
	err := tee.Update(context.Background(), tt.Storage(), func(tx tee.Tx) error {
		return tx.Delete(tee.ComponentObject(id))
	})
	if err != nil {
		t.Fatal(err)
	}
}

func call(t *testing.T, tt *TEE, id suit.ComponentID, in string) string {
	t.Helper()
	out, err := tt.Invoke(context.Background(), id, []byte(in))
	if err != nil {
		t.Fatalf("invoke %s %q: %v", id, in, err)
	}
	return string(out)
}

func TestInvokeTrustedApplications(t *testing.T) {
	code := tabuild.Build(t, "../wasmta/testdata/ta")
	dir := t.TempDir()
	tt := openTEE(t, dir, Options{TALimits: wasmta.Limits{MemoryPages: 256}})
	ctx := context.Background()
	a := suit.NewComponentID("ta", "a")
	b := suit.NewComponentID("ta", "b")
	data := suit.NewComponentID("data")

	if _, err := tt.Invoke(ctx, a, nil); !errors.Is(err, tee.ErrNotFound) {
		t.Errorf("unknown component: %v", err)
	}
	install(t, tt, data, []byte("just data"))
	if _, err := tt.Invoke(ctx, data, nil); !errors.Is(err, tee.ErrNotRunnable) {
		t.Errorf("data component: %v", err)
	}
	install(t, tt, a, code)
	install(t, tt, b, code)

	call(t, tt, a, "put secret=of-a")
	if got := call(t, tt, a, "get secret"); got != "of-a" {
		t.Errorf("a reads its own key: %q", got)
	}
	if got := call(t, tt, b, "get secret"); got != "<none>" {
		t.Errorf("b read a's key: %q", got)
	}
	// Rich-OS callers of the TEE's storage do not see TA state either.
	if names := tt.Storage().List(""); len(names) == 0 || strings.Contains(strings.Join(names, " "), taPrefix) {
		t.Errorf("caller storage lists %v", names)
	}
	for _, name := range tt.st.List(taPrefix) {
		if _, err := tt.Storage().Get(name); !errors.Is(err, tee.ErrNotFound) {
			t.Errorf("caller Get %s: %v", name, err)
		}
	}

	// A failing invocation keeps nothing it wrote.
	if _, err := tt.Invoke(ctx, a, []byte("putfail secret=lost")); !errors.Is(err, wasmta.ErrTrap) {
		t.Errorf("putfail: %v", err)
	}
	if got := call(t, tt, a, "get secret"); got != "of-a" {
		t.Errorf("after a failed invocation: %q", got)
	}

	// An update keeps the state; reopening keeps it too.
	install(t, tt, a, code)
	if got := call(t, tt, a, "get secret"); got != "of-a" {
		t.Errorf("after update: %q", got)
	}
	tt.Close()
	tt = openTEE(t, dir, Options{})
	if got := call(t, tt, a, "get secret"); got != "of-a" {
		t.Errorf("after reopen: %q", got)
	}

	// Removal takes the state with it; b keeps its own.
	call(t, tt, b, "put mine=b")
	remove(t, tt, a)
	if _, err := tt.Invoke(ctx, a, []byte("get secret")); !errors.Is(err, tee.ErrNotFound) {
		t.Errorf("removed component: %v", err)
	}
	ns := taNamespace(tee.ComponentObject(a))
	if left := tt.st.List(ns); len(left) != 0 {
		t.Errorf("state of removed a left: %v", left)
	}
	install(t, tt, a, code)
	if got := call(t, tt, a, "get secret"); got != "<none>" {
		t.Errorf("reinstalled a sees old state: %q", got)
	}
	if got := call(t, tt, b, "get mine"); got != "b" {
		t.Errorf("b after a's removal: %q", got)
	}
}

// TestSignerKeyStaysSealed: the example signer TA's private key is in its
// sealed namespace and nowhere else: not in its outputs, not in another
// TA's view, not in the TEE's caller storage, not in plaintext on disk. It
// survives an update and goes with the removal.
func TestSignerKeyStaysSealed(t *testing.T) {
	v1 := tabuild.Build(t, "../../../examples/ta/signer")
	v2 := tabuild.Build(t, "../../../examples/ta/signer", "-ldflags=-X main.version=2")
	spy := tabuild.Build(t, "../wasmta/testdata/ta")
	dir := t.TempDir()
	tt := openTEE(t, dir, Options{})
	signer := suit.NewComponentID("ta", "signer")
	other := suit.NewComponentID("ta", "spy")
	install(t, tt, signer, v1)
	install(t, tt, other, spy)

	var outputs []string
	pub := func() ed25519.PublicKey {
		t.Helper()
		out := call(t, tt, signer, "pub")
		outputs = append(outputs, out)
		b, err := hex.DecodeString(out)
		if err != nil || len(b) != ed25519.PublicKeySize {
			t.Fatalf("pub: %q %v", out, err)
		}
		return b
	}
	sign := func(msg string) []byte {
		t.Helper()
		out := call(t, tt, signer, "sign "+msg)
		outputs = append(outputs, out)
		b, err := hex.DecodeString(out)
		if err != nil {
			t.Fatalf("sign: %q %v", out, err)
		}
		return b
	}
	pk := pub()
	if !ed25519.Verify(pk, []byte("hello"), sign("hello")) {
		t.Fatal("signature does not verify")
	}
	if ed25519.Verify(pk, []byte("hellO"), sign("hello")) {
		t.Fatal("signature verifies another message")
	}
	if _, err := tt.Invoke(context.Background(), signer, []byte("seed")); !errors.Is(err, wasmta.ErrTrap) {
		t.Fatalf("unknown command: %v", err)
	}

	// The key as the TEE holds it: the seed in the signer's namespace,
	// which is the key behind the public key.
	seedObj := taNamespace(tee.ComponentObject(signer)) + hex.EncodeToString([]byte("ed25519-seed"))
	seed, err := tt.st.Get(seedObj)
	if err != nil || len(seed) != ed25519.SeedSize {
		t.Fatalf("sealed seed: %x %v", seed, err)
	}
	if !ed25519.NewKeyFromSeed(seed).Public().(ed25519.PublicKey).Equal(pk) {
		t.Fatal("the sealed seed is not the signer's key")
	}
	priv := ed25519.NewKeyFromSeed(seed)
	for _, out := range outputs {
		for _, secret := range [][]byte{seed, priv} {
			if strings.Contains(out, string(secret)) || strings.Contains(out, hex.EncodeToString(secret)) {
				t.Fatalf("output %q contains the private key", out)
			}
		}
	}
	if got := call(t, tt, other, "get ed25519-seed"); got != "<none>" {
		t.Fatalf("another TA reads the signer's key: %q", got)
	}
	if _, err := tt.Storage().Get(seedObj); !errors.Is(err, tee.ErrNotFound) {
		t.Fatalf("caller storage reads the key: %v", err)
	}
	for _, name := range tt.Storage().List("") {
		if b, err := tt.Storage().Get(name); err == nil && bytes.Contains(b, seed) {
			t.Fatalf("caller storage object %s holds the key", name)
		}
	}
	err = filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := os.ReadFile(path)
		if err == nil && (bytes.Contains(b, seed) || bytes.Contains(b, []byte(hex.EncodeToString(seed)))) {
			t.Errorf("%s holds the key in plaintext", path)
		}
		return err
	})
	if err != nil {
		t.Fatal(err)
	}

	install(t, tt, signer, v2)
	if got := pub(); !got.Equal(pk) {
		t.Fatal("the update changed the key")
	}
	remove(t, tt, signer)
	if _, err := tt.st.Get(seedObj); !errors.Is(err, tee.ErrNotFound) {
		t.Fatalf("key after removal: %v", err)
	}
	install(t, tt, signer, v1)
	if got := pub(); got.Equal(pk) {
		t.Fatal("a reinstalled signer has the removed one's key")
	}
}

// TestCompiledCacheFollowsComponents: a warm invocation runs the cached
// module; an update or a removal drops the old code's module from the
// cache, so it is neither kept nor run.
func TestCompiledCacheFollowsComponents(t *testing.T) {
	v1, v2 := handta.Counter("1"), handta.Counter("2")
	tt := openTEE(t, t.TempDir(), Options{})
	id := suit.NewComponentID("ta", "counter")
	install(t, tt, id, v1)
	if got := call(t, tt, id, ""); got != "counter v1: 1" {
		t.Fatalf("first call: %q", got)
	}
	rt := tt.run.rt
	if !rt.IsCached(wasmta.Digest(v1)) || rt.Cached() != 1 {
		t.Fatal("v1 not cached after its first call")
	}
	if got := call(t, tt, id, ""); got != "counter v1: 2" {
		t.Fatalf("warm call: %q", got)
	}
	install(t, tt, id, v2)
	if rt.IsCached(wasmta.Digest(v1)) {
		t.Fatal("v1 still cached after the update")
	}
	if got := call(t, tt, id, ""); got != "counter v2: 3" {
		t.Fatalf("after update: %q", got)
	}
	remove(t, tt, id)
	if rt.Cached() != 0 {
		t.Fatalf("%d modules cached after the removal", rt.Cached())
	}
	if _, err := tt.Invoke(context.Background(), id, nil); !errors.Is(err, tee.ErrNotFound) {
		t.Fatalf("removed: %v", err)
	}
	// A TEE with a cache of one: two TAs taking turns evict each other
	// and are compiled again from the store, not from a stale digest.
	tt2 := openTEE(t, t.TempDir(), Options{TALimits: wasmta.Limits{MaxCached: 1}})
	a, b := suit.NewComponentID("a"), suit.NewComponentID("b")
	install(t, tt2, a, v1)
	install(t, tt2, b, v2)
	for i := 1; i <= 3; i++ {
		if got := call(t, tt2, a, ""); got != fmt.Sprintf("counter v1: %d", i) {
			t.Fatalf("a %d: %q", i, got)
		}
		if got := call(t, tt2, b, ""); got != fmt.Sprintf("counter v2: %d", i) {
			t.Fatalf("b %d: %q", i, got)
		}
	}
	if tt2.run.rt.Cached() != 1 {
		t.Fatalf("cache bound broken: %d", tt2.run.rt.Cached())
	}
}
