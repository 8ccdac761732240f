package tamserver

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/teep-go/teep/cosekey"
	"github.com/teep-go/teep/internal/keyfile"
	"github.com/teep-go/teep/internal/tam"
	"github.com/teep-go/teep/internal/tam/appraiser"
)

func TestOpenCreatesAndReuses(t *testing.T) {
	ctx := context.Background()
	dir := filepath.Join(t.TempDir(), "data")
	a, err := Open(ctx, Options{DataDir: dir})
	if err != nil {
		t.Fatal(err)
	}
	if !a.NewToken || len(a.Token) < 40 {
		t.Fatalf("first open: new token %v (%d chars)", a.NewToken, len(a.Token))
	}
	keys := a.Engine.PublicKeys()
	a.Close()
	b, err := Open(ctx, Options{DataDir: dir})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	if b.NewToken || b.Token != a.Token {
		t.Fatal("the token changed on the second open")
	}
	for i, k := range b.Engine.PublicKeys() {
		if !k.Equal(keys[i]) {
			t.Fatal("the signing keys changed on the second open")
		}
	}
	tok, err := ReadToken(dir)
	if err != nil || tok != a.Token {
		t.Fatalf("ReadToken: %q %v", tok, err)
	}
	for _, kt := range []cosekey.KeyType{cosekey.KeyTypeP256, cosekey.KeyTypeEd25519} {
		k, err := PublicKey(dir, kt)
		if err != nil || k.IsPrivate() || k.Type() != kt {
			t.Fatalf("PublicKey(%v): %v", kt, err)
		}
	}
}

func TestOpenRefusesBadState(t *testing.T) {
	ctx := context.Background()
	for name, setup := range map[string]func(dir string){
		"short session key": func(dir string) { os.WriteFile(filepath.Join(dir, FileSessionKey), []byte("short"), 0o600) },
		"public signing key": func(dir string) {
			k, _ := cosekey.Generate(cosekey.AlgESP256)
			keyfile.Save(filepath.Join(dir, FileP256Key), k, cosekey.FormatCOSE, false)
		},
		"garbage key file": func(dir string) { os.WriteFile(filepath.Join(dir, FileEd25519Key), []byte("garbage"), 0o600) },
	} {
		dir := t.TempDir()
		setup(dir)
		if s, err := Open(ctx, Options{DataDir: dir}); err == nil {
			s.Close()
			t.Errorf("%s: opened", name)
		}
	}
	if _, err := Open(ctx, Options{DataDir: t.TempDir(), VerifierURL: "http://127.0.0.1:1"}); err == nil || !strings.Contains(err.Error(), "verifier key") {
		t.Errorf("remote Verifier without a key: %v", err)
	}
	if _, err := Open(ctx, Options{DataDir: t.TempDir(), VerifierPolicy: "/nonexistent/policy.json"}); err == nil {
		t.Error("missing Verifier policy accepted")
	}
	if _, err := Open(ctx, Options{}); err == nil {
		t.Error("no data directory accepted")
	}
}

// Verifier keys trusted through the admin API count for the appraiser, as
// do the ones given at start.
func TestVerifierKeysFromStore(t *testing.T) {
	ctx := context.Background()
	given, _ := cosekey.Generate(cosekey.AlgEd25519)
	s, err := Open(ctx, Options{DataDir: t.TempDir(), VerifierKeys: []*cosekey.Key{given.PublicKey()}})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	added, _ := cosekey.Generate(cosekey.AlgESP256)
	if _, err := s.Engine.AddTrustedKey(ctx, tam.RoleVerifier, added.PublicKey(), ""); err != nil {
		t.Fatal(err)
	}
	signer, _ := cosekey.Generate(cosekey.AlgESP256)
	if _, err := s.Engine.AddTrustedKey(ctx, tam.RoleTCSigner, signer.PublicKey(), ""); err != nil {
		t.Fatal(err)
	}
	a, err := s.appraiser()
	if err != nil {
		t.Fatal(err)
	}
	va := a.(*appraiser.Verifier)
	more, err := va.ResultKeysFunc(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(va.ResultKeys) != 1 || !va.ResultKeys[0].Equal(given.PublicKey()) || len(more) != 1 || !more[0].Equal(added.PublicKey()) {
		t.Fatalf("result keys %v, from the store %v", va.ResultKeys, more)
	}
}
