package eat

import (
	"testing"

	"github.com/fxamacker/cbor/v2"
	"github.com/teep-go/teep/cosekey"
)

// The baselines are fxamacker/cbor decoding the same claims-set into a
// generic map (no type checks), and cosekey verifying the same COSE_Sign1
// without claims decoding; compare ns/op with the benchmark next to each.

func benchToken(b *testing.B) ([]byte, []byte, *cosekey.Key) {
	agent, _ := newSigner(b, "ed25519")
	key, s := newSigner(b, "esp256")
	c := fullClaims(b, agent)
	payload, err := c.MarshalCBOR()
	if err != nil {
		b.Fatal(err)
	}
	tok, err := Sign(c, s, SignOptions{})
	if err != nil {
		b.Fatal(err)
	}
	return payload, tok, key.PublicKey()
}

func BenchmarkDecodeClaims(b *testing.B) {
	payload, _, _ := benchToken(b)
	b.SetBytes(int64(len(payload)))
	for b.Loop() {
		if _, err := DecodeClaims(payload, ParseOptions{}); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkBaselineGenericCBORDecode(b *testing.B) {
	payload, _, _ := benchToken(b)
	b.SetBytes(int64(len(payload)))
	for b.Loop() {
		var m map[any]any
		if err := cbor.Unmarshal(payload, &m); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkParseVerify(b *testing.B) {
	_, tok, key := benchToken(b)
	keys := []*cosekey.Key{key}
	for b.Loop() {
		t, err := Parse(tok, ParseOptions{})
		if err != nil {
			b.Fatal(err)
		}
		if _, err := t.Verify(keys); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkBaselineCOSEVerify(b *testing.B) {
	_, tok, key := benchToken(b)
	opts := cosekey.VerifyOptions{Keys: []*cosekey.Key{key}}
	for b.Loop() {
		if _, _, err := cosekey.Verify(tok, opts); err != nil {
			b.Fatal(err)
		}
	}
}
