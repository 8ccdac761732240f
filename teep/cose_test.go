package teep

import (
	"crypto/ed25519"
	"encoding/hex"
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/teep-go/teep/cosekey"
)

func mustHex(t testing.TB, s string) []byte {
	t.Helper()
	b, err := hex.DecodeString(s)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// test keys of testdata/teep/synthesized/keys.txt
const (
	tamEdSeed   = "4ccd089b28ff96da9db6c346ec114e0f5b8a319f35aba624da8cf6ed4fb8a6fb"
	agentEdSeed = "9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60"
	tamP256KID  = "ca9e35f23b2b525fb4fc83f512b0dcac4ac29e457e873a5d6a7313f71690b33c"
	tamEdKID    = "5c840f7a40230170abdee5151a594efdf270f7a89825f5c310badf6b589c5c59"
	agentKID    = "866eefbd6718c8846cd7ddfe43fc74ab1daac4538ff8514ea2ec2d410a415743"
)

func edKey(t testing.TB, seed string) *cosekey.Key {
	t.Helper()
	k, err := cosekey.FromSigner(ed25519.NewKeyFromSeed(mustHex(t, seed)), 0)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func tamP256(t testing.TB) *cosekey.Key {
	t.Helper()
	pem, err := os.ReadFile(filepath.Join("..", "testdata", "teep", "keys", "suit-signer-p256-private.pem"))
	if err != nil {
		t.Fatal(err)
	}
	k, err := cosekey.Parse(pem)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func TestOpenSynthesized(t *testing.T) {
	tamP := tamP256(t).PublicKey()
	tamEd := edKey(t, tamEdSeed).PublicKey()
	agent := edKey(t, agentEdSeed).PublicKey()
	cases := []struct {
		file      string
		keys      []*cosekey.Key
		structure cosekey.Structure
		typ       Type
		alg       int64
		kid       string
		payload   string
	}{
		{"query_request.cose_sign.hex", []*cosekey.Key{tamEd}, cosekey.StructureSign, TypeQueryRequest, -19, tamEdKID, "query_request"},
		{"query_request.cose_sign.hex", []*cosekey.Key{tamP}, cosekey.StructureSign, TypeQueryRequest, -9, tamP256KID, "query_request"},
		{"query_request.cose_sign1_esp256.hex", []*cosekey.Key{tamP}, cosekey.StructureSign1, TypeQueryRequest, -9, tamP256KID, "query_request"},
		{"update.cose_sign1_esp256.hex", []*cosekey.Key{tamEd, tamP}, cosekey.StructureSign1, TypeUpdate, -9, tamP256KID, "update"},
		{"query_response.cose_sign1_ed25519.hex", []*cosekey.Key{agent}, cosekey.StructureSign1, TypeQueryResponse, -19, agentKID, "query_response"},
		{"success.cose_sign1_ed25519.hex", []*cosekey.Key{agent}, cosekey.StructureSign1, TypeSuccess, -19, agentKID, "success"},
		{"error.cose_sign1_ed25519.hex", []*cosekey.Key{tamEd, agent}, cosekey.StructureSign1, TypeError, -19, agentKID, "error"},
	}
	for _, c := range cases {
		t.Run(c.file, func(t *testing.T) {
			data := readHex(t, "teep/synthesized/"+c.file)
			op, err := Open(data, OpenOptions{Keys: c.keys})
			if err != nil {
				t.Fatalf("Open: %v", err)
			}
			if !op.Verified || op.Structure != c.structure || int64(op.Alg) != c.alg || hex.EncodeToString(op.KID) != c.kid {
				t.Fatalf("got verified=%v structure=%v alg=%d kid=%x", op.Verified, op.Structure, op.Alg, op.KID)
			}
			if op.Message.Type() != c.typ {
				t.Fatalf("type %v, want %v", op.Message.Type(), c.typ)
			}
			if want := readHex(t, "teep/draft-26/"+c.payload+".hex"); string(op.Payload) != string(want) {
				t.Fatalf("payload differs from the Appendix D vector")
			}
			if hex.EncodeToString(op.Key.KID()) != c.kid {
				t.Fatalf("verifying key kid %x", op.Key.KID())
			}
		})
	}
}

func TestSignOpenRoundTrip(t *testing.T) {
	tam := tamP256(t)
	tamEd := edKey(t, tamEdSeed)
	s1, err := cosekey.NewSigner(tam, 0)
	if err != nil {
		t.Fatal(err)
	}
	s2, err := cosekey.NewSigner(tamEd, 0)
	if err != nil {
		t.Fatal(err)
	}
	m := &Success{Token: []byte("0123456789"), Msg: "ok"}
	for _, num := range []Numbering{Draft26, Legacy} {
		signed, err := Sign(m, s1, SignOptions{Encode: EncodeOptions{Numbering: num}})
		if err != nil {
			t.Fatal(err)
		}
		op, err := Open(signed, OpenOptions{Numbering: num, Keys: []*cosekey.Key{tam.PublicKey()}})
		if err != nil {
			t.Fatal(err)
		}
		if got := op.Message.(*Success); got.Msg != "ok" || string(got.Token) != "0123456789" {
			t.Fatalf("got %+v", got)
		}
		multi, err := SignMulti(m, []*cosekey.Signer{s1, s2}, SignOptions{Encode: EncodeOptions{Numbering: num}})
		if err != nil {
			t.Fatal(err)
		}
		op, err = Open(multi, OpenOptions{Numbering: num, Keys: []*cosekey.Key{tamEd.PublicKey()}})
		if err != nil {
			t.Fatal(err)
		}
		if op.Structure != cosekey.StructureSign || op.Alg != cosekey.AlgEd25519 {
			t.Fatalf("got %v %v", op.Structure, op.Alg)
		}
		// The other numbering must not accept it.
		other := Legacy
		if num == Legacy {
			other = Draft26
		}
		if _, err := Open(signed, OpenOptions{Numbering: other, Keys: []*cosekey.Key{tam.PublicKey()}}); err == nil {
			t.Fatalf("%v message opened as %v", num, other)
		} else if CodeOf(err) != ErrPermanentError {
			t.Fatalf("code %v", CodeOf(err))
		}
	}
	// wrong key
	signed, _ := Sign(m, s1, SignOptions{})
	_, err = Open(signed, OpenOptions{Keys: []*cosekey.Key{edKey(t, agentEdSeed).PublicKey()}})
	if err == nil || !errors.Is(err, cosekey.ErrNoTrustedKey) {
		t.Fatalf("wrong key: %v", err)
	}
}
