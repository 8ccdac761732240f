package cosekey

import (
	"fmt"
	"io"

	"github.com/veraison/go-cose"
)

// Signer signs COSE structures with one key. It implements cose.Signer and
// reports the algorithm it was created for (ESP256 -9 or Ed25519 -19 by
// default) while the arithmetic is done by go-cose's ES256 / EdDSA signer,
// whose math is identical (RFC 9864 §2).
type Signer struct {
	alg   cose.Algorithm
	key   *Key
	inner cose.Signer
}

// NewSigner makes a Signer from any crypto.Signer holding a P-256 or Ed25519
// key. alg 0 picks ESP256 or Ed25519 from the key type.
func NewSigner(key *Key, alg cose.Algorithm) (*Signer, error) {
	if key == nil || key.priv == nil {
		return nil, ErrNoPrivateKey
	}
	if alg == 0 {
		alg = key.Alg()
	}
	typ, ok := keyTypeForAlg(alg)
	if !ok {
		return nil, fmt.Errorf("cosekey: cannot sign with %s", AlgName(alg))
	}
	if typ != key.typ {
		return nil, fmt.Errorf("cosekey: algorithm %s does not fit a %s key", AlgName(alg), key.typ)
	}
	inner, err := cose.NewSigner(legacyAlg(alg), key.priv)
	if err != nil {
		return nil, fmt.Errorf("cosekey: %w", err)
	}
	return &Signer{alg: alg, key: key.PublicKey(), inner: inner}, nil
}

// Algorithm is the COSE algorithm id written into the protected header.
func (s *Signer) Algorithm() cose.Algorithm { return s.alg }

// Sign signs content (a Sig_structure) and returns the raw COSE signature
// (r||s for ECDSA).
func (s *Signer) Sign(rand io.Reader, content []byte) ([]byte, error) {
	return s.inner.Sign(rand, content)
}

// KID is the RFC 9679 thumbprint of the signing key.
func (s *Signer) KID() []byte { return s.key.KID() }

// PublicKey returns the public half of the signing key.
func (s *Signer) PublicKey() *Key { return s.key }

// verifier adapts go-cose's ES256 / EdDSA verifiers to the algorithm id found
// in a message header.
type verifier struct {
	alg   cose.Algorithm
	inner cose.Verifier
}

func (v verifier) Algorithm() cose.Algorithm { return v.alg }
func (v verifier) Verify(content, sig []byte) error {
	return v.inner.Verify(content, sig)
}

// Verifier returns a cose.Verifier for alg with k's public key, or an error if
// alg does not fit the key type.
func (k *Key) Verifier(alg cose.Algorithm) (cose.Verifier, error) {
	typ, ok := keyTypeForAlg(alg)
	if !ok {
		return nil, fmt.Errorf("%w: %s", ErrUnsupportedAlg, AlgName(alg))
	}
	if typ != k.typ {
		return nil, fmt.Errorf("%w: %s with a %s key", ErrKeyMismatch, AlgName(alg), k.typ)
	}
	inner, err := cose.NewVerifier(legacyAlg(alg), k.pub)
	if err != nil {
		return nil, fmt.Errorf("cosekey: %w", err)
	}
	return verifier{alg: alg, inner: inner}, nil
}
