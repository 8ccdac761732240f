package cosekey

import (
	"bytes"
	"crypto"
	"crypto/ecdh"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"errors"
	"fmt"

	"github.com/veraison/go-cose"
)

// Key is a P-256 or Ed25519 key, public or private. The private half, when
// present, is any crypto.Signer, so keys held by an HSM or KMS work the same
// as software keys.
type Key struct {
	typ  KeyType
	pub  crypto.PublicKey // *ecdsa.PublicKey (P-256) or ed25519.PublicKey
	priv crypto.Signer    // nil for a public key
	alg  cose.Algorithm   // algorithm recorded with the key; 0 when unspecified
}

// Errors returned when key material is unusable.
var (
	ErrUnsupportedKey = errors.New("cosekey: unsupported key (want P-256 or Ed25519)")
	ErrNoPrivateKey   = errors.New("cosekey: key has no private part")
)

// Generate creates a fresh key for alg (ESP256/ES256 → P-256, Ed25519/EdDSA →
// Ed25519) from crypto/rand.
func Generate(alg cose.Algorithm) (*Key, error) {
	typ, ok := keyTypeForAlg(alg)
	if !ok {
		return nil, fmt.Errorf("cosekey: cannot generate a key for %s", AlgName(alg))
	}
	switch typ {
	case KeyTypeP256:
		sk, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		if err != nil {
			return nil, fmt.Errorf("cosekey: generate P-256 key: %w", err)
		}
		return &Key{typ: typ, pub: &sk.PublicKey, priv: sk, alg: alg}, nil
	default:
		pub, sk, err := ed25519.GenerateKey(rand.Reader)
		if err != nil {
			return nil, fmt.Errorf("cosekey: generate Ed25519 key: %w", err)
		}
		return &Key{typ: typ, pub: pub, priv: sk, alg: alg}, nil
	}
}

// FromSigner wraps a crypto.Signer (a software key, or a handle to an HSM/KMS
// key) whose public key is P-256 ECDSA or Ed25519. alg may be 0 to use the
// default fully specified algorithm for the key type.
func FromSigner(s crypto.Signer, alg cose.Algorithm) (*Key, error) {
	if s == nil {
		return nil, ErrNoPrivateKey
	}
	k, err := FromPublic(s.Public())
	if err != nil {
		return nil, err
	}
	if err := k.setAlg(alg); err != nil {
		return nil, err
	}
	k.priv = s
	return k, nil
}

// FromPublic wraps a P-256 *ecdsa.PublicKey or an ed25519.PublicKey.
func FromPublic(pub crypto.PublicKey) (*Key, error) {
	switch p := pub.(type) {
	case *ecdsa.PublicKey:
		if p == nil || p.Curve != elliptic.P256() {
			return nil, ErrUnsupportedKey
		}
		if _, err := p.ECDH(); err != nil { // rejects points not on the curve
			return nil, fmt.Errorf("cosekey: invalid P-256 public key: %w", err)
		}
		return &Key{typ: KeyTypeP256, pub: p}, nil
	case ed25519.PublicKey:
		if len(p) != ed25519.PublicKeySize {
			return nil, fmt.Errorf("cosekey: Ed25519 public key is %d bytes, want %d", len(p), ed25519.PublicKeySize)
		}
		return &Key{typ: KeyTypeEd25519, pub: p}, nil
	}
	return nil, ErrUnsupportedKey
}

func (k *Key) setAlg(alg cose.Algorithm) error {
	if alg == 0 {
		return nil
	}
	typ, ok := keyTypeForAlg(alg)
	if !ok || typ != k.typ {
		return fmt.Errorf("cosekey: algorithm %s does not fit a %s key", AlgName(alg), k.typ)
	}
	k.alg = alg
	return nil
}

// WithAlg returns a copy of k that records alg as its algorithm.
func (k *Key) WithAlg(alg cose.Algorithm) (*Key, error) {
	c := *k
	if err := c.setAlg(alg); err != nil {
		return nil, err
	}
	return &c, nil
}

// Type reports the key type.
func (k *Key) Type() KeyType { return k.typ }

// Alg is the algorithm recorded with the key, or the fully specified default
// for its type.
func (k *Key) Alg() cose.Algorithm {
	if k.alg != 0 {
		return k.alg
	}
	return DefaultAlg(k.typ)
}

// Public returns the crypto public key (*ecdsa.PublicKey or ed25519.PublicKey).
func (k *Key) Public() crypto.PublicKey { return k.pub }

// PrivateSigner returns the private half, or nil for a public key.
func (k *Key) PrivateSigner() crypto.Signer { return k.priv }

// IsPrivate reports whether k can sign.
func (k *Key) IsPrivate() bool { return k.priv != nil }

// PublicKey returns k without its private half.
func (k *Key) PublicKey() *Key {
	return &Key{typ: k.typ, pub: k.pub, alg: k.alg}
}

// Equal reports whether both keys have the same public key.
func (k *Key) Equal(o *Key) bool {
	if k == nil || o == nil {
		return k == o
	}
	return bytes.Equal(k.Thumbprint(), o.Thumbprint())
}

// Thumbprint is the RFC 9679 COSE Key Thumbprint with SHA-256: the hash of the
// deterministic encoding of the required members only.
func (k *Key) Thumbprint() []byte {
	sum := sha256.Sum256(k.thumbprintInput())
	return sum[:]
}

// KID is the key identifier we put in COSE headers: the RFC 9679 thumbprint.
func (k *Key) KID() []byte { return k.Thumbprint() }

// thumbprintInput encodes {1:kty, -1:crv, -2:x[, -3:y]} in RFC 8949 core
// deterministic order. Written by hand: the layout is fixed and this keeps
// the thumbprint independent of encoder options.
func (k *Key) thumbprintInput() []byte {
	x, y := k.coordinates()
	var b bytes.Buffer
	if k.typ == KeyTypeP256 {
		b.Write([]byte{0xa4, 0x01, 0x02, 0x20, 0x01, 0x21, 0x58, 0x20})
		b.Write(x)
		b.Write([]byte{0x22, 0x58, 0x20})
		b.Write(y)
	} else {
		b.Write([]byte{0xa3, 0x01, 0x01, 0x20, 0x06, 0x21, 0x58, 0x20})
		b.Write(x)
	}
	return b.Bytes()
}

// coordinates returns the fixed-size public coordinates (y is nil for Ed25519).
func (k *Key) coordinates() (x, y []byte) {
	switch p := k.pub.(type) {
	case *ecdsa.PublicKey:
		raw, _ := p.Bytes() // 0x04 || X || Y; validated at construction
		return raw[1:33], raw[33:65]
	case ed25519.PublicKey:
		return []byte(p), nil
	}
	return nil, nil
}

// privateScalar returns the raw private key bytes (P-256 d or Ed25519 seed)
// when the private half is a software key.
func (k *Key) privateScalar() ([]byte, error) {
	switch p := k.priv.(type) {
	case *ecdsa.PrivateKey:
		return p.Bytes()
	case ed25519.PrivateKey:
		return p.Seed(), nil
	case nil:
		return nil, ErrNoPrivateKey
	}
	return nil, errors.New("cosekey: private key is not exportable (external signer)")
}

// ECDHPrivate returns the P-256 private key for key agreement (ECDH-ES in
// SUIT payload encryption and EAT encryption).
func (k *Key) ECDHPrivate() (*ecdh.PrivateKey, error) {
	sk, ok := k.priv.(*ecdsa.PrivateKey)
	if !ok {
		return nil, errors.New("cosekey: ECDH needs a software P-256 private key")
	}
	return sk.ECDH()
}

// ECDHPublic returns the P-256 public key for key agreement.
func (k *Key) ECDHPublic() (*ecdh.PublicKey, error) {
	p, ok := k.pub.(*ecdsa.PublicKey)
	if !ok {
		return nil, errors.New("cosekey: ECDH needs a P-256 key")
	}
	return p.ECDH()
}
