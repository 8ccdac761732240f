package teep

import (
	"bytes"
	"encoding/hex"
	"errors"
	"reflect"
	"strings"
	"testing"

	"github.com/teep-go/teep/suit"
)

var token16 = []byte{0xa0, 0xa1, 0xa2, 0xa3, 0xa4, 0xa5, 0xa6, 0xa7, 0xa8, 0xa9, 0xaa, 0xab, 0xac, 0xad, 0xae, 0xaf}

// stripWire clears what Decode records about the wire layout, so decoded
// and constructed messages compare equal.
func stripWire(m Message) Message {
	switch m := m.(type) {
	case *QueryRequest:
		c := *m
		c.wire = nil
		return &c
	case *QueryResponse:
		c := *m
		c.wire = nil
		c.TCList = append([]SystemPropertyClaims(nil), m.TCList...)
		for i := range c.TCList {
			c.TCList[i].order = nil
		}
		c.RequestedTCList = append([]RequestedTC(nil), m.RequestedTCList...)
		for i := range c.RequestedTCList {
			c.RequestedTCList[i].order = nil
		}
		if m.TCList == nil {
			c.TCList = nil
		}
		if m.RequestedTCList == nil {
			c.RequestedTCList = nil
		}
		return &c
	case *Update:
		c := *m
		c.wire = nil
		return &c
	case *Success:
		c := *m
		c.wire = nil
		return &c
	case *Error:
		c := *m
		c.wire = nil
		return &c
	}
	return m
}

func u32(v uint32) *uint32 { return &v }
func u64(v uint64) *uint64 { return &v }
func boolp(v bool) *bool   { return &v }

// expectedVectors are the Appendix D messages as the draft describes them.
func expectedVectors(t *testing.T) map[string]Message {
	env := readHex(t, "teep/suit/update_embedded_envelope.hex")
	return map[string]Message{
		"query_request": &QueryRequest{
			Token:                     token16,
			Versions:                  []uint32{0},
			SupportedCipherSuites:     []CipherSuite{CipherSuiteESP256, CipherSuiteEd25519},
			SupportedSUITCOSEProfiles: MandatorySUITCOSEProfiles(),
			DataItemRequested:         DataItemAttestation | DataItemTrustedComponents,
		},
		"query_response": &QueryResponse{
			Token:              token16,
			SelectedVersion:    u32(0),
			AttestationPayload: []byte{},
			TCList: []SystemPropertyClaims{{
				ComponentID: suit.ComponentID{mustHex(t, "0102030405060708090a0b0c0d0e0f")},
				ImageDigest: &Digest{Alg: -16, Bytes: mustHex(t, "a7fd6593eac32eb4be578278e6540c5c09cfd7d4d234973054833b2b93030609")},
			}},
		},
		"update":  &Update{Token: token16, ManifestList: [][]byte{env}},
		"success": &Success{Token: token16},
		"error":   &Error{Token: token16, ErrMsg: "disk-full", ErrCode: ErrManifestProcessingFailed},
	}
}

func TestVectorsDecodeToExpectedValues(t *testing.T) {
	want := expectedVectors(t)
	for _, dir := range []struct {
		name string
		num  Numbering
	}{{"draft-26", Draft26}, {"pre-26-legacy", Legacy}} {
		for _, name := range vectorNames {
			t.Run(dir.name+"/"+name, func(t *testing.T) {
				m, err := Decode(readHex(t, "teep/"+dir.name+"/"+name+".hex"), DecodeOptions{Numbering: dir.num})
				if err != nil {
					t.Fatal(err)
				}
				if got := stripWire(m); !reflect.DeepEqual(got, want[name]) {
					t.Fatalf("decoded\n%#v\nwant\n%#v", got, want[name])
				}
			})
		}
	}
}

func TestVectorQueryResponseKeepsEmptyAttestationPayload(t *testing.T) {
	m, err := Decode(readHex(t, "teep/draft-26/query_response.hex"), DecodeOptions{})
	if err != nil {
		t.Fatal(err)
	}
	qr := m.(*QueryResponse)
	if qr.AttestationPayload == nil || len(qr.AttestationPayload) != 0 {
		t.Fatalf("attestation-payload h'' must decode as present and empty, got %#v", qr.AttestationPayload)
	}
}

// Translating a legacy vector to draft-26 numbering, keeping the order,
// must give the draft-26 vector: the two sets differ only in numbering.
func TestVectorsTranslateBetweenNumberings(t *testing.T) {
	for _, name := range vectorNames {
		legacy := readHex(t, "teep/pre-26-legacy/"+name+".hex")
		d26 := readHex(t, "teep/draft-26/"+name+".hex")
		for _, c := range []struct {
			in       []byte
			from, to Numbering
			want     []byte
		}{{legacy, Legacy, Draft26, d26}, {d26, Draft26, Legacy, legacy}} {
			m, err := Decode(c.in, DecodeOptions{Numbering: c.from})
			if err != nil {
				t.Fatal(err)
			}
			got, err := Encode(m, EncodeOptions{Numbering: c.to, PreserveOrder: true})
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(got, c.want) {
				t.Fatalf("%s %v->%v:\n got %x\nwant %x", name, c.from, c.to, got, c.want)
			}
		}
	}
}

// Every vector must be refused in the other numbering: never a silent
// mis-decode.
func TestVectorsRejectedInOtherNumbering(t *testing.T) {
	hints := map[string]string{
		"pre-26-legacy/success": "is a Success in legacy numbering",
		"draft-26/error":        "is a Error in draft-26 numbering",
		"pre-26-legacy/error":   "unknown message type 6 in draft-26 numbering",
		"draft-26/success":      "unknown message type 4 in legacy numbering",
		"pre-26-legacy/update":  "option 20 (supported-freshness-mechanisms in draft-26 numbering) is not allowed in Update (in legacy numbering it is token",
	}
	for _, dir := range []struct {
		name string
		num  Numbering
	}{{"draft-26", Legacy}, {"pre-26-legacy", Draft26}} {
		for _, name := range vectorNames {
			_, err := Decode(readHex(t, "teep/"+dir.name+"/"+name+".hex"), DecodeOptions{Numbering: dir.num})
			if err == nil {
				t.Fatalf("%s/%s decoded in %v numbering", dir.name, name, dir.num)
			}
			if CodeOf(err) != ErrPermanentError {
				t.Fatalf("%s/%s: code %v", dir.name, name, CodeOf(err))
			}
			if h, ok := hints[dir.name+"/"+name]; ok && !strings.Contains(err.Error(), h) {
				t.Errorf("%s/%s: error %q lacks %q", dir.name, name, err, h)
			}
		}
	}
}

func TestDeterministicEncoding(t *testing.T) {
	// D.1 has {19: token, 3: versions}; deterministic order is {3, 19}.
	m, err := Decode(readHex(t, "teep/draft-26/query_request.hex"), DecodeOptions{})
	if err != nil {
		t.Fatal(err)
	}
	got, err := Encode(m, EncodeOptions{})
	if err != nil {
		t.Fatal(err)
	}
	want := "8501a2038100" + "1350a0a1a2a3a4a5a6a7a8a9aaabacadaeaf" +
		"82818212288182123284842f28381c39fffd842f32381c39fffd842f28381c01842f32381c181803"
	if hex.EncodeToString(got) != want {
		t.Fatalf("got  %x\nwant %s", got, want)
	}
	for _, dir := range []struct {
		name string
		num  Numbering
	}{{"draft-26", Draft26}, {"pre-26-legacy", Legacy}} {
		for _, name := range vectorNames {
			m, err := Decode(readHex(t, "teep/"+dir.name+"/"+name+".hex"), DecodeOptions{Numbering: dir.num})
			if err != nil {
				t.Fatal(err)
			}
			assertStable(t, m, dir.num)
		}
	}
}

// assertStable checks Encode(Decode(Encode(m))) == Encode(m) and that the
// decoded value equals the original.
func assertStable(t *testing.T, m Message, num Numbering) {
	t.Helper()
	b1, err := Encode(m, EncodeOptions{Numbering: num})
	if err != nil {
		t.Fatalf("Encode: %v", err)
	}
	m2, err := Decode(b1, DecodeOptions{Numbering: num})
	if err != nil {
		t.Fatalf("Decode(Encode(m)): %v\n%x", err, b1)
	}
	if a, b := stripWire(m), stripWire(m2); !reflect.DeepEqual(a, b) {
		t.Fatalf("round trip changed the message\n%#v\n%#v", a, b)
	}
	b2, err := Encode(m2, EncodeOptions{Numbering: num})
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(b1, b2) {
		t.Fatalf("encoding not stable\n%x\n%x", b1, b2)
	}
}

func TestEveryMessageFieldRoundTrips(t *testing.T) {
	env := readHex(t, "teep/suit/suit_uri.hex")
	report := readHex(t, "teep/derived/suit_report_appendix_f1_success.hex")
	cid := suit.ComponentID{[]byte("TEEP-Device"), []byte("SecureFS"), mustHex(t, "8d82573a926d4754935332dc29997f74"), []byte("ta")}
	msgs := []Message{
		&QueryRequest{
			Token:                        token16,
			SupportedFreshnessMechanisms: []FreshnessMechanism{FreshnessNonce, FreshnessTimestamp},
			Challenge:                    bytes.Repeat([]byte{7}, 32),
			Versions:                     []uint32{0, 1, 1 << 31},
			AttestationPayloadFormat:     "application/eat+cwt",
			AttestationPayload:           []byte{1, 2, 3},
			SUITReports:                  [][]byte{report},
			SupportedCipherSuites:        []CipherSuite{CipherSuiteEd25519, {{COSETypeSign, -9}, {COSETypeSign1, -7}}},
			SupportedSUITCOSEProfiles:    []SUITCOSEProfile{SUITProfileSHA256ESP256ECDHA128GCM},
			DataItemRequested:            DataItemAttestation | DataItemSUITReports | 1<<40,
			Extensions:                   Extensions{30: {0x63, 'a', 'b', 'c'}, 1000: {0xa1, 0x01, 0x80}},
		},
		&QueryResponse{
			Token:                    token16,
			SelectedVersion:          u32(0),
			AttestationPayloadFormat: "application/eat+cwt; eat_profile=urn:ietf:rfc:rfcXXXX",
			AttestationPayload:       bytes.Repeat([]byte{9}, 300),
			SUITReports:              [][]byte{report, report},
			TCList: []SystemPropertyClaims{
				{ComponentID: cid, VendorID: bytes.Repeat([]byte{1}, 16), ClassID: bytes.Repeat([]byte{2}, 16),
					ImageDigest: &Digest{Alg: -16, Bytes: bytes.Repeat([]byte{3}, 32)}, ImageSize: u64(20),
					Other: map[int64][]byte{-1: {0x01}, 24: {0x64, 'v', '1', '.', '0'}}},
				{ComponentID: suit.ComponentID{}},
			},
			RequestedTCList: []RequestedTC{
				{ComponentID: cid},
				{ComponentID: cid, SequenceNumber: u64(3), HaveBinary: boolp(true)},
				{ComponentID: cid, HaveBinary: boolp(false)},
			},
			UnneededManifestList: []suit.ComponentID{cid, {[]byte{}}},
			ExtList:              []uint32{7},
		},
		&Update{
			Token:                    token16,
			UnneededManifestList:     []suit.ComponentID{cid},
			ManifestList:             [][]byte{env, readHex(t, "teep/suit/suit_integrated.hex")},
			AttestationPayloadFormat: "application/eat+cwt",
			AttestationPayload:       []byte{0xd2},
			ErrCode:                  ErrAttestationRequired,
			ErrMsg:                   "attestation failed: TEE firmware out of date",
			ErrLang:                  "en-US",
		},
		&Success{Token: token16, Msg: "installed ✓", SUITReports: [][]byte{report}},
		&Success{},
		&Error{
			Token:                        token16,
			ErrMsg:                       "no common suite",
			ErrLang:                      "en",
			SupportedCipherSuites:        []CipherSuite{CipherSuiteEd25519},
			SupportedFreshnessMechanisms: []FreshnessMechanism{FreshnessNonce},
			SupportedSUITCOSEProfiles:    []SUITCOSEProfile{SUITProfileSHA256Ed25519ECDHChaChaPoly},
			Challenge:                    bytes.Repeat([]byte{5}, 8),
			Versions:                     []uint32{0},
			SUITReports:                  [][]byte{report},
			ErrCode:                      ErrUnsupportedCipherSuites,
		},
		&Error{ErrCode: 200},
		&Error{ErrCode: ErrManifestProcessingFailed},
		&Error{ErrCode: 17},
	}
	for _, m := range msgs {
		for _, num := range []Numbering{Draft26, Legacy} {
			t.Run(m.Type().String()+"/"+num.String(), func(t *testing.T) {
				assertStable(t, m, num)
				// values work as well as pointers
				v := reflect.ValueOf(m).Elem().Interface().(Message)
				a, err := Encode(v, EncodeOptions{Numbering: num})
				if err != nil {
					t.Fatal(err)
				}
				b, _ := Encode(m, EncodeOptions{Numbering: num})
				if !bytes.Equal(a, b) {
					t.Fatal("value and pointer encode differently")
				}
			})
		}
	}
}

func TestLegacyErrCodeWire(t *testing.T) {
	cases := []struct {
		code ErrCode
		d26  string
		leg  string
	}{
		{ErrManifestProcessingFailed, "8305a00b", "8306a011"},
		{17, "8305a011", "8306a00b"}, // the swap keeps unassigned codes distinct
		{ErrTemporaryError, "8305a00a", "8306a00a"},
	}
	for _, c := range cases {
		for _, x := range []struct {
			num  Numbering
			want string
		}{{Draft26, c.d26}, {Legacy, c.leg}} {
			got, err := Encode(&Error{ErrCode: c.code}, EncodeOptions{Numbering: x.num})
			if err != nil {
				t.Fatal(err)
			}
			if hex.EncodeToString(got) != x.want {
				t.Fatalf("%v in %v: got %x want %s", c.code, x.num, got, x.want)
			}
			m, err := Decode(got, DecodeOptions{Numbering: x.num})
			if err != nil {
				t.Fatal(err)
			}
			if m.(*Error).ErrCode != c.code {
				t.Fatalf("decoded %v", m.(*Error).ErrCode)
			}
		}
	}
	// Update's err-code option: label 22 / 23, value 11 / 17.
	got, err := Encode(&Update{ErrCode: ErrManifestProcessingFailed}, EncodeOptions{Numbering: Legacy})
	if err != nil || hex.EncodeToString(got) != "8203a11711" {
		t.Fatalf("legacy Update err-code: %x %v", got, err)
	}
	got, err = Encode(&Update{ErrCode: ErrManifestProcessingFailed}, EncodeOptions{})
	if err != nil || hex.EncodeToString(got) != "8203a1160b" {
		t.Fatalf("draft-26 Update err-code: %x %v", got, err)
	}
}

func TestExtensions(t *testing.T) {
	// {19: token, 23: "x", 200: {2: 1, 1: 2}} in draft-26: 23 and 200 are unknown.
	in := mustHex(t, "8204a3"+"1348"+"0102030405060708"+"1761"+"78"+"18c8"+"a202010102")
	m, err := Decode(in, DecodeOptions{})
	if err != nil {
		t.Fatal(err)
	}
	s := m.(*Success)
	if len(s.Extensions) != 2 || hex.EncodeToString(s.Extensions[23]) != "6178" || hex.EncodeToString(s.Extensions[200]) != "a202010102" {
		t.Fatalf("extensions %x", s.Extensions)
	}
	// PreserveOrder: byte for byte; deterministic: inner map sorted.
	got, err := Encode(m, EncodeOptions{PreserveOrder: true})
	if err != nil || !bytes.Equal(got, in) {
		t.Fatalf("preserve: %x %v", got, err)
	}
	got, err = Encode(m, EncodeOptions{})
	if err != nil || hex.EncodeToString(got) != "8204a3"+"1348"+"0102030405060708"+"1761"+"78"+"18c8"+"a201020201" {
		t.Fatalf("deterministic: %x %v", got, err)
	}
	// Received in draft-26, they cannot be re-encoded in legacy numbering
	// (legacy 23 is err-code).
	if _, err := Encode(m, EncodeOptions{Numbering: Legacy}); !errors.Is(err, ErrNumbering) {
		t.Fatalf("legacy re-encode: %v", err)
	}
	// A constructed extension must not collide with a known label.
	_, err = Encode(&Success{Extensions: Extensions{10: {0x01}}}, EncodeOptions{})
	if err == nil || !strings.Contains(err.Error(), "extension label 10 is msg") {
		t.Fatalf("collision: %v", err)
	}
	// Legacy 5 is unassigned there (it was selected-teep-cipher-suite in
	// early drafts), so it is an extension in legacy numbering...
	if _, err := Encode(&Success{Extensions: Extensions{5: {0x01}}}, EncodeOptions{Numbering: Legacy}); err != nil {
		t.Fatal(err)
	}
	// ...and a known label not allowed in a Success in draft-26.
	if _, err := Decode(mustHex(t, "8204a10501"), DecodeOptions{}); err == nil {
		t.Fatal("selected-version accepted in a Success")
	}
	// Extension values must be one well-formed item.
	for _, bad := range [][]byte{nil, {0x01, 0x02}, {0x9f, 0xff}, {0x62, 0xff, 0xfe}} {
		if _, err := Encode(&Success{Extensions: Extensions{30: bad}}, EncodeOptions{}); err == nil {
			t.Fatalf("extension %x accepted", bad)
		}
	}
}

func TestPreserveOrderAppendsNewFields(t *testing.T) {
	m, err := Decode(readHex(t, "teep/draft-26/success.hex"), DecodeOptions{})
	if err != nil {
		t.Fatal(err)
	}
	s := m.(*Success)
	s.Msg = "ok"
	got, err := Encode(s, EncodeOptions{PreserveOrder: true})
	if err != nil {
		t.Fatal(err)
	}
	want := "8204a2" + "1350a0a1a2a3a4a5a6a7a8a9aaabacadaeaf" + "0a626f6b"
	if hex.EncodeToString(got) != want {
		t.Fatalf("got %x", got)
	}
}
