package teep

import (
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/teep-go/teep/suit"
)

const (
	tok8   = "1348" + "0102030405060708"         // 19: token (8 bytes)
	qrTail = "81818212288184" + "2f28381c39fffd" // suites [[[18,-9]]], profiles [[-16,-9,-29,-65534]]
)

func TestDecodeRejects(t *testing.T) {
	long := strings.Repeat("61", 129)
	deep := "8204a11818" + strings.Repeat("81", 20) + "00"
	large := "8204a11818b2" // a map of 18 pairs: keys 0..16, then 0 again in a two-byte head
	for i := 0; i < 17; i++ {
		large += fmt.Sprintf("%02x00", i)
	}
	large += "180000"
	cases := []struct {
		name  string
		hex   string
		lim   Limits
		num   Numbering
		class error
		want  string
	}{
		{"empty", "", Limits{}, Draft26, ErrMalformed, "empty input"},
		{"not an array", "a0", Limits{}, Draft26, ErrMalformed, "want array, got map"},
		{"one element", "8104", Limits{}, Draft26, ErrMalformed, "array of 1 elements"},
		{"four elements (COSE)", "8404a00000", Limits{}, Draft26, ErrMalformed, "untagged COSE_Sign1"},
		{"tagged", "d28443a10126a0f640", Limits{}, Draft26, ErrMalformed, "use Open"},
		{"type as text", "826131a0", Limits{}, Draft26, ErrMalformed, "message type: want unsigned integer, got text string"},
		{"type 0", "8200a0", Limits{}, Draft26, ErrUnknownType, "unknown message type 0"},
		{"type 9", "8209a0", Limits{}, Draft26, ErrUnknownType, "unknown message type 9"},
		{"QueryRequest with 3 elements", "8301a000", Limits{}, Draft26, ErrMalformed, "QueryRequest is an array of 3 elements, want 5"},
		{"legacy success at draft-26", "8205a0", Limits{}, Draft26, ErrMalformed, "a 2-element message of type 5 is a Success in legacy numbering"},
		{"draft-26 error at legacy", "8305a00b", Limits{}, Legacy, ErrMalformed, "a 3-element message of type 5 is a Error in draft-26 numbering"},
		{"unknown numbering", "8204a0", Limits{}, Numbering(7), ErrInvalid, "unknown numbering 7"},
		{"trailing bytes", "8204a000", Limits{}, Draft26, ErrMalformed, "1 trailing bytes after the message"},
		{"options not a map", "820480", Limits{}, Draft26, ErrMalformed, "Success: options: want map, got array"},
		{"option key negative", "8204a12000", Limits{}, Draft26, ErrMalformed, "option key #0: want unsigned integer, got negative integer"},
		{"option key text", "8204a1617800", Limits{}, Draft26, ErrMalformed, "option key #0: want unsigned integer, got text string"},
		{"duplicate option", "8204a2" + tok8 + tok8, Limits{}, Draft26, ErrMalformed, "duplicate option label 19"},
		{"duplicate key in extension", "8204a11818a201010102", Limits{}, Draft26, ErrMalformed, "duplicate map key 01"},
		{"duplicate non-preferred key in extension", "8204a11818a20101180102", Limits{}, Draft26, ErrMalformed, "duplicate map key 1801"},
		{"duplicate key in a large map", large, Limits{}, Draft26, ErrMalformed, "duplicate map key 1800"},
		{"duplicate claim key", "8202a10781a200800080", Limits{}, Draft26, ErrMalformed, "tc-list[0]: duplicate key 0"},
		{"duplicate requested-tc key", "8202a10d81a20f800f80", Limits{}, Draft26, ErrMalformed, "requested-tc-list[0]: duplicate key 15"},
		{"indefinite array", "9f04a0ff", Limits{}, Draft26, ErrMalformed, "indefinite-length array"},
		{"indefinite map", "8204bfff", Limits{}, Draft26, ErrMalformed, "indefinite-length map"},
		{"indefinite token", "8204a1135f440102030444050607" + "08ff", Limits{}, Draft26, ErrMalformed, "indefinite-length byte string"},
		{"indefinite text in extension", "8204a118187f6161ff", Limits{}, Draft26, ErrMalformed, "indefinite-length text string"},
		{"reserved additional info", "8204a1131c", Limits{}, Draft26, ErrMalformed, "reserved additional information 28"},
		{"two-byte simple value", "8204a11818f810", Limits{}, Draft26, ErrMalformed, "simple value 16 in two-byte form"},
		{"stray break", "8204a11818ff", Limits{}, Draft26, ErrMalformed, "unexpected break"},
		{"huge array count", "8204a118189bffffffffffffffff", Limits{}, Draft26, ErrMalformed, "runs past the end"},
		{"huge bstr", "8204a1135bffffffffffffffff", Limits{}, Draft26, ErrMalformed, "runs past the end"},
		{"too deep", deep, Limits{}, Draft26, ErrLimit, "nesting deeper than 14 levels"},
		{"message too large", "8204a1" + tok8, Limits{MaxMessageSize: 10}, Draft26, ErrLimit, "message of 13 bytes exceeds the limit of 10"},
		{"too many options", "8204a2" + tok8 + "0a6161", Limits{MaxOptions: 1}, Draft26, ErrLimit, "options has 2 entries, limit 1"},
		{"too many manifests", "8203a10982" + "41a0" + "41a0", Limits{MaxManifests: 1}, Draft26, ErrLimit, "manifest-list has 2 elements, limit 1"},
		{"envelope too large", "8203a1098142a0a0", Limits{MaxEnvelopeSize: 1}, Draft26, ErrLimit, "SUIT envelope of 2 bytes exceeds the limit of 1"},
		{"list too long", "8202a10882" + "0000", Limits{MaxListLength: 1}, Draft26, ErrLimit, "ext-list has 2 elements, limit 1"},
		{"extension too large", "8204a1181843010203", Limits{MaxExtensionSize: 3}, Draft26, ErrLimit, "unknown option 24 of 4 bytes exceeds the limit of 3"},
		{"token 65 bytes", "8204a1135841" + strings.Repeat("00", 65), Limits{}, Draft26, ErrLimit, "token of 65 bytes exceeds the limit of 64"},
		{"token 7 bytes", "8204a11347" + "01020304050607", Limits{}, Draft26, ErrInvalid, "token: 7 bytes, want 8..64"},
		{"token as text", "8204a113683031323334353637", Limits{}, Draft26, ErrMalformed, "option token: want byte string, got text string"},
		{"versions not a list", "8501a10300" + qrTail + "00", Limits{}, Draft26, ErrMalformed, "option versions: want array, got unsigned integer"},
		{"version too big", "8501a103811b0000000100000000" + qrTail + "00", Limits{}, Draft26, ErrMalformed, "versions[0]: 4294967296 does not fit uint .size 4"},
		{"suites not a list", "8501a000" + "8184" + "2f28381c39fffd" + "00", Limits{}, Draft26, ErrMalformed, "supported-teep-cipher-suites: want array"},
		{"empty suites", "8501a080" + "8184" + "2f28381c39fffd" + "00", Limits{}, Draft26, ErrInvalid, "supported-teep-cipher-suites: present but empty"},
		{"suite without operations", "8501a08180" + "8184" + "2f28381c39fffd" + "00", Limits{}, Draft26, ErrMalformed, "supported-teep-cipher-suites[0]: cipher suite has no operations"},
		{"operation of 3", "8501a081818312280000" + "8184" + "2f28381c39fffd" + "00", Limits{}, Draft26, ErrMalformed, "supported-teep-cipher-suites[0]: operation[0]: want [COSE type, COSE algorithm], got 3 elements"},
		{"profile of 3", "8501a0818182122881832f28381c" + "00", Limits{}, Draft26, ErrMalformed, "supported-suit-cose-profiles[0]: want 4 algorithm ids, got 3"},
		{"profile int out of range", "8501a0818182122881842f28381c3bffffffffffffffff" + "00", Limits{}, Draft26, ErrMalformed, "out of range"},
		{"data-item negative", "8501a0" + qrTail + "20", Limits{}, Draft26, ErrMalformed, "data-item-requested: want unsigned integer"},
		{"challenge without attestation bit", "8501a10248" + "0102030405060708" + qrTail + "02", Limits{}, Draft26, ErrInvalid, "challenge present but the attestation bit"},
		{"freshness without attestation bit", "8501a1148100" + qrTail + "02", Limits{}, Draft26, ErrInvalid, "supported-freshness-mechanisms present but the attestation bit"},
		{"challenge too short", "8501a10244" + "01020304" + qrTail + "01", Limits{}, Draft26, ErrInvalid, "challenge: 4 bytes, want 8..512"},
		{"invalid UTF-8", "8204a10a62fffe", Limits{}, Draft26, ErrMalformed, "option msg: text string is not valid UTF-8"},
		{"msg too long", "8204a10a7881" + long, Limits{}, Draft26, ErrInvalid, "msg: 129 bytes, want at most 128"},
		{"err-lang not a tag", "8305a20b6178156565" + "6e205553" + "01", Limits{}, Draft26, ErrInvalid, "err-lang: \"en US\" is not a language tag"},
		{"error err-code 0", "8305a000", Limits{}, Draft26, ErrInvalid, "err-code 0 is reserved"},
		{"update err-code 0", "8203a11600", Limits{}, Draft26, ErrInvalid, "err-code 0 is reserved"},
		{"unsupported suites without list", "8305a005", Limits{}, Draft26, ErrInvalid, "ERR_UNSUPPORTED_CIPHER_SUITES requires supported-teep-cipher-suites"},
		{"unsupported freshness without list", "8305a003", Limits{}, Draft26, ErrInvalid, "requires supported-freshness-mechanisms"},
		{"unsupported version without list", "8305a004", Limits{}, Draft26, ErrInvalid, "requires versions"},
		{"unsupported report without list", "8305a008", Limits{}, Draft26, ErrInvalid, "requires supported-suit-cose-profiles"},
		{"known label in wrong message", "8204a10248" + "0102030405060708", Limits{}, Draft26, ErrMalformed, "option 2 (challenge in draft-26 numbering) is not allowed in Success"},
		{"component-id as option", "8202a10f80", Limits{}, Draft26, ErrMalformed, "option 15 (component-id in draft-26 numbering) is not allowed in QueryResponse"},
		{"manifest not a map", "8203a109814101", Limits{}, Draft26, ErrMalformed, "manifest-list[0]: bstr must hold an untagged SUIT_Envelope map, got unsigned integer"},
		{"manifest tagged", "8203a1098143d86ba0", Limits{}, Draft26, ErrMalformed, "SUIT_Envelope_Tagged is not allowed"},
		{"manifest truncated", "8203a1098142a101", Limits{}, Draft26, ErrMalformed, "manifest-list[0]: SUIT envelope in the bstr at byte 5: map of 1 pairs runs past the end"},
		{"manifest with trailing bytes", "8203a1098142a0a0", Limits{}, Draft26, ErrMalformed, "trailing bytes after the data item"},
		{"claims without component id", "8202a10781a10e14", Limits{}, Draft26, ErrMalformed, "tc-list[0]: system-component-id (key 0) is missing"},
		{"component id not bstr", "8202a10781a1008101", Limits{}, Draft26, ErrMalformed, "tc-list[0]: system-component-id[0]: want byte string, got unsigned integer"},
		{"image digest not wrapped", "8202a10781a20080038201" + "40", Limits{}, Draft26, ErrMalformed, "image-digest: want byte string, got array"},
		{"image digest bytes wrong", "8202a10781a2008003438201" + "00", Limits{}, Draft26, ErrMalformed, "image-digest: SUIT_Digest in the bstr at byte 9: bytes: want byte string"},
		{"claim key text", "8202a10781a1617880", Limits{}, Draft26, ErrMalformed, "tc-list[0]: key #0: want integer, got text string"},
		{"requested-tc without id", "8202a10d81a11003", Limits{}, Draft26, ErrMalformed, "component-id (label 15) is missing"},
		{"requested-tc unknown key", "8202a10d81a20f800101", Limits{}, Draft26, ErrMalformed, "key 1 is not allowed in requested-tc-info"},
		{"have-binary without sequence", "8202a10d81a20f8011f5", Limits{}, Draft26, ErrInvalid, "have-binary is true but tc-manifest-sequence-number is absent"},
		{"have-binary not bool", "8202a10d81a20f801101", Limits{}, Draft26, ErrMalformed, "have-binary: want bool, got unsigned integer"},
		{"selected-version too big", "8202a1051b0000000100000000", Limits{}, Draft26, ErrMalformed, "does not fit uint .size 4"},
		{"suit report truncated", "8204a112814282" + "01", Limits{}, Draft26, ErrMalformed, "suit-reports[0]: content of the bstr at byte 5: array of 2 elements runs past the end"},
		{"suit report trailing", "8204a11281420000", Limits{}, Draft26, ErrMalformed, "trailing bytes after the data item"},
		{"suit reports empty", "8204a11280", Limits{}, Draft26, ErrInvalid, "suit-reports: present but empty"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			data, err := hex.DecodeString(c.hex)
			if err != nil {
				t.Fatal(err)
			}
			m, err := Decode(data, DecodeOptions{Numbering: c.num, Limits: c.lim})
			if err == nil {
				t.Fatalf("accepted: %#v", m)
			}
			var pe *ProtocolError
			if !errors.As(err, &pe) {
				t.Fatalf("not a ProtocolError: %T %v", err, err)
			}
			if CodeOf(err) != ErrPermanentError {
				t.Errorf("code %v", CodeOf(err))
			}
			if !errors.Is(err, c.class) {
				t.Errorf("class: %v is not %v", err, c.class)
			}
			if !strings.Contains(err.Error(), c.want) {
				t.Errorf("error %q\n lacks %q", err, c.want)
			}
			if !strings.HasPrefix(err.Error(), "teep: ") {
				t.Errorf("error %q lacks the package prefix", err)
			}
		})
	}
}

func TestEveryTruncationRejected(t *testing.T) {
	for _, dir := range []struct {
		name string
		num  Numbering
	}{{"draft-26", Draft26}, {"pre-26-legacy", Legacy}} {
		for _, name := range vectorNames {
			data := readHex(t, "teep/"+dir.name+"/"+name+".hex")
			for n := 0; n < len(data); n++ {
				if _, err := Decode(data[:n], DecodeOptions{Numbering: dir.num}); err == nil {
					t.Fatalf("%s/%s: prefix of %d bytes accepted", dir.name, name, n)
				} else if CodeOf(err) != ErrPermanentError {
					t.Fatalf("%s/%s[:%d]: code %v", dir.name, name, n, CodeOf(err))
				}
			}
		}
	}
}

func TestEncodeRejects(t *testing.T) {
	cases := []struct {
		name string
		m    Message
		want string
	}{
		{"short token", &Success{Token: []byte{1}}, "token: 1 bytes"},
		{"long challenge", &Error{ErrCode: 1, Challenge: make([]byte, 513)}, "challenge: 513 bytes"},
		{"error without code", &Error{}, "err-code is missing"},
		{"query request without suites", &QueryRequest{SupportedSUITCOSEProfiles: MandatorySUITCOSEProfiles()}, "at least one cipher suite"},
		{"query request without profiles", &QueryRequest{SupportedCipherSuites: MandatoryCipherSuites()}, "at least one profile"},
		{"empty present list", &QueryResponse{ExtList: []uint32{}}, "ext-list: present but empty"},
		{"envelope not a map", &Update{ManifestList: [][]byte{{0x80}}}, "not an untagged SUIT_Envelope"},
		{"envelope malformed", &Update{ManifestList: [][]byte{{0xa1, 0x01}}}, "manifest-list[0]"},
		{"report malformed", &Success{SUITReports: [][]byte{{0x82, 0x01}}}, "suit-reports[0]"},
		{"claims without id", &QueryResponse{TCList: []SystemPropertyClaims{{}}}, "system-component-id is missing"},
		{"claims other shadows typed", &QueryResponse{TCList: []SystemPropertyClaims{{ComponentID: suit.ComponentID{}, Other: map[int64][]byte{14: {0x01}}}}}, "parameter 14"},
		{"claims other malformed", &QueryResponse{TCList: []SystemPropertyClaims{{ComponentID: suit.ComponentID{}, Other: map[int64][]byte{99: {0x82}}}}}, "parameter 99"},
		{"invalid utf-8", &Success{Msg: "\xff"}, "not valid UTF-8"},
		{"err-msg too long", &Update{ErrCode: 1, ErrMsg: strings.Repeat("x", 129)}, "err-msg: 129 bytes"},
		{"err-lang too long", &Update{ErrCode: 1, ErrMsg: "x", ErrLang: strings.Repeat("a", 36)}, "err-lang: 36 bytes"},
		{"numbering", &Success{}, "unknown numbering"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			o := EncodeOptions{}
			if c.name == "numbering" {
				o.Numbering = 9
			}
			b, err := Encode(c.m, o)
			if err == nil {
				t.Fatalf("encoded %x", b)
			}
			if !strings.Contains(err.Error(), c.want) {
				t.Fatalf("error %q lacks %q", err, c.want)
			}
		})
	}
	if _, err := Encode(nil, EncodeOptions{}); err == nil {
		t.Fatal("nil message encoded")
	}
}

// An Agent with nothing installed, asked for its tc-list, can only answer
// tc-list: []. Input is read as "nothing installed"; our output stays strict.
func TestEmptyTCListIsNothingInstalled(t *testing.T) {
	for _, n := range []Numbering{Draft26, Legacy} {
		data := mustHex(t, "8202a10780")
		if n == Legacy {
			data = mustHex(t, "8202a10880")
		}
		m, err := Decode(data, DecodeOptions{Numbering: n})
		if err != nil {
			t.Fatalf("%v: decode: %v", n, err)
		}
		qr := m.(*QueryResponse)
		if qr.TCList == nil || len(qr.TCList) != 0 {
			t.Fatalf("%v: TCList = %#v, want present and empty", n, qr.TCList)
		}
		if _, err := Encode(qr, EncodeOptions{Numbering: n}); err == nil || !strings.Contains(err.Error(), "tc-list: present but empty") {
			t.Fatalf("%v: encode of an empty tc-list: err = %v, want the strict refusal", n, err)
		}
	}
}
