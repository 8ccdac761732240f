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

// FuzzClaimsJSON checks the JSON reader used by `teep eat create`: no
// panics, and whatever it accepts and encodes decodes back to the same JSON.
func FuzzClaimsJSON(f *testing.F) {
	agent, _ := newSigner(f, "esp256")
	j, err := fullClaims(f, agent).MarshalJSON()
	if err != nil {
		f.Fatal(err)
	}
	f.Add(j)
	f.Add([]byte(`{"eat_nonce":["0102030405060708"],"cnf":{"kid":"01","7":{"cbor":"f5"}},"submods":{"a":{"token":"00"},"b":{"digest":["sha-256","01"]}}}`))
	f.Fuzz(func(t *testing.T, in []byte) {
		var c Claims
		if err := c.UnmarshalJSON(in); err != nil {
			return
		}
		b, err := c.MarshalCBOR()
		if err != nil {
			return // valid JSON shapes can still break CBOR rules (sizes)
		}
		d, err := DecodeClaims(b, ParseOptions{})
		if err != nil {
			t.Fatalf("encoded claims do not decode: %v", err)
		}
		j1, err1 := c.MarshalJSON()
		j2, err2 := d.MarshalJSON()
		if err1 != nil || err2 != nil || !bytes.Equal(j1, j2) {
			t.Fatalf("JSON changed through CBOR:\n%s\n%s", j1, j2)
		}
	})
}
