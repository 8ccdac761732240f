package main

import (
	"bytes"
	"encoding/hex"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/teep-go/teep/cosekey"
)

func keyTestRun(t *testing.T, args ...string) (stdout, stderr string, code int) {
	t.Helper()
	return teepRun(t, nil, args...)
}

func keyTestMust(t *testing.T, args ...string) string {
	t.Helper()
	out, errs, code := keyTestRun(t, args...)
	if code != 0 {
		t.Fatalf("teep %s: exit %d: %s", strings.Join(args, " "), code, errs)
	}
	return out
}

func keyTestMode(t *testing.T, path string) os.FileMode {
	t.Helper()
	st, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	return st.Mode().Perm()
}

func keyTestParse(t *testing.T, data []byte) *cosekey.Key {
	t.Helper()
	k, err := cosekey.Parse(data)
	if err != nil {
		t.Fatalf("%v\n%q", err, data)
	}
	return k
}

var keyTestKIDRe = regexp.MustCompile(`^[0-9a-f]{64}\n$`)

func TestKeyGenerateAllAlgsAndFormats(t *testing.T) {
	dir := t.TempDir()
	for _, alg := range []struct {
		name string
		typ  cosekey.KeyType
	}{{"esp256", cosekey.KeyTypeP256}, {"ed25519", cosekey.KeyTypeEd25519}, {"ES256", cosekey.KeyTypeP256}, {"eddsa", cosekey.KeyTypeEd25519}} {
		for _, format := range []string{"cose", "pem", "jwk"} {
			path := filepath.Join(dir, alg.name+"."+format)
			kid := keyTestMust(t, "key", "generate", "--alg", alg.name, "--format", format, "--out", path)
			if !keyTestKIDRe.MatchString(kid) {
				t.Fatalf("kid output %q", kid)
			}
			if m := keyTestMode(t, path); m != 0o600 {
				t.Fatalf("%s: mode %o, want 600", path, m)
			}
			data, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			k := keyTestParse(t, data)
			if !k.IsPrivate() || k.Type() != alg.typ {
				t.Fatalf("%s: private=%v type=%v", path, k.IsPrivate(), k.Type())
			}
			// the printed kid is the key's RFC 9679 thumbprint, as "key thumbprint" says
			if got := keyTestMust(t, "key", "thumbprint", path); got != kid {
				t.Fatalf("thumbprint %q, generate printed %q", got, kid)
			}
			if got := strings.TrimSpace(kid); got != hex.EncodeToString(k.KID()) {
				t.Fatalf("kid %s, key %x", got, k.KID())
			}
			switch format {
			case "pem":
				if !bytes.HasPrefix(data, []byte("-----BEGIN PRIVATE KEY-----")) {
					t.Fatalf("PEM: %q", data[:30])
				}
			case "jwk":
				if data[0] != '{' || !bytes.Contains(data, []byte(`"d"`)) {
					t.Fatalf("JWK: %s", data)
				}
			case "cose":
				if data[0]>>5 != 5 {
					t.Fatalf("COSE_Key is not a CBOR map: %x", data[:1])
				}
			}
		}
	}
}

func TestKeyGenerateRefusals(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "k.cose")
	keyTestMust(t, "key", "generate", "--out", path)
	before, _ := os.ReadFile(path)
	_, errs, code := keyTestRun(t, "key", "generate", "--out", path)
	if code != 1 || !strings.Contains(errs, "exists") {
		t.Fatalf("overwrite: %d %q", code, errs)
	}
	if after, _ := os.ReadFile(path); !bytes.Equal(before, after) {
		t.Fatal("refused overwrite changed the file")
	}
	keyTestMust(t, "key", "generate", "--out", path, "--force")
	if after, _ := os.ReadFile(path); bytes.Equal(before, after) {
		t.Fatal("--force did not replace the key")
	}
	for _, c := range []struct {
		args []string
		code int
		want string
	}{
		{[]string{"key", "generate"}, 2, "want --out FILE"},
		{[]string{"key", "generate", "--out", filepath.Join(dir, "x"), "extra"}, 2, "want --out FILE and no arguments"},
		{[]string{"key", "generate", "--alg", "rsa", "--out", filepath.Join(dir, "y")}, 2, "unknown algorithm"},
		{[]string{"key", "generate", "--format", "der", "--out", filepath.Join(dir, "z")}, 1, ""},
		{[]string{"key", "public"}, 2, "want exactly one key FILE"},
		{[]string{"key", "thumbprint", "a", "b"}, 2, "want exactly one key FILE"},
		{[]string{"key", "convert", path}, 2, "want one key FILE and --out FILE"},
		{[]string{"key", "public", filepath.Join(dir, "missing")}, 1, "key file"},
	} {
		_, errs, code := keyTestRun(t, c.args...)
		if code != c.code || !strings.Contains(errs, c.want) {
			t.Errorf("%v: exit %d (want %d), stderr %q", c.args, code, c.code, errs)
		}
	}
	if _, err := os.Stat(filepath.Join(dir, "z")); err == nil {
		t.Error("a key was written in an unknown format")
	}
}

func TestKeyPublicFormats(t *testing.T) {
	dir := t.TempDir()
	for _, alg := range []string{"esp256", "ed25519"} {
		priv := filepath.Join(dir, alg+".jwk")
		kid := strings.TrimSpace(keyTestMust(t, "key", "generate", "--alg", alg, "--format", "jwk", "--out", priv))
		for _, format := range []string{"cose", "pem", "jwk"} {
			out := keyTestMust(t, "key", "public", priv, "--format", format)
			k := keyTestParse(t, []byte(out))
			if k.IsPrivate() {
				t.Fatalf("%s public %s carries the private key", alg, format)
			}
			if hex.EncodeToString(k.KID()) != kid {
				t.Fatalf("%s public %s: kid %x, want %s", alg, format, k.KID(), kid)
			}
			if strings.Contains(out, `"d"`) || strings.Contains(out, "PRIVATE") {
				t.Fatalf("private material in public output: %s", out)
			}
		}
		// default format is PEM (SPKI)
		if out := keyTestMust(t, "key", "public", priv); !strings.HasPrefix(out, "-----BEGIN PUBLIC KEY-----") {
			t.Fatalf("default public format: %q", out)
		}
	}
}

// The Appendix E key of draft-ietf-teep-protocol-26 has the thumbprint given
// in testdata/teep/keys/suit-signer-p256.txt, in every format.
func TestKeyThumbprintVector(t *testing.T) {
	const want = "ca9e35f23b2b525fb4fc83f512b0dcac4ac29e457e873a5d6a7313f71690b33c\n"
	dir := t.TempDir()
	pemPriv := filepath.Join("..", "..", "testdata", "teep", "keys", "suit-signer-p256-private.pem")
	pemPub := filepath.Join("..", "..", "testdata", "teep", "keys", "suit-signer-p256-public.pem")
	for _, p := range []string{pemPriv, pemPub} {
		if got := keyTestMust(t, "key", "thumbprint", p); got != want {
			t.Fatalf("%s: %q", p, got)
		}
	}
	for _, format := range []string{"cose", "jwk", "pem"} {
		out := filepath.Join(dir, "converted."+format)
		keyTestMust(t, "key", "convert", pemPriv, "--format", format, "--out", out)
		if got := keyTestMust(t, "key", "thumbprint", out); got != want {
			t.Fatalf("%s: %q", format, got)
		}
	}
}

func TestKeyConvert(t *testing.T) {
	dir := t.TempDir()
	for _, alg := range []string{"esp256", "ed25519"} {
		src := filepath.Join(dir, alg+".cose")
		kid := keyTestMust(t, "key", "generate", "--alg", alg, "--out", src)
		srcData, _ := os.ReadFile(src)
		orig := keyTestParse(t, srcData)
		for _, from := range []string{"cose", "pem", "jwk"} {
			in := filepath.Join(dir, alg+"-in."+from)
			keyTestMust(t, "key", "convert", src, "--format", from, "--out", in)
			for _, to := range []string{"cose", "pem", "jwk"} {
				priv := filepath.Join(dir, alg+"-"+from+"-to."+to)
				keyTestMust(t, "key", "convert", in, "--format", to, "--out", priv)
				if m := keyTestMode(t, priv); m != 0o600 {
					t.Fatalf("private %s -> %s: mode %o", from, to, m)
				}
				data, _ := os.ReadFile(priv)
				k := keyTestParse(t, data)
				if !k.IsPrivate() || !k.Equal(orig) || keyTestMust(t, "key", "thumbprint", priv) != kid {
					t.Fatalf("%s %s -> %s changed the key", alg, from, to)
				}
				// The private half survives: a signature by the converted key
				// verifies with the original public key.
				s, err := cosekey.NewSigner(k, 0)
				if err != nil {
					t.Fatal(err)
				}
				msg, err := cosekey.Sign1([]byte("x"), s, nil)
				if err != nil {
					t.Fatal(err)
				}
				if _, _, err := cosekey.Verify(msg, cosekey.VerifyOptions{Keys: []*cosekey.Key{orig.PublicKey()}}); err != nil {
					t.Fatalf("%s %s -> %s: %v", alg, from, to, err)
				}

				pub := filepath.Join(dir, alg+"-"+from+"-pub."+to)
				keyTestMust(t, "key", "convert", in, "--format", to, "--out", pub, "--public")
				if m := keyTestMode(t, pub); m != 0o644 {
					t.Fatalf("public %s -> %s: mode %o", from, to, m)
				}
				data, _ = os.ReadFile(pub)
				if k := keyTestParse(t, data); k.IsPrivate() || keyTestMust(t, "key", "thumbprint", pub) != kid {
					t.Fatalf("public %s -> %s", from, to)
				}
				// converting a public key stays public (0644)
				again := filepath.Join(dir, alg+"-"+from+"-again."+to)
				keyTestMust(t, "key", "convert", pub, "--format", to, "--out", again)
				if m := keyTestMode(t, again); m != 0o644 {
					t.Fatalf("public re-convert: mode %o", m)
				}
			}
		}
	}
}

func TestKeyRejectsBadFiles(t *testing.T) {
	dir := t.TempDir()
	cases := map[string]string{
		"garbage":      "not a key",
		"rsa.pem":      "-----BEGIN PUBLIC KEY-----\nMFwwDQYJKoZIhvcNAQEBBQADSwAwSAJBAKj34GkxFhD90vcNLYLInFEX6Ppy1tPf\n9Cnzj4p4WGeKLs1Pt8QuKUpRKfFLfRYC9AIKjbJTWit+CqvjWYzvQwECAwEAAQ==\n-----END PUBLIC KEY-----\n",
		"bad.jwk":      `{"kty":"EC","crv":"P-384","x":"AA","y":"AA"}`,
		"truncated.cb": "\xa4\x01\x02",
	}
	for name, content := range cases {
		path := filepath.Join(dir, name)
		if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
		for _, cmd := range [][]string{{"key", "thumbprint", path}, {"key", "public", path}, {"key", "convert", path, "--out", path + ".out"}} {
			out, errs, code := keyTestRun(t, cmd...)
			if code != 1 || out != "" || !strings.Contains(errs, "key file") {
				t.Errorf("%v: exit %d stdout %q stderr %q", cmd, code, out, errs)
			}
		}
	}
}

func TestKeyHelp(t *testing.T) {
	for _, cmd := range []string{"generate", "public", "thumbprint", "convert"} {
		out, _, code := keyTestRun(t, "key", cmd, "--help")
		if code != 0 || !strings.Contains(out, "Usage: teep key "+cmd) {
			t.Fatalf("key %s --help: %d %q", cmd, code, out)
		}
	}
}
