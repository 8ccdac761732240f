package cosekey

import (
	"bytes"
	"crypto/ed25519"
	"encoding/hex"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/veraison/go-cose"
)

const vectors = "../testdata"

func readHex(t testing.TB, rel string) []byte {
	t.Helper()
	raw, err := os.ReadFile(filepath.Join(vectors, rel))
	if err != nil {
		t.Fatal(err)
	}
	b, err := hex.DecodeString(strings.TrimSpace(string(raw)))
	if err != nil {
		t.Fatalf("%s: %v", rel, err)
	}
	return b
}

func readFile(t testing.TB, rel string) []byte {
	t.Helper()
	raw, err := os.ReadFile(filepath.Join(vectors, rel))
	if err != nil {
		t.Fatal(err)
	}
	return raw
}

func mustHex(s string) []byte {
	b, err := hex.DecodeString(s)
	if err != nil {
		panic(err)
	}
	return b
}

// Keys from testdata/teep/synthesized/keys.txt.
func tamP256(t testing.TB) *Key {
	k, err := Parse(readFile(t, "teep/keys/suit-signer-p256-private.pem"))
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func edKey(t testing.TB, seedHex string) *Key {
	k, err := FromSigner(ed25519.NewKeyFromSeed(mustHex(seedHex)), 0)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

const (
	tamEdSeed   = "4ccd089b28ff96da9db6c346ec114e0f5b8a319f35aba624da8cf6ed4fb8a6fb"
	agentEdSeed = "9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60"
)

func TestThumbprintVectors(t *testing.T) {
	tests := []struct {
		name string
		key  *Key
		want string
	}{
		{"appendix E P-256", tamP256(t), "ca9e35f23b2b525fb4fc83f512b0dcac4ac29e457e873a5d6a7313f71690b33c"},
		{"RFC 8032 TEST 2", edKey(t, tamEdSeed), "5c840f7a40230170abdee5151a594efdf270f7a89825f5c310badf6b589c5c59"},
		{"RFC 8032 TEST 1", edKey(t, agentEdSeed), "866eefbd6718c8846cd7ddfe43fc74ab1daac4538ff8514ea2ec2d410a415743"},
	}
	for _, tt := range tests {
		if got := hex.EncodeToString(tt.key.Thumbprint()); got != tt.want {
			t.Errorf("%s: thumbprint %s, want %s", tt.name, got, tt.want)
		}
	}
	// The thumbprint input of the P-256 key is printed in keys/suit-signer-p256.txt.
	want := "a4010220012158208496811aae0baaabd26157189eecda26beaa8bf11b6f3fe6e2b5659c85dbc0ad2258203b1f2a4b6c098131c0a36dacd1d78bd381dcdfb09c052db33991db7338b4a896"
	if got := hex.EncodeToString(tamP256(t).thumbprintInput()); got != want {
		t.Errorf("thumbprint input %s, want %s", got, want)
	}
}

func TestParsePEMVariants(t *testing.T) {
	tests := []struct {
		file    string
		private bool
		kid     string
	}{
		{"suit/keys/example-p256-private.pem", true, "ca9e35f2"},
		{"suit/keys/example-p256-public.pem", false, "ca9e35f2"},
		{"suit/keys/device-p256-private.pem", true, "e96788b1"}, // SEC1 after an EC PARAMETERS block
		{"suit/keys/device-p256-public.pem", false, "e96788b1"},
		{"suit/keys/tam-p256-private.pem", true, "c770ec53"},
	}
	for _, tt := range tests {
		k, err := Parse(readFile(t, tt.file))
		if err != nil {
			t.Fatalf("%s: %v", tt.file, err)
		}
		if k.IsPrivate() != tt.private {
			t.Errorf("%s: private=%v", tt.file, k.IsPrivate())
		}
		if got := hex.EncodeToString(k.KID()); !strings.HasPrefix(got, tt.kid) {
			t.Errorf("%s: kid %s, want prefix %s", tt.file, got, tt.kid)
		}
	}
}

func TestFormatRoundTrip(t *testing.T) {
	for _, alg := range []cose.Algorithm{AlgESP256, AlgEd25519} {
		k, err := Generate(alg)
		if err != nil {
			t.Fatal(err)
		}
		for _, f := range []Format{FormatCOSE, FormatPEM, FormatJWK} {
			for _, private := range []bool{true, false} {
				enc, err := k.Marshal(f, private)
				if err != nil {
					t.Fatalf("%s %s private=%v: %v", AlgName(alg), f, private, err)
				}
				back, err := Parse(enc)
				if err != nil {
					t.Fatalf("%s %s private=%v: parse: %v", AlgName(alg), f, private, err)
				}
				if !back.Equal(k) || back.IsPrivate() != private {
					t.Errorf("%s %s private=%v: round trip changed the key", AlgName(alg), f, private)
				}
				if private {
					// The re-parsed private key must sign something the original verifies.
					s, err := NewSigner(back, 0)
					if err != nil {
						t.Fatal(err)
					}
					msg, err := Sign1([]byte("x"), s, nil)
					if err != nil {
						t.Fatal(err)
					}
					if _, _, err := Verify(msg, VerifyOptions{Keys: []*Key{k.PublicKey()}}); err != nil {
						t.Errorf("%s %s: %v", AlgName(alg), f, err)
					}
				}
			}
		}
		if alg == AlgESP256 {
			sec1, err := k.MarshalSEC1PEM()
			if err != nil {
				t.Fatal(err)
			}
			back, err := Parse(sec1)
			if err != nil || !back.Equal(k) {
				t.Fatalf("SEC1 round trip: %v", err)
			}
		}
	}
}

func TestParseRejects(t *testing.T) {
	p256, _ := Generate(AlgESP256)
	good, _ := p256.MarshalCOSEKey(true)
	tests := map[string][]byte{
		"empty":            nil,
		"garbage":          []byte("hello"),
		"truncated cose":   good[:len(good)-3],
		"trailing bytes":   append(bytes.Clone(good), 0x00),
		"dup key":          mustHex("a3010101010102"),
		"jwk wrong kty":    []byte(`{"kty":"RSA","crv":"P-256","x":"AA"}`),
		"jwk short x":      []byte(`{"kty":"OKP","crv":"Ed25519","x":"AAAA"}`),
		"pem unknown type": []byte("-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n"),
		"oversize":         bytes.Repeat([]byte{' '}, MaxKeyFileSize+1),
	}
	// A P-256 key whose d does not match x/y.
	other, _ := Generate(AlgESP256)
	otherEnc, _ := other.MarshalCOSEKey(true)
	bad, _ := Parse(otherEnc)
	x, y := p256.coordinates()
	d, _ := bad.privateScalar()
	mismatch, _ := detEnc.Marshal(map[int]any{1: 2, -1: 1, -2: x, -3: y, -4: d})
	tests["mismatched private key"] = mismatch
	for name, in := range tests {
		if _, err := Parse(in); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}

func TestSynthesizedVectorsVerify(t *testing.T) {
	tamEC, tamEd, agent := tamP256(t).PublicKey(), edKey(t, tamEdSeed).PublicKey(), edKey(t, agentEdSeed).PublicKey()
	all := []*Key{tamEC, tamEd, agent}
	tests := []struct {
		file      string
		payload   string
		structure Structure
		signer    *Key
	}{
		{"query_request.cose_sign1_esp256.hex", "draft-26/query_request.hex", StructureSign1, tamEC},
		{"update.cose_sign1_esp256.hex", "draft-26/update.hex", StructureSign1, tamEC},
		{"query_response.cose_sign1_ed25519.hex", "draft-26/query_response.hex", StructureSign1, agent},
		{"success.cose_sign1_ed25519.hex", "draft-26/success.hex", StructureSign1, agent},
		{"error.cose_sign1_ed25519.hex", "draft-26/error.hex", StructureSign1, agent},
		{"query_request.cose_sign.hex", "draft-26/query_request.hex", StructureSign, tamEC},
	}
	for _, tt := range tests {
		data := readHex(t, "teep/synthesized/"+tt.file)
		s, v, err := Verify(data, VerifyOptions{Keys: all})
		if err != nil {
			t.Fatalf("%s: %v", tt.file, err)
		}
		if s.Structure != tt.structure || !s.Tagged {
			t.Errorf("%s: structure %v tagged %v", tt.file, s.Structure, s.Tagged)
		}
		if !bytes.Equal(s.Payload, readHex(t, "teep/"+tt.payload)) {
			t.Errorf("%s: payload differs from %s", tt.file, tt.payload)
		}
		if !v.Key.Equal(tt.signer) && tt.structure == StructureSign1 {
			t.Errorf("%s: verified by the wrong key", tt.file)
		}
		if !bytes.Equal(v.KID, v.Key.KID()) {
			t.Errorf("%s: kid %x is not the verifying key's thumbprint", tt.file, v.KID)
		}
		// Each single trusted key of the COSE_Sign verifies it alone.
		if tt.structure == StructureSign {
			for _, k := range []*Key{tamEC, tamEd} {
				if _, _, err := Verify(data, VerifyOptions{Keys: []*Key{k}}); err != nil {
					t.Errorf("COSE_Sign with only %x: %v", k.KID(), err)
				}
			}
			if _, _, err := Verify(data, VerifyOptions{Keys: []*Key{agent}}); err == nil {
				t.Error("COSE_Sign verified with a key that did not sign")
			}
		}
	}
}

// Ed25519 is deterministic, so our signer must reproduce the synthesized
// vectors byte for byte.
func TestEd25519ReproducesVectors(t *testing.T) {
	s, err := NewSigner(edKey(t, agentEdSeed), AlgEd25519)
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"success", "error", "query_response"} {
		got, err := Sign1(readHex(t, "teep/draft-26/"+name+".hex"), s, nil)
		if err != nil {
			t.Fatal(err)
		}
		if want := readHex(t, "teep/synthesized/"+name+".cose_sign1_ed25519.hex"); !bytes.Equal(got, want) {
			t.Errorf("%s:\n got %x\nwant %x", name, got, want)
		}
	}
}

func TestVerifyRejects(t *testing.T) {
	tam := tamP256(t).PublicKey()
	agent := edKey(t, agentEdSeed).PublicKey()
	data := readHex(t, "teep/synthesized/update.cose_sign1_esp256.hex")
	flipSig := bytes.Clone(data)
	flipSig[len(flipSig)-1] ^= 1
	flipPayload := bytes.Clone(data)
	flipPayload[len(flipPayload)-80] ^= 1

	tests := []struct {
		name string
		in   []byte
		o    VerifyOptions
		want error
	}{
		{"tampered signature", flipSig, VerifyOptions{Keys: []*Key{tam}}, ErrSignature},
		{"tampered payload", flipPayload, VerifyOptions{Keys: []*Key{tam}}, ErrSignature},
		{"wrong key", data, VerifyOptions{Keys: []*Key{mustGen(t, AlgESP256)}}, ErrNoTrustedKey},
		{"key of other type", data, VerifyOptions{Keys: []*Key{agent}}, ErrNoTrustedKey},
		{"no keys", data, VerifyOptions{}, ErrNoTrustedKey},
		{"alg not accepted", data, VerifyOptions{Keys: []*Key{tam}, Algorithms: []cose.Algorithm{AlgEd25519}}, ErrUnsupportedAlg},
		{"truncated", data[:len(data)-10], VerifyOptions{Keys: []*Key{tam}}, ErrMalformed},
		{"trailing byte", append(bytes.Clone(data), 0), VerifyOptions{Keys: []*Key{tam}}, ErrMalformed},
		{"not cose", []byte{0x82, 0x01, 0x02}, VerifyOptions{Keys: []*Key{tam}}, ErrMalformed},
	}
	for _, tt := range tests {
		_, _, err := Verify(tt.in, tt.o)
		if !errors.Is(err, tt.want) {
			t.Errorf("%s: got %v, want %v", tt.name, err, tt.want)
		}
	}
}

func mustGen(t testing.TB, alg cose.Algorithm) *Key {
	k, err := Generate(alg)
	if err != nil {
		t.Fatal(err)
	}
	return k.PublicKey()
}

func TestSignVariants(t *testing.T) {
	ec, _ := Generate(AlgESP256)
	ed, _ := Generate(AlgEd25519)
	sEC, _ := NewSigner(ec, 0)
	sEd, _ := NewSigner(ed, 0)
	sLegacy, err := NewSigner(ec, AlgES256)
	if err != nil {
		t.Fatal(err)
	}
	payload := []byte("payload")
	trusted := []*Key{ec.PublicKey(), ed.PublicKey()}

	cases := []struct {
		name      string
		make      func() ([]byte, error)
		structure Structure
		tagged    bool
		alg       cose.Algorithm
		detached  bool
		noKID     bool
	}{
		{"sign1 tagged", func() ([]byte, error) { return Sign1(payload, sEC, nil) }, StructureSign1, true, AlgESP256, false, false},
		{"sign1 untagged", func() ([]byte, error) { return Sign1(payload, sEd, &SignOptions{Untagged: true}) }, StructureSign1, false, AlgEd25519, false, false},
		{"sign1 legacy alg", func() ([]byte, error) { return Sign1(payload, sLegacy, nil) }, StructureSign1, true, AlgES256, false, false},
		{"sign1 no kid", func() ([]byte, error) { return Sign1(payload, sEC, &SignOptions{OmitKID: true}) }, StructureSign1, true, AlgESP256, false, true},
		{"sign1 detached", func() ([]byte, error) { return Sign1Detached(payload, sEd, nil) }, StructureSign1, true, AlgEd25519, true, false},
		{"sign tagged", func() ([]byte, error) { return SignMulti(payload, []*Signer{sEC, sEd}, nil) }, StructureSign, true, AlgESP256, false, false},
		{"sign untagged", func() ([]byte, error) { return SignMulti(payload, []*Signer{sEd, sEC}, &SignOptions{Untagged: true}) }, StructureSign, false, AlgEd25519, false, false},
	}
	for _, c := range cases {
		data, err := c.make()
		if err != nil {
			t.Fatalf("%s: %v", c.name, err)
		}
		o := VerifyOptions{Keys: trusted}
		if c.detached {
			o.Detached = payload
		}
		s, v, err := Verify(data, o)
		if err != nil {
			t.Fatalf("%s: %v", c.name, err)
		}
		if s.Structure != c.structure || s.Tagged != c.tagged || v.Alg != c.alg {
			t.Errorf("%s: got %v tagged=%v alg=%v", c.name, s.Structure, s.Tagged, v.Alg)
		}
		if (v.KID == nil) != c.noKID {
			t.Errorf("%s: kid %x", c.name, v.KID)
		}
		if c.detached && s.Payload != nil {
			t.Errorf("%s: payload not detached", c.name)
		}
		if !c.detached && !bytes.Equal(s.Payload, payload) {
			t.Errorf("%s: payload %q", c.name, s.Payload)
		}
		// Restricting algorithms to the legacy ids must reject the fully specified ones.
		if c.alg == AlgESP256 || c.alg == AlgEd25519 {
			o.Algorithms = []cose.Algorithm{AlgES256, AlgEdDSA}
			if _, _, err := Verify(data, o); err == nil {
				t.Errorf("%s: verified with only legacy algorithms allowed", c.name)
			}
		}
	}
	if _, err := NewSigner(ed, AlgESP256); err == nil {
		t.Error("ESP256 signer accepted an Ed25519 key")
	}
	if _, err := NewSigner(ec.PublicKey(), 0); !errors.Is(err, ErrNoPrivateKey) {
		t.Errorf("public key signer: %v", err)
	}
}

func FuzzParseSigned(f *testing.F) {
	for _, name := range []string{"query_request.cose_sign.hex", "update.cose_sign1_esp256.hex", "success.cose_sign1_ed25519.hex"} {
		f.Add(readHex(f, "teep/synthesized/"+name))
	}
	keys := []*Key{tamP256(f).PublicKey(), edKey(f, agentEdSeed).PublicKey()}
	f.Fuzz(func(t *testing.T, data []byte) {
		s, err := ParseSigned(data)
		if err != nil {
			return
		}
		_, _ = s.Verify(VerifyOptions{Keys: keys, Detached: []byte{}})
	})
}

func FuzzParseKey(f *testing.F) {
	f.Add(readFile(f, "suit/keys/device-p256-private.pem"))
	k, _ := Generate(AlgEd25519)
	for _, fm := range []Format{FormatCOSE, FormatJWK} {
		enc, _ := k.Marshal(fm, true)
		f.Add(enc)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		k, err := Parse(data)
		if err != nil {
			return
		}
		if _, err := k.MarshalCOSEKey(false); err != nil {
			t.Fatalf("parsed key does not re-encode: %v", err)
		}
	})
}
