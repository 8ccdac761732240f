package suit

import (
	"bytes"
	"errors"
	"reflect"
	"strings"
	"testing"

	"github.com/teep-go/teep/cosekey"
)

func sampleReport(t *testing.T) *Report {
	t.Helper()
	d, _ := DigestOf(AlgSHA256, []byte("manifest"))
	measured, _ := NewParam(ParamImageDigest, d)
	size, _ := NewParam(ParamImageSize, uint64(20))
	uri, _ := NewParam(ParamURI, "https://example.org/x")
	return &Report{
		Reference: Reference{URI: "https://tam.example/m.suit", Digest: d},
		Nonce:     []byte{0xa0, 0xa1},
		Records: []ReportEntry{
			{Record: &Record{ManifestID: []uint64{1}, Section: SectionInstall, Offset: 22, ComponentIndex: 0, Properties: []Param{uri}}},
			{System: &SystemProperties{ComponentID: NewComponentID("TEEP-Device", "ta"), Properties: []Param{measured, size}}},
		},
		Failure: &Failure{Code: 3, Reason: ReasonConditionFailed,
			Record: Record{ManifestID: []uint64{}, Section: SectionValidate, Offset: 4, ComponentIndex: 0, Properties: []Param{measured}}},
	}
}

func TestReportRoundTrip(t *testing.T) {
	r := sampleReport(t)
	raw, err := r.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	p, err := ParseReport(raw)
	if err != nil {
		t.Fatal(err)
	}
	again, _ := p.Marshal()
	if !bytes.Equal(raw, again) {
		t.Fatalf("re-encoding differs")
	}
	if p.Success() || p.Failure.Reason != ReasonConditionFailed || p.Reference.URI != r.Reference.URI ||
		!reflect.DeepEqual(p.Records[0].Record.ManifestID, []uint64{1}) || !p.Records[1].System.ComponentID.Equal(r.Records[1].System.ComponentID) {
		t.Fatalf("parsed %+v", p)
	}
	// Keys in deterministic order: 2 (nonce), 3, 4, then 99 (two-byte key).
	if raw[0] != 0xa4 || raw[1] != 0x02 {
		t.Fatalf("encoding starts %x", raw[:4])
	}
	ok := &Report{Reference: r.Reference, Records: []ReportEntry{}}
	raw, _ = ok.Marshal()
	p, err = ParseReport(raw)
	if err != nil || !p.Success() || p.Nonce != nil {
		t.Fatalf("success report: %+v %v", p, err)
	}
}

func TestReportSigned(t *testing.T) {
	k := loadKey(t, "example-p256-private.pem")
	s, _ := cosekey.NewSigner(k, 0)
	signed, err := sampleReport(t).Sign(s)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := VerifyReport(signed, []*cosekey.Key{k.PublicKey()}); err != nil {
		t.Fatal(err)
	}
	if _, err := VerifyReport(signed, []*cosekey.Key{loadKey(t, "tam-p256-public.pem")}); !errors.Is(err, ErrUnauthorised) {
		t.Fatalf("wrong key: %v", err)
	}
}

func TestReportStrict(t *testing.T) {
	for _, tc := range []struct {
		name, hex, msg string
	}{
		{"legacy layout", "a3 01 40 02 60 04 80", "pre-2024"},
		{"no reference", "a2 03 80 04 f5", "suit-reference"},
		{"unknown key", "a1 18 64 00", "unknown SUIT_Report key 100"},
		{"short record", "a3 03 81 83 80 14 00 04 f5 18 63 82 60 82 2f 58 20 0000000000000000000000000000000000000000000000000000000000000000", "want at least 5"},
		{"result false", "a3 03 80 04 f4 18 63 82 60 82 2f 58 20 0000000000000000000000000000000000000000000000000000000000000000", "want map"},
		{"trailing", "a0 00", "trailing"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := ParseReport(hexb(tc.hex))
			if err == nil || !strings.Contains(err.Error(), tc.msg) {
				t.Fatalf("got %v, want %q", err, tc.msg)
			}
		})
	}
	for _, name := range []string{"suit_report_appendix_f1_success.hex", "suit_report_appendix_f2_failure.hex"} {
		data := readVector(t, "../teep/derived/"+name)
		if _, err := ParseReport(data); err == nil || !strings.Contains(err.Error(), "pre-2024") {
			t.Errorf("%s: %v", name, err)
		}
	}
}
