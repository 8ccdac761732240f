package teep

import (
	"testing"
	"time"

	"github.com/fxamacker/cbor/v2"
	"github.com/teep-go/teep/cosekey"
)

// Benchmarks for the Update vector (Appendix D.4, 360 bytes; 334 of them a
// SUIT envelope). Baselines measured in the same run:
//   - fxamacker/cbor decoding the same bytes into a generic value with the
//     strict options (what a reflection-based codec costs);
//   - cosekey.Verify of the signed vector (the signature check alone).

var strictGeneric = func() cbor.DecMode {
	dm, err := cbor.DecOptions{DupMapKey: cbor.DupMapKeyEnforcedAPF, IndefLength: cbor.IndefLengthForbidden}.DecMode()
	if err != nil {
		panic(err)
	}
	return dm
}()

func BenchmarkDecodeUpdate(b *testing.B) {
	data := readHex(b, "teep/draft-26/update.hex")
	b.SetBytes(int64(len(data)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := Decode(data, DecodeOptions{}); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkDecodeUpdateBaselineGeneric(b *testing.B) {
	data := readHex(b, "teep/draft-26/update.hex")
	b.SetBytes(int64(len(data)))
	b.ReportAllocs()
	for b.Loop() {
		var v any
		if err := strictGeneric.Unmarshal(data, &v); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkEncodeUpdate(b *testing.B) {
	m, err := Decode(readHex(b, "teep/draft-26/update.hex"), DecodeOptions{})
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := Encode(m, EncodeOptions{}); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkOpenUpdate(b *testing.B) {
	data := readHex(b, "teep/synthesized/update.cose_sign1_esp256.hex")
	keys := []*cosekey.Key{tamP256(b).PublicKey()}
	b.SetBytes(int64(len(data)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := Open(data, OpenOptions{Keys: keys}); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkOpenUpdateBaselineVerifyOnly(b *testing.B) {
	data := readHex(b, "teep/synthesized/update.cose_sign1_esp256.hex")
	keys := []*cosekey.Key{tamP256(b).PublicKey()}
	b.ReportAllocs()
	for b.Loop() {
		if _, _, err := cosekey.Verify(data, cosekey.VerifyOptions{Keys: keys}); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkRatio* interleave our code and its baseline in the same loop and
// report the ratio of their total times (below 1: we are faster).
func benchRatio(b *testing.B, ours, ref func() error) {
	var tOurs, tRef time.Duration
	for b.Loop() {
		t0 := time.Now()
		if err := ours(); err != nil {
			b.Fatal(err)
		}
		t1 := time.Now()
		if err := ref(); err != nil {
			b.Fatal(err)
		}
		tOurs += t1.Sub(t0)
		tRef += time.Since(t1)
	}
	b.ReportMetric(float64(tOurs)/float64(tRef), "ratio")
	b.ReportMetric(float64(tOurs.Nanoseconds())/float64(b.N), "ours-ns/op")
	b.ReportMetric(float64(tRef.Nanoseconds())/float64(b.N), "baseline-ns/op")
}

func BenchmarkRatioDecodeVsGeneric(b *testing.B) {
	data := readHex(b, "teep/draft-26/update.hex")
	benchRatio(b,
		func() error { _, err := Decode(data, DecodeOptions{}); return err },
		func() error { var v any; return strictGeneric.Unmarshal(data, &v) })
}

func BenchmarkRatioOpenVsVerifyOnly(b *testing.B) {
	data := readHex(b, "teep/synthesized/update.cose_sign1_esp256.hex")
	keys := []*cosekey.Key{tamP256(b).PublicKey()}
	benchRatio(b,
		func() error { _, err := Open(data, OpenOptions{Keys: keys}); return err },
		func() error { _, _, err := cosekey.Verify(data, cosekey.VerifyOptions{Keys: keys}); return err })
}
