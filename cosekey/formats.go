package cosekey

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"

	"github.com/fxamacker/cbor/v2"
	"github.com/veraison/go-cose"
)

// MaxKeyFileSize bounds any key encoding we parse; real keys are far smaller.
const MaxKeyFileSize = 16 << 10

// COSE_Key labels (RFC 9052 §7, RFC 9053 §7).
const (
	labelKty = 1
	labelKid = 2
	labelAlg = 3
	labelCrv = -1
	labelX   = -2
	labelY   = -3
	labelD   = -4

	ktyOKP     = 1
	ktyEC2     = 2
	crvP256    = 1
	crvEd25519 = 6
)

var (
	detEnc cbor.EncMode
	strict cbor.DecMode
)

func init() {
	var err error
	if detEnc, err = cbor.CoreDetEncOptions().EncMode(); err != nil {
		panic(err)
	}
	if strict, err = (cbor.DecOptions{
		DupMapKey:        cbor.DupMapKeyEnforcedAPF,
		IndefLength:      cbor.IndefLengthForbidden,
		IntDec:           cbor.IntDecConvertSignedOrFail,
		MaxNestedLevels:  8,
		MaxArrayElements: 64,
		MaxMapPairs:      64,
	}).DecMode(); err != nil {
		panic(err)
	}
}

// Format names a key encoding.
type Format string

const (
	FormatCOSE Format = "cose"
	FormatPEM  Format = "pem"
	FormatJWK  Format = "jwk"
)

// Parse reads a key in any supported encoding, detected from its first bytes:
// PEM ("-----BEGIN"), JWK (a JSON object) or COSE_Key (a CBOR map).
func Parse(data []byte) (*Key, error) {
	if len(data) > MaxKeyFileSize {
		return nil, fmt.Errorf("cosekey: key encoding is %d bytes, limit %d", len(data), MaxKeyFileSize)
	}
	trimmed := bytes.TrimSpace(data)
	switch {
	case bytes.HasPrefix(trimmed, []byte("-----BEGIN")):
		return ParsePEM(trimmed)
	case bytes.HasPrefix(trimmed, []byte("{")):
		return ParseJWK(trimmed)
	case len(data) > 0 && data[0]>>5 == 5: // CBOR major type 5: map
		return ParseCOSEKey(data)
	}
	return nil, errors.New("cosekey: unrecognised key encoding (want COSE_Key, PEM or JWK)")
}

// Marshal encodes k in the given format. With private set, the private part
// is included (an error if k has none or it cannot be exported).
func (k *Key) Marshal(f Format, private bool) ([]byte, error) {
	switch f {
	case FormatCOSE:
		return k.MarshalCOSEKey(private)
	case FormatPEM:
		return k.MarshalPEM(private)
	case FormatJWK:
		return k.MarshalJWK(private)
	}
	return nil, fmt.Errorf("cosekey: unknown key format %q (want cose, pem or jwk)", f)
}

// MarshalCOSEKey encodes k as a deterministic COSE_Key map with kty, kid (the
// RFC 9679 thumbprint), alg, crv, x[, y][, d].
func (k *Key) MarshalCOSEKey(private bool) ([]byte, error) {
	x, y := k.coordinates()
	m := map[int]any{labelKid: k.KID(), labelAlg: int64(k.Alg()), labelX: x}
	if k.typ == KeyTypeP256 {
		m[labelKty], m[labelCrv], m[labelY] = ktyEC2, crvP256, y
	} else {
		m[labelKty], m[labelCrv] = ktyOKP, crvEd25519
	}
	if private {
		d, err := k.privateScalar()
		if err != nil {
			return nil, err
		}
		m[labelD] = d
	}
	return detEnc.Marshal(m)
}

// ParseCOSEKey decodes a COSE_Key map (EC2 P-256 or OKP Ed25519). kid is
// ignored: we always identify keys by their thumbprint.
func ParseCOSEKey(data []byte) (*Key, error) {
	var m map[int64]cbor.RawMessage
	if err := strict.Unmarshal(data, &m); err != nil {
		return nil, fmt.Errorf("cosekey: COSE_Key: %w", err)
	}
	getInt := func(label int64) (int64, bool, error) {
		raw, ok := m[label]
		if !ok {
			return 0, false, nil
		}
		var v int64
		if err := strict.Unmarshal(raw, &v); err != nil {
			return 0, true, fmt.Errorf("cosekey: COSE_Key label %d: want an integer", label)
		}
		return v, true, nil
	}
	getBytes := func(label int64, size int) ([]byte, bool, error) {
		raw, ok := m[label]
		if !ok {
			return nil, false, nil
		}
		var v []byte
		if err := strict.Unmarshal(raw, &v); err != nil || (raw[0]>>5) != 2 {
			return nil, true, fmt.Errorf("cosekey: COSE_Key label %d: want a byte string", label)
		}
		if size > 0 && len(v) != size {
			return nil, true, fmt.Errorf("cosekey: COSE_Key label %d: %d bytes, want %d", label, len(v), size)
		}
		return v, true, nil
	}
	kty, ok, err := getInt(labelKty)
	if err != nil {
		return nil, err
	}
	if !ok {
		return nil, errors.New("cosekey: COSE_Key has no kty (label 1)")
	}
	crv, ok, err := getInt(labelCrv)
	if err != nil {
		return nil, err
	}
	if !ok {
		return nil, errors.New("cosekey: COSE_Key has no crv (label -1)")
	}
	alg, _, err := getInt(labelAlg)
	if err != nil {
		return nil, err
	}
	x, ok, err := getBytes(labelX, 32)
	if err != nil {
		return nil, err
	}
	if !ok {
		return nil, errors.New("cosekey: COSE_Key has no x (label -2)")
	}
	d, hasD, err := getBytes(labelD, 32)
	if err != nil {
		return nil, err
	}
	var k *Key
	switch {
	case kty == ktyEC2 && crv == crvP256:
		y, ok, err := getBytes(labelY, 32)
		if err != nil {
			return nil, err
		}
		if !ok {
			return nil, errors.New("cosekey: EC2 COSE_Key has no y (label -3); compressed points are not supported")
		}
		k, err = p256FromRaw(x, y, d, hasD)
		if err != nil {
			return nil, err
		}
	case kty == ktyOKP && crv == crvEd25519:
		k, err = ed25519FromRaw(x, d, hasD)
		if err != nil {
			return nil, err
		}
	default:
		return nil, fmt.Errorf("cosekey: COSE_Key kty %d crv %d: %w", kty, crv, ErrUnsupportedKey)
	}
	if err := k.setAlg(cose.Algorithm(alg)); err != nil {
		return nil, err
	}
	return k, nil
}

func p256FromRaw(x, y, d []byte, hasD bool) (*Key, error) {
	point := append(append([]byte{4}, x...), y...)
	if hasD {
		sk, err := ecdsa.ParseRawPrivateKey(elliptic.P256(), d)
		if err != nil {
			return nil, fmt.Errorf("cosekey: invalid P-256 private key: %w", err)
		}
		pub, _ := sk.PublicKey.Bytes()
		if !bytes.Equal(pub, point) {
			return nil, errors.New("cosekey: P-256 private key does not match its public coordinates")
		}
		return &Key{typ: KeyTypeP256, pub: &sk.PublicKey, priv: sk}, nil
	}
	pk, err := ecdsa.ParseUncompressedPublicKey(elliptic.P256(), point)
	if err != nil {
		return nil, fmt.Errorf("cosekey: invalid P-256 public key: %w", err)
	}
	return &Key{typ: KeyTypeP256, pub: pk}, nil
}

func ed25519FromRaw(x, d []byte, hasD bool) (*Key, error) {
	if hasD {
		sk := ed25519.NewKeyFromSeed(d)
		if !bytes.Equal(sk.Public().(ed25519.PublicKey), x) {
			return nil, errors.New("cosekey: Ed25519 private key does not match its public key")
		}
		return &Key{typ: KeyTypeEd25519, pub: sk.Public().(ed25519.PublicKey), priv: sk}, nil
	}
	return &Key{typ: KeyTypeEd25519, pub: ed25519.PublicKey(bytes.Clone(x))}, nil
}

// MarshalPEM encodes the private key as PKCS#8 ("PRIVATE KEY") or the public
// key as SPKI ("PUBLIC KEY").
func (k *Key) MarshalPEM(private bool) ([]byte, error) {
	if private {
		if k.priv == nil {
			return nil, ErrNoPrivateKey
		}
		der, err := x509.MarshalPKCS8PrivateKey(k.priv)
		if err != nil {
			return nil, fmt.Errorf("cosekey: PKCS#8: %w", err)
		}
		return pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}), nil
	}
	der, err := x509.MarshalPKIXPublicKey(k.pub)
	if err != nil {
		return nil, fmt.Errorf("cosekey: SPKI: %w", err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der}), nil
}

// MarshalSEC1PEM encodes a P-256 private key as SEC1 ("EC PRIVATE KEY").
func (k *Key) MarshalSEC1PEM() ([]byte, error) {
	sk, ok := k.priv.(*ecdsa.PrivateKey)
	if !ok {
		return nil, errors.New("cosekey: SEC1 needs a software P-256 private key")
	}
	der, err := x509.MarshalECPrivateKey(sk)
	if err != nil {
		return nil, fmt.Errorf("cosekey: SEC1: %w", err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: der}), nil
}

// ParsePEM reads the first key block of a PEM file: PKCS#8 "PRIVATE KEY",
// SEC1 "EC PRIVATE KEY" or SPKI "PUBLIC KEY". "EC PARAMETERS" blocks, which
// OpenSSL writes before SEC1 keys, are skipped.
func ParsePEM(data []byte) (*Key, error) {
	rest := data
	for {
		var block *pem.Block
		block, rest = pem.Decode(rest)
		if block == nil {
			return nil, errors.New("cosekey: no key block in PEM input")
		}
		switch block.Type {
		case "EC PARAMETERS":
			continue
		case "PRIVATE KEY":
			sk, err := x509.ParsePKCS8PrivateKey(block.Bytes)
			if err != nil {
				return nil, fmt.Errorf("cosekey: PKCS#8: %w", err)
			}
			return fromParsedPrivate(sk)
		case "EC PRIVATE KEY":
			sk, err := x509.ParseECPrivateKey(block.Bytes)
			if err != nil {
				return nil, fmt.Errorf("cosekey: SEC1: %w", err)
			}
			return fromParsedPrivate(sk)
		case "PUBLIC KEY":
			pk, err := x509.ParsePKIXPublicKey(block.Bytes)
			if err != nil {
				return nil, fmt.Errorf("cosekey: SPKI: %w", err)
			}
			return FromPublic(pk)
		default:
			return nil, fmt.Errorf("cosekey: unsupported PEM block %q", block.Type)
		}
	}
}

func fromParsedPrivate(sk any) (*Key, error) {
	switch s := sk.(type) {
	case *ecdsa.PrivateKey:
		return FromSigner(s, 0)
	case ed25519.PrivateKey:
		return FromSigner(s, 0)
	}
	return nil, ErrUnsupportedKey
}

// jwk is the JSON Web Key subset we read and write (RFC 7517, RFC 7518,
// RFC 8037; algorithm names from RFC 9864).
type jwk struct {
	Kty string `json:"kty"`
	Crv string `json:"crv"`
	Kid string `json:"kid,omitempty"`
	Alg string `json:"alg,omitempty"`
	X   string `json:"x"`
	Y   string `json:"y,omitempty"`
	D   string `json:"d,omitempty"`
}

var b64 = base64.RawURLEncoding

// MarshalJWK encodes k as a JWK; kid is the base64url RFC 9679 thumbprint.
func (k *Key) MarshalJWK(private bool) ([]byte, error) {
	x, y := k.coordinates()
	j := jwk{Kid: b64.EncodeToString(k.KID()), Alg: AlgName(k.Alg()), X: b64.EncodeToString(x)}
	if k.typ == KeyTypeP256 {
		j.Kty, j.Crv, j.Y = "EC", "P-256", b64.EncodeToString(y)
	} else {
		j.Kty, j.Crv = "OKP", "Ed25519"
	}
	if private {
		d, err := k.privateScalar()
		if err != nil {
			return nil, err
		}
		j.D = b64.EncodeToString(d)
	}
	out, err := json.MarshalIndent(j, "", "  ")
	if err != nil {
		return nil, err
	}
	return append(out, '\n'), nil
}

// ParseJWK decodes an EC P-256 or OKP Ed25519 JWK.
func ParseJWK(data []byte) (*Key, error) {
	var j jwk
	dec := json.NewDecoder(bytes.NewReader(data))
	if err := dec.Decode(&j); err != nil {
		return nil, fmt.Errorf("cosekey: JWK: %w", err)
	}
	field := func(name, v string, size int) ([]byte, error) {
		b, err := b64.DecodeString(v)
		if err != nil {
			return nil, fmt.Errorf("cosekey: JWK %q: not base64url: %w", name, err)
		}
		if len(b) != size {
			return nil, fmt.Errorf("cosekey: JWK %q: %d bytes, want %d", name, len(b), size)
		}
		return b, nil
	}
	x, err := field("x", j.X, 32)
	if err != nil {
		return nil, err
	}
	var d []byte
	if j.D != "" {
		if d, err = field("d", j.D, 32); err != nil {
			return nil, err
		}
	}
	var k *Key
	switch {
	case j.Kty == "EC" && j.Crv == "P-256":
		y, err := field("y", j.Y, 32)
		if err != nil {
			return nil, err
		}
		if k, err = p256FromRaw(x, y, d, d != nil); err != nil {
			return nil, err
		}
	case j.Kty == "OKP" && j.Crv == "Ed25519":
		if k, err = ed25519FromRaw(x, d, d != nil); err != nil {
			return nil, err
		}
	default:
		return nil, fmt.Errorf("cosekey: JWK kty %q crv %q: %w", j.Kty, j.Crv, ErrUnsupportedKey)
	}
	if j.Alg != "" {
		alg, err := ParseAlg(j.Alg)
		if err != nil {
			return nil, fmt.Errorf("cosekey: JWK alg: %w", err)
		}
		if err := k.setAlg(alg); err != nil {
			return nil, err
		}
	}
	return k, nil
}
