package suit

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/teep-go/teep/cosekey"
)

// envelopeSeeds returns every envelope vector.
func envelopeSeeds(f *testing.F) [][]byte {
	var out [][]byte
	for _, v := range signedVectors {
		out = append(out, readVector(f, v.file))
	}
	for _, n := range []string{"manifest-spec/example0.unsigned.cbor", "manifest-spec/example2.severed-unsigned.cbor"} {
		out = append(out, readVector(f, n))
	}
	return out
}

func FuzzParseEnvelope(f *testing.F) {
	for _, s := range envelopeSeeds(f) {
		f.Add(s)
	}
	key := loadKey(f, "example-p256-public.pem")
	f.Fuzz(func(t *testing.T, data []byte) {
		e, err := ParseEnvelope(data, ParseOptions{})
		if err != nil {
			if ReasonOf(err) == ReasonOK {
				t.Fatal("error without a reason")
			}
			return
		}
		// Whatever parses must re-emit and re-parse to the same digest.
		_, _ = e.Verify([]*cosekey.Key{key}, hmacKey)
		raw, err := e.Marshal(MarshalOptions{})
		if err != nil {
			t.Fatal(err)
		}
		p, err := ParseEnvelope(raw, ParseOptions{})
		if err != nil || !p.Digest().Equal(e.Digest()) {
			t.Fatalf("re-emitted envelope does not parse: %v", err)
		}
	})
}

// FuzzParseManifest fuzzes the manifest, common and command-sequence decoders
// directly (behind the envelope they are reached only with a matching digest).
func FuzzParseManifest(f *testing.F) {
	for _, s := range envelopeSeeds(f) {
		if e, err := ParseEnvelope(s, ParseOptions{}); err == nil {
			f.Add(e.Manifest().Raw)
			for _, seq := range []*Sequence{e.Manifest().Common.Shared, e.Manifest().Validate, e.Manifest().Uninstall} {
				if seq != nil {
					f.Add(seq.Raw)
				}
			}
		}
	}
	lim := DefaultLimits()
	f.Fuzz(func(t *testing.T, data []byte) {
		if m, err := parseManifest(data, &lim, false); err == nil && m.Slots() < 0 {
			t.Fatal("negative slot count")
		}
		if seq, err := parseSequence(data, "fuzz", false, 0, &lim); err == nil {
			for _, c := range seq.Commands {
				if c.Offset < 0 || c.Offset >= len(seq.Raw) {
					t.Fatalf("offset %d out of range", c.Offset)
				}
			}
		}
		_, _ = parseSequence(data, "fuzz", true, 0, &lim)
		_, _ = parseText(data, &lim)
		var cm Common
		_ = parseCommon(data, &cm, &lim)
	})
}

func FuzzParseReport(f *testing.F) {
	f.Add(hexb("a3 03 80 04 f5 18 63 82 60 82 2f 58 20 0000000000000000000000000000000000000000000000000000000000000000"))
	for _, n := range []string{"suit_report_appendix_f1_success.hex", "suit_report_appendix_f2_failure.hex"} {
		f.Add(readVector(f, "../teep/derived/"+n))
	}
	d, _ := DigestOf(AlgSHA256, nil)
	p, _ := NewParam(ParamImageDigest, d)
	r := &Report{Reference: Reference{Digest: d}, Nonce: []byte{1}, Records: []ReportEntry{
		{Record: &Record{Section: SectionInstall, Properties: []Param{p}}},
		{System: &SystemProperties{ComponentID: NewComponentID("x"), Properties: []Param{p}}},
	}, Failure: &Failure{Code: 1, Reason: ReasonUnauthorised}}
	if raw, err := r.Marshal(); err == nil {
		f.Add(raw)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		r, err := ParseReport(data)
		if err != nil {
			return
		}
		raw, err := r.Marshal()
		if err != nil {
			t.Fatal(err)
		}
		if _, err := ParseReport(raw); err != nil {
			t.Fatalf("re-encoded report does not parse: %v", err)
		}
	})
}

func FuzzParseEncryptionInfo(f *testing.F) {
	matches, _ := filepath.Glob(filepath.Join(vectors, "firmware-encryption", "suit-encryption-info-*.hex"))
	for _, m := range matches {
		f.Add(readVector(f, strings.TrimPrefix(m, vectors+string(os.PathSeparator))))
	}
	keys := DecryptionKeys{KEKs: []KEK{testKEK}}
	f.Fuzz(func(t *testing.T, data []byte) {
		ei, err := ParseEncryptionInfo(data)
		if err != nil {
			return
		}
		if cek, err := ei.CEK(keys); err == nil {
			_, _ = ei.Decrypt(cek, data)
		}
	})
}
