package softtee

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/hkdf"
	"crypto/rand"
	"crypto/sha256"
	"encoding/binary"
	"fmt"

	"github.com/teep-go/teep/internal/tee"
)

// Sealed blob layout (all integers big-endian):
//
//	magic   4 bytes  "TSB1"
//	kind    1 byte   what the blob is (object, index, counter)
//	gen     8 bytes  store generation the blob was written in
//	nonce  12 bytes  AES-GCM nonce, random per blob
//	sealed  rest     AES-256-GCM ciphertext || 16-byte tag
//
// The additional authenticated data binds the header, the TEE name and the
// blob's purpose (its logical name and file), so a blob copied to another
// name, another file or another TEE fails authentication.
const (
	sealMagic      = "TSB1"
	sealHeaderSize = 4 + 1 + 8 + 12
	sealOverhead   = sealHeaderSize + 16
	rootKeySize    = 32
)

// Blob kinds.
const (
	kindObject  byte = 1
	kindIndex   byte = 2
	kindCounter byte = 3
)

// sealer seals and opens blobs for one TEE.
type sealer struct {
	tee  string
	aead cipher.AEAD
}

// newSealer derives the sealing key from the root key, so the root key itself
// is never used directly and other purposes can get their own derived keys.
func newSealer(teeName string, rootKey []byte) (*sealer, error) {
	if len(rootKey) != rootKeySize {
		return nil, fmt.Errorf("root key is %d bytes, want %d", len(rootKey), rootKeySize)
	}
	k, err := hkdf.Key(sha256.New, rootKey, nil, "teep-go softtee seal v1", 32)
	if err != nil {
		return nil, err
	}
	block, err := aes.NewCipher(k)
	if err != nil {
		return nil, err
	}
	aead, err := cipher.NewGCM(block)
	if err != nil {
		return nil, err
	}
	return &sealer{tee: teeName, aead: aead}, nil
}

func (s *sealer) aad(header []byte, purpose string) []byte {
	a := make([]byte, 0, 64+len(s.tee)+len(purpose))
	a = append(a, "teep-go softtee sealed blob v1\x00"...)
	a = append(a, s.tee...)
	a = append(a, 0)
	a = append(a, purpose...)
	a = append(a, 0)
	return append(a, header...)
}

// seal encrypts plaintext for purpose at generation gen.
func (s *sealer) seal(kind byte, gen uint64, purpose string, plaintext []byte) ([]byte, error) {
	out := make([]byte, sealHeaderSize, sealOverhead+len(plaintext))
	copy(out, sealMagic)
	out[4] = kind
	binary.BigEndian.PutUint64(out[5:13], gen)
	if _, err := rand.Read(out[13:sealHeaderSize]); err != nil {
		return nil, fmt.Errorf("seal: %w", err)
	}
	header := out[:sealHeaderSize]
	return s.aead.Seal(out, header[13:], plaintext, s.aad(header, purpose)), nil
}

// open authenticates and decrypts blob, which must be of kind and purpose.
// Any mismatch is tampering: a wrong key, a flipped bit, a blob written for
// another name or TEE all fail the same way, on purpose.
func (s *sealer) open(kind byte, purpose string, blob []byte) (gen uint64, plaintext []byte, err error) {
	if len(blob) < sealOverhead {
		return 0, nil, fmt.Errorf("%w: %s: sealed blob is %d bytes, shorter than the %d-byte minimum",
			tee.ErrTampered, purpose, len(blob), sealOverhead)
	}
	if string(blob[:4]) != sealMagic {
		return 0, nil, fmt.Errorf("%w: %s: bad magic %q", tee.ErrTampered, purpose, blob[:4])
	}
	if blob[4] != kind {
		return 0, nil, fmt.Errorf("%w: %s: blob kind %d, want %d", tee.ErrTampered, purpose, blob[4], kind)
	}
	header := blob[:sealHeaderSize]
	gen = binary.BigEndian.Uint64(header[5:13])
	plaintext, err = s.aead.Open(nil, header[13:], blob[sealHeaderSize:], s.aad(header, purpose))
	if err != nil {
		return 0, nil, fmt.Errorf("%w: %s: authentication failed (modified, moved or sealed by another device)",
			tee.ErrTampered, purpose)
	}
	return gen, plaintext, nil
}

// Objects are sealed as a stream of chunks, so a component of any size is
// written and read without holding it in memory (the STREAM construction of
// Hoang, Reyhanitabar, Rogaway and Vizár, as used by age and Tink):
//
//	magic    4 bytes  "TSO1"
//	kind     1 byte   kindObject
//	gen      8 bytes  store generation the object was written in
//	prefix   8 bytes  random nonce prefix
//	chunks   each ChunkSize bytes of plaintext (the last 0..ChunkSize-1)
//	         sealed with AES-256-GCM, nonce = prefix || uint32 index,
//	         AAD = blob AAD || uint64 index || final flag
//
// The final flag makes truncation at a chunk boundary detectable, the index
// makes reordering detectable, and the blob AAD binds the object's name and
// file as for single-shot blobs.
const (
	streamMagic      = "TSO1"
	streamHeaderSize = 4 + 1 + 8 + 8
	// ChunkSize is the plaintext size of every chunk but the last.
	ChunkSize = 64 << 10
	tagSize   = 16
)

// sealedSize is the file size of an object with n plaintext bytes.
func sealedSize(n int64) int64 {
	chunks := n/ChunkSize + 1
	return streamHeaderSize + n + chunks*tagSize
}

func (s *sealer) streamHeader(gen uint64) ([]byte, error) {
	h := make([]byte, streamHeaderSize)
	copy(h, streamMagic)
	h[4] = kindObject
	binary.BigEndian.PutUint64(h[5:13], gen)
	if _, err := rand.Read(h[13:]); err != nil {
		return nil, fmt.Errorf("seal: %w", err)
	}
	return h, nil
}

func (s *sealer) chunkParams(header []byte, purpose string, index uint64, final bool) (nonce, aad []byte) {
	nonce = make([]byte, 12)
	copy(nonce, header[13:21])
	binary.BigEndian.PutUint32(nonce[8:], uint32(index))
	aad = s.aad(header, purpose)
	aad = binary.BigEndian.AppendUint64(aad, index)
	if final {
		aad = append(aad, 1)
	} else {
		aad = append(aad, 0)
	}
	return nonce, aad
}

func (s *sealer) sealChunk(dst, header []byte, purpose string, index uint64, final bool, plain []byte) []byte {
	nonce, aad := s.chunkParams(header, purpose, index, final)
	return s.aead.Seal(dst, nonce, plain, aad)
}

func (s *sealer) openChunk(header []byte, purpose string, index uint64, final bool, sealed []byte) ([]byte, error) {
	nonce, aad := s.chunkParams(header, purpose, index, final)
	plain, err := s.aead.Open(sealed[:0], nonce, sealed, aad) // in place
	if err != nil {
		return nil, fmt.Errorf("%w: %s: chunk %d failed authentication (modified, moved, truncated or sealed by another device)",
			tee.ErrTampered, purpose, index)
	}
	return plain, nil
}

func checkStreamHeader(h []byte, purpose string) error {
	if len(h) < streamHeaderSize || string(h[:4]) != streamMagic || h[4] != kindObject {
		return fmt.Errorf("%w: %s: not a sealed object", tee.ErrTampered, purpose)
	}
	return nil
}
