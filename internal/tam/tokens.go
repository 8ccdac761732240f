package tam

import (
	"bytes"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"io"
	"time"

	"github.com/teep-go/teep/teep"
)

// QueryRequest tokens are self-authenticating, so an empty POST (which
// anyone can send) costs the TAM no database write:
//
//	version(1) | flags(1) | expiry, Unix seconds (8) | random(16) | MAC(16)
//
// MAC = HMAC-SHA256(session key, label | first 26 bytes | bound kid)[:16].
// A token is consumed (store.UseToken) by the first validly signed response
// carrying it, as draft-ietf-teep-protocol-26 §4.1.1 requires; the used-token
// row lives until the token's expiry. The challenge of an attestation
// request is derived from its token, so it needs no state either.
//
// Update tokens are plain random bytes stored with the pending Update,
// because the Success or Error must be matched to what was sent.
const (
	queryTokenVersion = 1
	queryTokenSize    = 1 + 1 + 8 + 16 + 16
	updateTokenSize   = 24
	challengeSize     = 32
	sessionKeySize    = 32

	flagAttest    = 1 << 0 // attestation requested (data-item-requested bit 0)
	flagChallenge = 1 << 1 // a challenge was sent (background-check model)
	flagLegacy    = 1 << 2 // issued on a legacy-numbering endpoint
	flagBound     = 1 << 3 // bound to one Agent kid
)

var (
	errTokenUnknown = errors.New("unknown token")
	errTokenExpired = errors.New("expired token")
)

// queryToken is a verified QueryRequest token.
type queryToken struct {
	raw     []byte
	flags   byte
	expires time.Time
	epoch   uint64 // the store's token epoch it verified under
}

func (q queryToken) attest() bool    { return q.flags&flagAttest != 0 }
func (q queryToken) challenge() bool { return q.flags&flagChallenge != 0 }

type tokenMinter struct {
	key  []byte
	rand io.Reader
	// epoch, when set (a NoSyncStore), is mixed into the MAC: tokens of
	// an earlier epoch (an earlier open of a SQLite file, a PostgreSQL
	// database before a crash) do not verify, whether or not their
	// consumption reached the disk.
	epoch func() uint64
}

// currentEpoch is the store's token epoch, 0 without a NoSyncStore.
func (m *tokenMinter) currentEpoch() uint64 {
	if m.epoch == nil {
		return 0
	}
	return m.epoch()
}

func (m *tokenMinter) mac(body, kid []byte, epoch uint64) []byte {
	h := hmac.New(sha256.New, m.key)
	h.Write([]byte("teep-go tam query token v1\x00"))
	if m.epoch != nil {
		var b [13]byte
		copy(b[:], "epoch")
		binary.BigEndian.PutUint64(b[5:], epoch)
		h.Write(b[:])
	}
	h.Write(body)
	h.Write(kid)
	return h.Sum(nil)[:16]
}

// newQuery mints a QueryRequest token; kid non-nil binds it to one Agent.
func (m *tokenMinter) newQuery(flags byte, n teep.Numbering, expires time.Time, kid []byte) ([]byte, error) {
	if n == teep.Legacy {
		flags |= flagLegacy
	}
	if kid != nil {
		flags |= flagBound
	}
	t := make([]byte, queryTokenSize)
	t[0], t[1] = queryTokenVersion, flags
	binary.BigEndian.PutUint64(t[2:10], uint64(expires.Unix()))
	if _, err := io.ReadFull(m.rand, t[10:26]); err != nil {
		return nil, err
	}
	copy(t[26:], m.mac(t[:26], kid, m.currentEpoch()))
	return t, nil
}

// isQuery reports whether tok has the shape and MAC of one of our
// QueryRequest tokens of epoch (bound to kid if bound), without checking
// expiry.
func (m *tokenMinter) isQuery(tok, kid []byte, epoch uint64) bool {
	if len(tok) != queryTokenSize || tok[0] != queryTokenVersion {
		return false
	}
	if tok[1]&flagBound == 0 {
		kid = nil
	} else if kid == nil {
		kid = []byte{}
	}
	return hmac.Equal(tok[26:], m.mac(tok[:26], kid, epoch))
}

// parseQuery verifies a QueryRequest token for the endpoint numbering n.
// kid is the kid the response was signed with (checked for bound tokens).
func (m *tokenMinter) parseQuery(tok []byte, n teep.Numbering, now time.Time, kid []byte) (queryToken, error) {
	epoch := m.currentEpoch()
	if !m.isQuery(tok, kid, epoch) {
		return queryToken{}, errTokenUnknown
	}
	flags := tok[1]
	if (flags&flagLegacy != 0) != (n == teep.Legacy) {
		return queryToken{}, errTokenUnknown // issued under the other numbering: never mixed
	}
	exp := time.Unix(int64(binary.BigEndian.Uint64(tok[2:10])), 0)
	if !now.Before(exp) {
		return queryToken{}, errTokenExpired
	}
	return queryToken{raw: bytes.Clone(tok), flags: flags, expires: exp, epoch: epoch}, nil
}

// challengeFor derives the attestation challenge of a token.
func (m *tokenMinter) challengeFor(tok []byte) []byte {
	h := hmac.New(sha256.New, m.key)
	h.Write([]byte("teep-go tam challenge v1\x00"))
	h.Write(tok)
	return h.Sum(nil)[:challengeSize]
}

func (m *tokenMinter) newUpdate() ([]byte, error) {
	t := make([]byte, updateTokenSize)
	_, err := io.ReadFull(m.rand, t)
	return t, err
}
