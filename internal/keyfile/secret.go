package keyfile

import (
	"bytes"
	"encoding/hex"
	"errors"
	"fmt"

	"github.com/fxamacker/cbor/v2"
)

// MaxSecretSize bounds a symmetric key (HMAC key or AES key-encryption
// key); the largest we use is 64 bytes (HMAC-512), so this is generous.
const MaxSecretSize = 1024

// ErrAmbiguousSecret is returned for a secret file that could be read two
// ways: raw bytes that are all hex digits would silently become a key of
// half the length if read as hex.
var ErrAmbiguousSecret = errors.New("ambiguous secret: the bytes are all hex digits; start the file with \"hex:\" to read them as hex or \"raw:\" to use them as they are")

// ParseSecret reads a symmetric key from the content of a key file, in one
// of four explicit forms:
//
//	hex:<hex digits>   the key in hex (surrounding white space ignored)
//	raw:<bytes>        the bytes after the prefix, as they are
//	a COSE_Key map     kty 4 (Symmetric, RFC 9053 §6.1) with k (-1)
//	other bytes        raw, unless they could be hex text (ErrAmbiguousSecret)
func ParseSecret(data []byte) ([]byte, error) {
	if len(data) > MaxSecretSize+len("hex:")*2+64 {
		return nil, fmt.Errorf("secret of %d bytes is larger than the limit of %d", len(data), MaxSecretSize)
	}
	var key []byte
	switch {
	case bytes.HasPrefix(data, []byte("hex:")):
		b, err := hex.DecodeString(string(bytes.TrimSpace(data[len("hex:"):])))
		if err != nil {
			return nil, fmt.Errorf("secret after hex: is not hex: %w", err)
		}
		key = b
	case bytes.HasPrefix(data, []byte("raw:")):
		key = bytes.Clone(data[len("raw:"):])
	case len(data) > 0 && data[0]>>5 == 5: // a CBOR map
		b, err := symmetricCOSEKey(data)
		if err != nil {
			return nil, err
		}
		key = b
	case looksHex(data):
		return nil, ErrAmbiguousSecret
	default:
		key = bytes.Clone(data)
	}
	if len(key) == 0 {
		return nil, errors.New("secret is empty")
	}
	if len(key) > MaxSecretSize {
		return nil, fmt.Errorf("secret of %d bytes is larger than the limit of %d", len(key), MaxSecretSize)
	}
	return key, nil
}

// looksHex says whether data, less surrounding white space, is a non-empty
// run of an even number of hex digits.
func looksHex(data []byte) bool {
	t := bytes.TrimSpace(data)
	if len(t) == 0 || len(t)%2 != 0 {
		return false
	}
	for _, c := range t {
		if !(c >= '0' && c <= '9' || c >= 'a' && c <= 'f' || c >= 'A' && c <= 'F') {
			return false
		}
	}
	return true
}

var strictCBOR, _ = cbor.DecOptions{DupMapKey: cbor.DupMapKeyEnforcedAPF, IndefLength: cbor.IndefLengthForbidden}.DecMode()

// symmetricCOSEKey returns k of a COSE_Key with kty Symmetric (4).
func symmetricCOSEKey(data []byte) ([]byte, error) {
	var m map[int64]cbor.RawMessage
	if err := strictCBOR.Unmarshal(data, &m); err != nil {
		return nil, fmt.Errorf("secret COSE_Key: %w", err)
	}
	var kty int64
	if err := strictCBOR.Unmarshal(m[1], &kty); err != nil || kty != 4 {
		return nil, errors.New("secret COSE_Key: kty (1) must be 4 (Symmetric)")
	}
	var k []byte
	if err := strictCBOR.Unmarshal(m[-1], &k); err != nil {
		return nil, errors.New("secret COSE_Key: k (-1) must be a byte string")
	}
	return k, nil
}
