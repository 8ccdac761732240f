package suit

import (
	"bytes"
	"encoding/hex"
	"errors"
	"strings"
	"testing"

	"github.com/teep-go/teep/cborwire"
	"github.com/teep-go/teep/cosekey"
)

// TestEveryFlippedByteRejected flips each bit 0 of every byte of a signed
// envelope: parsing or verification must fail every time, because every
// byte of an envelope without integrated payloads is covered by the
// signature, the digest or the structure.
func TestEveryFlippedByteRejected(t *testing.T) {
	key := loadKey(t, "example-p256-public.pem")
	for _, name := range []string{"teep-protocol/suit_uri.hex", "teep-protocol/suit_personalization.hex", "manifest-spec/example2.signed.cbor"} {
		data := readVector(t, name)
		accepted := 0
		for i := range data {
			mut := bytes.Clone(data)
			mut[i] ^= 0x01
			e, err := ParseEnvelope(mut, ParseOptions{})
			if err == nil {
				_, err = e.Verify([]*cosekey.Key{key})
			}
			if err == nil {
				accepted++
				t.Errorf("%s: flipping byte %d (%02x) still verifies", name, i, data[i])
			}
		}
		if accepted == 0 {
			t.Logf("%s: all %d single-byte flips rejected", name, len(data))
		}
	}
}

// TestSignedPartsReasons checks the error class for a change in each
// signed part.
func TestSignedPartsReasons(t *testing.T) {
	key := loadKey(t, "example-p256-public.pem")
	data := readVector(t, "teep-protocol/suit_uri.hex")
	e, err := ParseEnvelope(data, ParseOptions{})
	if err != nil {
		t.Fatal(err)
	}
	flipAt := func(part []byte, off int, mask byte) []byte {
		i := bytes.Index(data, part)
		if i < 0 {
			t.Fatal("part not found")
		}
		mut := bytes.Clone(data)
		mut[i+off] ^= mask
		return mut
	}
	sig := e.AuthBlocks()[0].Raw
	for _, tc := range []struct {
		name string
		data []byte
		want error
	}{
		{"manifest content", flipAt(e.ManifestBytes(), len(e.ManifestBytes())-3, 0x80), ErrUnauthorised},
		{"digest bytes", flipAt(e.Digest().Bytes, 5, 0x80), ErrUnauthorised},
		{"signature", flipAt(sig, len(sig)-1, 0x80), ErrUnauthorised},
		{"signature alg -9 to -10", flipAt(sig, 5, 0x01), ErrAlgUnsupported},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p, err := ParseEnvelope(tc.data, ParseOptions{})
			if err == nil {
				_, err = p.Verify([]*cosekey.Key{key})
			}
			if !errors.Is(err, tc.want) {
				t.Fatalf("got %v, want %v", err, tc.want)
			}
		})
	}
	// A severed member that does not match its digest.
	sev := readVector(t, "manifest-spec/example2.signed.cbor")
	se, err := ParseEnvelope(sev, ParseOptions{})
	if err != nil {
		t.Fatal(err)
	}
	inst := se.severed[SectionInstall]
	i := bytes.Index(sev, inst)
	mut := bytes.Clone(sev)
	mut[i+len(inst)-2] ^= 0x01
	if _, err := ParseEnvelope(mut, ParseOptions{}); !errors.Is(err, ErrSeveringUnsupported) {
		t.Fatalf("tampered severed member: %v", err)
	}
}

func TestUnsignedRejected(t *testing.T) {
	key := loadKey(t, "example-p256-public.pem")
	for _, name := range []string{"manifest-spec/example0.unsigned.cbor", "manifest-spec/example2.severed-unsigned.cbor"} {
		e, err := ParseEnvelope(readVector(t, name), ParseOptions{})
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if _, err := e.Verify([]*cosekey.Key{key}); !errors.Is(err, ErrUnauthorised) {
			t.Fatalf("%s: %v", name, err)
		}
	}
}

func TestSeveredVectors(t *testing.T) {
	full, err := ParseEnvelope(readVector(t, "manifest-spec/example2.signed.cbor"), ParseOptions{})
	if err != nil {
		t.Fatal(err)
	}
	sev, err := ParseEnvelope(readVector(t, "manifest-spec/example2.severed-signed.cbor"), ParseOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if !full.Digest().Equal(sev.Digest()) {
		t.Fatal("severing changed the manifest digest")
	}
	if m := full.Manifest(); !m.Install.Severed || !m.Install.Present || !m.Text.Present || m.ReferenceURI != "https://git.io/JJYoj" {
		t.Fatalf("full: %+v", m)
	}
	if _, err := sev.Manifest().Sequence(SectionInstall); !errors.Is(err, ErrSeveringUnsupported) {
		t.Fatalf("severed install: %v", err)
	}
	// Dropping the severed members from the full envelope gives the severed one.
	raw, err := full.Marshal(MarshalOptions{DropSevered: true})
	if err != nil {
		t.Fatal(err)
	}
	if want := readVector(t, "manifest-spec/example2.severed-signed.cbor"); !bytes.Equal(raw, want) {
		t.Fatalf("re-severed envelope differs:\n got %x\nwant %x", raw, want)
	}
}

// TestMarshalRoundTrip re-emits every vector byte for byte (they are all
// canonical) and untagged/tagged as asked.
func TestMarshalRoundTrip(t *testing.T) {
	for _, v := range signedVectors {
		data := readVector(t, v.file)
		e, err := ParseEnvelope(data, ParseOptions{})
		if err != nil {
			t.Fatal(err)
		}
		raw, err := e.Marshal(MarshalOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(raw, data) {
			t.Errorf("%s: re-emitted envelope differs", v.file)
		}
		un, _ := e.Marshal(MarshalOptions{Tag: TagNever, DropIntegrated: true})
		p, err := ParseEnvelope(un, ParseOptions{})
		if err != nil || p.Tagged || len(p.Integrated()) != 0 || !p.Digest().Equal(e.Digest()) {
			t.Errorf("%s: untagged re-emit: %v", v.file, err)
		}
	}
}

func hexb(s string) []byte {
	b, err := hex.DecodeString(strings.ReplaceAll(s, " ", ""))
	if err != nil {
		panic(err)
	}
	return b
}

// TestStrictDecoding feeds malformed envelopes; each must fail with the
// named sentinel.
func TestStrictDecoding(t *testing.T) {
	good := readVector(t, "teep-protocol/suit_uri.hex")
	tiny := ParseOptions{Limits: Limits{MaxEnvelopeSize: 100}}
	for _, tc := range []struct {
		name string
		data []byte
		o    ParseOptions
		want error
		msg  string
	}{
		{"empty", nil, ParseOptions{}, ErrMalformed, "end of data"},
		{"trailing byte", append(bytes.Clone(good), 0x00), ParseOptions{}, ErrMalformed, "trailing"},
		{"truncated", good[:len(good)-1], ParseOptions{}, ErrMalformed, "past the end"},
		{"indefinite map", hexb("bf ff"), ParseOptions{}, ErrMalformed, "indefinite"},
		{"non-shortest head", hexb("b8 00"), ParseOptions{}, ErrMalformed, "shortest form"},
		{"duplicate key", hexb("a2 02 40 02 40"), ParseOptions{}, ErrMalformed, "duplicate"},
		{"not a map", hexb("80"), ParseOptions{}, ErrMalformed, "want map"},
		{"wrong tag", hexb("d8 6c a0"), ParseOptions{}, ErrMalformed, "tag 108"},
		{"bare manifest", hexb("d9 04 2e a0"), ParseOptions{}, ErrMalformed, "1070"},
		{"no auth", hexb("a1 03 41 a0"), ParseOptions{}, ErrMalformed, "authentication wrapper"},
		{"no manifest", hexb("a1 02 41 80"), ParseOptions{}, ErrMalformed, "no manifest"},
		{"unknown member", hexb("a1 18 63 40"), ParseOptions{}, ErrMalformed, "unknown envelope member 99"},
		{"delegation", hexb("a1 01 40"), ParseOptions{}, ErrMalformed, "delegation"},
		{"auth not bstr", hexb("a1 02 80"), ParseOptions{}, ErrMalformed, "want byte string"},
		{"invalid utf-8 key", hexb("a1 61 ff 40"), ParseOptions{}, ErrMalformed, "UTF-8"},
		{"oversize", good, tiny, ErrLimit, "exceed"},
		{"too deep", bytes.Repeat([]byte{0x81}, 40), ParseOptions{}, ErrLimit, "nesting"},
		{"reserved ai", hexb("1c"), ParseOptions{}, ErrMalformed, "reserved"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := ParseEnvelope(tc.data, tc.o)
			if !errors.Is(err, tc.want) || !strings.Contains(err.Error(), tc.msg) {
				t.Fatalf("got %v, want %v containing %q", err, tc.want, tc.msg)
			}
		})
	}
}

// buildManifest wraps manifest content in an envelope with a correct digest
// (no signature), to test manifest-level decoding.
func buildManifest(t *testing.T, manifest []byte) []byte {
	t.Helper()
	item := cborwire.AppendBytes(nil, manifest)
	d, _ := DigestOf(AlgSHA256, item)
	auth := cborwire.AppendBytes(cborwire.AppendArrayHead(nil, 1), d.Marshal())
	return cborwire.AppendMap(nil, []cborwire.MapEntry{{Key: intKey(2), Val: cborwire.AppendBytes(nil, auth)}, {Key: intKey(3), Val: item}})
}

func TestStrictManifest(t *testing.T) {
	common := cborwire.AppendBytes(nil, hexb("a1 02 81 81 41 00")) // {2: [[h'00']]}
	seq := func(s string) []byte { return cborwire.AppendBytes(nil, hexb(s)) }
	m := func(entries ...cborwire.MapEntry) []byte { return cborwire.AppendMap(nil, entries) }
	base := []cborwire.MapEntry{{Key: intKey(1), Val: hexb("01")}, {Key: intKey(2), Val: hexb("00")}, {Key: intKey(3), Val: common}}
	with := func(extra ...cborwire.MapEntry) []byte {
		return m(append(append([]cborwire.MapEntry{}, base...), extra...)...)
	}
	for _, tc := range []struct {
		name     string
		manifest []byte
		want     error
		msg      string
	}{
		{"ok", with(cborwire.MapEntry{Key: intKey(7), Val: seq("82 03 0f")}), nil, ""},
		{"version 2", m(cborwire.MapEntry{Key: intKey(1), Val: hexb("02")}, base[1], base[2]), ErrMalformed, "manifest-version 2"},
		{"no sequence number", m(base[0], base[2]), ErrMalformed, "sequence-number"},
		{"no common", m(base[0], base[1]), ErrMalformed, "common"},
		{"unknown member", with(cborwire.MapEntry{Key: intKey(6), Val: hexb("00")}), ErrMalformed, "unknown manifest member 6"},
		{"odd sequence", with(cborwire.MapEntry{Key: intKey(7), Val: seq("81 03")}), ErrMalformed, "odd"},
		{"empty sequence", with(cborwire.MapEntry{Key: intKey(7), Val: seq("80")}), ErrMalformed, "empty command sequence"},
		{"policy not uint", with(cborwire.MapEntry{Key: intKey(7), Val: seq("82 03 40")}), ErrMalformed, "reporting policy"},
		{"bad index", with(cborwire.MapEntry{Key: intKey(7), Val: seq("82 0c 40")}), ErrMalformed, "set-component-index"},
		{"uuid size", with(cborwire.MapEntry{Key: intKey(7), Val: seq("82 14 a1 01 41 00")}), ErrMalformed, "16-byte UUID"},
		{"bad digest param", with(cborwire.MapEntry{Key: intKey(7), Val: seq("82 14 a1 03 43 82 2f 40")}), ErrMalformed, "sha-256 digest of 0 bytes"},
		{"try-each with one", with(cborwire.MapEntry{Key: intKey(7), Val: seq("82 0f 81 43 82 03 0f")}), ErrMalformed, "two alternatives"},
		{"custom bad arg", with(cborwire.MapEntry{Key: intKey(7), Val: seq("82 39 01 00 80")}), ErrMalformed, "custom command"},
		{"fetch in shared", m(base[0], base[1], cborwire.MapEntry{Key: intKey(3), Val: cborwire.AppendBytes(nil, hexb("a2 02 81 81 41 00 04 43 82 15 02"))}), ErrMalformed, "not allowed in the shared sequence"},
		{"dependency collides", m(base[0], base[1], cborwire.MapEntry{Key: intKey(3), Val: cborwire.AppendBytes(nil, hexb("a2 01 a1 00 a0 02 81 81 41 00"))}), ErrComponentUnsupported, "collides"},
		{"nested too deep", with(cborwire.MapEntry{Key: intKey(7), Val: seq(nestRunSequence(6))}), ErrLimit, "nested deeper"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := ParseEnvelope(buildManifest(t, tc.manifest), ParseOptions{})
			if tc.want == nil {
				if err != nil {
					t.Fatal(err)
				}
				return
			}
			if !errors.Is(err, tc.want) || !strings.Contains(err.Error(), tc.msg) {
				t.Fatalf("got %v, want %v containing %q", err, tc.want, tc.msg)
			}
		})
	}
}

// nestRunSequence returns hex of a sequence nesting run-sequence n deep.
func nestRunSequence(n int) string {
	inner := hexb("82 03 0f")
	for i := 0; i < n; i++ {
		inner = append(cborwire.AppendArrayHead(nil, 2), append(cborwire.AppendInt(nil, DirRunSequence), cborwire.AppendBytes(nil, inner)...)...)
	}
	return hex.EncodeToString(inner)
}

func TestCommandOffsets(t *testing.T) {
	e, err := ParseEnvelope(readVector(t, "teep-protocol/suit_uri.hex"), ParseOptions{})
	if err != nil {
		t.Fatal(err)
	}
	seq := e.Manifest().Install.Sequence
	for _, c := range seq.Commands {
		code, err := newCur(seq.Raw[c.Offset:], "").int("code")
		if err != nil || code != c.Code {
			t.Fatalf("offset %d does not point at command %d", c.Offset, c.Code)
		}
	}
	if len(seq.Commands) != 3 || seq.Commands[1].Code != DirFetch {
		t.Fatalf("install: %+v", seq.Commands)
	}
}

func TestComponentID(t *testing.T) {
	id := ComponentID{[]byte("TEEP-Device"), {0x8d, 0x82}, []byte("it's")}
	if got := id.String(); got != `TEEP-Device/hex:8d82/hex:69742773` {
		t.Errorf("String = %s", got)
	}
	p, err := DecodeComponentID(id.Marshal())
	if err != nil || !p.Equal(id) {
		t.Fatalf("round trip: %v", err)
	}
	if !id.HasPrefix(id[:1]) || id.HasPrefix(ComponentID{[]byte("x")}) {
		t.Error("HasPrefix")
	}
	if _, err := DecodeComponentID(hexb("81 01")); err == nil {
		t.Error("non-bstr segment accepted")
	}
}

func TestDigestAlgorithms(t *testing.T) {
	for alg, size := range map[int64]int{AlgSHA256: 32, AlgSHA384: 48, AlgSHA512: 64, AlgSHAKE128: 32, AlgSHAKE256: 64} {
		d, err := DigestOf(alg, []byte("abc"))
		if err != nil || len(d.Bytes) != size {
			t.Fatalf("%s: %v %d", DigestAlgName(alg), err, len(d.Bytes))
		}
		// Streaming in pieces gives the same digest, and Sum does not disturb the state.
		h, _ := NewHash(alg)
		h.Write([]byte("a"))
		h.Sum(nil)
		h.Write([]byte("bc"))
		if !bytes.Equal(h.Sum(nil), d.Bytes) {
			t.Errorf("%s: streaming digest differs", DigestAlgName(alg))
		}
	}
	// SHAKE128("") first bytes, FIPS 202 test vector.
	d, _ := DigestOf(AlgSHAKE128, nil)
	if hex.EncodeToString(d.Bytes[:8]) != "7f9c2ba4e88f827d" {
		t.Errorf("SHAKE128 = %x", d.Bytes)
	}
	d, _ = DigestOf(AlgSHAKE256, nil)
	if hex.EncodeToString(d.Bytes[:8]) != "46b9dd2b0ba88d13" {
		t.Errorf("SHAKE256 = %x", d.Bytes)
	}
	if _, err := NewHash(-99); !errors.Is(err, ErrAlgUnsupported) {
		t.Error("unknown digest algorithm accepted")
	}
}
