package main

import (
	"encoding/hex"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/teep-go/teep/cosekey"
	"github.com/teep-go/teep/internal/keyfile"
)

// eatKey writes a fresh private key and its public half into dir.
func eatKey(t *testing.T, dir, name, alg string) (priv, pub string, k *cosekey.Key) {
	t.Helper()
	a, _ := cosekey.ParseAlg(alg)
	k, err := cosekey.Generate(a)
	if err != nil {
		t.Fatal(err)
	}
	priv, pub = filepath.Join(dir, name+".key"), filepath.Join(dir, name+".pub")
	if err := keyfile.Save(priv, k, cosekey.FormatCOSE, true); err != nil {
		t.Fatal(err)
	}
	if err := keyfile.Save(pub, k, cosekey.FormatJWK, false); err != nil {
		t.Fatal(err)
	}
	return priv, pub, k
}

const eatClaimsJSON = `{"ueid":"01` + "4242424242424242424242424242424242424242424242424242424242424242" + `",
 "oemid":"894823","hwmodel":"736f6674746565","hwversion":["1.1",1],"swversion":["0.3.0",16384],
 "eat_profile":"urn:ietf:rfc:rfcXXXX","dbgstat":"disabled-permanently",
 "manifests":[[60,"8278` + "1e" + `68747470733a2f2f74616d2e6578616d706c652f6167656e742e73756974822f58200101010101010101010101010101010101010101010101010101010101010101"]],
 "-70000":{"cbor":"f5"}}`

func TestEATCreateVerify(t *testing.T) {
	dir := t.TempDir()
	priv, pub, _ := eatKey(t, dir, "att", "esp256")
	_, agentPub, agent := eatKey(t, dir, "agent", "ed25519")
	_, otherPub, _ := eatKey(t, dir, "other", "esp256")

	tok, stderr, code := teepRun(t, nil, "eat", "create", "--key", priv, "--nonce", "0102030405060708", "--cnf-key", agentPub, "--iat", "--claims", eatClaimsJSON)
	if code != 0 {
		t.Fatalf("create: %d %s", code, stderr)
	}
	if tok[0] != 0x84 {
		t.Errorf("create wrote %x..., want an untagged COSE_Sign1", tok[:1])
	}
	out, stderr, code := teepRun(t, []byte(tok), "eat", "verify", "--key", pub, "--nonce", "0102030405060708")
	if code != 0 || stderr != "" {
		t.Fatalf("verify: %d %s", code, stderr)
	}
	var claims map[string]any
	if err := json.Unmarshal([]byte(out), &claims); err != nil {
		t.Fatalf("verify output is not JSON: %v\n%s", err, out)
	}
	if claims["eat_nonce"] != "0102030405060708" || claims["oemid"] != "894823" || claims["dbgstat"] != 3.0 || claims["iat"] == nil {
		t.Errorf("claims %v", claims)
	}
	if cnf := claims["cnf"].(map[string]any); cnf["kid"] != hex.EncodeToString(agent.KID()) {
		t.Errorf("cnf %v", cnf)
	}
	if u := claims["-70000"].(map[string]any); u["cbor"] != "f5" {
		t.Errorf("unknown claim %v", u)
	}

	// keys are accepted as COSE_Key, PEM or JWK, private or public
	att, err := cosekey.Generate(cosekey.AlgESP256)
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range []cosekey.Format{cosekey.FormatCOSE, cosekey.FormatPEM, cosekey.FormatJWK} {
		kpriv, kpub := filepath.Join(dir, "fmt-priv."+string(f)), filepath.Join(dir, "fmt-pub."+string(f))
		if err := keyfile.Save(kpriv, att, f, true); err != nil {
			t.Fatal(err)
		}
		if err := keyfile.Save(kpub, att, f, false); err != nil {
			t.Fatal(err)
		}
		tok, stderr, code := teepRun(t, nil, "eat", "create", "--key", kpriv, "--nonce", "0102030405060708")
		if code != 0 {
			t.Fatalf("create with a %s key: %s", f, stderr)
		}
		if _, stderr, code := teepRun(t, []byte(tok), "eat", "verify", "--key", kpub, "--nonce", "0102030405060708"); code != 0 {
			t.Errorf("verify with a %s public key: %d %s", f, code, stderr)
		}
	}

	fail := []struct {
		name string
		args []string
		code int
		msg  string
	}{
		{"wrong key", []string{"eat", "verify", "--key", otherPub}, 1, "not a trusted key"},
		{"wrong nonce", []string{"eat", "verify", "--key", pub, "--nonce", "0102030405060709"}, 1, "does not match --nonce"},
		{"no key", []string{"eat", "verify"}, 2, "--key"},
		{"bad nonce hex", []string{"eat", "verify", "--key", pub, "--nonce", "xyz"}, 2, "--nonce"},
	}
	for _, f := range fail {
		out, stderr, code := teepRun(t, []byte(tok), f.args...)
		if code != f.code || out != "" || !strings.Contains(stderr, f.msg) {
			t.Errorf("%s: exit %d, stdout %q, stderr %q", f.name, code, out, stderr)
		}
	}
}

func TestEATCreateOptions(t *testing.T) {
	dir := t.TempDir()
	priv, pub, _ := eatKey(t, dir, "att", "ed25519")
	claimsFile := filepath.Join(dir, "claims.json")
	os.WriteFile(claimsFile, []byte(`{"eat_nonce":"0a0b0c0d0e0f1011","swname":"x"}`), 0o644)
	out := filepath.Join(dir, "tok.hex")
	if _, stderr, code := teepRun(t, nil, "eat", "create", "--key", priv, "--claims", "@"+claimsFile, "--hex", "--tagged", "--cwt-tag", "--out", out); code != 0 {
		t.Fatalf("create: %s", stderr)
	}
	data, _ := os.ReadFile(out)
	if !strings.HasPrefix(string(data), "d83dd284") {
		t.Errorf("token %s, want CWT tag 61 around tag 18", data)
	}
	js, stderr, code := teepRun(t, nil, "eat", "verify", "--key", pub, "--hex", out)
	if code != 0 || !strings.Contains(js, `"swname": "x"`) {
		t.Errorf("verify: %d %s %s", code, js, stderr)
	}
	// a token that is not of the TEEP profile is reported, not refused
	if !strings.Contains(stderr, "warning: required claim ueid (256) is missing") {
		t.Errorf("no profile warning: %q", stderr)
	}
	for name, args := range map[string][]string{
		"no key":          {"eat", "create"},
		"bad claims":      {"eat", "create", "--key", priv, "--claims", `{"colour":1}`},
		"two nonces":      {"eat", "create", "--key", priv, "--claims", `{"eat_nonce":"0102030405060708"}`, "--nonce", "0102030405060708"},
		"argument":        {"eat", "create", "--key", priv, "extra"},
		"bad alg":         {"eat", "create", "--key", priv, "--alg", "rsa"},
		"two input files": {"eat", "verify", "--key", pub, "a", "b"},
	} {
		if _, _, code := teepRun(t, nil, args...); code != 2 {
			t.Errorf("%s: exit %d, want 2", name, code)
		}
	}
	if _, stderr, code := teepRun(t, nil, "eat", "create", "--key", priv, "--nonce", "0102"); code != 1 || !strings.Contains(stderr, "2 bytes, want 8..64") {
		t.Errorf("short nonce: %d %s", code, stderr)
	}
	if out, _, code := teepRun(t, nil, "eat", "create", "--help"); code != 0 || !strings.Contains(out, "Usage: teep eat create") {
		t.Errorf("--help: %d %s", code, out)
	}
}

// TestEATVerifyAppendixD2 signs the draft's example claims: the strict
// decoder names the first deviation, --lenient-unsafe accepts and warns.
func TestEATVerifyAppendixD2(t *testing.T) {
	dir := t.TempDir()
	priv, pub, _ := eatKey(t, dir, "att", "esp256")
	raw, err := os.ReadFile("../../testdata/teep/derived/eat_claims_appendix_d2.hex")
	if err != nil {
		t.Fatal(err)
	}
	d2, _ := hex.DecodeString(strings.TrimSpace(string(raw)))
	k, _ := keyfile.Load(priv)
	s, _ := cosekey.NewSigner(k, 0)
	tok, err := cosekey.Sign1(d2, s, nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, stderr, code := teepRun(t, tok, "eat", "verify", "--key", pub); code != 1 || !strings.Contains(stderr, "RAND UEID with 15 random bytes") {
		t.Errorf("strict: %d %s", code, stderr)
	}
	out, stderr, code := teepRun(t, tok, "eat", "verify", "--key", pub, "--lenient-unsafe", "--nonce", "948f8860d13a463e8e")
	if code != 0 || !strings.Contains(out, `"measurements"`) || !strings.Contains(stderr, "bare map") {
		t.Errorf("lenient: %d\n%s\n%s", code, out, stderr)
	}
}
