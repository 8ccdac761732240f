package suit

import (
	"bytes"
	"crypto/aes"
	"crypto/cipher"
	"crypto/ecdh"
	"crypto/hkdf"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/binary"
	"errors"
	"fmt"
	"io"

	"github.com/teep-go/teep/cborwire"
	"golang.org/x/crypto/chacha20poly1305"
)

// Payload encryption, draft-ietf-suit-firmware-encryption: the
// suit-parameter-encryption-info value is a COSE_Encrypt (tag 96) with a
// detached ciphertext and one or more recipients that carry the wrapped
// content-encryption key (CEK).

// COSE algorithm ids for payload encryption (RFC 9053, RFC 9459, RFC 8152).
const (
	AlgA128GCM          int64 = 1
	AlgA192GCM          int64 = 2
	AlgA256GCM          int64 = 3
	AlgChaCha20Poly1305 int64 = 24
	AlgA128CTR          int64 = -65534
	AlgA192CTR          int64 = -65533
	AlgA256CTR          int64 = -65532

	AlgA128KW                int64 = -3
	AlgA192KW                int64 = -4
	AlgA256KW                int64 = -5
	AlgECDHESA128KW          int64 = -29
	AlgECDHESA192KW          int64 = -30
	AlgECDHESA256KW          int64 = -31
	tagCOSEEncrypt                 = 96
	payloadEncryptionContext       = "SUIT Payload Encryption"
)

// EncryptionAlgName names a content or key-wrap algorithm.
func EncryptionAlgName(alg int64) string {
	switch alg {
	case AlgA128GCM:
		return "A128GCM"
	case AlgA192GCM:
		return "A192GCM"
	case AlgA256GCM:
		return "A256GCM"
	case AlgChaCha20Poly1305:
		return "ChaCha20/Poly1305"
	case AlgA128CTR:
		return "A128CTR"
	case AlgA192CTR:
		return "A192CTR"
	case AlgA256CTR:
		return "A256CTR"
	case AlgA128KW:
		return "A128KW"
	case AlgA192KW:
		return "A192KW"
	case AlgA256KW:
		return "A256KW"
	case AlgECDHESA128KW:
		return "ECDH-ES+A128KW"
	case AlgECDHESA192KW:
		return "ECDH-ES+A192KW"
	case AlgECDHESA256KW:
		return "ECDH-ES+A256KW"
	}
	return fmt.Sprintf("alg(%d)", alg)
}

// contentKeyLen is the CEK size for a content algorithm (0: unsupported).
func contentKeyLen(alg int64) int {
	switch alg {
	case AlgA128GCM, AlgA128CTR:
		return 16
	case AlgA192GCM, AlgA192CTR:
		return 24
	case AlgA256GCM, AlgA256CTR, AlgChaCha20Poly1305:
		return 32
	}
	return 0
}

func isCTR(alg int64) bool { return alg == AlgA128CTR || alg == AlgA192CTR || alg == AlgA256CTR }

// kwKeyLen is the KEK size for a key-wrap algorithm (0: unsupported).
func kwKeyLen(alg int64) int {
	switch alg {
	case AlgA128KW, AlgECDHESA128KW:
		return 16
	case AlgA192KW, AlgECDHESA192KW:
		return 24
	case AlgA256KW, AlgECDHESA256KW:
		return 32
	}
	return 0
}

func isECDH(alg int64) bool {
	return alg == AlgECDHESA128KW || alg == AlgECDHESA192KW || alg == AlgECDHESA256KW
}

// EncryptionInfo is a decoded SUIT_Encryption_Info.
type EncryptionInfo struct {
	Raw        []byte // encoded tagged COSE_Encrypt
	ContentAlg int64
	Protected  []byte // protected header bstr content
	IV         []byte
	Recipients []Recipient
}

// Recipient is one COSE_recipient of an EncryptionInfo.
type Recipient struct {
	Alg        int64
	KID        []byte
	Protected  []byte          // recipient protected header bstr content (KDF input)
	Ephemeral  *ecdh.PublicKey // ECDH-ES sender key, for ECDH algorithms
	WrappedKey []byte
}

// ParseEncryptionInfo decodes SUIT_Encryption_Info (the content of the
// encryption-info parameter's bstr).
func ParseEncryptionInfo(data []byte) (*EncryptionInfo, error) {
	lim := DefaultLimits()
	if err := wellFormed(data, &lim); err != nil {
		return nil, in("encryption-info", err)
	}
	c := newCur(data, "encryption-info")
	t, ok := c.tag()
	if !ok || t != tagCOSEEncrypt {
		return nil, errorf(ErrCOSEUnsupported, "encryption-info is not a COSE_Encrypt (tag 96)")
	}
	n, err := c.array("COSE_Encrypt")
	if err != nil {
		return nil, err
	}
	if n != 4 {
		return nil, c.errf(0, "COSE_Encrypt has %d elements (want 4)", n)
	}
	ei := &EncryptionInfo{Raw: data}
	if ei.Protected, err = c.bytes("protected header"); err != nil {
		return nil, err
	}
	ph, err := parseHeaderMap(ei.Protected, true)
	if err != nil {
		return nil, err
	}
	ur, err := c.skip()
	if err != nil {
		return nil, err
	}
	uh, err := parseHeaderMap(ur, false)
	if err != nil {
		return nil, err
	}
	ei.ContentAlg, ei.IV = ph.alg, uh.iv
	if ei.ContentAlg == 0 {
		ei.ContentAlg = uh.alg
	}
	if !c.isNull() {
		return nil, c.errf(c.Off, "COSE_Encrypt ciphertext must be detached (null)")
	}
	rn, err := c.array("recipients")
	if err != nil {
		return nil, err
	}
	if rn == 0 {
		return nil, c.errf(c.Off, "COSE_Encrypt without recipients")
	}
	for i := 0; i < rn; i++ {
		r, err := parseRecipient(c)
		if err != nil {
			return nil, fmt.Errorf("recipient %d: %w", i, err)
		}
		ei.Recipients = append(ei.Recipients, r)
	}
	if err := c.end(); err != nil {
		return nil, err
	}
	if err := ei.check(); err != nil {
		return nil, err
	}
	return ei, nil
}

func (ei *EncryptionInfo) check() error {
	switch {
	case contentKeyLen(ei.ContentAlg) == 0:
		return errorf(ErrAlgUnsupported, "content encryption algorithm %s", EncryptionAlgName(ei.ContentAlg))
	case isCTR(ei.ContentAlg) && len(ei.Protected) != 0:
		// draft-ietf-suit-firmware-encryption: AES-CTR has no AAD, so the
		// protected header must be empty.
		return errorf(ErrMalformed, "%s requires an empty protected header", EncryptionAlgName(ei.ContentAlg))
	case isCTR(ei.ContentAlg) && len(ei.IV) != aes.BlockSize:
		return errorf(ErrMalformed, "%s needs a 16-byte IV, got %d", EncryptionAlgName(ei.ContentAlg), len(ei.IV))
	case !isCTR(ei.ContentAlg) && len(ei.IV) != 12:
		return errorf(ErrMalformed, "%s needs a 12-byte IV, got %d", EncryptionAlgName(ei.ContentAlg), len(ei.IV))
	}
	return nil
}

func parseRecipient(c *cur) (Recipient, error) {
	var r Recipient
	n, err := c.array("recipient")
	if err != nil {
		return r, err
	}
	if n != 3 {
		return r, c.errf(c.Off, "recipient has %d elements (want 3; nested recipients are not supported)", n)
	}
	if r.Protected, err = c.bytes("recipient protected"); err != nil {
		return r, err
	}
	ph, err := parseHeaderMap(r.Protected, true)
	if err != nil {
		return r, err
	}
	ur, err := c.skip()
	if err != nil {
		return r, err
	}
	uh, err := parseHeaderMap(ur, false)
	if err != nil {
		return r, err
	}
	r.Alg, r.KID = ph.alg, uh.kid
	if r.Alg == 0 {
		r.Alg = uh.alg
	}
	if ph.kid != nil {
		r.KID = ph.kid
	}
	if r.WrappedKey, err = c.bytes("wrapped key"); err != nil {
		return r, err
	}
	switch {
	case kwKeyLen(r.Alg) == 0:
		return r, errorf(ErrAlgUnsupported, "key distribution algorithm %s", EncryptionAlgName(r.Alg))
	case isECDH(r.Alg):
		eph := uh.ephKey
		if eph == nil {
			eph = ph.ephKey
		}
		if eph == nil {
			return r, errorf(ErrMalformed, "%s recipient has no ephemeral key (-1)", EncryptionAlgName(r.Alg))
		}
		if r.Ephemeral, err = parseECDHKey(eph); err != nil {
			return r, err
		}
	}
	return r, nil
}

// parseECDHKey reads a public COSE_Key for P-256, P-384, P-521 or X25519.
func parseECDHKey(data []byte) (*ecdh.PublicKey, error) {
	c := newCur(data, "ephemeral key")
	n, err := c.mapLen("COSE_Key")
	if err != nil {
		return nil, err
	}
	var kty, crv int64
	var x, y []byte
	for i := 0; i < n; i++ {
		label, err := c.int("COSE_Key label")
		if err != nil {
			return nil, err
		}
		switch label {
		case 1:
			kty, err = c.int("kty")
		case -1:
			crv, err = c.int("crv")
		case -2:
			x, err = c.bytes("x")
		case -3:
			if h, _ := c.peek(); h.major == cborwire.MajorSimple {
				return nil, errorf(ErrAlgUnsupported, "compressed ephemeral points are not supported")
			}
			y, err = c.bytes("y")
		default:
			_, err = c.skip()
		}
		if err != nil {
			return nil, err
		}
	}
	var curve ecdh.Curve
	var size int
	switch {
	case kty == 2 && crv == 1:
		curve, size = ecdh.P256(), 32
	case kty == 2 && crv == 2:
		curve, size = ecdh.P384(), 48
	case kty == 2 && crv == 3:
		curve, size = ecdh.P521(), 66
	case kty == 1 && crv == 4:
		if len(x) != 32 {
			return nil, errorf(ErrMalformed, "X25519 key of %d bytes", len(x))
		}
		return ecdh.X25519().NewPublicKey(x)
	default:
		return nil, errorf(ErrAlgUnsupported, "ephemeral key kty %d crv %d", kty, crv)
	}
	if len(x) != size || len(y) != size {
		return nil, errorf(ErrMalformed, "ephemeral key coordinates have the wrong size")
	}
	pt := append(append([]byte{4}, x...), y...)
	k, err := curve.NewPublicKey(pt)
	if err != nil {
		return nil, fmt.Errorf("%w: ephemeral key: %v", ErrMalformed, err)
	}
	return k, nil
}

// ECDHPrivateKey is a recipient key for ECDH-ES. *ecdh.PrivateKey implements
// it; a TEE can implement it over a key it never exports.
type ECDHPrivateKey interface {
	ECDH(remote *ecdh.PublicKey) ([]byte, error)
	PublicKey() *ecdh.PublicKey
}

// DecryptionKeys are the keys a device can use to unwrap a CEK. KIDs, when
// both sides have one, must match; otherwise every key of the right kind is
// tried (AES key wrap has an integrity check, so a wrong key is detected).
type DecryptionKeys struct {
	ECDH []ECDHRecipientKey
	KEKs []KEK
}

// ECDHRecipientKey is a device key for ECDH-ES+AES-KW recipients.
type ECDHRecipientKey struct {
	KID []byte
	Key ECDHPrivateKey
}

// KEK is a pre-shared AES key-encryption key for AES-KW recipients.
type KEK struct {
	KID []byte
	Key []byte
}

// IsZero reports whether no keys are configured.
func (k DecryptionKeys) IsZero() bool { return len(k.ECDH) == 0 && len(k.KEKs) == 0 }

// CEK unwraps the content-encryption key with the first recipient a
// configured key opens.
func (ei *EncryptionInfo) CEK(keys DecryptionKeys) ([]byte, error) {
	if keys.IsZero() {
		return nil, errorf(ErrUnauthorised, "payload is encrypted but no decryption key is configured")
	}
	want := contentKeyLen(ei.ContentAlg)
	for _, r := range ei.Recipients {
		kekLen := kwKeyLen(r.Alg)
		if isECDH(r.Alg) {
			for _, k := range keys.ECDH {
				if !kidFits(r.KID, k.KID) || k.Key.PublicKey().Curve() != r.Ephemeral.Curve() {
					continue
				}
				z, err := k.Key.ECDH(r.Ephemeral)
				if err != nil {
					continue
				}
				kek, err := deriveKEK(z, r.Alg, r.Protected, kekLen)
				if err != nil {
					return nil, err
				}
				if cek, err := aesKeyUnwrap(kek, r.WrappedKey); err == nil && len(cek) == want {
					return cek, nil
				}
			}
			continue
		}
		for _, k := range keys.KEKs {
			if !kidFits(r.KID, k.KID) || len(k.Key) != kekLen {
				continue
			}
			if cek, err := aesKeyUnwrap(k.Key, r.WrappedKey); err == nil && len(cek) == want {
				return cek, nil
			}
		}
	}
	return nil, errorf(ErrUnauthorised, "no configured key unwraps the content-encryption key")
}

func kidFits(a, b []byte) bool { return a == nil || b == nil || bytes.Equal(a, b) }

// deriveKEK runs HKDF-SHA256 over the ECDH secret with the COSE_KDF_Context
// of draft-ietf-suit-firmware-encryption §6.2 (RFC 9053 §5.2):
// [kw-alg, [nil,nil,nil], [nil,nil,nil], [bits, protected, 'SUIT Payload Encryption']].
func deriveKEK(z []byte, alg int64, protected []byte, n int) ([]byte, error) {
	kwAlg := map[int64]int64{AlgECDHESA128KW: AlgA128KW, AlgECDHESA192KW: AlgA192KW, AlgECDHESA256KW: AlgA256KW}[alg]
	info := cborwire.AppendArrayHead(nil, 4)
	info = cborwire.AppendInt(info, kwAlg)
	info = append(info, 0x83, 0xf6, 0xf6, 0xf6, 0x83, 0xf6, 0xf6, 0xf6)
	info = cborwire.AppendArrayHead(info, 3)
	info = cborwire.AppendUint(info, uint64(n*8))
	info = cborwire.AppendBytes(info, protected)
	info = cborwire.AppendBytes(info, []byte(payloadEncryptionContext))
	return hkdf.Key(sha256.New, z, nil, string(info), n)
}

// Decrypt decrypts a whole ciphertext with the CEK.
func (ei *EncryptionInfo) Decrypt(cek, ciphertext []byte) ([]byte, error) {
	if isCTR(ei.ContentAlg) {
		block, err := aes.NewCipher(cek)
		if err != nil {
			return nil, err
		}
		out := make([]byte, len(ciphertext))
		cipher.NewCTR(block, ei.IV).XORKeyStream(out, ciphertext)
		return out, nil
	}
	aead, err := newAEAD(ei.ContentAlg, cek)
	if err != nil {
		return nil, err
	}
	out, err := aead.Open(nil, ei.IV, ciphertext, encStructure(ei.Protected))
	if err != nil {
		return nil, errorf(ErrUnauthorised, "payload decryption failed: authentication tag mismatch")
	}
	return out, nil
}

// Streamable reports whether DecryptReader can decrypt without buffering
// (AES-CTR); AEAD modes need the whole ciphertext to check the tag.
func (ei *EncryptionInfo) Streamable() bool { return isCTR(ei.ContentAlg) }

// DecryptReader decrypts an AES-CTR ciphertext as it is read.
func (ei *EncryptionInfo) DecryptReader(cek []byte, r io.Reader) (io.Reader, error) {
	if !isCTR(ei.ContentAlg) {
		return nil, fmt.Errorf("suit: %s cannot be decrypted as a stream", EncryptionAlgName(ei.ContentAlg))
	}
	block, err := aes.NewCipher(cek)
	if err != nil {
		return nil, err
	}
	return cipher.StreamReader{S: cipher.NewCTR(block, ei.IV), R: r}, nil
}

func newAEAD(alg int64, key []byte) (cipher.AEAD, error) {
	if alg == AlgChaCha20Poly1305 {
		return chacha20poly1305.New(key)
	}
	block, err := aes.NewCipher(key)
	if err != nil {
		return nil, err
	}
	return cipher.NewGCM(block)
}

// encStructure is Enc_structure = ["Encrypt", protected, external_aad (empty bstr)].
func encStructure(protected []byte) []byte {
	b := cborwire.AppendArrayHead(nil, 3)
	b = cborwire.AppendText(b, "Encrypt")
	b = cborwire.AppendBytes(b, protected)
	return cborwire.AppendBytes(b, nil)
}

// EncryptOptions describe how the builder encrypts a payload.
type EncryptOptions struct {
	// ContentAlg: AlgA128GCM (default), AlgA256GCM, AlgA128CTR, AlgA256CTR,
	// AlgChaCha20Poly1305, ...
	ContentAlg int64
	// Exactly one of RecipientKey (ECDH-ES+AES-KW to a device public key)
	// and KEK (AES-KW with a pre-shared key) must be set.
	RecipientKey *ecdh.PublicKey
	KEK          []byte
	// KID is put in the recipient's unprotected header when set.
	KID []byte
	// KeyWrapAlg overrides the default (ECDH-ES+A128KW, or AxxxKW by KEK size).
	KeyWrapAlg int64
	Rand       io.Reader // crypto/rand when nil
}

// Encrypt encrypts plaintext and returns the detached ciphertext and the
// encoded SUIT_Encryption_Info.
func Encrypt(plaintext []byte, o EncryptOptions) (ciphertext, info []byte, err error) {
	rnd := o.Rand
	if rnd == nil {
		rnd = rand.Reader
	}
	alg := o.ContentAlg
	if alg == 0 {
		alg = AlgA128GCM
	}
	klen := contentKeyLen(alg)
	if klen == 0 {
		return nil, nil, errorf(ErrAlgUnsupported, "content encryption algorithm %s", EncryptionAlgName(alg))
	}
	if (o.RecipientKey == nil) == (o.KEK == nil) {
		return nil, nil, errors.New("suit: encrypt: set exactly one of RecipientKey and KEK")
	}
	cek := make([]byte, klen)
	ivLen := 12
	if isCTR(alg) {
		ivLen = aes.BlockSize
	}
	iv := make([]byte, ivLen)
	if _, err := io.ReadFull(rnd, cek); err != nil {
		return nil, nil, err
	}
	if _, err := io.ReadFull(rnd, iv); err != nil {
		return nil, nil, err
	}
	var protected []byte
	if !isCTR(alg) {
		protected = cborwire.AppendMap(nil, []cborwire.MapEntry{{Key: intKey(1), Val: cborwire.AppendInt(nil, alg)}})
	}
	ei := &EncryptionInfo{ContentAlg: alg, Protected: protected, IV: iv}
	if isCTR(alg) {
		ciphertext, _ = ei.Decrypt(cek, plaintext) // CTR is symmetric
	} else {
		aead, err := newAEAD(alg, cek)
		if err != nil {
			return nil, nil, err
		}
		ciphertext = aead.Seal(nil, iv, plaintext, encStructure(protected))
	}
	recipient, err := wrapCEK(cek, o, rnd)
	if err != nil {
		return nil, nil, err
	}
	// 96([protected, {1: alg (CTR only), 5: iv}, nil, [recipient]])
	unprot := []cborwire.MapEntry{{Key: intKey(5), Val: cborwire.AppendBytes(nil, iv)}}
	if isCTR(alg) {
		unprot = append(unprot, cborwire.MapEntry{Key: intKey(1), Val: cborwire.AppendInt(nil, alg)})
	}
	info = cborwire.AppendTag(nil, tagCOSEEncrypt)
	info = cborwire.AppendArrayHead(info, 4)
	info = cborwire.AppendBytes(info, protected)
	info = cborwire.AppendMap(info, unprot)
	info = cborwire.AppendNull(info)
	info = cborwire.AppendArrayHead(info, 1)
	info = append(info, recipient...)
	return ciphertext, info, nil
}

func wrapCEK(cek []byte, o EncryptOptions, rnd io.Reader) ([]byte, error) {
	alg := o.KeyWrapAlg
	var unprot []cborwire.MapEntry
	if o.KID != nil {
		unprot = append(unprot, cborwire.MapEntry{Key: intKey(4), Val: cborwire.AppendBytes(nil, o.KID)})
	}
	if o.KEK != nil {
		if alg == 0 {
			alg = map[int]int64{16: AlgA128KW, 24: AlgA192KW, 32: AlgA256KW}[len(o.KEK)]
		}
		if isECDH(alg) || kwKeyLen(alg) != len(o.KEK) {
			return nil, fmt.Errorf("suit: encrypt: KEK of %d bytes does not fit %s", len(o.KEK), EncryptionAlgName(alg))
		}
		wrapped, err := aesKeyWrap(o.KEK, cek)
		if err != nil {
			return nil, err
		}
		unprot = append(unprot, cborwire.MapEntry{Key: intKey(1), Val: cborwire.AppendInt(nil, alg)})
		r := cborwire.AppendArrayHead(nil, 3)
		r = cborwire.AppendBytes(r, nil)
		r = cborwire.AppendMap(r, unprot)
		return cborwire.AppendBytes(r, wrapped), nil
	}
	if alg == 0 {
		alg = AlgECDHESA128KW
	}
	if !isECDH(alg) {
		return nil, fmt.Errorf("suit: encrypt: %s is not an ECDH-ES algorithm", EncryptionAlgName(alg))
	}
	eph, err := o.RecipientKey.Curve().GenerateKey(rnd)
	if err != nil {
		return nil, err
	}
	z, err := eph.ECDH(o.RecipientKey)
	if err != nil {
		return nil, err
	}
	protected := cborwire.AppendMap(nil, []cborwire.MapEntry{{Key: intKey(1), Val: cborwire.AppendInt(nil, alg)}})
	kek, err := deriveKEK(z, alg, protected, kwKeyLen(alg))
	if err != nil {
		return nil, err
	}
	wrapped, err := aesKeyWrap(kek, cek)
	if err != nil {
		return nil, err
	}
	ek, err := encodeECDHKey(eph.PublicKey())
	if err != nil {
		return nil, err
	}
	unprot = append(unprot, cborwire.MapEntry{Key: intKey(-1), Val: ek})
	r := cborwire.AppendArrayHead(nil, 3)
	r = cborwire.AppendBytes(r, protected)
	r = cborwire.AppendMap(r, unprot)
	return cborwire.AppendBytes(r, wrapped), nil
}

func encodeECDHKey(k *ecdh.PublicKey) ([]byte, error) {
	raw := k.Bytes()
	switch k.Curve() {
	case ecdh.X25519():
		return cborwire.AppendMap(nil, []cborwire.MapEntry{
			{Key: intKey(1), Val: cborwire.AppendInt(nil, 1)}, {Key: intKey(-1), Val: cborwire.AppendInt(nil, 4)}, {Key: intKey(-2), Val: cborwire.AppendBytes(nil, raw)},
		}), nil
	case ecdh.P256(), ecdh.P384(), ecdh.P521():
		crv := map[ecdh.Curve]int64{ecdh.P256(): 1, ecdh.P384(): 2, ecdh.P521(): 3}[k.Curve()]
		n := (len(raw) - 1) / 2
		return cborwire.AppendMap(nil, []cborwire.MapEntry{
			{Key: intKey(1), Val: cborwire.AppendInt(nil, 2)}, {Key: intKey(-1), Val: cborwire.AppendInt(nil, crv)},
			{Key: intKey(-2), Val: cborwire.AppendBytes(nil, raw[1:1+n])}, {Key: intKey(-3), Val: cborwire.AppendBytes(nil, raw[1+n:])},
		}), nil
	}
	return nil, errors.New("suit: unsupported ECDH curve")
}

// AES key wrap, RFC 3394 §2.2 with the default IV.
var kwIV = [8]byte{0xa6, 0xa6, 0xa6, 0xa6, 0xa6, 0xa6, 0xa6, 0xa6}

func aesKeyWrap(kek, key []byte) ([]byte, error) {
	if len(key)%8 != 0 || len(key) < 16 {
		return nil, errors.New("suit: key wrap input must be a multiple of 8 bytes, at least 16")
	}
	block, err := aes.NewCipher(kek)
	if err != nil {
		return nil, err
	}
	n := len(key) / 8
	out := make([]byte, 8+len(key))
	copy(out[8:], key)
	a := kwIV
	var buf [16]byte
	for j := 0; j < 6; j++ {
		for i := 1; i <= n; i++ {
			copy(buf[:8], a[:])
			copy(buf[8:], out[i*8:i*8+8])
			block.Encrypt(buf[:], buf[:])
			t := uint64(n*j + i)
			binary.BigEndian.PutUint64(a[:], binary.BigEndian.Uint64(buf[:8])^t)
			copy(out[i*8:], buf[8:])
		}
	}
	copy(out[:8], a[:])
	return out, nil
}

func aesKeyUnwrap(kek, wrapped []byte) ([]byte, error) {
	if len(wrapped)%8 != 0 || len(wrapped) < 24 {
		return nil, errors.New("suit: wrapped key has a bad length")
	}
	block, err := aes.NewCipher(kek)
	if err != nil {
		return nil, err
	}
	n := len(wrapped)/8 - 1
	out := make([]byte, n*8)
	copy(out, wrapped[8:])
	var a [8]byte
	copy(a[:], wrapped[:8])
	var buf [16]byte
	for j := 5; j >= 0; j-- {
		for i := n; i >= 1; i-- {
			t := uint64(n*j + i)
			binary.BigEndian.PutUint64(buf[:8], binary.BigEndian.Uint64(a[:])^t)
			copy(buf[8:], out[(i-1)*8:i*8])
			block.Decrypt(buf[:], buf[:])
			copy(a[:], buf[:8])
			copy(out[(i-1)*8:], buf[8:])
		}
	}
	if subtle.ConstantTimeCompare(a[:], kwIV[:]) != 1 {
		return nil, errors.New("suit: key unwrap integrity check failed")
	}
	return out, nil
}
