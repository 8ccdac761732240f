package teep

import (
	"errors"
	"fmt"
	"io"

	"github.com/teep-go/teep/cosekey"
	"github.com/veraison/go-cose"
)

// SignOptions control Sign and SignMulti. The zero value gives a tagged
// structure, kid (RFC 9679 thumbprint) in the unprotected header, draft-26
// numbering, deterministic encoding.
type SignOptions struct {
	Encode   EncodeOptions
	Untagged bool      // omit the COSE tag (18 / 98)
	OmitKID  bool      // leave kid out of the headers
	Rand     io.Reader // entropy for ECDSA; crypto/rand when nil
}

func (o SignOptions) cose() *cosekey.SignOptions {
	return &cosekey.SignOptions{Untagged: o.Untagged, OmitKID: o.OmitKID, Rand: o.Rand}
}

// Sign encodes m and wraps it in a COSE_Sign1 signed by s (§4.1: every TEEP
// message is protected by COSE).
func Sign(m Message, s *cosekey.Signer, o SignOptions) ([]byte, error) {
	if s == nil {
		return nil, errors.New("teep: Sign needs a signer")
	}
	payload, err := Encode(m, o.Encode)
	if err != nil {
		return nil, err
	}
	return cosekey.Sign1(payload, s, o.cose())
}

// SignMulti encodes m and wraps it in a COSE_Sign with one signature per
// signer: the form of an initial QueryRequest, signed with every algorithm of
// its supported-teep-cipher-suites so that any Agent can verify it (§4.2).
func SignMulti(m Message, signers []*cosekey.Signer, o SignOptions) ([]byte, error) {
	payload, err := Encode(m, o.Encode)
	if err != nil {
		return nil, err
	}
	return cosekey.SignMulti(payload, signers, o.cose())
}

// OpenOptions say how to verify and decode a signed message.
type OpenOptions struct {
	Numbering Numbering
	Limits    Limits // zero fields: DefaultLimits
	// Keys are the trusted public keys; a signature verifies when it
	// verifies with one of them (selected by kid when it matches a key's
	// thumbprint, otherwise every key of the right type is tried).
	Keys []*cosekey.Key
	// Algorithms accepted; nil means cosekey.AcceptedAlgorithms (ESP256,
	// Ed25519, and the ES256 / EdDSA aliases older peers send).
	Algorithms []cose.Algorithm
	// SkipVerifyUnsafe decodes without checking the signature, for
	// diagnostics only: the result is not authenticated.
	SkipVerifyUnsafe bool
}

// Opened is a verified (unless SkipVerifyUnsafe) and decoded signed message.
type Opened struct {
	Message   Message
	Structure cosekey.Structure // StructureSign1 or StructureSign
	Tagged    bool
	Verified  bool
	Alg       cose.Algorithm // algorithm of the verifying signature (first signature if unverified)
	KID       []byte         // kid of that signature; nil when absent
	Key       *cosekey.Key   // the trusted key that verified; nil if unverified
	Payload   []byte         // the encoded TEEP message
	// Signatures describes every signature of the structure.
	Signatures []cosekey.SignatureInfo

	signed *cosekey.Signed // for Verify after SkipVerifyUnsafe
}

// Verify checks the signature of a message opened with SkipVerifyUnsafe,
// as Open would have with these keys and algorithms (nil: the accepted
// ones), without parsing or decoding it again: a receiver that reads the
// message's kid to find its key verifies it this way. It returns a copy
// with Verified, Alg, KID and Key set; o itself stays unauthenticated.
func (o *Opened) Verify(keys []*cosekey.Key, algs []cose.Algorithm) (*Opened, error) {
	if o.signed == nil {
		return nil, errors.New("teep: Opened.Verify on a message that Open did not parse")
	}
	v, err := o.signed.Verify(cosekey.VerifyOptions{Keys: keys, Algorithms: algs})
	if err != nil {
		return nil, &ProtocolError{Code: CodeOf(err), Msg: fmt.Sprintf("verify %s", o.Structure), Err: err}
	}
	c := *o
	c.Verified, c.Alg, c.KID, c.Key = true, v.Alg, v.KID, v.Key
	return &c, nil
}

// CipherSuite is the suite the peer used: [[18, alg]] for a COSE_Sign1,
// [[98, alg]] for a COSE_Sign, alg being the verifying signature's.
func (o *Opened) CipherSuite() CipherSuite {
	t := COSETypeSign1
	if o.Structure == cosekey.StructureSign {
		t = COSETypeSign
	}
	return CipherSuite{{t, int64(o.Alg)}}
}

// IsSigned reports whether data starts like a COSE_Sign1 or COSE_Sign
// (tagged, or an untagged four-element array, which no TEEP message is) rather
// than a bare TEEP message.
func IsSigned(data []byte) bool {
	if len(data) == 0 {
		return false
	}
	return data[0] == 0xd2 || data[0] == 0x84 || (len(data) > 1 && data[0] == 0xd8 && data[1] == 0x62)
}

// Open parses a COSE_Sign1 (tagged or untagged) or COSE_Sign carrying a TEEP
// message, verifies it against o.Keys (§4.1.2 steps 1-4) and decodes the
// payload (step 5). Failures are *ProtocolError; CodeOf gives the err-code.
func Open(data []byte, o OpenOptions) (*Opened, error) {
	lim := o.Limits.withDefaults()
	if max := lim.MaxMessageSize + lim.MaxCOSEOverhead; len(data) > max {
		return nil, protoErr(ErrPermanentError, ErrLimit, "signed message of %d bytes exceeds the limit of %d", len(data), max)
	}
	if !IsSigned(data) {
		return nil, protoErr(ErrPermanentError, ErrNotSigned, "input is not a COSE_Sign1 or COSE_Sign (a bare TEEP message? use Decode)")
	}
	// Our own strict walk first: go-cose is not asked to bound nesting or
	// reject every non-well-formed input.
	if err := wellFormed(data, lim.MaxNesting, lim.MaxListLength); err != nil {
		return nil, wrapErr("COSE structure", err)
	}
	s, err := cosekey.ParseSigned(data)
	if err != nil {
		return nil, &ProtocolError{Code: CodeOf(err), Msg: "COSE structure", Err: err}
	}
	if len(s.Signatures) > lim.MaxSignatures {
		return nil, protoErr(ErrPermanentError, ErrLimit, "COSE_Sign has %d signatures, limit %d", len(s.Signatures), lim.MaxSignatures)
	}
	op := &Opened{Structure: s.Structure, Tagged: s.Tagged, Payload: s.Payload, Signatures: s.Signatures, signed: s}
	if s.Payload == nil {
		return nil, protoErr(ErrPermanentError, ErrMalformed, "%s has a detached (nil) payload", s.Structure)
	}
	if len(s.Signatures) > 0 {
		op.Alg, op.KID = s.Signatures[0].Alg, s.Signatures[0].KID
	}
	if !o.SkipVerifyUnsafe {
		if op, err = op.Verify(o.Keys, o.Algorithms); err != nil {
			return nil, err
		}
	}
	m, err := Decode(s.Payload, DecodeOptions{Numbering: o.Numbering, Limits: o.Limits})
	if err != nil {
		return nil, err
	}
	op.Message = m
	return op, nil
}
