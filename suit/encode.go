package suit

import (
	"fmt"

	"github.com/teep-go/teep/cborwire"
	"github.com/teep-go/teep/cosekey"
)

// TagMode says whether Marshal emits the SUIT_Envelope_Tagged tag (107).
type TagMode int

const (
	TagKeep   TagMode = iota // as parsed / as built
	TagAlways                // emit tag 107 (SUIT examples)
	TagNever                 // untagged (TEEP manifest-list)
)

// MarshalOptions adjust how an envelope is re-emitted. The manifest and
// every authentication block are copied byte for byte, so the result stays
// authentic; only unauthenticated parts (tag, integrated entries, copies of
// severed members) can be changed.
type MarshalOptions struct {
	Tag            TagMode
	DropIntegrated bool         // leave out every integrated payload / dependency
	DropSevered    bool         // leave out the envelope copies of severed members
	Integrated     []Integrated // added, replacing entries with the same key
}

// Marshal re-emits the envelope with map keys in deterministic order.
func (e *Envelope) Marshal(o MarshalOptions) ([]byte, error) {
	entries := []cborwire.MapEntry{
		{Key: intKey(keyAuth), Val: e.authItem},
		{Key: intKey(keyManifest), Val: e.manifestItem},
	}
	if !o.DropSevered {
		for s, item := range e.severed {
			entries = append(entries, cborwire.MapEntry{Key: intKey(int64(s)), Val: item})
		}
	}
	seen := map[string]bool{}
	for _, p := range o.Integrated {
		if seen[p.Key] {
			return nil, fmt.Errorf("suit: integrated key %q given twice", p.Key)
		}
		seen[p.Key] = true
		entries = append(entries, cborwire.MapEntry{Key: cborwire.AppendText(nil, p.Key), Val: cborwire.AppendBytes(nil, p.Data)})
	}
	if !o.DropIntegrated {
		for _, p := range e.integrated {
			if !seen[p.Key] {
				entries = append(entries, cborwire.MapEntry{Key: cborwire.AppendText(nil, p.Key), Val: cborwire.AppendBytes(nil, p.Data)})
			}
		}
	}
	tagged := e.Tagged
	switch o.Tag {
	case TagAlways:
		tagged = true
	case TagNever:
		tagged = false
	}
	var out []byte
	if tagged {
		out = cborwire.AppendTag(out, TagEnvelope)
	}
	return cborwire.AppendMap(out, entries), nil
}

// Sign adds one COSE_Sign1 authentication block per signer (ESP256 or
// Ed25519 by the signer's key, kid = RFC 9679 thumbprint in the unprotected
// header), each over the manifest digest. It re-checks the digest against
// the manifest bytes first, so a signer never signs a digest it did not
// compute.
func (e *Envelope) Sign(signers ...*cosekey.Signer) error {
	if len(signers) == 0 {
		return fmt.Errorf("suit: sign: no signer")
	}
	if err := e.recheckDigest(); err != nil {
		return err
	}
	blocks := make([]AuthBlock, 0, len(signers))
	for _, s := range signers {
		raw, err := cosekey.Sign1Detached(e.digestRaw, s, nil)
		if err != nil {
			return fmt.Errorf("suit: sign: %w", err)
		}
		lim := e.limits
		b, err := parseAuthBlock(raw, &lim)
		if err != nil {
			return fmt.Errorf("suit: sign: produced block does not parse: %w", err)
		}
		blocks = append(blocks, b)
	}
	return e.setBlocks(append(append([]AuthBlock{}, e.blocks...), blocks...))
}

// SignMAC adds a COSE_Mac0 authentication block with the shared key (for
// symmetric-key devices, draft-ietf-suit-mti profile
// suit-sha256-hmac-a128kw-a128ctr). alg 0 means HMAC 256/256.
func (e *Envelope) SignMAC(k MACKey, alg int64) error {
	if alg == 0 {
		alg = AlgHMAC256
	}
	newHash, _ := macHash(alg)
	if newHash == nil {
		return errorf(ErrAlgUnsupported, "MAC algorithm %d", alg)
	}
	if len(k.Key) == 0 {
		return fmt.Errorf("suit: sign: empty MAC key")
	}
	if err := e.recheckDigest(); err != nil {
		return err
	}
	protected := cborwire.AppendMap(nil, []cborwire.MapEntry{{Key: intKey(1), Val: cborwire.AppendInt(nil, alg)}})
	var unprot []cborwire.MapEntry
	if k.KID != nil {
		unprot = append(unprot, cborwire.MapEntry{Key: intKey(4), Val: cborwire.AppendBytes(nil, k.KID)})
	}
	b := AuthBlock{Kind: AuthMac0, mac: &macBlock{protected: protected, alg: alg}}
	tag, err := b.computeMAC(e.digestRaw, k.Key)
	if err != nil {
		return err
	}
	raw := cborwire.AppendTag(nil, uint64(AuthMac0))
	raw = cborwire.AppendArrayHead(raw, 4)
	raw = cborwire.AppendBytes(raw, protected)
	raw = cborwire.AppendMap(raw, unprot)
	raw = cborwire.AppendNull(raw)
	raw = cborwire.AppendBytes(raw, tag)
	lim := e.limits
	nb, err := parseAuthBlock(raw, &lim)
	if err != nil {
		return err
	}
	return e.setBlocks(append(append([]AuthBlock{}, e.blocks...), nb))
}

// StripAuth removes every authentication block (for re-signing by a trusted
// intermediary); the digest stays.
func (e *Envelope) StripAuth() error { return e.setBlocks(nil) }

func (e *Envelope) recheckDigest() error {
	ok, err := e.digest.Matches(e.manifestItem)
	if err != nil {
		return err
	}
	if !ok {
		return errorf(ErrUnauthorised, "manifest digest mismatch; refusing to sign")
	}
	return nil
}

// setBlocks rebuilds the authentication wrapper and the raw envelope.
func (e *Envelope) setBlocks(blocks []AuthBlock) error {
	if len(blocks) > e.limits.MaxAuthBlocks {
		return errorf(ErrLimit, "%d authentication blocks (limit %d)", len(blocks), e.limits.MaxAuthBlocks)
	}
	w := cborwire.AppendArrayHead(nil, 1+len(blocks))
	w = cborwire.AppendBytes(w, e.digestRaw)
	for _, b := range blocks {
		w = cborwire.AppendBytes(w, b.Raw)
	}
	e.authItem = cborwire.AppendBytes(nil, w)
	e.blocks = blocks
	raw, err := e.Marshal(MarshalOptions{})
	if err != nil {
		return err
	}
	e.raw = raw
	return nil
}
