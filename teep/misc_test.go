package teep

import (
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/teep-go/teep/cosekey"
	"github.com/teep-go/teep/suit"
)

func TestCodeOf(t *testing.T) {
	cases := []struct {
		err  error
		want ErrCode
	}{
		{nil, 0},
		{&ProtocolError{Code: ErrUnsupportedMsgVersion}, ErrUnsupportedMsgVersion},
		{fmt.Errorf("agent: %w", &ProtocolError{Code: ErrCertificateExpired}), ErrCertificateExpired},
		{fmt.Errorf("x: %w", cosekey.ErrUnsupportedAlg), ErrUnsupportedCipherSuites},
		{cosekey.ErrNoTrustedKey, ErrBadCertificate},
		{cosekey.ErrSignature, ErrPermanentError},
		{cosekey.ErrMalformed, ErrPermanentError},
		{cosekey.ErrUnsupportedHeader, ErrPermanentError},
		{ErrLimit, ErrPermanentError},
		{context.DeadlineExceeded, ErrTemporaryError},
		{errors.New("disk full"), ErrTemporaryError},
	}
	for _, c := range cases {
		if got := CodeOf(c.err); got != c.want {
			t.Errorf("CodeOf(%v) = %v, want %v", c.err, got, c.want)
		}
	}
	_, err := SelectVersion([]uint32{7}, SupportedVersions())
	if CodeOf(err) != ErrUnsupportedMsgVersion || !errors.Is(err, ErrNoCommon) {
		t.Fatalf("%v", err)
	}
}

func TestNegotiation(t *testing.T) {
	if v, err := SelectVersion(nil, SupportedVersions()); err != nil || v != 0 {
		t.Fatalf("absent versions: %v %v", v, err)
	}
	if v, err := SelectVersion([]uint32{3, 2}, []uint32{1, 2, 3}); err != nil || v != 2 {
		t.Fatalf("our preference first: %v %v", v, err)
	}
	s, err := SelectCipherSuite(MandatoryCipherSuites(), []CipherSuite{CipherSuiteEd25519})
	if err != nil || !s.Equal(CipherSuiteEd25519) {
		t.Fatalf("%v %v", s, err)
	}
	if _, err := SelectCipherSuite([]CipherSuite{Sign1Suite(-7)}, MandatoryCipherSuites()); CodeOf(err) != ErrUnsupportedCipherSuites {
		t.Fatalf("%v", err)
	}
	if f, err := SelectFreshness(nil, []FreshnessMechanism{FreshnessTimestamp, FreshnessNonce}); err != nil || f != FreshnessNonce {
		t.Fatalf("absent freshness means nonce: %v %v", f, err)
	}
	if _, err := SelectFreshness([]FreshnessMechanism{FreshnessTimestamp}, []FreshnessMechanism{FreshnessNonce}); CodeOf(err) != ErrUnsupportedFreshnessMechanisms {
		t.Fatalf("%v", err)
	}
	if p, err := SelectSUITCOSEProfile(MandatorySUITCOSEProfiles(), []SUITCOSEProfile{SUITProfileSHA256Ed25519ECDHChaChaPoly}); err != nil || p != SUITProfileSHA256Ed25519ECDHChaChaPoly {
		t.Fatalf("%v %v", p, err)
	}
	if _, err := SelectSUITCOSEProfile(nil, MandatorySUITCOSEProfiles()); CodeOf(err) != ErrUnsupportedSUITReport {
		t.Fatalf("%v", err)
	}
	if a, ok := CipherSuiteESP256.Sign1Alg(); !ok || a != -9 {
		t.Fatal("Sign1Alg")
	}
	if _, ok := (CipherSuite{{COSETypeSign, -9}}).Sign1Alg(); ok {
		t.Fatal("Sign1Alg of a COSE_Sign suite")
	}
}

func TestErrorFor(t *testing.T) {
	caps := Capabilities{
		CipherSuites:        []CipherSuite{CipherSuiteEd25519},
		FreshnessMechanisms: []FreshnessMechanism{FreshnessNonce},
		SUITCOSEProfiles:    []SUITCOSEProfile{SUITProfileSHA256Ed25519ECDHChaChaPoly},
		Versions:            SupportedVersions(),
	}
	_, negErr := SelectCipherSuite(MandatoryCipherSuites()[:1], caps.CipherSuites)
	m := ErrorFor(negErr, token16, caps)
	if m.ErrCode != ErrUnsupportedCipherSuites || len(m.SupportedCipherSuites) != 1 || string(m.Token) != string(token16) {
		t.Fatalf("%+v", m)
	}
	if _, err := Encode(m, EncodeOptions{}); err != nil {
		t.Fatal(err)
	}
	// Without the list the code falls back to a permanent error.
	m = ErrorFor(negErr, []byte{1}, Capabilities{})
	if m.ErrCode != ErrPermanentError || m.Token != nil || m.SupportedCipherSuites != nil {
		t.Fatalf("%+v", m)
	}
	// err-msg is cut at a rune boundary and stays valid.
	long := errors.New(strings.Repeat("é", 100) + "\xff")
	m = ErrorFor(long, nil, caps)
	if len(m.ErrMsg) > MaxErrMsgSize || !utf8.ValidString(m.ErrMsg) || m.ErrCode != ErrTemporaryError {
		t.Fatalf("%q %v", m.ErrMsg, m.ErrCode)
	}
	if err := m.Validate(); err != nil {
		t.Fatal(err)
	}
}

func TestNames(t *testing.T) {
	if TypeSuccess.String() != "success" || TypeQueryRequest.String() != "query-request" || Type(9).String() != "Type(9)" {
		t.Fatal("Type.String")
	}
	if LabelToken.String() != "token" || LabelErrCode.String() != "err-code" || Label(40).String() != "label(40)" {
		t.Fatal("Label.String")
	}
	if ErrManifestProcessingFailed.String() != "ERR_MANIFEST_PROCESSING_FAILED" || ErrCode(99).String() != "ERR_99" || ErrCode(0).Known() {
		t.Fatal("ErrCode.String")
	}
	if got := strings.Join((DataItemAttestation | DataItemSUITReports | 1<<9).Names(), ","); got != "attestation,suit-reports,bit-9" {
		t.Fatal(got)
	}
	if SUITProfileSHA256ESP256ECDHA128GCM.String() != "suit-sha256-esp256-ecdh-a128gcm" || (SUITCOSEProfile{1, 2, 3, 4}).String() != "[1, 2, 3, 4]" {
		t.Fatal("profile names")
	}
	if got := (suit.ComponentID{[]byte("TEEP-Device"), {0x8d, 0x82}}).String(); got != "TEEP-Device/hex:8d82" {
		t.Fatal(got)
	}
	if CipherSuiteESP256.String() != "[[18, -9]]" || FreshnessTimestamp.String() != "FRESHNESS_TIMESTAMP" {
		t.Fatal("suite / freshness names")
	}
	for _, s := range []string{"legacy", "pre-26"} {
		if n, err := ParseNumbering(s); err != nil || n != Legacy {
			t.Fatal(s)
		}
	}
	if n, err := ParseNumbering(""); err != nil || n != Draft26 {
		t.Fatal("default numbering")
	}
	if _, err := ParseNumbering("27"); err == nil {
		t.Fatal("unknown numbering accepted")
	}
}

// The label and type tables must be bijections within each numbering and
// agree with the draft-26 §0 renumbering table of the reference digest.
func TestNumberingTables(t *testing.T) {
	legacyWire := map[Label]uint64{
		LabelSupportedCipherSuites: 1, LabelChallenge: 2, LabelVersions: 3, LabelSupportedSUITCOSEProfiles: 4,
		LabelSelectedVersion: 6, LabelAttestationPayload: 7, LabelTCList: 8, LabelExtList: 9, LabelManifestList: 10,
		LabelMsg: 11, LabelErrMsg: 12, LabelAttestationPayloadFormat: 13, LabelRequestedTCList: 14,
		LabelUnneededManifestList: 15, LabelComponentID: 16, LabelTCManifestSequenceNumber: 17, LabelHaveBinary: 18,
		LabelSUITReports: 19, LabelToken: 20, LabelSupportedFreshnessMechanisms: 21, LabelErrLang: 22, LabelErrCode: 23,
	}
	for l := Label(1); l <= maxLabel; l++ {
		if Draft26.Wire(l) != uint64(l) {
			t.Fatalf("draft-26 %v", l)
		}
		if Legacy.Wire(l) != legacyWire[l] {
			t.Fatalf("legacy %v: %d want %d", l, Legacy.Wire(l), legacyWire[l])
		}
		for _, n := range []Numbering{Draft26, Legacy} {
			if back, ok := n.Label(n.Wire(l)); !ok || back != l {
				t.Fatalf("%v %v does not round trip", n, l)
			}
		}
	}
	for _, w := range []uint64{0, 23, 24, 1 << 40} {
		if _, ok := Draft26.Label(w); ok {
			t.Fatalf("draft-26 label %d known", w)
		}
	}
	for _, w := range []uint64{0, 5, 24} {
		if _, ok := Legacy.Label(w); ok {
			t.Fatalf("legacy label %d known", w)
		}
	}
	for ty := TypeQueryRequest; ty <= TypeError; ty++ {
		for _, n := range []Numbering{Draft26, Legacy} {
			if back, ok := TypeOf(ty.Wire(n), n); !ok || back != ty {
				t.Fatalf("%v %v", n, ty)
			}
		}
	}
	if TypeSuccess.Wire(Legacy) != 5 || TypeError.Wire(Legacy) != 6 || TypeSuccess.Wire(Draft26) != 4 || TypeError.Wire(Draft26) != 5 {
		t.Fatal("type numbers")
	}
}

func TestCanonicalItems(t *testing.T) {
	cases := []struct{ in, want string }{
		{"1817", "17"},                               // non-preferred int
		{"3a00000000", "20"},                         // non-preferred negative
		{"a2020101f6", "a201f60201"},                 // sorted keys
		{"fb3ff0000000000000", "f93c00"},             // 1.0 as half
		{"fb3ff199999999999a", "fb3ff199999999999a"}, // 1.1 stays double
		{"fa47c35000", "fa47c35000"},                 // 100000.0 single
		{"fb7ff8000000000000", "f97e00"},             // NaN
		{"fb7ff0000000000000", "f97c00"},             // +Inf
		{"fbfff0000000000000", "f9fc00"},             // -Inf
		{"fb3e70000000000000", "f90001"},             // 2^-24, smallest half subnormal
		{"f90400", "f90400"},                         // smallest half normal
		{"c11a514b67b0", "c11a514b67b0"},             // tag
		{"d81842a0a0", "d81842a0a0"},                 // tag 24, content untouched
		{"f820", "f820"},                             // simple(32)
		{"9900020102", "820102"},                     // array head non-preferred
	}
	for _, c := range cases {
		got, err := appendCanonical(nil, mustHex(t, c.in))
		if err != nil {
			t.Fatalf("%s: %v", c.in, err)
		}
		if hex.EncodeToString(got) != c.want {
			t.Errorf("%s: got %x want %s", c.in, got, c.want)
		}
	}
}
