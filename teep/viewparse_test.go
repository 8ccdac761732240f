package teep

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"

	"github.com/teep-go/teep/suit"
)

// roundTrip renders m as the JSON view, reads it back, and returns the
// deterministic encodings of both.
func roundTrip(t testing.TB, m Message, n Numbering) (want, got []byte) {
	t.Helper()
	want, err := Encode(m, EncodeOptions{Numbering: n})
	if err != nil {
		t.Fatalf("encode the original: %v", err)
	}
	j, err := json.Marshal(NewView(m, nil, len(want), ViewOptions{Numbering: n}))
	if err != nil {
		t.Fatal(err)
	}
	back, num, err := ParseView(j)
	if err != nil {
		t.Fatalf("ParseView: %v\n%s", err, j)
	}
	if num != n || back.Type() != m.Type() {
		t.Fatalf("read back a %v in %v, want a %v in %v", back.Type(), num, m.Type(), n)
	}
	if got, err = Encode(back, EncodeOptions{Numbering: n}); err != nil {
		t.Fatalf("encode what was read back: %v", err)
	}
	return want, got
}

// Every message type in both numberings survives JSON and back: the spec's
// vectors, and messages with every option set (extensions, unknown
// parameters, empty-but-present payloads, the legacy err-code swap).
func TestViewIsLossless(t *testing.T) {
	seq, yes := uint64(3), true
	sel := uint32(0)
	size := uint64(42)
	full := []Message{
		&QueryRequest{Token: bytes.Repeat([]byte{1}, 8), SupportedFreshnessMechanisms: []FreshnessMechanism{FreshnessNonce, FreshnessTimestamp},
			Challenge: bytes.Repeat([]byte{2}, 16), Versions: []uint32{0, 1}, AttestationPayloadFormat: "application/eat+cwt",
			AttestationPayload: []byte{0xa0}, SUITReports: [][]byte{{0xa0}}, SupportedCipherSuites: MandatoryCipherSuites(),
			SupportedSUITCOSEProfiles: MandatorySUITCOSEProfiles(), DataItemRequested: DataItemAttestation | DataItemTrustedComponents,
			Extensions: Extensions{900: {0x63, 'a', 'b', 'c'}}},
		&QueryResponse{Token: bytes.Repeat([]byte{3}, 8), SelectedVersion: &sel, AttestationPayload: []byte{},
			TCList: []SystemPropertyClaims{{ComponentID: suit.ComponentID{[]byte("TEEP-Device"), {0x01}}, VendorID: bytes.Repeat([]byte{4}, 16),
				ImageDigest: &Digest{Alg: -16, Bytes: bytes.Repeat([]byte{5}, 32)}, ImageSize: &size, Other: map[int64][]byte{-257: {0x01}}}},
			RequestedTCList:      []RequestedTC{{ComponentID: suit.ComponentID{[]byte("app")}, SequenceNumber: &seq, HaveBinary: &yes}},
			UnneededManifestList: []suit.ComponentID{{[]byte("old")}}, ExtList: []uint32{1}},
		&Update{Token: bytes.Repeat([]byte{6}, 8), UnneededManifestList: []suit.ComponentID{{[]byte("gone")}}, ManifestList: [][]byte{{0xa1, 0x02, 0x40}},
			ErrCode: ErrManifestProcessingFailed, ErrMsg: "partly", ErrLang: "en"},
		&Success{Token: bytes.Repeat([]byte{7}, 8), Msg: "done", SUITReports: [][]byte{{0xa0}}},
		&Error{Token: bytes.Repeat([]byte{8}, 8), ErrCode: ErrUnsupportedMsgVersion, Versions: []uint32{0}, ErrMsg: "no version"},
		&Error{ErrCode: ErrManifestProcessingFailed, SUITReports: [][]byte{{0xa0}}},
	}
	for _, n := range []Numbering{Draft26, Legacy} {
		for _, m := range full {
			t.Run(n.String()+"/"+m.Type().String(), func(t *testing.T) {
				if want, got := roundTrip(t, m, n); !bytes.Equal(want, got) {
					t.Fatalf("\n got %x\nwant %x", got, want)
				}
			})
		}
		dir := map[Numbering]string{Draft26: "draft-26", Legacy: "pre-26-legacy"}[n]
		for _, name := range vectorNames {
			t.Run(n.String()+"/vector/"+name, func(t *testing.T) {
				m, err := Decode(readHex(t, "teep/"+dir+"/"+name+".hex"), DecodeOptions{Numbering: n})
				if err != nil {
					t.Fatal(err)
				}
				if want, got := roundTrip(t, m, n); !bytes.Equal(want, got) {
					t.Fatalf("\n got %x\nwant %x", got, want)
				}
			})
		}
	}
}

func TestParseViewRefusesBadInput(t *testing.T) {
	cases := []struct{ name, in, want string }{
		{"not JSON", `{`, "unexpected EOF"},
		{"unknown type", `{"type":"hello","message":{}}`, "unknown message type"},
		{"unknown member", `{"type":"success","message":{"tokn":"00"}}`, "unknown field"},
		{"bad hex", `{"type":"success","message":{"token":"zz"}}`, "token"},
		{"manifest without its bytes", `{"type":"update","message":{"token":"0101010101010101","manifest-list":[{"size":3,"sha256":"00"}]}}`, "no hex"},
		{"error without code", `{"type":"error","message":{}}`, "err-code"},
		{"invalid message", `{"type":"success","message":{"token":"01"}}`, "token"},
		{"extension not a number", `{"type":"success","message":{"1x":{"cbor":"00"}}}`, "unknown field"},
		{"trailing data", `{"type":"success","message":{}} {}`, "trailing"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, _, err := ParseView([]byte(c.in))
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("err = %v, want %q", err, c.want)
			}
		})
	}
}

// FuzzViewRoundTrip: every message the decoder accepts comes back from its
// JSON view with the same deterministic encoding; ParseView never panics.
func FuzzViewRoundTrip(f *testing.F) {
	for _, s := range vectorSeeds(f, "draft-26") {
		f.Add(s, false)
	}
	for _, s := range vectorSeeds(f, "pre-26-legacy") {
		f.Add(s, true)
	}
	f.Fuzz(func(t *testing.T, data []byte, legacy bool) {
		n := Draft26
		if legacy {
			n = Legacy
		}
		ParseView(data)
		m, err := Decode(data, DecodeOptions{Numbering: n})
		if err != nil {
			return
		}
		if want, got := roundTrip(t, m, n); !bytes.Equal(want, got) {
			t.Fatalf("\n got %x\nwant %x", got, want)
		}
	})
}
