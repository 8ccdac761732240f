package main

import (
	"bytes"
	"context"
	"encoding/hex"
	"encoding/json"
	"flag"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"testing/cryptotest"
	"time"

	"github.com/teep-go/teep/cosekey"
	"github.com/teep-go/teep/internal/keyfile"
	"github.com/teep-go/teep/internal/keyrule"
	adminapi "github.com/teep-go/teep/internal/tam/admin"
	"github.com/teep-go/teep/internal/tam/tamserver"
	"github.com/teep-go/teep/internal/tam/tamtest"
)

// Golden files pin every --json output of the command, byte for byte, so
// that a renamed key or a changed shape is a reviewed diff. Regenerate with
//
//	go test ./cmd/teep -run Golden -update
var goldenUpdate = flag.Bool("update", false, "rewrite testdata/golden/*.json from the current output")

const goldenDir = "testdata/golden"

// goldenCheck compares out with testdata/golden/name.json (or writes it with
// -update) and checks its keys against the naming rule.
func goldenCheck(t *testing.T, name, out string) {
	t.Helper()
	path := filepath.Join(goldenDir, name+".json")
	if !json.Valid([]byte(out)) {
		t.Fatalf("%s: output is not JSON:\n%s", name, out)
	}
	if bad := keyrule.Violations([]byte(out)); len(bad) > 0 {
		t.Errorf("%s: keys break the naming rule: %v", name, bad)
	}
	if *goldenUpdate {
		if err := os.MkdirAll(goldenDir, 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, []byte(out), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%s: %v (run go test ./cmd/teep -run Golden -update)", name, err)
	}
	if !bytes.Equal(want, []byte(out)) {
		t.Errorf("%s: output differs from %s (run with -update and review the diff)\n--- got\n%s", name, path, out)
	}
}

// goldenRun runs a command that must succeed (or exit with code) and checks
// its stdout against the golden file.
func goldenRun(t *testing.T, name string, code int, stdin []byte, args ...string) string {
	t.Helper()
	out, errs, got := teepRun(t, stdin, args...)
	if got != code {
		t.Fatalf("%s: %v: exit %d, want %d: %s", name, args, got, code, errs)
	}
	goldenCheck(t, name, out)
	return out
}

// goldenEd25519 writes a private Ed25519 key from a fixed seed (Ed25519
// signatures are deterministic) and its public half.
func goldenEd25519(t *testing.T, dir, name string, seed byte) (priv, pub string, k *cosekey.Key) {
	t.Helper()
	priv, pub = filepath.Join(dir, name+".key"), filepath.Join(dir, name+".pub")
	msgWriteEd25519(t, priv, strings.Repeat(hex.EncodeToString([]byte{seed}), 32))
	k, err := keyfile.Load(priv)
	if err != nil {
		t.Fatal(err)
	}
	if err := keyfile.Save(pub, k.PublicKey(), cosekey.FormatPEM, false); err != nil {
		t.Fatal(err)
	}
	return priv, pub, k
}

func TestGoldenMsg(t *testing.T) {
	for _, dir := range []string{"draft-26", "pre-26-legacy"} {
		var args []string
		if dir == "pre-26-legacy" {
			args = []string{"--legacy-numbering"}
		}
		for _, m := range []string{"query_request", "query_response", "update", "success", "error"} {
			goldenRun(t, "msg-decode-"+dir+"-"+m, 0, nil, append(append([]string{"msg", "decode"}, args...), filepath.Join(msgVectors, dir, m+".hex"))...)
		}
	}
	tamPub := filepath.Join(msgVectors, "keys", "suit-signer-p256-public.pem")
	goldenRun(t, "msg-decode-signed-verified", 0, nil, "msg", "decode", "--key", tamPub, filepath.Join(msgVectors, "synthesized", "update.cose_sign1_esp256.hex"))
	goldenRun(t, "msg-decode-cose-sign", 0, nil, "msg", "decode", "--key", tamPub, filepath.Join(msgVectors, "synthesized", "query_request.cose_sign.hex"))
	goldenRun(t, "msg-decode-signed-unverified", 0, nil, "msg", "decode", filepath.Join(msgVectors, "synthesized", "query_response.cose_sign1_ed25519.hex"))
}

func TestGoldenSuit(t *testing.T) {
	for _, f := range []string{"manifest-spec/example0.signed.cbor", "manifest-spec/example2.severed-signed.cbor", "manifest-spec/example3.signed.cbor",
		"teep-protocol/suit_personalization.hex", "teep-protocol/suit_integrated.hex", "firmware-encryption/suit-manifest-es-ecdh-content.hex"} {
		name := strings.NewReplacer("/", "-", ".", "-").Replace(strings.TrimSuffix(strings.TrimSuffix(f, ".cbor"), ".hex"))
		goldenRun(t, "suit-inspect-"+name, 0, nil, "suit", "inspect", "--json", filepath.Join(suitVectors, f))
	}

	// The personalization example of draft-ietf-teep-protocol installs a TA
	// (a dependency, fetched) and its encrypted configuration.
	dir := t.TempDir()
	raw, err := os.ReadFile(filepath.Join(suitVectors, "teep-protocol", "suit_uri.hex"))
	if err != nil {
		t.Fatal(err)
	}
	b, _ := hex.DecodeString(strings.TrimSpace(string(raw)))
	rawURI := filepath.Join(dir, "ta.suit")
	if err := os.WriteFile(rawURI, b, 0o600); err != nil {
		t.Fatal(err)
	}
	store := filepath.Join(dir, "store")
	id := []string{"--vendor-id", suitTEEPVendor, "--class-id", suitTEEPClass}
	out := goldenRun(t, "suit-process", 0, nil, append(append([]string{"suit", "process", "--trust", suitKeyPath("example-p256-public.pem"), "--store", store,
		"--device-key", suitKeyPath("device-p256-private.pem"), "--nonce", "a0a1a2a3", "--offline",
		"--fetch-map", "https://example.org/8d82573a-926d-4754-9353-32dc29997f74.ta=" + filepath.Join(suitVectors, "teep-protocol", "8d82573a-926d-4754-9353-32dc29997f74.ta"),
		"--fetch-map", "https://example.org/8d82573a-926d-4754-9353-32dc29997f74.suit=" + rawURI}, id...),
		filepath.Join(suitVectors, "teep-protocol", "suit_personalization.hex"))...)
	goldenRun(t, "suit-list", 0, nil, "suit", "list", "--store", store)

	var p struct {
		Report struct {
			CBOR string `json:"cbor"`
		} `json:"report"`
	}
	if err := json.Unmarshal([]byte(out), &p); err != nil {
		t.Fatal(err)
	}
	report := filepath.Join(dir, "report.hex")
	if err := os.WriteFile(report, []byte(p.Report.CBOR), 0o600); err != nil {
		t.Fatal(err)
	}
	goldenRun(t, "suit-report", 0, nil, "suit", "report", report)

	// Uninstalling the configuration removes it and the TA it alone linked.
	goldenRun(t, "suit-uninstall", 0, nil, append(append([]string{"suit", "uninstall", "--store", store}, id...),
		"--manifest-id", "TEEP-Device", "--manifest-id", "SecureFS", "--manifest-id", "config.suit")...)

	// A failure: the example's digest is a dummy, so the condition fails.
	goldenRun(t, "suit-process-failure", 1, nil, "suit", "process", "--trust", suitKeyPath("example-p256-public.pem"), "--store", filepath.Join(dir, "store2"),
		"--offline", filepath.Join(suitVectors, "manifest-spec", "example0.signed.cbor"))
}

func TestGoldenEATVerifierKey(t *testing.T) {
	dir := t.TempDir()
	attPriv, attPub, _ := goldenEd25519(t, dir, "att", 1)
	_, agentPub, _ := goldenEd25519(t, dir, "agent", 2)
	ev := filepath.Join(dir, "ev.cbor")
	if _, stderr, code := teepRun(t, nil, "eat", "create", "--key", attPriv, "--nonce", "0102030405060708", "--cnf-key", agentPub, "--claims", eatClaimsJSON, "--out", ev); code != 0 {
		t.Fatal(stderr)
	}
	goldenRun(t, "eat-verify", 0, nil, "eat", "verify", "--key", attPub, "--nonce", "0102030405060708", ev)
	policy := verifierWritePolicy(t, dir, attPub)
	goldenRun(t, "verifier-appraise", 0, nil, "verifier", "appraise", "--policy", policy, "--nonce", "0102030405060708", "--agent-key", agentPub, ev)
	goldenRun(t, "verifier-appraise-contraindicated", 1, nil, "verifier", "appraise", "--policy", policy, "--nonce", "0a0b0c0d0e0f1011", ev)
	goldenRun(t, "key-public-jwk", 0, nil, "key", "public", "--format", "jwk", attPriv)
	goldenRun(t, "key-public-jwk-p256", 0, nil, "key", "public", "--format", "jwk", suitKeyPath("tam-p256-private.pem"))
}

// TestGoldenTAM pins the admin API's JSON as `teep tam ... --json` prints
// it, from a TAM with fixed keys, a fixed clock and a seeded random source
// (tokens, personalization encryption).
func TestGoldenTAM(t *testing.T) {
	cryptotest.SetGlobalRandom(t, 1)
	clock := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	tamServeOptions = func(o *tamserver.Options) { o.Clock = func() time.Time { return clock } }
	t.Cleanup(func() { tamServeOptions = nil })

	dir := t.TempDir()
	data := filepath.Join(dir, "data")
	if err := os.MkdirAll(data, 0o700); err != nil {
		t.Fatal(err)
	}
	p256, err := keyfile.Load(suitKeyPath("tam-p256-private.pem"))
	if err != nil {
		t.Fatal(err)
	}
	if err := keyfile.Save(filepath.Join(data, tamserver.FileP256Key), p256, cosekey.FormatPEM, true); err != nil {
		t.Fatal(err)
	}
	msgWriteEd25519(t, filepath.Join(data, tamserver.FileEd25519Key), strings.Repeat("0d", 32))
	tamEd, err := keyfile.Load(filepath.Join(data, tamserver.FileEd25519Key))
	if err != nil {
		t.Fatal(err)
	}
	for _, alg := range []string{"esp256", "ed25519"} {
		out, errs, code := teepRun(t, nil, "tam", "key", "--data", data, "--format", "jwk", "--alg", alg)
		if code != 0 {
			t.Fatalf("tam key: %s", errs)
		}
		goldenCheck(t, "tam-key-jwk-"+alg, out)
	}
	base, _ := tamStart(t, data)
	S := []string{"--json", "--server", base, "--data", data}
	admin := func(name string, args ...string) {
		t.Helper()
		out := tamMust(t, append(args, S...)...)
		goldenCheck(t, name, out)
	}
	plain := func(args ...string) string {
		t.Helper()
		return strings.TrimSpace(tamMust(t, append(args, S[1:]...)...))
	}

	_, signerPub, signerKey := goldenEd25519(t, dir, "signer", 3)
	signer, err := cosekey.NewSigner(signerKey, 0)
	if err != nil {
		t.Fatal(err)
	}
	plain("tam", "trust", "add-signer", signerPub)
	env := filepath.Join(dir, "app.suit")
	if err := os.WriteFile(env, tamtest.Envelope(t, signer, "app", 1, []byte("app one")), 0o644); err != nil {
		t.Fatal(err)
	}
	id := plain("tam", "tc", "add", env)
	plain("tam", "policy", "require", id, "--all")

	// A P-256 Agent key: personalization data is encrypted to it (ECDH-ES).
	agentKey, err := keyfile.Load(suitKeyPath("device-p256-private.pem"))
	if err != nil {
		t.Fatal(err)
	}
	agentPub := suitKeyPath("device-p256-public.pem")
	_, _, attKey := goldenEd25519(t, dir, "attest", 5)
	agent := tamtest.NewAgent(t, tamtest.AgentOptions{Key: agentKey, AttestationKey: attKey, TAMKeys: []*cosekey.Key{p256.PublicKey(), tamEd.PublicKey()},
		Trust: []*cosekey.Key{signerKey.PublicKey()}, Transport: tamtest.HTTPTransport(httpClientForTest(), base+"/tam")})
	akid := plain("tam", "trust", "add-agent", agentPub, "--label", "lab")
	if _, err := agent.Sync(context.Background()); err != nil {
		t.Fatal(err)
	}
	cfg := filepath.Join(dir, "cfg.json")
	if err := os.WriteFile(cfg, []byte(`{"k":"v"}`), 0o600); err != nil {
		t.Fatal(err)
	}
	plain("tam", "personalize", "set", akid, "config", cfg)

	admin("tam-tc-list", "tam", "tc", "list")
	admin("tam-tc-show", "tam", "tc", "show", id)
	admin("tam-policy-list", "tam", "policy", "list")
	admin("tam-trust-list", "tam", "trust", "list")
	admin("tam-device-list", "tam", "device", "list")
	admin("tam-device-show", "tam", "device", "show", akid)
	admin("tam-personalize-list", "tam", "personalize", "list", akid)

	// The live admin API answers, as sent, pinned and held to the rule too.
	tok, err := tamserver.ReadToken(data)
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct{ name, path string }{
		{"health", "health"}, {"tam", "tam"}, {"components", "components"}, {"component", "components/" + id},
		{"policies", "policies"}, {"devices", "devices"}, {"device", "devices/" + akid},
		{"personalization", "devices/" + akid + "/personalization"}, {"trust-signers", "trust/" + adminapi.TrustSigners},
		{"trust-verifiers", "trust/" + adminapi.TrustVerifiers},
	} {
		req, _ := http.NewRequest(http.MethodGet, base+"/admin/v1/"+c.path, nil)
		req.Header.Set("Authorization", "Bearer "+tok)
		resp, err := httpClientForTest().Do(req)
		if err != nil {
			t.Fatal(err)
		}
		body, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		if err != nil || resp.StatusCode != http.StatusOK {
			t.Fatalf("GET %s: %d %v %s", c.path, resp.StatusCode, err, body)
		}
		goldenCheck(t, "admin-"+c.name, string(body))
	}
}
