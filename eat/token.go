package eat

import (
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/teep-go/teep/cborwire"
	"github.com/teep-go/teep/cosekey"
	"github.com/veraison/go-cose"
)

// Profile and media types.
const (
	// ProfileTEEP is the eat_profile of draft-ietf-teep-protocol-26 §5; the
	// RFC number replaces XXXX on publication, here and nowhere else.
	ProfileTEEP = "urn:ietf:rfc:rfcXXXX"

	// MediaTypeEAT is the RFC 9782 media type of a CWT-encoded EAT.
	MediaTypeEAT = "application/eat+cwt"

	// MediaTypeTEEP names an EAT of the TEEP profile: what a TEEP
	// attestation-payload is when attestation-payload-format is absent. The
	// parameter value is quoted because a URI contains ":" (RFC 2045 §5.1);
	// IsTEEPMediaType also accepts the unquoted spelling the draft prints.
	MediaTypeTEEP = MediaTypeEAT + `; eat_profile="` + ProfileTEEP + `"`
)

// CWT tag (RFC 8392 §6) and COSE_Sign1 tag (RFC 9052 §4.2).
const (
	tagCWT   = 61
	tagSign1 = 18
)

// SignOptions adjust Sign. The zero value writes an untagged COSE_Sign1, as
// the TEEP profile says CBOR tags are not used.
type SignOptions struct {
	Tagged bool      // add the COSE_Sign1 tag 18
	CWTTag bool      // wrap in the CWT tag 61
	Rand   io.Reader // entropy for ECDSA; crypto/rand when nil
}

// Sign encodes c and signs it as a COSE_Sign1 CWT with kid = the signer's
// RFC 9679 thumbprint in the unprotected header.
func Sign(c *Claims, s *cosekey.Signer, o SignOptions) ([]byte, error) {
	if s == nil {
		return nil, errors.New("eat: no signer")
	}
	payload, err := c.MarshalCBOR()
	if err != nil {
		return nil, err
	}
	tok, err := cosekey.Sign1(payload, s, &cosekey.SignOptions{Untagged: !o.Tagged, Rand: o.Rand})
	if err != nil {
		return nil, fmt.Errorf("eat: %w", err)
	}
	if o.CWTTag {
		tok = append([]byte{0xd8, tagCWT}, tok...)
	}
	return tok, nil
}

// Token is a parsed, not yet verified, CWT.
type Token struct {
	Claims    *Claims
	Payload   []byte         // the claims-set exactly as signed
	Alg       cose.Algorithm // from the protected header
	KID       []byte         // kid header, nil when absent
	Tagged    bool           // COSE_Sign1 carried tag 18
	CWTTagged bool           // the token was wrapped in CWT tag 61

	signed *cosekey.Signed
	algs   []cose.Algorithm
}

// Parse decodes a CWT: a COSE_Sign1 (tag 18 optional) optionally inside CWT
// tag 61, whose payload is a claims-set. It checks framing and claims but not
// the signature; call Verify before trusting any claim.
func Parse(token []byte, o ParseOptions) (*Token, error) {
	lim := o.limits()
	if len(token) == 0 {
		return nil, &DecodeError{Msg: "empty token"}
	}
	if len(token) > lim.MaxTokenSize {
		return nil, &DecodeError{Msg: fmt.Sprintf("token of %d bytes exceeds the limit of %d", len(token), lim.MaxTokenSize)}
	}
	if err := wellFormed(token, lim, 0); err != nil {
		return nil, fmt.Errorf("token: %w", err)
	}
	t := &Token{algs: o.Algorithms}
	body := token
	if len(body) >= 2 && body[0] == 0xd8 && body[1] == tagCWT {
		t.CWTTagged, body = true, body[2:]
	}
	switch {
	case body[0] == 0xc0|tagSign1:
		t.Tagged = true
	case body[0] == 0x84:
	default:
		major, arg, _, _ := readHead(body)
		if major == cborwire.MajorTag {
			return nil, &DecodeError{Msg: fmt.Sprintf("token: tag %d, want a COSE_Sign1 (tag 18, optionally inside CWT tag 61)", arg)}
		}
		return nil, &DecodeError{Msg: fmt.Sprintf("token: %s, want a COSE_Sign1 array", cborwire.MajorName(major))}
	}
	s, err := cosekey.ParseSigned(body)
	if err != nil {
		return nil, fmt.Errorf("%w: token: %w", ErrMalformed, err)
	}
	if s.Structure != cosekey.StructureSign1 {
		return nil, &DecodeError{Msg: "token: " + s.Structure.String() + ", want COSE_Sign1"}
	}
	if s.Payload == nil {
		return nil, &DecodeError{Msg: "token: detached payload; a CWT carries its claims"}
	}
	t.signed, t.Payload = s, s.Payload
	t.Alg, t.KID = s.Signatures[0].Alg, s.Signatures[0].KID
	if t.Claims, err = DecodeClaims(s.Payload, o); err != nil {
		return nil, fmt.Errorf("claims-set: %w", err)
	}
	return t, nil
}

// Verify checks the signature against the trusted keys (picked by kid when
// it matches a key's thumbprint) and returns which key verified.
func (t *Token) Verify(keys []*cosekey.Key) (*cosekey.Verification, error) {
	v, err := t.signed.Verify(cosekey.VerifyOptions{Keys: keys, Algorithms: t.algs})
	if err != nil {
		return nil, fmt.Errorf("eat: %w", err)
	}
	return v, nil
}

// IsTEEPMediaType reports whether a media type names an EAT of the TEEP
// profile, with the profile parameter quoted or not.
func IsTEEPMediaType(mt string) bool {
	profile, ok := eatMediaTypeProfile(mt)
	return ok && profile == ProfileTEEP
}

// eatMediaTypeProfile parses "application/eat+cwt; eat_profile=..." by hand
// (mime.ParseMediaType rejects the unquoted URI value the draft prints) and
// returns the profile; ok is false for any other media type.
func eatMediaTypeProfile(mt string) (profile string, ok bool) {
	base, params, _ := strings.Cut(mt, ";")
	if !strings.EqualFold(strings.TrimSpace(base), MediaTypeEAT) {
		return "", false
	}
	for params != "" {
		var p string
		p, params, _ = strings.Cut(params, ";")
		name, val, found := strings.Cut(p, "=")
		if !found || !strings.EqualFold(strings.TrimSpace(name), "eat_profile") {
			continue
		}
		val = strings.TrimSpace(val)
		if len(val) >= 2 && val[0] == '"' && val[len(val)-1] == '"' {
			val = val[1 : len(val)-1]
		}
		profile = val
	}
	return profile, true
}
