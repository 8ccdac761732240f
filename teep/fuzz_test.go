package teep

import (
	"bytes"
	"errors"
	"math/rand/v2"
	"os"
	"path/filepath"
	"reflect"
	"testing"

	"github.com/teep-go/teep/cosekey"
	"github.com/teep-go/teep/suit"
)

func vectorSeeds(f *testing.F, dirs ...string) [][]byte {
	var seeds [][]byte
	for _, dir := range dirs {
		files, err := filepath.Glob(filepath.Join("..", "testdata", "teep", dir, "*.hex"))
		if err != nil {
			f.Fatal(err)
		}
		for _, file := range files {
			if _, err := os.Stat(file); err == nil {
				rel, _ := filepath.Rel(filepath.Join("..", "testdata"), file)
				seeds = append(seeds, readHex(f, rel))
			}
		}
	}
	return seeds
}

// FuzzDecode: no input panics; every accepted input re-encodes, and the
// deterministic encoding is a fixed point of Decode∘Encode.
func FuzzDecode(f *testing.F) {
	for _, s := range vectorSeeds(f, "draft-26") {
		f.Add(s, false)
	}
	for _, s := range vectorSeeds(f, "pre-26-legacy") {
		f.Add(s, true)
	}
	f.Fuzz(func(t *testing.T, data []byte, legacy bool) {
		num := Draft26
		if legacy {
			num = Legacy
		}
		m, err := Decode(data, DecodeOptions{Numbering: num})
		if err != nil {
			var pe *ProtocolError
			if !errors.As(err, &pe) || CodeOf(err) == 0 {
				t.Fatalf("error without code: %T %v", err, err)
			}
			return
		}
		if _, err := Encode(m, EncodeOptions{Numbering: num, PreserveOrder: true}); err != nil {
			t.Fatalf("PreserveOrder encode of an accepted message: %v", err)
		}
		b1, err := Encode(m, EncodeOptions{Numbering: num})
		if err != nil {
			t.Fatalf("encode of an accepted message: %v", err)
		}
		m2, err := Decode(b1, DecodeOptions{Numbering: num})
		if err != nil {
			t.Fatalf("decode of our own encoding: %v\n%x", err, b1)
		}
		b2, err := Encode(m2, EncodeOptions{Numbering: num})
		if err != nil || !bytes.Equal(b1, b2) {
			t.Fatalf("not stable: %v\n%x\n%x", err, b1, b2)
		}
	})
}

// FuzzOpen: no input panics, and nothing is opened as verified unless a
// trusted key verified it.
func FuzzOpen(f *testing.F) {
	for _, s := range vectorSeeds(f, "synthesized") {
		f.Add(s)
	}
	keys := []*cosekey.Key{tamP256(f).PublicKey(), edKey(f, tamEdSeed).PublicKey(), edKey(f, agentEdSeed).PublicKey()}
	f.Fuzz(func(t *testing.T, data []byte) {
		op, err := Open(data, OpenOptions{Keys: keys})
		if err != nil {
			if CodeOf(err) == 0 {
				t.Fatalf("error without code: %v", err)
			}
			return
		}
		if !op.Verified || op.Key == nil || op.Message == nil {
			t.Fatalf("opened without verification: %+v", op)
		}
		if _, err := Open(data, OpenOptions{SkipVerifyUnsafe: true}); err != nil {
			t.Fatalf("unverified open failed where verified open succeeded: %v", err)
		}
	})
}

// randomMessage builds a valid message of any type with random content.
func randomMessage(r *rand.Rand) Message {
	bs := func(min, max int) []byte {
		b := make([]byte, min+r.IntN(max-min+1))
		for i := range b {
			b[i] = byte(r.Uint32())
		}
		return b
	}
	maybe := func() bool { return r.IntN(2) == 0 }
	tok := func() []byte {
		if maybe() {
			return bs(MinTokenSize, MaxTokenSize)
		}
		return nil
	}
	cid := func() suit.ComponentID {
		c := make(suit.ComponentID, r.IntN(4))
		for i := range c {
			c[i] = bs(0, 20)
		}
		return c
	}
	text := func(max int) string {
		runes := []rune("abcXYZ -é€😀")
		var s []rune
		for n := 1 + r.IntN(20); len(s) < n; {
			s = append(s, runes[r.IntN(len(runes))])
		}
		out := string(s)
		for len(out) > max {
			out = string([]rune(out)[:len([]rune(out))-1])
		}
		return out
	}
	reports := func() [][]byte {
		if maybe() {
			return nil
		}
		return [][]byte{{0xa1, 0x01, 0x41, byte(r.Uint32())}, {0x80}}
	}
	u32s := func() []uint32 {
		if maybe() {
			return nil
		}
		v := make([]uint32, 1+r.IntN(3))
		for i := range v {
			v[i] = r.Uint32()
		}
		return v
	}
	ext := func() Extensions {
		if maybe() {
			return nil
		}
		return Extensions{uint64(30 + r.IntN(1000)): {0x82, 0x01, 0x61, 'x'}}
	}
	switch r.IntN(5) {
	case 0:
		m := &QueryRequest{Token: tok(), Versions: u32s(), SUITReports: reports(), Extensions: ext(),
			SupportedCipherSuites:     MandatoryCipherSuites()[:1+r.IntN(2)],
			SupportedSUITCOSEProfiles: MandatorySUITCOSEProfiles()[:1+r.IntN(4)],
			DataItemRequested:         DataItem(r.Uint64() & 0xf)}
		if m.DataItemRequested.Has(DataItemAttestation) {
			if maybe() {
				m.Challenge = bs(MinChallengeSize, MaxChallengeSize)
			}
			if maybe() {
				m.SupportedFreshnessMechanisms = []FreshnessMechanism{FreshnessNonce}
			}
		}
		if maybe() {
			m.AttestationPayload, m.AttestationPayloadFormat = bs(0, 50), text(100)
		}
		return m
	case 1:
		m := &QueryResponse{Token: tok(), SUITReports: reports(), ExtList: u32s(), Extensions: ext()}
		if maybe() {
			v := r.Uint32()
			m.SelectedVersion = &v
		}
		if maybe() {
			m.AttestationPayload = bs(0, 50)
		}
		for i := r.IntN(3); i > 0; i-- {
			c := SystemPropertyClaims{ComponentID: cid()}
			if maybe() {
				c.VendorID, c.ClassID = bs(16, 16), bs(16, 16)
			}
			if maybe() {
				c.ImageDigest = &Digest{Alg: -16, Bytes: bs(32, 32)}
				n := r.Uint64()
				c.ImageSize = &n
			}
			if maybe() {
				c.Other = map[int64][]byte{-int64(1 + r.IntN(100)): {0x01}, int64(30 + r.IntN(9)): {0x40}}
			}
			m.TCList = append(m.TCList, c)
		}
		for i := r.IntN(3); i > 0; i-- {
			t := RequestedTC{ComponentID: cid()}
			if maybe() {
				n := r.Uint64()
				t.SequenceNumber = &n
				h := maybe()
				t.HaveBinary = &h
			}
			m.RequestedTCList = append(m.RequestedTCList, t)
		}
		if maybe() {
			m.UnneededManifestList = []suit.ComponentID{cid()}
		}
		return m
	case 2:
		m := &Update{Token: tok(), Extensions: ext()}
		if maybe() {
			m.ManifestList = [][]byte{{0xa2, 0x02, 0x40, 0x03, 0x41, byte(r.Uint32())}}
		}
		if maybe() {
			m.UnneededManifestList = []suit.ComponentID{cid(), cid()}
		}
		if maybe() {
			m.ErrCode, m.ErrMsg, m.ErrLang = ErrCode(1+r.IntN(30)), text(MaxErrMsgSize), "de-CH"
		}
		return m
	case 3:
		m := &Success{Token: tok(), SUITReports: reports(), Extensions: ext()}
		if maybe() {
			m.Msg = text(MaxMsgSize)
		}
		return m
	}
	m := &Error{Token: tok(), ErrCode: ErrCode(1 + r.IntN(30)), SUITReports: reports(), Versions: u32s(), Extensions: ext(),
		SupportedCipherSuites: MandatoryCipherSuites(), SupportedFreshnessMechanisms: []FreshnessMechanism{FreshnessNonce},
		SupportedSUITCOSEProfiles: MandatorySUITCOSEProfiles()}
	if m.ErrCode == ErrUnsupportedMsgVersion {
		m.Versions = []uint32{0}
	}
	if maybe() {
		m.ErrMsg = text(MaxErrMsgSize)
	}
	return m
}

// Property: for random valid messages, Decode(Encode(m)) == m and the
// encoding is stable, in both numberings; the legacy and draft-26 encodings
// of the same message differ (unless it has nothing numbered differently).
func TestPropertyRoundTrip(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	for i := 0; i < 3000; i++ {
		m := randomMessage(r)
		for _, num := range []Numbering{Draft26, Legacy} {
			assertStable(t, m, num)
		}
		// What one numbering encodes, the other never decodes to the same message.
		b, err := Encode(m, EncodeOptions{Numbering: Legacy})
		if err != nil {
			t.Fatal(err)
		}
		if m2, err := Decode(b, DecodeOptions{}); err == nil && reflect.DeepEqual(stripWire(m2), stripWire(m)) {
			// Only possible when nothing in m is numbered differently.
			if d, _ := Encode(m, EncodeOptions{}); !bytes.Equal(d, b) {
				t.Fatalf("legacy bytes decoded as the same message in draft-26: %x", b)
			}
		}
	}
}
