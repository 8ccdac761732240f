package main

import (
	"bytes"
	"crypto/ed25519"
	"encoding/hex"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/teep-go/teep/cosekey"
	"github.com/teep-go/teep/teep"
)

const msgVectors = "../../testdata/teep"

type msgOut struct {
	Type       string         `json:"type"`
	Numbering  string         `json:"numbering"`
	Signed     bool           `json:"signed"`
	Structure  string         `json:"structure"`
	Tagged     *bool          `json:"tagged"`
	Alg        string         `json:"alg"`
	AlgID      *int64         `json:"alg_id"`
	KID        string         `json:"kid"`
	Verified   *bool          `json:"verified"`
	Signatures []any          `json:"signatures"`
	Message    map[string]any `json:"message"`
}

func msgDecodeJSON(t *testing.T, stdin []byte, args ...string) msgOut {
	t.Helper()
	out, errs, code := teepRun(t, stdin, append([]string{"msg", "decode"}, args...)...)
	if code != 0 {
		t.Fatalf("msg decode %v: exit %d: %s", args, code, errs)
	}
	var o msgOut
	if err := json.Unmarshal([]byte(out), &o); err != nil {
		t.Fatalf("not JSON: %v\n%s", err, out)
	}
	return o
}

func msgJSONPath(t *testing.T, v any, path ...any) any {
	t.Helper()
	for _, p := range path {
		switch k := p.(type) {
		case string:
			m, ok := v.(map[string]any)
			if !ok {
				t.Fatalf("at %q: not an object: %v", k, v)
			}
			if v, ok = m[k]; !ok {
				t.Fatalf("missing %q in %v", k, m)
			}
		case int:
			a, ok := v.([]any)
			if !ok || k >= len(a) {
				t.Fatalf("at [%d]: %v", k, v)
			}
			v = a[k]
		}
	}
	return v
}

func TestMsgDecodeVectors(t *testing.T) {
	const tok = "a0a1a2a3a4a5a6a7a8a9aaabacadaeaf"
	for _, c := range []struct {
		dir     string
		args    []string
		errCode float64 // ERR_MANIFEST_PROCESSING_FAILED as on the wire
	}{{"draft-26", nil, 11}, {"pre-26-legacy", []string{"--legacy-numbering"}, 17}} {
		qr := msgDecodeJSON(t, nil, append(c.args, filepath.Join(msgVectors, c.dir, "query_request.hex"))...)
		if qr.Type != "query-request" || qr.Signed || qr.Verified != nil || qr.Message["token"] != tok ||
			msgJSONPath(t, qr.Message, "data-item-requested") != 3.0 ||
			msgJSONPath(t, qr.Message, "supported-teep-cipher-suites", 1, 0, 1) != -19.0 ||
			msgJSONPath(t, qr.Message, "supported-suit-cose-profiles", 0, 3) != -65534.0 ||
			msgJSONPath(t, qr.Message, "versions", 0) != 0.0 {
			t.Fatalf("%s query_request: %+v", c.dir, qr)
		}
		resp := msgDecodeJSON(t, nil, append(c.args, filepath.Join(msgVectors, c.dir, "query_response.hex"))...)
		if resp.Type != "query-response" || msgJSONPath(t, resp.Message, "selected-version") != 0.0 ||
			msgJSONPath(t, resp.Message, "attestation-payload", "size") != 0.0 ||
			msgJSONPath(t, resp.Message, "tc-list", 0, "system-component-id", 0) != "0102030405060708090a0b0c0d0e0f" ||
			msgJSONPath(t, resp.Message, "tc-list", 0, "image-digest", "hex") != "a7fd6593eac32eb4be578278e6540c5c09cfd7d4d234973054833b2b93030609" ||
			msgJSONPath(t, resp.Message, "tc-list", 0, "image-digest", "alg_id") != -16.0 {
			t.Fatalf("%s query_response: %+v", c.dir, resp)
		}
		up := msgDecodeJSON(t, nil, append(c.args, filepath.Join(msgVectors, c.dir, "update.hex"))...)
		if up.Type != "update" || msgJSONPath(t, up.Message, "manifest-list", 0, "size") != 334.0 ||
			msgJSONPath(t, up.Message, "manifest-list", 0, "sha256") != "c3a7a193aefd297300d498b71e66ae84afa1d2a8d2802a929445073164c8fd6b" ||
			msgJSONPath(t, up.Message, "manifest-list", 0, "summary", "sequence_number") != 3.0 {
			t.Fatalf("%s update: %+v", c.dir, up)
		}
		su := msgDecodeJSON(t, nil, append(c.args, filepath.Join(msgVectors, c.dir, "success.hex"))...)
		if su.Type != "success" || su.Message["token"] != tok || len(su.Message) != 1 {
			t.Fatalf("%s success: %+v", c.dir, su)
		}
		er := msgDecodeJSON(t, nil, append(c.args, filepath.Join(msgVectors, c.dir, "error.hex"))...)
		if er.Type != "error" || er.Message["err-msg"] != "disk-full" || er.Message["err-code"] != c.errCode ||
			er.Message["err_name"] != "ERR_MANIFEST_PROCESSING_FAILED" {
			t.Fatalf("%s error: %+v", c.dir, er)
		}
	}
}

func TestMsgDecodeSigned(t *testing.T) {
	tamPub := filepath.Join(msgVectors, "keys", "suit-signer-p256-public.pem")
	o := msgDecodeJSON(t, nil, "--key", tamPub, filepath.Join(msgVectors, "synthesized", "update.cose_sign1_esp256.hex"))
	if !o.Signed || o.Structure != "COSE_Sign1" || o.Alg != "ESP256" || o.AlgID == nil || *o.AlgID != -9 ||
		o.KID != "ca9e35f23b2b525fb4fc83f512b0dcac4ac29e457e873a5d6a7313f71690b33c" || o.Verified == nil || !*o.Verified || o.Type != "update" {
		t.Fatalf("%+v", o)
	}
	// COSE_Sign: verified by the P-256 signature, both listed.
	o = msgDecodeJSON(t, nil, "--key", tamPub, filepath.Join(msgVectors, "synthesized", "query_request.cose_sign.hex"))
	if o.Structure != "COSE_Sign" || o.Alg != "ESP256" || len(o.Signatures) != 2 || !*o.Verified {
		t.Fatalf("%+v", o)
	}
	// Without --key: decoded, not verified, no "verified" member.
	o = msgDecodeJSON(t, nil, filepath.Join(msgVectors, "synthesized", "success.cose_sign1_ed25519.hex"))
	if !o.Signed || o.Verified != nil || o.Alg != "Ed25519" || o.KID != "866eefbd6718c8846cd7ddfe43fc74ab1daac4538ff8514ea2ec2d410a415743" {
		t.Fatalf("%+v", o)
	}
	// Raw bytes on stdin.
	raw, err := hex.DecodeString(strings.TrimSpace(msgReadFile(t, filepath.Join(msgVectors, "synthesized", "error.cose_sign1_ed25519.hex"))))
	if err != nil {
		t.Fatal(err)
	}
	o = msgDecodeJSON(t, raw, "-")
	if o.Type != "error" || !o.Signed {
		t.Fatalf("%+v", o)
	}
	// Wrong key: exit 1, clear message, nothing on stdout.
	out, errs, code := teepRun(t, nil, "msg", "decode", "--key", tamPub, filepath.Join(msgVectors, "synthesized", "success.cose_sign1_ed25519.hex"))
	if code != 1 || out != "" || !strings.Contains(errs, "signature does not verify") {
		t.Fatalf("wrong key: %d %q %q", code, out, errs)
	}
	// Tampered signature.
	bad := bytes.Clone(raw)
	bad[len(bad)-1] ^= 1
	keyDir := t.TempDir()
	agentKey := filepath.Join(keyDir, "agent.pem")
	msgWriteEd25519(t, agentKey, "9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60")
	if o := msgDecodeJSON(t, raw, "--key", agentKey); !*o.Verified {
		t.Fatal("agent key does not verify the vector")
	}
	_, errs, code = teepRun(t, bad, "msg", "decode", "--key", agentKey)
	if code != 1 || !strings.Contains(errs, "signature does not verify") {
		t.Fatalf("tampered: %d %q", code, errs)
	}
	// A bare message cannot be verified.
	_, errs, code = teepRun(t, nil, "msg", "decode", "--key", tamPub, filepath.Join(msgVectors, "draft-26", "success.hex"))
	if code != 1 || !strings.Contains(errs, "not signed") {
		t.Fatalf("bare with key: %d %q", code, errs)
	}
}

func msgReadFile(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func msgWriteEd25519(t *testing.T, path, seedHex string) {
	t.Helper()
	seed, _ := hex.DecodeString(seedHex)
	k, err := cosekey.FromSigner(ed25519.NewKeyFromSeed(seed), 0)
	if err != nil {
		t.Fatal(err)
	}
	pem, err := k.Marshal(cosekey.FormatPEM, true)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, pem, 0o600); err != nil {
		t.Fatal(err)
	}
}

func TestMsgDecodeRejects(t *testing.T) {
	dir := t.TempDir()
	d26 := msgReadFile(t, filepath.Join(msgVectors, "draft-26", "success.hex"))
	cases := []struct {
		name  string
		stdin string
		args  []string
		code  int
		want  string
	}{
		{"legacy vector in draft-26", "", []string{filepath.Join(msgVectors, "pre-26-legacy", "success.hex")}, 1, "Success in legacy numbering"},
		{"draft-26 vector as legacy", "", []string{"--legacy-numbering", filepath.Join(msgVectors, "draft-26", "error.hex")}, 1, "draft-26 numbering"},
		{"trailing bytes", strings.TrimSpace(d26) + "00", nil, 1, "trailing bytes"},
		{"truncated", strings.TrimSpace(d26)[:20], nil, 1, "teep: "},
		{"not hex", "82zz", []string{"--hex"}, 1, "not hex text"},
		{"odd hex", "820", nil, 1, "not hex text"},
		{"raw with --hex", "\x82\x04\xa0", []string{"--hex"}, 1, "not hex text"},
		{"empty", "", nil, 1, "input is empty"},
		{"garbage", "\xff\xff", nil, 1, "teep: "},
		{"missing file", "", []string{filepath.Join(dir, "nope")}, 1, "no such file"},
		{"two files", "", []string{"a", "b"}, 2, "at most one input file"},
		{"unknown flag", "", []string{"--bogus"}, 2, "flag provided but not defined"},
		{"bad key file", "", []string{"--key", filepath.Join(dir, "nokey"), "-"}, 1, "key file"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			out, errs, code := teepRun(t, []byte(c.stdin), append([]string{"msg", "decode"}, c.args...)...)
			if code != c.code || !strings.Contains(errs, c.want) {
				t.Fatalf("exit %d (want %d), stderr %q lacks %q", code, c.code, errs, c.want)
			}
			// (usage errors print the usage through the shared newFlags)
			if out != "" && c.code != 2 {
				t.Fatalf("stdout on failure: %q", out)
			}
		})
	}
}

func TestMsgSign(t *testing.T) {
	dir := t.TempDir()
	p256 := filepath.Join(dir, "tam.cose")
	ed := filepath.Join(dir, "agent.jwk")
	if _, errs, code := teepRun(t, nil, "key", "generate", "--alg", "esp256", "--out", p256); code != 0 {
		t.Fatal(errs)
	}
	if _, errs, code := teepRun(t, nil, "key", "generate", "--alg", "ed25519", "--format", "jwk", "--out", ed); code != 0 {
		t.Fatal(errs)
	}
	kid := func(path string) string {
		out, errs, code := teepRun(t, nil, "key", "thumbprint", path)
		if code != 0 {
			t.Fatal(errs)
		}
		return strings.TrimSpace(out)
	}
	success := filepath.Join(msgVectors, "draft-26", "success.hex")

	// raw output to stdout, decoded and verified by msg decode
	out, errs, code := teepRun(t, nil, "msg", "sign", "--key", p256, success)
	if code != 0 {
		t.Fatal(errs)
	}
	if out[0] != 0xd2 {
		t.Fatalf("not a tagged COSE_Sign1: %x", out[:1])
	}
	o := msgDecodeJSON(t, []byte(out), "--key", p256)
	if !*o.Verified || o.Alg != "ESP256" || o.KID != kid(p256) || o.Type != "success" || o.Structure != "COSE_Sign1" {
		t.Fatalf("%+v", o)
	}
	// the payload is signed byte for byte
	op, err := teep.Open([]byte(out), teep.OpenOptions{SkipVerifyUnsafe: true})
	if err != nil {
		t.Fatal(err)
	}
	want, _ := hex.DecodeString(strings.TrimSpace(msgReadFile(t, success)))
	if !bytes.Equal(op.Payload, want) {
		t.Fatal("payload changed")
	}

	// --hex --out, Ed25519 JWK, legacy numbering
	outFile := filepath.Join(dir, "signed.hex")
	if _, errs, code := teepRun(t, nil, "msg", "sign", "--key", ed, "--legacy-numbering", "--hex", "--out", outFile,
		filepath.Join(msgVectors, "pre-26-legacy", "error.hex")); code != 0 {
		t.Fatal(errs)
	}
	o = msgDecodeJSON(t, nil, "--legacy-numbering", "--key", ed, outFile)
	if o.Type != "error" || o.Alg != "Ed25519" || o.Numbering != "legacy" || !*o.Verified {
		t.Fatalf("%+v", o)
	}

	// --untagged --hex to stdout: an untagged COSE_Sign1 as hex text, which
	// msg decode --hex reads back, verifies and reports as untagged.
	out, errs, code = teepRun(t, nil, "msg", "sign", "--key", p256, "--untagged", "--hex", success)
	if code != 0 {
		t.Fatal(errs)
	}
	if raw, err := hex.DecodeString(strings.TrimSpace(out)); err != nil || raw[0] != 0x84 {
		t.Fatalf("not hex of an untagged COSE_Sign1 (%v): %q", err, out)
	}
	o = msgDecodeJSON(t, []byte(out), "--hex", "--key", p256)
	if o.Tagged == nil || *o.Tagged || o.Structure != "COSE_Sign1" || o.Verified == nil || !*o.Verified || o.Type != "success" {
		t.Fatalf("untagged: %+v", o)
	}

	// legacy alias algorithm
	out, errs, code = teepRun(t, nil, "msg", "sign", "--key", p256, "--alg", "es256", success)
	if code != 0 {
		t.Fatal(errs)
	}
	if o := msgDecodeJSON(t, []byte(out), "--key", p256); o.Alg != "ES256" || *o.AlgID != -7 {
		t.Fatalf("%+v", o)
	}

	// two keys: COSE_Sign, verifiable with either
	out, errs, code = teepRun(t, nil, "msg", "sign", "--key", p256, "--key", ed, filepath.Join(msgVectors, "draft-26", "query_request.hex"))
	if code != 0 {
		t.Fatal(errs)
	}
	for _, k := range []string{p256, ed} {
		if o := msgDecodeJSON(t, []byte(out), "--key", k); o.Structure != "COSE_Sign" || !*o.Verified || o.KID != kid(k) {
			t.Fatalf("%+v", o)
		}
	}

	pubFile := filepath.Join(dir, "tam.pub.pem")
	pub, errs, code := teepRun(t, nil, "key", "public", p256)
	if code != 0 {
		t.Fatal(errs)
	}
	if err := os.WriteFile(pubFile, []byte(pub), 0o644); err != nil {
		t.Fatal(err)
	}
	signed, errs, code := teepRun(t, nil, "msg", "sign", "--key", p256, success)
	if code != 0 {
		t.Fatal(errs)
	}
	cases := []struct {
		name  string
		stdin string
		args  []string
		code  int
		want  string
	}{
		{"no key", "", []string{success}, 2, "want --key FILE"},
		{"unknown alg", "", []string{"--key", p256, "--alg", "rsa", success}, 2, "unknown algorithm"},
		{"alg does not fit key", "", []string{"--key", p256, "--alg", "ed25519", success}, 1, "does not fit"},
		{"alg with two keys", "", []string{"--key", p256, "--key", ed, "--alg", "esp256", success}, 2, "--alg applies to a single --key"},
		{"public key", "", []string{"--key", pubFile, success}, 1, "public key"},
		{"wrong numbering", "", []string{"--key", p256, "--legacy-numbering", success}, 1, "unknown message type 4 in legacy numbering"},
		{"invalid message", "8305a000", []string{"--key", p256}, 1, "err-code 0 is reserved"},
		{"already signed", signed, []string{"--key", p256}, 1, "already a COSE structure"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			out, errs, code := teepRun(t, []byte(c.stdin), append([]string{"msg", "sign"}, c.args...)...)
			if code != c.code || !strings.Contains(errs, c.want) || out != "" {
				t.Fatalf("exit %d (want %d), stdout %q, stderr %q lacks %q", code, c.code, out, errs, c.want)
			}
		})
	}
}

func TestMsgHelp(t *testing.T) {
	for _, cmd := range []string{"decode", "sign"} {
		out, _, code := teepRun(t, nil, "msg", cmd, "--help")
		if code != 0 || !strings.Contains(out, "Usage: teep msg "+cmd) || !strings.Contains(out, "-legacy-numbering") {
			t.Fatalf("msg %s --help: %d %q", cmd, code, out)
		}
	}
	out, _, code := teepRun(t, nil, "msg", "--help")
	if code != 0 || !strings.Contains(out, "msg decode") || !strings.Contains(out, "msg sign") {
		t.Fatalf("msg --help: %d %q", code, out)
	}
}

// An Error answering an unsupported offer lists the sender's capabilities;
// msg decode prints them as arrays of integers.
func TestMsgDecodeErrorCapabilities(t *testing.T) {
	raw, err := teep.Encode(&teep.Error{
		ErrCode:                   teep.ErrUnsupportedSUITReport,
		SupportedSUITCOSEProfiles: []teep.SUITCOSEProfile{teep.SUITProfileSHA256Ed25519ECDHChaChaPoly},
		SupportedCipherSuites:     []teep.CipherSuite{teep.CipherSuiteEd25519},
	}, teep.EncodeOptions{})
	if err != nil {
		t.Fatal(err)
	}
	o := msgDecodeJSON(t, raw)
	if o.Type != "error" || msgJSONPath(t, o.Message, "supported-suit-cose-profiles", 0, 1) != -19.0 ||
		msgJSONPath(t, o.Message, "supported-suit-cose-profiles", 0, 3) != 24.0 ||
		msgJSONPath(t, o.Message, "supported-teep-cipher-suites", 0, 0, 1) != -19.0 ||
		o.Message["err_name"] != "ERR_UNSUPPORTED_SUIT_REPORT" {
		t.Fatalf("%+v", o)
	}
	if _, ok := o.Message["supported-freshness-mechanisms"]; ok {
		t.Fatalf("absent option printed: %+v", o.Message)
	}
}

// msg encode is the inverse of msg decode --json, for every vector of both
// numberings, bare and signed.
func TestMsgEncodeInvertsDecode(t *testing.T) {
	dir := t.TempDir()
	priv, pub, _ := eatKey(t, dir, "tam", "esp256")
	for _, v := range []struct{ dir, legacy string }{{"draft-26", ""}, {"pre-26-legacy", "--legacy-numbering"}} {
		for _, name := range []string{"query_request", "query_response", "update", "success", "error"} {
			t.Run(v.dir+"/"+name, func(t *testing.T) {
				in := filepath.Join("..", "..", "testdata", "teep", v.dir, name+".hex")
				decode := func(extra ...string) []string {
					args := []string{"msg", "decode"}
					if v.legacy != "" {
						args = append(args, v.legacy)
					}
					return append(args, extra...)
				}
				view, errs, code := teepRun(t, nil, decode("--hex", in)...)
				if code != 0 {
					t.Fatalf("decode: %s", errs)
				}
				bare, errs, code := teepRun(t, []byte(view), "msg", "encode", "-")
				if code != 0 {
					t.Fatalf("encode: %s", errs)
				}
				// Decoding the encoding gives the same view (sizes aside:
				// the vectors are not all in deterministic order).
				again, _, code := teepRun(t, []byte(bare), decode("-")...)
				if code != 0 || stripSize(again) != stripSize(view) {
					t.Fatalf("round trip changed the message:\n%s\n---\n%s", view, again)
				}
				signedFile := filepath.Join(dir, name+".cose")
				if _, errs, code := teepRun(t, []byte(view), "msg", "encode", "--key", priv, "--out", signedFile, "-"); code != 0 {
					t.Fatalf("encode --key: %s", errs)
				}
				if _, errs, code := teepRun(t, nil, decode("--key", pub, signedFile)...); code != 0 {
					t.Fatalf("the signed encoding does not verify: %s", errs)
				}
			})
		}
	}
	if _, _, code := teepRun(t, []byte(`{"type":"nope","message":{}}`), "msg", "encode", "-"); code != 1 {
		t.Fatalf("bad view: exit %d, want 1", code)
	}
}

// stripSize drops the "size" lines: a re-encoding may be shorter than a
// vector that is not in deterministic order.
func stripSize(view string) string {
	var out []string
	for _, l := range strings.Split(view, "\n") {
		if !strings.HasPrefix(strings.TrimSpace(l), `"size":`) {
			out = append(out, l)
		}
	}
	return strings.Join(out, "\n")
}
