package suit

import (
	"bytes"
	"crypto/hmac"
	"crypto/sha256"
	"crypto/sha512"
	"errors"
	"fmt"
	"hash"

	"github.com/teep-go/teep/cborwire"
	"github.com/teep-go/teep/cosekey"
	"github.com/veraison/go-cose"
)

// AuthKind is the COSE structure of an authentication block, named by its
// CBOR tag (draft-ietf-suit-manifest §8.3).
type AuthKind int

const (
	AuthMac0  AuthKind = 17 // COSE_Mac0_Tagged
	AuthSign1 AuthKind = 18 // COSE_Sign1_Tagged
	AuthMac   AuthKind = 97 // COSE_Mac_Tagged
	AuthSign  AuthKind = 98 // COSE_Sign_Tagged
)

func (k AuthKind) String() string {
	switch k {
	case AuthMac0:
		return "COSE_Mac0"
	case AuthSign1:
		return "COSE_Sign1"
	case AuthMac:
		return "COSE_Mac"
	case AuthSign:
		return "COSE_Sign"
	}
	return fmt.Sprintf("tag(%d)", int(k))
}

// COSE MAC algorithm ids (RFC 9053 §3.1).
const (
	AlgHMAC256 int64 = 5 // HMAC 256/256
	AlgHMAC384 int64 = 6 // HMAC 384/384
	AlgHMAC512 int64 = 7 // HMAC 512/512
	algDirect  int64 = -6
)

// SignerInfo is the algorithm and key id of one signature or MAC.
type SignerInfo struct {
	Alg int64
	KID []byte // nil when absent
}

// AuthBlock is one SUIT_Authentication_Block.
type AuthBlock struct {
	Kind    AuthKind
	Raw     []byte       // the tagged COSE structure (content of its bstr)
	Signers []SignerInfo // one for COSE_Sign1/COSE_Mac0; one per signature or recipient otherwise

	signed *cosekey.Signed
	mac    *macBlock
}

// macBlock is a parsed COSE_Mac0 or COSE_Mac (RFC 9052 §6).
type macBlock struct {
	protected []byte // bstr content
	tag       []byte
	alg       int64
}

// MACKey is a shared secret for COSE_Mac0 / COSE_Mac blocks. KID, when set,
// must equal the block's kid (if the block names one).
type MACKey struct {
	KID []byte
	Key []byte
}

// parseAuth decodes SUIT_Authentication.
func (e *Envelope) parseAuth(lim *Limits) error {
	_, content, _ := newCur(e.authItem, "authentication wrapper").wrapped("authentication wrapper")
	if err := wellFormed(content, lim); err != nil {
		return in("authentication wrapper", err)
	}
	c := newCur(content, "authentication wrapper")
	n, err := c.array("authentication wrapper")
	if err != nil {
		return err
	}
	if n == 0 {
		return c.errf(0, "authentication wrapper has no digest")
	}
	if n-1 > lim.MaxAuthBlocks {
		return limitErr(0, "%d authentication blocks (limit %d)", n-1, lim.MaxAuthBlocks)
	}
	if _, e.digestRaw, err = c.wrapped("manifest digest"); err != nil {
		return err
	}
	if e.digest, err = ParseDigest(e.digestRaw); err != nil {
		return in("manifest digest", err)
	}
	if digestLen(e.digest.Alg) == 0 {
		return errorf(ErrAlgUnsupported, "manifest digest algorithm %s", DigestAlgName(e.digest.Alg))
	}
	for i := 1; i < n; i++ {
		_, raw, err := c.wrapped("authentication block")
		if err != nil {
			return err
		}
		b, err := parseAuthBlock(raw, lim)
		if err != nil {
			return fmt.Errorf("authentication block %d: %w", i, err)
		}
		e.blocks = append(e.blocks, b)
	}
	return c.end()
}

func parseAuthBlock(raw []byte, lim *Limits) (AuthBlock, error) {
	if err := wellFormed(raw, lim); err != nil {
		return AuthBlock{}, in("authentication block", err)
	}
	c := newCur(raw, "authentication block")
	t, ok := c.tag()
	if !ok {
		return AuthBlock{}, errorf(ErrCOSEUnsupported, "authentication block is not a tagged COSE structure")
	}
	b := AuthBlock{Kind: AuthKind(t), Raw: raw}
	switch b.Kind {
	case AuthSign1, AuthSign:
		s, err := cosekey.ParseSigned(raw)
		if err != nil {
			if errors.Is(err, cosekey.ErrUnsupportedHeader) {
				return AuthBlock{}, fmt.Errorf("%w: %v", ErrCOSEUnsupported, err)
			}
			return AuthBlock{}, fmt.Errorf("%w: %v", ErrMalformed, err)
		}
		b.signed = s
		for _, si := range s.Signatures {
			b.Signers = append(b.Signers, SignerInfo{Alg: int64(si.Alg), KID: si.KID})
		}
	case AuthMac0, AuthMac:
		m, signers, err := parseMac(c, b.Kind)
		if err != nil {
			return AuthBlock{}, err
		}
		b.mac, b.Signers = m, signers
	default:
		return AuthBlock{}, errorf(ErrCOSEUnsupported, "authentication block has tag %d (want 17, 18, 97 or 98)", t)
	}
	return b, nil
}

// parseMac reads [protected, unprotected, payload, tag (, recipients)].
func parseMac(c *cur, kind AuthKind) (*macBlock, []SignerInfo, error) {
	want := 4
	if kind == AuthMac {
		want = 5
	}
	n, err := c.array(kind.String())
	if err != nil {
		return nil, nil, err
	}
	if n != want {
		return nil, nil, c.errf(0, "%s has %d elements (want %d)", kind, n, want)
	}
	m := &macBlock{}
	if m.protected, err = c.bytes("protected header"); err != nil {
		return nil, nil, err
	}
	prot, err := parseHeaderMap(m.protected, true)
	if err != nil {
		return nil, nil, err
	}
	unprotRaw, err := c.skip()
	if err != nil {
		return nil, nil, err
	}
	unprot, err := parseHeaderMap(unprotRaw, false)
	if err != nil {
		return nil, nil, err
	}
	if !c.isNull() {
		return nil, nil, c.errf(c.Off, "%s payload must be detached (null)", kind)
	}
	if m.tag, err = c.bytes("MAC tag"); err != nil {
		return nil, nil, err
	}
	m.alg = prot.alg
	if m.alg == 0 {
		return nil, nil, errorf(ErrMalformed, "%s has no alg in its protected header", kind)
	}
	kid := unprot.kid
	if prot.kid != nil {
		kid = prot.kid
	}
	if kind == AuthMac0 {
		return m, []SignerInfo{{Alg: m.alg, KID: kid}}, c.end()
	}
	// COSE_Mac: only direct recipients (alg -6), each naming a shared key by kid.
	rn, err := c.array("recipients")
	if err != nil {
		return nil, nil, err
	}
	if rn == 0 {
		return nil, nil, c.errf(c.Off, "COSE_Mac without recipients")
	}
	var signers []SignerInfo
	for i := 0; i < rn; i++ {
		if k, err := c.array("recipient"); err != nil || k != 3 {
			if err == nil {
				err = c.errf(c.Off, "recipient has %d elements (want 3)", k)
			}
			return nil, nil, err
		}
		rp, err := c.bytes("recipient protected")
		if err != nil {
			return nil, nil, err
		}
		rph, err := parseHeaderMap(rp, true)
		if err != nil {
			return nil, nil, err
		}
		ruRaw, err := c.skip()
		if err != nil {
			return nil, nil, err
		}
		ruh, err := parseHeaderMap(ruRaw, false)
		if err != nil {
			return nil, nil, err
		}
		alg := rph.alg
		if alg == 0 {
			alg = ruh.alg
		}
		if alg != algDirect {
			return nil, nil, errorf(ErrCOSEUnsupported, "COSE_Mac recipient algorithm %d (only direct, -6)", alg)
		}
		if !c.isNull() {
			if _, err := c.bytes("recipient ciphertext"); err != nil {
				return nil, nil, err
			}
		}
		rkid := ruh.kid
		if rph.kid != nil {
			rkid = rph.kid
		}
		signers = append(signers, SignerInfo{Alg: m.alg, KID: rkid})
	}
	return m, signers, c.end()
}

// headerMap holds the COSE header parameters SUIT uses.
type headerMap struct {
	alg     int64
	kid     []byte
	iv      []byte
	ephKey  []byte // encoded COSE_Key (label -1)
	hasCrit bool
}

// parseHeaderMap reads a COSE header map; for a protected header, data is
// the bstr content (empty means {}). Unknown labels are ignored unless listed
// as critical, which we reject.
func parseHeaderMap(data []byte, protected bool) (headerMap, error) {
	var h headerMap
	if protected && len(data) == 0 {
		return h, nil
	}
	lim := DefaultLimits()
	if err := wellFormed(data, &lim); err != nil {
		return h, in("COSE header", err)
	}
	c := newCur(data, "COSE header")
	n, err := c.mapLen("header map")
	if err != nil {
		return h, err
	}
	for i := 0; i < n; i++ {
		kh, err := c.peek()
		if err != nil {
			return h, err
		}
		if kh.major == cborwire.MajorText {
			c.skip()
			c.skip()
			continue
		}
		label, err := c.int("header label")
		if err != nil {
			return h, err
		}
		switch label {
		case 1:
			h.alg, err = c.int("alg")
		case 2:
			h.hasCrit = true
			_, err = c.skip()
		case 4:
			h.kid, err = c.bytes("kid")
		case 5:
			h.iv, err = c.bytes("IV")
		case -1:
			h.ephKey, err = c.skip()
		default:
			_, err = c.skip()
		}
		if err != nil {
			return h, err
		}
	}
	if h.hasCrit {
		return h, errorf(ErrCOSEUnsupported, "critical COSE header parameters are not supported")
	}
	return h, c.end()
}

// Verify checks that the envelope is authentic: the manifest digest matches
// the manifest bytes and at least one authentication block verifies with one
// of the trusted keys (COSE_Sign1 / COSE_Sign with ESP256, ES256, Ed25519,
// EdDSA) or MAC keys (COSE_Mac0 / COSE_Mac with HMAC 256/384/512). It
// returns which block verified (Index is the block's position).
func (e *Envelope) Verify(keys []*cosekey.Key, macKeys ...MACKey) (*cosekey.Verification, error) {
	ok, err := e.digest.Matches(e.manifestItem)
	if err != nil {
		return nil, err
	}
	if !ok {
		return nil, errorf(ErrUnauthorised, "manifest digest mismatch")
	}
	if len(e.blocks) == 0 {
		return nil, errorf(ErrUnauthorised, "envelope has no authentication block")
	}
	var firstErr error
	algOnly := true
	for i, b := range e.blocks {
		v, err := b.verify(e.digestRaw, keys, macKeys)
		if err == nil {
			v.Index = i
			return v, nil
		}
		if !errors.Is(err, ErrAlgUnsupported) {
			algOnly = false
		}
		if firstErr == nil {
			firstErr = fmt.Errorf("block %d (%s): %w", i, b.Kind, err)
		}
	}
	if algOnly {
		return nil, fmt.Errorf("%w: %v", ErrAlgUnsupported, firstErr)
	}
	return nil, fmt.Errorf("%w: %v", ErrUnauthorised, firstErr)
}

func (b AuthBlock) verify(payload []byte, keys []*cosekey.Key, macKeys []MACKey) (*cosekey.Verification, error) {
	if b.signed != nil {
		if b.signed.Payload != nil && !bytes.Equal(b.signed.Payload, payload) {
			return nil, errors.New("attached payload is not the manifest digest")
		}
		supported := false
		for _, s := range b.signed.Signatures {
			for _, a := range cosekey.AcceptedAlgorithms {
				if s.Alg == a {
					supported = true
				}
			}
		}
		if !supported {
			return nil, fmt.Errorf("%w: %s", ErrAlgUnsupported, cosekey.AlgName(b.signed.Signatures[0].Alg))
		}
		if len(keys) == 0 {
			return nil, errors.New("no trusted signing keys configured")
		}
		return b.signed.Verify(cosekey.VerifyOptions{Keys: keys, Detached: payload})
	}
	if len(macKeys) == 0 {
		return nil, errors.New("no MAC keys configured")
	}
	if _, size := macHash(b.mac.alg); size == 0 {
		return nil, fmt.Errorf("%w: MAC algorithm %d", ErrAlgUnsupported, b.mac.alg)
	}
	for _, s := range b.Signers {
		for _, k := range macKeys {
			if s.KID != nil && k.KID != nil && !bytes.Equal(s.KID, k.KID) {
				continue
			}
			want, err := b.computeMAC(payload, k.Key)
			if err != nil {
				return nil, err
			}
			if hmac.Equal(want, b.mac.tag) {
				return &cosekey.Verification{Alg: cose.Algorithm(b.mac.alg), KID: s.KID}, nil
			}
		}
	}
	return nil, errors.New("MAC does not verify with any configured key")
}

// computeMAC returns the tag over MAC_structure = [context, protected,
// external_aad (empty bstr), payload] (RFC 9052 §6.3).
func (b AuthBlock) computeMAC(payload, key []byte) ([]byte, error) {
	newHash, _ := macHash(b.mac.alg)
	if newHash == nil {
		return nil, fmt.Errorf("%w: MAC algorithm %d", ErrAlgUnsupported, b.mac.alg)
	}
	context := "MAC0"
	if b.Kind == AuthMac {
		context = "MAC"
	}
	tbs := cborwire.AppendArrayHead(nil, 4)
	tbs = cborwire.AppendText(tbs, context)
	tbs = cborwire.AppendBytes(tbs, b.mac.protected)
	tbs = cborwire.AppendBytes(tbs, nil)
	tbs = cborwire.AppendBytes(tbs, payload)
	mac := hmac.New(newHash, key)
	mac.Write(tbs)
	return mac.Sum(nil), nil
}

func macHash(alg int64) (func() hash.Hash, int) {
	switch alg {
	case AlgHMAC256:
		return sha256.New, 32
	case AlgHMAC384:
		return sha512.New384, 48
	case AlgHMAC512:
		return sha512.New, 64
	}
	return nil, 0
}
