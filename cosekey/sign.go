package cosekey

import (
	"bytes"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/fxamacker/cbor/v2"
	"github.com/veraison/go-cose"
)

// Errors from parsing and verifying COSE structures. Callers map them to
// protocol error codes; they are wrapped with detail.
var (
	ErrMalformed         = errors.New("cosekey: malformed COSE structure")
	ErrUnsupportedAlg    = errors.New("cosekey: unsupported algorithm")
	ErrUnsupportedHeader = errors.New("cosekey: unsupported critical header parameter")
	ErrKeyMismatch       = errors.New("cosekey: algorithm does not fit key")
	ErrNoTrustedKey      = errors.New("cosekey: no trusted key for this signature")
	ErrSignature         = errors.New("cosekey: signature does not verify")
)

// AcceptedAlgorithms is what we verify by default: the fully specified ids we
// sign with, and their legacy aliases for peers built on older drafts.
var AcceptedAlgorithms = []cose.Algorithm{AlgESP256, AlgEd25519, AlgES256, AlgEdDSA}

// Structure tells which COSE signing structure a message uses.
type Structure int

const (
	StructureSign1 Structure = 1 // COSE_Sign1, CBOR tag 18
	StructureSign  Structure = 2 // COSE_Sign, CBOR tag 98
)

func (s Structure) String() string {
	switch s {
	case StructureSign1:
		return "COSE_Sign1"
	case StructureSign:
		return "COSE_Sign"
	}
	return "unknown"
}

// SignOptions adjust how a structure is produced. The zero value gives a
// tagged structure with kid in the unprotected header, as the draft-26
// examples place it.
type SignOptions struct {
	Untagged bool      // omit the CBOR tag (18 / 98)
	OmitKID  bool      // leave kid out of the headers
	External []byte    // external_aad
	Rand     io.Reader // entropy for ECDSA; crypto/rand when nil
}

func (o *SignOptions) rand() io.Reader {
	if o == nil || o.Rand == nil {
		return rand.Reader
	}
	return o.Rand
}

func (o *SignOptions) external() []byte {
	if o == nil {
		return nil
	}
	return o.External
}

func headersFor(s *Signer, o *SignOptions) cose.Headers {
	h := cose.Headers{
		Protected:   cose.ProtectedHeader{cose.HeaderLabelAlgorithm: s.alg},
		Unprotected: cose.UnprotectedHeader{},
	}
	if o == nil || !o.OmitKID {
		h.Unprotected[cose.HeaderLabelKeyID] = s.KID()
	}
	return h
}

// Sign1 wraps payload in a COSE_Sign1 signed by s.
func Sign1(payload []byte, s *Signer, o *SignOptions) ([]byte, error) {
	return sign1(payload, false, s, o)
}

// Sign1Detached signs payload but leaves it out of the structure (payload
// field nil), as SUIT authentication blocks do.
func Sign1Detached(payload []byte, s *Signer, o *SignOptions) ([]byte, error) {
	return sign1(payload, true, s, o)
}

func sign1(payload []byte, detached bool, s *Signer, o *SignOptions) ([]byte, error) {
	if payload == nil {
		payload = []byte{}
	}
	msg := &cose.Sign1Message{Headers: headersFor(s, o), Payload: payload}
	if err := msg.Sign(o.rand(), o.external(), s); err != nil {
		return nil, fmt.Errorf("cosekey: sign COSE_Sign1: %w", err)
	}
	if detached {
		msg.Payload = nil
	}
	if o != nil && o.Untagged {
		return (*cose.UntaggedSign1Message)(msg).MarshalCBOR()
	}
	return msg.MarshalCBOR()
}

// SignMulti wraps payload in a COSE_Sign with one signature per signer. The
// body's protected header is empty, so any one signature can be checked by a
// peer that supports only that algorithm (draft-ietf-teep-protocol-26 §4.1.1:
// the first QueryRequest is signed with every offered algorithm).
func SignMulti(payload []byte, signers []*Signer, o *SignOptions) ([]byte, error) {
	if len(signers) == 0 {
		return nil, errors.New("cosekey: COSE_Sign needs at least one signer")
	}
	if payload == nil {
		payload = []byte{}
	}
	msg := &cose.SignMessage{
		Headers: cose.Headers{Protected: cose.ProtectedHeader{}, Unprotected: cose.UnprotectedHeader{}},
		Payload: payload,
	}
	cs := make([]cose.Signer, len(signers))
	for i, s := range signers {
		h := headersFor(s, o)
		msg.Signatures = append(msg.Signatures, &cose.Signature{Headers: h})
		cs[i] = s
	}
	if err := msg.Sign(o.rand(), o.external(), cs...); err != nil {
		return nil, fmt.Errorf("cosekey: sign COSE_Sign: %w", err)
	}
	out, err := msg.MarshalCBOR()
	if err != nil {
		return nil, err
	}
	if o != nil && o.Untagged {
		return out[2:], nil // drop the two-byte tag head 0xd8 0x62
	}
	return out, nil
}

// SignatureInfo describes one signature of a parsed structure.
type SignatureInfo struct {
	Alg cose.Algorithm
	KID []byte // nil when absent
}

// Signed is a parsed, not yet verified, COSE_Sign1 or COSE_Sign.
type Signed struct {
	Structure  Structure
	Tagged     bool
	Payload    []byte // nil when the payload is detached
	Signatures []SignatureInfo

	sign1 *cose.Sign1Message
	sign  *cose.SignMessage
}

// understoodHeaders are the header labels we can honour when listed as
// critical: alg, crit, content type, kid, IV, partial IV (RFC 9052 §3.1).
var understoodHeaders = map[int64]bool{1: true, 2: true, 3: true, 4: true, 5: true, 6: true}

// ParseSigned decodes a COSE_Sign1 or COSE_Sign, tagged or untagged, without
// verifying it. Untagged structures are told apart by their fourth element:
// a byte string (signature) for COSE_Sign1, an array (signatures) for COSE_Sign.
func ParseSigned(data []byte) (*Signed, error) {
	if len(data) == 0 {
		return nil, fmt.Errorf("%w: empty input", ErrMalformed)
	}
	var (
		tagged bool
		isSign bool
	)
	switch {
	case data[0] == 0xd2: // tag 18
		tagged = true
	case len(data) >= 2 && data[0] == 0xd8 && data[1] == 0x62: // tag 98
		tagged, isSign = true, true
	case data[0] == 0x84: // untagged array of four
		var parts []cbor.RawMessage
		if err := strict.Unmarshal(data, &parts); err != nil {
			return nil, fmt.Errorf("%w: %v", ErrMalformed, err)
		}
		if len(parts) != 4 || len(parts[3]) == 0 {
			return nil, fmt.Errorf("%w: want a four-element array", ErrMalformed)
		}
		switch parts[3][0] >> 5 {
		case 2:
		case 4:
			isSign = true
		default:
			return nil, fmt.Errorf("%w: fourth element is neither a signature nor a list of signatures", ErrMalformed)
		}
	default:
		return nil, fmt.Errorf("%w: not a COSE_Sign1 (tag 18) or COSE_Sign (tag 98)", ErrMalformed)
	}
	s := &Signed{Tagged: tagged}
	if isSign {
		s.Structure = StructureSign
		in := data
		if !tagged {
			in = append([]byte{0xd8, 0x62}, data...)
		}
		m := &cose.SignMessage{}
		if err := m.UnmarshalCBOR(in); err != nil {
			return nil, fmt.Errorf("%w: COSE_Sign: %v", ErrMalformed, err)
		}
		if len(m.Headers.Protected) != 0 {
			if _, ok := m.Headers.Protected[cose.HeaderLabelAlgorithm]; ok {
				return nil, fmt.Errorf("%w: COSE_Sign body carries alg", ErrMalformed)
			}
		}
		if err := checkCritical(m.Headers.Protected); err != nil {
			return nil, err
		}
		s.sign, s.Payload = m, m.Payload
		for _, sig := range m.Signatures {
			info, err := signatureInfo(sig.Headers)
			if err != nil {
				return nil, err
			}
			s.Signatures = append(s.Signatures, info)
		}
		return s, nil
	}
	s.Structure = StructureSign1
	m := &cose.Sign1Message{}
	var err error
	if tagged {
		err = m.UnmarshalCBOR(data)
	} else {
		err = (*cose.UntaggedSign1Message)(m).UnmarshalCBOR(data)
	}
	if err != nil {
		return nil, fmt.Errorf("%w: COSE_Sign1: %v", ErrMalformed, err)
	}
	info, err := signatureInfo(m.Headers)
	if err != nil {
		return nil, err
	}
	s.sign1, s.Payload, s.Signatures = m, m.Payload, []SignatureInfo{info}
	return s, nil
}

func signatureInfo(h cose.Headers) (SignatureInfo, error) {
	if err := checkCritical(h.Protected); err != nil {
		return SignatureInfo{}, err
	}
	alg, err := h.Protected.Algorithm()
	if err != nil {
		return SignatureInfo{}, fmt.Errorf("%w: protected header has no usable alg: %v", ErrMalformed, err)
	}
	info := SignatureInfo{Alg: alg}
	for _, bucket := range []map[any]any{h.Protected, h.Unprotected} {
		if v, ok := bucket[cose.HeaderLabelKeyID]; ok {
			kid, ok := v.([]byte)
			if !ok {
				return SignatureInfo{}, fmt.Errorf("%w: kid is not a byte string", ErrMalformed)
			}
			info.KID = kid
		}
	}
	return info, nil
}

func checkCritical(p cose.ProtectedHeader) error {
	crit, err := p.Critical()
	if err != nil {
		return fmt.Errorf("%w: %v", ErrMalformed, err)
	}
	for _, label := range crit {
		n, ok := label.(int64)
		if !ok || !understoodHeaders[n] {
			return fmt.Errorf("%w: %v", ErrUnsupportedHeader, label)
		}
	}
	return nil
}

// VerifyOptions say which keys and algorithms are trusted.
type VerifyOptions struct {
	Keys       []*Key
	Algorithms []cose.Algorithm // nil means AcceptedAlgorithms
	External   []byte           // external_aad
	Detached   []byte           // the payload, when the structure carries nil
}

// Verification tells which signature verified, with which key.
type Verification struct {
	Index int // signature index (always 0 for COSE_Sign1)
	Alg   cose.Algorithm
	KID   []byte
	Key   *Key
}

// Verify checks the structure against the trusted keys. A COSE_Sign is
// accepted when any one signature by an acceptable algorithm verifies.
// Keys are picked by kid when the signature names one that matches a trusted
// key's thumbprint; otherwise every trusted key of the right type is tried,
// so peers that omit kid or use another kid scheme still interoperate.
func (s *Signed) Verify(o VerifyOptions) (*Verification, error) {
	if len(o.Keys) == 0 {
		return nil, ErrNoTrustedKey
	}
	payload := s.Payload
	if payload == nil {
		if o.Detached == nil {
			return nil, fmt.Errorf("%w: detached payload not supplied", ErrMalformed)
		}
		payload = o.Detached
	}
	accepted := o.Algorithms
	if accepted == nil {
		accepted = AcceptedAlgorithms
	}
	var (
		firstErr   error
		kidMatched bool // some signature named a trusted key by kid
		tried      bool // some key of the right type was tried
	)
	note := func(err error) {
		if firstErr == nil {
			firstErr = err
		}
	}
	for i, info := range s.Signatures {
		if !containsAlg(accepted, info.Alg) {
			note(fmt.Errorf("%w: %s", ErrUnsupportedAlg, AlgName(info.Alg)))
			continue
		}
		keys, byKID := candidates(o.Keys, info)
		kidMatched = kidMatched || byKID
		for _, k := range keys {
			v, err := k.Verifier(info.Alg)
			if err != nil {
				continue
			}
			tried = true
			if err := s.verifyOne(i, payload, o.External, v); err != nil {
				if byKID {
					note(fmt.Errorf("%w (kid %x)", ErrSignature, k.KID()))
				}
				continue
			}
			return &Verification{Index: i, Alg: info.Alg, KID: info.KID, Key: k}, nil
		}
	}
	switch {
	case kidMatched:
		// A trusted key named by kid did not verify: a bad signature.
	case tried:
		// No signature names a trusted key and none verifies with any of
		// them: the signer is not trusted (or the signature is garbage,
		// which we cannot tell apart without a kid).
		firstErr = fmt.Errorf("%w: %s", ErrNoTrustedKey, kidList(s.Signatures))
	}
	if firstErr == nil {
		firstErr = ErrNoTrustedKey
	}
	return nil, firstErr
}

func kidList(sigs []SignatureInfo) string {
	var parts []string
	for _, s := range sigs {
		if s.KID != nil {
			parts = append(parts, fmt.Sprintf("%x", s.KID))
		}
	}
	if len(parts) == 0 {
		return "signed without kid; no trusted key verifies"
	}
	return "signed by kid " + strings.Join(parts, ", ") + ", not a trusted key"
}

func (s *Signed) verifyOne(i int, payload, external []byte, v cose.Verifier) error {
	if s.sign1 != nil {
		m := *s.sign1
		m.Payload = payload
		return m.Verify(external, v)
	}
	protected, err := s.sign.Headers.MarshalProtected()
	if err != nil {
		return err
	}
	return s.sign.Signatures[i].Verify(v, protected, payload, external)
}

// candidates returns the trusted keys whose thumbprint equals the kid (and
// true), or, when none does, every trusted key whose type fits the algorithm.
func candidates(keys []*Key, info SignatureInfo) ([]*Key, bool) {
	want, _ := keyTypeForAlg(info.Alg)
	var byKID, byType []*Key
	for _, k := range keys {
		if k.typ != want {
			continue
		}
		if info.KID != nil && bytes.Equal(k.KID(), info.KID) {
			byKID = append(byKID, k)
		}
		byType = append(byType, k)
	}
	if len(byKID) > 0 {
		return byKID, true
	}
	return byType, false
}

func containsAlg(list []cose.Algorithm, a cose.Algorithm) bool {
	for _, x := range list {
		if x == a {
			return true
		}
	}
	return false
}

// Verify parses and verifies data in one step.
func Verify(data []byte, o VerifyOptions) (*Signed, *Verification, error) {
	s, err := ParseSigned(data)
	if err != nil {
		return nil, nil, err
	}
	v, err := s.Verify(o)
	if err != nil {
		return s, nil, err
	}
	return s, v, nil
}
