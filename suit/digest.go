package suit

import (
	"crypto/sha256"
	"crypto/sha3"
	"crypto/sha512"
	"crypto/subtle"
	"encoding/hex"
	"hash"
	"strconv"

	"github.com/teep-go/teep/cborwire"
)

// COSE hash algorithm ids usable in SUIT_Digest (draft-ietf-suit-manifest §8.3).
const (
	AlgSHA256   int64 = -16 // REQUIRED
	AlgSHAKE128 int64 = -18 // 256-bit output
	AlgSHA384   int64 = -43
	AlgSHA512   int64 = -44
	AlgSHAKE256 int64 = -45 // 512-bit output
)

// Digest is a SUIT_Digest.
type Digest struct {
	Alg   int64
	Bytes []byte
}

// DigestAlgName names a digest algorithm.
func DigestAlgName(alg int64) string {
	switch alg {
	case AlgSHA256:
		return "sha-256"
	case AlgSHAKE128:
		return "shake128"
	case AlgSHA384:
		return "sha-384"
	case AlgSHA512:
		return "sha-512"
	case AlgSHAKE256:
		return "shake256"
	}
	return "alg(" + strconv.FormatInt(alg, 10) + ")"
}

// String renders "sha-256:<hex>".
func (d Digest) String() string { return DigestAlgName(d.Alg) + ":" + hex.EncodeToString(d.Bytes) }

// IsZero reports whether d is unset.
func (d Digest) IsZero() bool { return d.Alg == 0 && d.Bytes == nil }

// Equal compares in constant time (for equal lengths).
func (d Digest) Equal(o Digest) bool {
	return d.Alg == o.Alg && len(d.Bytes) == len(o.Bytes) && subtle.ConstantTimeCompare(d.Bytes, o.Bytes) == 1
}

// Marshal encodes the SUIT_Digest array.
func (d Digest) Marshal() []byte { return d.appendTo(nil) }

func (d Digest) appendTo(b []byte) []byte {
	b = cborwire.AppendArrayHead(b, 2)
	b = cborwire.AppendInt(b, d.Alg)
	return cborwire.AppendBytes(b, d.Bytes)
}

// ParseDigest decodes an encoded SUIT_Digest.
func ParseDigest(data []byte) (Digest, error) {
	lim := DefaultLimits()
	if err := wellFormed(data, &lim); err != nil {
		return Digest{}, in("digest", err)
	}
	c := newCur(data, "digest")
	d, err := c.digest("digest")
	if err != nil {
		return Digest{}, err
	}
	return d, c.end()
}

// digestLen is the output size for alg, or 0 when unsupported.
func digestLen(alg int64) int {
	switch alg {
	case AlgSHA256, AlgSHAKE128:
		return 32
	case AlgSHA384:
		return 48
	case AlgSHA512, AlgSHAKE256:
		return 64
	}
	return 0
}

// NewHash returns a streaming hash for a SUIT digest algorithm.
func NewHash(alg int64) (hash.Hash, error) {
	switch alg {
	case AlgSHA256:
		return sha256.New(), nil
	case AlgSHA384:
		return sha512.New384(), nil
	case AlgSHA512:
		return sha512.New(), nil
	case AlgSHAKE128:
		return &shakeHash{s: sha3.NewSHAKE128(), new: sha3.NewSHAKE128, size: 32}, nil
	case AlgSHAKE256:
		return &shakeHash{s: sha3.NewSHAKE256(), new: sha3.NewSHAKE256, size: 64}, nil
	}
	return nil, errorf(ErrAlgUnsupported, "digest algorithm %s", DigestAlgName(alg))
}

// shakeHash adapts a SHAKE XOF with a fixed output length to hash.Hash.
type shakeHash struct {
	s    *sha3.SHAKE
	new  func() *sha3.SHAKE
	size int
}

func (h *shakeHash) Write(p []byte) (int, error) { return h.s.Write(p) }

// Sum squeezes a copy of the state, so writing may continue afterwards.
func (h *shakeHash) Sum(b []byte) []byte {
	out := make([]byte, h.size)
	state, err := h.s.MarshalBinary()
	if err == nil {
		c := h.new()
		if err = c.UnmarshalBinary(state); err == nil {
			_, _ = c.Read(out)
			return append(b, out...)
		}
	}
	// Unreachable for a live SHAKE; an all-zero output never matches a
	// real digest, so a failure here cannot be mistaken for a match.
	return append(b, make([]byte, h.size)...)
}
func (h *shakeHash) Reset()         { h.s.Reset() }
func (h *shakeHash) Size() int      { return h.size }
func (h *shakeHash) BlockSize() int { return h.s.BlockSize() }

// DigestOf hashes data with alg.
func DigestOf(alg int64, data []byte) (Digest, error) {
	h, err := NewHash(alg)
	if err != nil {
		return Digest{}, err
	}
	h.Write(data)
	return Digest{Alg: alg, Bytes: h.Sum(nil)}, nil
}

// Matches hashes data with d's algorithm and compares.
func (d Digest) Matches(data []byte) (bool, error) {
	got, err := DigestOf(d.Alg, data)
	if err != nil {
		return false, err
	}
	return got.Equal(d), nil
}
