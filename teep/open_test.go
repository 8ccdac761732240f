package teep

import (
	"bytes"
	"errors"
	"strings"
	"testing"

	"github.com/teep-go/teep/cosekey"
	"github.com/veraison/go-cose"
)

func TestOpenRejects(t *testing.T) {
	tam := tamP256(t).PublicKey()
	agent := edKey(t, agentEdSeed).PublicKey()
	sign1 := readHex(t, "teep/synthesized/update.cose_sign1_esp256.hex")
	multi := readHex(t, "teep/synthesized/query_request.cose_sign.hex")
	ed := readHex(t, "teep/synthesized/success.cose_sign1_ed25519.hex")

	tampered := bytes.Clone(sign1)
	tampered[len(tampered)-1] ^= 1
	tamperedPayload := bytes.Clone(sign1)
	tamperedPayload[bytes.Index(tamperedPayload, token16)] ^= 1
	// a validly signed payload that is not a TEEP message
	s, _ := cosekey.NewSigner(tamP256(t), 0)
	notTEEP, err := cosekey.Sign1([]byte{0xa0}, s, nil)
	if err != nil {
		t.Fatal(err)
	}
	detached, err := cosekey.Sign1Detached(readHex(t, "teep/draft-26/success.hex"), s, nil)
	if err != nil {
		t.Fatal(err)
	}
	deepCOSE := append([]byte{0xd2, 0x84, 0x40, 0xa1, 0x20}, bytes.Repeat([]byte{0x81}, 40)...)
	deepCOSE = append(deepCOSE, 0x00, 0x40, 0x40)

	cases := []struct {
		name string
		data []byte
		o    OpenOptions
		code ErrCode
		is   error
		want string
	}{
		{"tampered signature", tampered, OpenOptions{Keys: []*cosekey.Key{tam}}, ErrPermanentError, cosekey.ErrSignature, "verify COSE_Sign1"},
		{"tampered payload", tamperedPayload, OpenOptions{Keys: []*cosekey.Key{tam}}, ErrPermanentError, cosekey.ErrSignature, "signature does not verify"},
		{"wrong key", sign1, OpenOptions{Keys: []*cosekey.Key{agent}}, ErrBadCertificate, cosekey.ErrNoTrustedKey, "no trusted key"},
		{"no keys", sign1, OpenOptions{}, ErrBadCertificate, cosekey.ErrNoTrustedKey, "no trusted key"},
		{"alg not accepted", sign1, OpenOptions{Keys: []*cosekey.Key{tam}, Algorithms: []cose.Algorithm{cosekey.AlgEd25519}}, ErrUnsupportedCipherSuites, cosekey.ErrUnsupportedAlg, "ESP256"},
		{"COSE_Sign no acceptable alg", multi, OpenOptions{Keys: []*cosekey.Key{tam}, Algorithms: []cose.Algorithm{cosekey.AlgES256}}, ErrUnsupportedCipherSuites, cosekey.ErrUnsupportedAlg, "unsupported algorithm"},
		{"ed25519 wrong key", ed, OpenOptions{Keys: []*cosekey.Key{edKey(t, tamEdSeed).PublicKey()}}, ErrBadCertificate, cosekey.ErrNoTrustedKey, "not a trusted key"},
		{"truncated", sign1[:len(sign1)-10], OpenOptions{Keys: []*cosekey.Key{tam}}, ErrPermanentError, ErrMalformed, "COSE structure"},
		{"trailing bytes", append(bytes.Clone(sign1), 0x00), OpenOptions{Keys: []*cosekey.Key{tam}}, ErrPermanentError, ErrMalformed, "trailing bytes"},
		{"bare message", readHex(t, "teep/draft-26/success.hex"), OpenOptions{Keys: []*cosekey.Key{tam}}, ErrPermanentError, ErrNotSigned, "use Decode"},
		{"empty", nil, OpenOptions{Keys: []*cosekey.Key{tam}}, ErrPermanentError, ErrNotSigned, "not a COSE_Sign1"},
		{"too large", sign1, OpenOptions{Keys: []*cosekey.Key{tam}, Limits: Limits{MaxMessageSize: 100, MaxCOSEOverhead: 10}}, ErrPermanentError, ErrLimit, "exceeds the limit of 110"},
		{"too many signatures", multi, OpenOptions{Keys: []*cosekey.Key{tam}, Limits: Limits{MaxSignatures: 1}}, ErrPermanentError, ErrLimit, "2 signatures, limit 1"},
		{"too deep", deepCOSE, OpenOptions{Keys: []*cosekey.Key{tam}}, ErrPermanentError, ErrLimit, "nesting"},
		{"payload not TEEP", notTEEP, OpenOptions{Keys: []*cosekey.Key{tam}}, ErrPermanentError, ErrMalformed, "want array, got map"},
		{"detached payload", detached, OpenOptions{Keys: []*cosekey.Key{tam}}, ErrPermanentError, ErrMalformed, "detached"},
		{"wrong numbering", sign1, OpenOptions{Numbering: Legacy, Keys: []*cosekey.Key{tam}}, ErrPermanentError, ErrMalformed, "legacy"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			op, err := Open(c.data, c.o)
			if err == nil {
				t.Fatalf("opened: %+v", op)
			}
			if got := CodeOf(err); got != c.code {
				t.Errorf("code %v, want %v (%v)", got, c.code, err)
			}
			if !errors.Is(err, c.is) {
				t.Errorf("%v is not %v", err, c.is)
			}
			if !strings.Contains(err.Error(), c.want) {
				t.Errorf("error %q lacks %q", err, c.want)
			}
		})
	}
}

func TestOpenUntaggedAndUnverified(t *testing.T) {
	s, err := cosekey.NewSigner(edKey(t, agentEdSeed), 0)
	if err != nil {
		t.Fatal(err)
	}
	m := &Success{Token: token16}
	for _, untagged := range []bool{false, true} {
		data, err := Sign(m, s, SignOptions{Untagged: untagged, OmitKID: true})
		if err != nil {
			t.Fatal(err)
		}
		if !IsSigned(data) {
			t.Fatal("IsSigned false")
		}
		op, err := Open(data, OpenOptions{Keys: []*cosekey.Key{edKey(t, agentEdSeed).PublicKey()}})
		if err != nil {
			t.Fatal(err)
		}
		if op.Tagged == untagged || op.KID != nil || !op.Verified || !op.CipherSuite().Equal(CipherSuiteEd25519) {
			t.Fatalf("untagged=%v: %+v", untagged, op)
		}
		op, err = Open(data, OpenOptions{SkipVerifyUnsafe: true})
		if err != nil {
			t.Fatal(err)
		}
		if op.Verified || op.Key != nil || op.Alg != cosekey.AlgEd25519 {
			t.Fatalf("unverified open: %+v", op)
		}
	}
	// COSE_Sign untagged
	s2, _ := cosekey.NewSigner(tamP256(t), 0)
	data, err := SignMulti(m, []*cosekey.Signer{s, s2}, SignOptions{Untagged: true})
	if err != nil {
		t.Fatal(err)
	}
	op, err := Open(data, OpenOptions{Keys: []*cosekey.Key{tamP256(t).PublicKey()}})
	if err != nil {
		t.Fatal(err)
	}
	if op.Structure != cosekey.StructureSign || op.Tagged || op.Alg != cosekey.AlgESP256 || len(op.Signatures) != 2 {
		t.Fatalf("%+v", op)
	}
	if !op.CipherSuite().Equal(CipherSuite{{COSETypeSign, -9}}) {
		t.Fatalf("suite %v", op.CipherSuite())
	}
	if IsSigned(readHex(t, "teep/draft-26/query_request.hex")) || IsSigned(nil) {
		t.Fatal("bare message reported as signed")
	}
	// Sign refuses invalid messages and a nil signer.
	if _, err := Sign(&Error{}, s, SignOptions{}); err == nil {
		t.Fatal("invalid message signed")
	}
	if _, err := Sign(m, nil, SignOptions{}); err == nil {
		t.Fatal("nil signer accepted")
	}
}

// ES256 (-7) and EdDSA (-8), used by peers built on drafts up to -21, are
// accepted on input.
func TestOpenLegacyAlgorithms(t *testing.T) {
	for _, c := range []struct {
		key *cosekey.Key
		alg cose.Algorithm
	}{{tamP256(t), cosekey.AlgES256}, {edKey(t, tamEdSeed), cosekey.AlgEdDSA}} {
		s, err := cosekey.NewSigner(c.key, c.alg)
		if err != nil {
			t.Fatal(err)
		}
		data, err := Sign(&Success{}, s, SignOptions{Encode: EncodeOptions{Numbering: Legacy}})
		if err != nil {
			t.Fatal(err)
		}
		op, err := Open(data, OpenOptions{Numbering: Legacy, Keys: []*cosekey.Key{c.key.PublicKey()}})
		if err != nil {
			t.Fatal(err)
		}
		if op.Alg != c.alg {
			t.Fatalf("alg %v", op.Alg)
		}
	}
}

// A message opened unverified (to read its kid) verifies later without
// being parsed again; the unverified Opened stays unverified, and a wrong
// key or a message of another origin is refused.
func TestOpenedVerifyAfterUnverifiedOpen(t *testing.T) {
	ed, p256 := edKey(t, agentEdSeed), tamP256(t)
	s, err := cosekey.NewSigner(ed, 0)
	if err != nil {
		t.Fatal(err)
	}
	data, err := Sign(&Success{Token: token16}, s, SignOptions{})
	if err != nil {
		t.Fatal(err)
	}
	op, err := Open(data, OpenOptions{SkipVerifyUnsafe: true})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := op.Verify([]*cosekey.Key{p256.PublicKey()}, nil); err == nil {
		t.Fatal("verified with a key that did not sign")
	}
	if _, err := op.Verify([]*cosekey.Key{ed.PublicKey()}, []cose.Algorithm{cosekey.AlgESP256}); err == nil {
		t.Fatal("verified with an algorithm that is not accepted")
	}
	v, err := op.Verify([]*cosekey.Key{ed.PublicKey()}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if !v.Verified || v.Key == nil || v.Alg != cosekey.AlgEd25519 || v.Message != op.Message {
		t.Fatalf("verified copy: %+v", v)
	}
	if op.Verified || op.Key != nil {
		t.Fatalf("the unverified Opened changed: %+v", op)
	}
	if _, err := (&Opened{}).Verify([]*cosekey.Key{ed.PublicKey()}, nil); err == nil {
		t.Fatal("an Opened that Open did not make verified")
	}
}
