package eat

import (
	"bytes"
	"testing"

	"github.com/teep-go/teep/cosekey"
)

// FuzzParse feeds arbitrary tokens to Parse. Whatever parses must re-encode,
// and the re-encoding must decode to the same bytes again (no panics, no
// claims that exist only in one direction).
func FuzzParse(f *testing.F) {
	d2 := readHex(f, d2Path)
	agent, _ := newSigner(f, "ed25519")
	_, s := newSigner(f, "esp256")
	for _, o := range []SignOptions{{}, {Tagged: true, CWTTag: true}} {
		tok, err := Sign(fullClaims(f, agent), s, o)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(tok)
	}
	lenientTok, err := cosekey.Sign1(d2, s, nil)
	if err != nil {
		f.Fatal(err)
	}
	f.Add(lenientTok)
	f.Fuzz(func(t *testing.T, in []byte) {
		for _, lenient := range []bool{false, true} {
			tok, err := Parse(in, ParseOptions{LenientUnsafe: lenient})
			if err != nil {
				continue
			}
			checkReencode(t, tok.Claims, lenient)
		}
	})
}

// FuzzDecodeClaims does the same for bare claims-sets.
func FuzzDecodeClaims(f *testing.F) {
	f.Add(readHex(f, d2Path))
	agent, _ := newSigner(f, "esp256")
	full, err := fullClaims(f, agent).MarshalCBOR()
	if err != nil {
		f.Fatal(err)
	}
	f.Add(full)
	f.Add(mustHex("a1190104" + "45312e332e34"))
	f.Fuzz(func(t *testing.T, in []byte) {
		for _, lenient := range []bool{false, true} {
			c, err := DecodeClaims(in, ParseOptions{LenientUnsafe: lenient})
			if err != nil {
				continue
			}
			checkReencode(t, c, lenient)
			_ = c.ProfileProblems()
			if _, err := c.MarshalJSON(); err != nil {
				t.Fatalf("MarshalJSON: %v", err)
			}
		}
	})
}

func checkReencode(t *testing.T, c *Claims, lenient bool) {
	t.Helper()
	b, err := c.MarshalCBOR()
	if err != nil {
		t.Fatalf("decoded claims do not re-encode: %v", err)
	}
	c2, err := DecodeClaims(b, ParseOptions{LenientUnsafe: lenient})
	if err != nil {
		t.Fatalf("re-encoding does not decode: %v", err)
	}
	b2, err := c2.MarshalCBOR()
	if err != nil || !bytes.Equal(b, b2) {
		t.Fatalf("encoding is not stable: %v", err)
	}
}
