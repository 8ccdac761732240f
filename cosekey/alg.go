package cosekey

import (
	"fmt"

	"github.com/veraison/go-cose"
)

// COSE algorithm identifiers used by TEEP, SUIT and EAT.
const (
	AlgESP256  cose.Algorithm = -9  // RFC 9864: ECDSA using P-256 and SHA-256
	AlgEd25519 cose.Algorithm = -19 // RFC 9864: EdDSA using Ed25519
	AlgES256   cose.Algorithm = -7  // RFC 9053: ECDSA w/ SHA-256 (legacy alias of ESP256 for P-256 keys)
	AlgEdDSA   cose.Algorithm = -8  // RFC 9053: EdDSA (legacy alias of Ed25519 for Ed25519 keys)
)

// KeyType is the kind of key material a Key holds.
type KeyType int

const (
	KeyTypeP256    KeyType = iota + 1 // COSE kty EC2 (2), crv P-256 (1)
	KeyTypeEd25519                    // COSE kty OKP (1), crv Ed25519 (6)
)

func (t KeyType) String() string {
	switch t {
	case KeyTypeP256:
		return "P-256"
	case KeyTypeEd25519:
		return "Ed25519"
	}
	return fmt.Sprintf("KeyType(%d)", int(t))
}

// AlgName returns the IANA name of a COSE algorithm ("ESP256", "Ed25519", ...).
func AlgName(alg cose.Algorithm) string {
	switch alg {
	case AlgESP256:
		return "ESP256"
	case AlgEd25519:
		return "Ed25519"
	case AlgES256:
		return "ES256"
	case AlgEdDSA:
		return "EdDSA"
	}
	return fmt.Sprintf("alg(%d)", int64(alg))
}

// ParseAlg maps a user-facing algorithm name to its COSE id. Names are
// case-insensitive; both the fully specified and the legacy names are known.
func ParseAlg(name string) (cose.Algorithm, error) {
	switch lower(name) {
	case "esp256", "-9":
		return AlgESP256, nil
	case "ed25519", "-19":
		return AlgEd25519, nil
	case "es256", "-7":
		return AlgES256, nil
	case "eddsa", "-8":
		return AlgEdDSA, nil
	}
	return 0, fmt.Errorf("cosekey: unknown algorithm %q (want esp256 or ed25519)", name)
}

// keyTypeForAlg tells which key type an algorithm needs.
func keyTypeForAlg(alg cose.Algorithm) (KeyType, bool) {
	switch alg {
	case AlgESP256, AlgES256:
		return KeyTypeP256, true
	case AlgEd25519, AlgEdDSA:
		return KeyTypeEd25519, true
	}
	return 0, false
}

// DefaultAlg is the fully specified algorithm we sign with for a key type.
func DefaultAlg(t KeyType) cose.Algorithm {
	if t == KeyTypeEd25519 {
		return AlgEd25519
	}
	return AlgESP256
}

// legacyAlg is the go-cose algorithm whose math equals alg.
func legacyAlg(alg cose.Algorithm) cose.Algorithm {
	switch alg {
	case AlgESP256:
		return AlgES256
	case AlgEd25519:
		return AlgEdDSA
	}
	return alg
}

func lower(s string) string {
	b := []byte(s)
	for i, c := range b {
		if c >= 'A' && c <= 'Z' {
			b[i] = c + 'a' - 'A'
		}
	}
	return string(b)
}
