package eat

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/fxamacker/cbor/v2"
	"github.com/teep-go/teep/cborwire"
	"github.com/teep-go/teep/cosekey"
)

func readHex(t testing.TB, path string) []byte {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	b, err := hex.DecodeString(strings.Join(strings.Fields(string(data)), ""))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

const d2Path = "../testdata/teep/derived/eat_claims_appendix_d2.hex"

func mustHex(s string) []byte {
	b, err := hex.DecodeString(strings.ReplaceAll(s, " ", ""))
	if err != nil {
		panic(err)
	}
	return b
}

// TestAppendixD2 decodes the draft's EAT example. It breaks RFC 9711 twice
// (a 16-byte RAND UEID and a bare SUIT_Reference map as a measurements
// body), so strict decoding must refuse it and say why, lenient decoding must
// accept it and list both deviations, and re-encoding must give the same bytes.
func TestAppendixD2(t *testing.T) {
	d2 := readHex(t, d2Path)

	_, err := DecodeClaims(d2, ParseOptions{})
	if !errors.Is(err, ErrMalformed) || !strings.Contains(err.Error(), "RAND UEID with 15 random bytes") {
		t.Fatalf("strict decode: got %v, want the UEID length error", err)
	}

	c, err := DecodeClaims(d2, ParseOptions{LenientUnsafe: true})
	if err != nil {
		t.Fatal(err)
	}
	abc := sha256.Sum256([]byte("abc"))
	if c.CNF == nil || !bytes.Equal(c.CNF.KID, abc[:]) {
		t.Errorf("cnf kid = %x, want SHA-256(\"abc\") (the draft's placeholder)", c.CNF.KID)
	}
	if !bytes.Equal(c.Nonce, mustHex("948f8860d13a463e8e")) {
		t.Errorf("nonce = %x", c.Nonce)
	}
	if !bytes.Equal(c.UEID, mustHex("0198f50a4ff6c05861c8860d13a638ea")) {
		t.Errorf("ueid = %x", c.UEID)
	}
	if !c.OEMID.Equal(OEMIDBytes(mustHex("894823"))) {
		t.Errorf("oemid = %v", c.OEMID)
	}
	if !bytes.Equal(c.HWModel, mustHex("549dcecc8b987c737b44e40f7c635ce8")) {
		t.Errorf("hwmodel = %x", c.HWModel)
	}
	if *c.HWVersion != (Version{"1.3.4", SchemeMultipartNumeric}) {
		t.Errorf("hwversion = %+v", c.HWVersion)
	}
	// The draft labels 273 "manifests"; RFC 9711 assigns 273 to measurements.
	if c.Manifests != nil || len(c.Measurements) != 1 || c.Measurements[0].ContentFormat != ContentFormatCBOR {
		t.Fatalf("manifests %v, measurements %v", c.Manifests, c.Measurements)
	}
	ref, err := c.Measurements[0].SUITReference()
	if err != nil {
		t.Fatal(err)
	}
	want := SUITReference{URI: "https://example.com/manifest.cbor", DigestAlg: AlgSHA256,
		Digest: mustHex("a7fd6593eac32eb4be578278e6540c5c09cfd7d4d234973054833b2b93030609")}
	if ref.URI != want.URI || ref.DigestAlg != want.DigestAlg || !bytes.Equal(ref.Digest, want.Digest) {
		t.Errorf("SUIT_Reference = %+v", ref)
	}
	if len(c.Deviations) != 2 {
		t.Errorf("deviations = %q, want the UEID and the bare map", c.Deviations)
	}
	problems := strings.Join(c.ProfileProblems(), "\n")
	for _, w := range []string{"manifests (272) is missing", "RAND UEID", "bare map"} {
		if !strings.Contains(problems, w) {
			t.Errorf("profile problems lack %q:\n%s", w, problems)
		}
	}
	out, err := c.MarshalCBOR()
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(out, d2) {
		t.Errorf("re-encoding differs:\n got %x\nwant %x", out, d2)
	}
}

func fullClaims(t testing.TB, agent *cosekey.Key) *Claims {
	t.Helper()
	iat := time.Unix(1767225600, 0).UTC()
	ds := DebugDisabledPermanently
	up := uint64(3600)
	boot := true
	iu := IntUseProofOfPossession
	ref := SUITReference{URI: "https://tam.example/tc/1.suit", DigestAlg: AlgSHA256, Digest: bytes.Repeat([]byte{0xab}, 32)}
	return &Claims{
		Issuer:    "device-1",
		IssuedAt:  &iat,
		CNF:       ConfirmKID(agent),
		Nonce:     mustHex("0102030405060708"),
		UEID:      append([]byte{1}, bytes.Repeat([]byte{7}, 32)...),
		OEMID:     OEMIDPEN(32473),
		HWModel:   []byte("softtee"),
		HWVersion: &Version{"1.0.0", SchemeSemVer},
		Uptime:    &up,
		OEMBoot:   &boot,
		DbgStat:   &ds,
		Profile:   ProfileTEEP,
		SWName:    "teep-go agent",
		SWVersion: &Version{Version: "0.1.0"},
		Manifests: []Manifest{ref.Manifest(ContentFormatCBOR), NewTextManifest(50, `{"sbom":1}`)},
		IntUse:    &iu,
		Submods: map[string]*Submodule{
			"ta": {Claims: &Claims{SWName: "https://tam.example/ta.suit", Unknown: map[int64]cbor.RawMessage{-70001: {0x01}}}},
			"fw": {Digest: &DetachedDigest{Alg: AlgSHA256, Value: bytes.Repeat([]byte{1}, 32)}},
			"tk": {Token: []byte{0x84, 0x40, 0xa0, 0x40, 0x40}},
		},
		Unknown: map[int64]cbor.RawMessage{
			ClaimLocation: mustHex("a2011a05f5e100021a05f5e100"),
			-70000:        mustHex("83010203"),
		},
	}
}

func newSigner(t testing.TB, alg string) (*cosekey.Key, *cosekey.Signer) {
	t.Helper()
	a, err := cosekey.ParseAlg(alg)
	if err != nil {
		t.Fatal(err)
	}
	k, err := cosekey.Generate(a)
	if err != nil {
		t.Fatal(err)
	}
	s, err := cosekey.NewSigner(k, 0)
	if err != nil {
		t.Fatal(err)
	}
	return k, s
}

func TestSignParseVerifyRoundTrip(t *testing.T) {
	agent, _ := newSigner(t, "ed25519")
	for _, alg := range []string{"esp256", "ed25519"} {
		for _, o := range []SignOptions{{}, {Tagged: true}, {CWTTag: true}, {Tagged: true, CWTTag: true}} {
			key, s := newSigner(t, alg)
			c := fullClaims(t, agent)
			tok, err := Sign(c, s, o)
			if err != nil {
				t.Fatal(err)
			}
			p, err := Parse(tok, ParseOptions{})
			if err != nil {
				t.Fatalf("%s %+v: %v", alg, o, err)
			}
			if p.Tagged != o.Tagged || p.CWTTagged != o.CWTTag {
				t.Errorf("%s %+v: tagged %v cwt %v", alg, o, p.Tagged, p.CWTTagged)
			}
			if !bytes.Equal(p.KID, key.KID()) {
				t.Errorf("kid %x, want thumbprint %x", p.KID, key.KID())
			}
			v, err := p.Verify([]*cosekey.Key{key.PublicKey()})
			if err != nil {
				t.Fatalf("%s %+v: verify: %v", alg, o, err)
			}
			if !v.Key.Equal(key) {
				t.Error("verified with the wrong key")
			}
			want, _ := c.MarshalCBOR()
			if !bytes.Equal(p.Payload, want) {
				t.Error("payload is not the encoded claims")
			}
			again, err := p.Claims.MarshalCBOR()
			if err != nil || !bytes.Equal(again, want) {
				t.Errorf("decoded claims re-encode differently: %v", err)
			}
			j1, _ := json.Marshal(c)
			j2, _ := json.Marshal(p.Claims)
			if !bytes.Equal(j1, j2) {
				t.Errorf("claims differ after the round trip:\n%s\n%s", j1, j2)
			}
			if got := p.Claims.Unknown[-70000]; !bytes.Equal(got, mustHex("83010203")) {
				t.Errorf("unknown claim -70000 = %x", got)
			}
			if p.Claims.Submods["ta"].Claims.Unknown[-70001] == nil {
				t.Error("unknown claim inside a submodule lost")
			}
			if err := p.Claims.CNF.Binds(agent); err != nil {
				t.Error(err)
			}
			if len(p.Claims.ProfileProblems()) != 0 {
				t.Errorf("profile problems: %v", p.Claims.ProfileProblems())
			}
		}
	}
}

func TestVerifyWrongKey(t *testing.T) {
	agent, _ := newSigner(t, "ed25519")
	_, s := newSigner(t, "esp256")
	other, _ := newSigner(t, "esp256")
	tok, err := Sign(fullClaims(t, agent), s, SignOptions{})
	if err != nil {
		t.Fatal(err)
	}
	p, err := Parse(tok, ParseOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := p.Verify([]*cosekey.Key{other.PublicKey()}); !errors.Is(err, cosekey.ErrNoTrustedKey) {
		t.Errorf("verify with another key: %v", err)
	}
	if _, err := p.Verify(nil); !errors.Is(err, cosekey.ErrNoTrustedKey) {
		t.Errorf("verify with no key: %v", err)
	}
	// a flipped nonce bit must fail even with the right key
	i := bytes.Index(tok, mustHex("0102030405060708"))
	tok[i] ^= 1
	p, err = Parse(tok, ParseOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := p.Verify([]*cosekey.Key{s.PublicKey()}); !errors.Is(err, cosekey.ErrSignature) {
		t.Errorf("tampered token: %v", err)
	}
}

func TestConfirmation(t *testing.T) {
	a, _ := newSigner(t, "esp256")
	b, _ := newSigner(t, "esp256")
	cases := []struct {
		name string
		cnf  *Confirmation
		key  *cosekey.Key
		ok   bool
	}{
		{"kid matches", ConfirmKID(a), a, true},
		{"key matches", ConfirmKey(a), a, true},
		{"kid and key match", &Confirmation{Key: a.PublicKey(), KID: a.KID()}, a, true},
		{"kid of another key", ConfirmKID(b), a, false},
		{"key of another key", ConfirmKey(b), a, false},
		{"key matches, kid not", &Confirmation{Key: a.PublicKey(), KID: b.KID()}, a, false},
		{"no cnf", nil, a, false},
		{"empty cnf", &Confirmation{}, a, false},
	}
	for _, tc := range cases {
		err := tc.cnf.Binds(tc.key)
		if (err == nil) != tc.ok {
			t.Errorf("%s: %v", tc.name, err)
		}
		if err != nil && !errors.Is(err, ErrNotBound) {
			t.Errorf("%s: error does not wrap ErrNotBound", tc.name)
		}
	}
	// a COSE_Key cnf survives encoding exactly, including the kid it carries
	c := &Claims{CNF: ConfirmKey(a)}
	enc, err := c.MarshalCBOR()
	if err != nil {
		t.Fatal(err)
	}
	d, err := DecodeClaims(enc, ParseOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if err := d.CNF.Binds(a); err != nil {
		t.Error(err)
	}
	if again, _ := d.MarshalCBOR(); !bytes.Equal(again, enc) {
		t.Error("cnf COSE_Key re-encodes differently")
	}
}

// TestDecodeRejects feeds hand-made claims-sets that a strict decoder must
// refuse, each with the words its error has to contain.
func TestDecodeRejects(t *testing.T) {
	cases := []struct {
		name, hex, want string
	}{
		{"empty", "", "unexpected end"},
		{"not a map", "80", "want map"},
		{"duplicate claim", "a2 0a48 0102030405060708 0a48 0102030405060708", "duplicate claim eat_nonce"},
		{"indefinite map", "bf ff", "indefinite-length"},
		{"indefinite bytes", "a1 0a 5f 48 0102030405060708 ff", "indefinite-length"},
		{"trailing bytes", "a0 00", "trailing"},
		{"non-shortest key", "a1 180a 48 0102030405060708", "shortest form"},
		{"non-shortest length", "a1 0a 5808 0102030405060708", "shortest form"},
		{"nonce too short", "a1 0a 43 010203", "eat_nonce (10): 3 bytes, want 8..64"},
		{"nonce wrong type", "a1 0a 63 616263", "eat_nonce (10): want byte string, got text string"},
		{"ueid as text", "a1 190100 67 61626364656667", "ueid (256): want byte string"},
		{"ueid unknown type", "a1 190100 47 09010203040506", "unknown UEID type 0x09"},
		{"oemid 5 bytes", "a1 190102 45 0102030405", "want 3 (IEEE OUI) or 16"},
		{"oemid negative", "a1 190102 20", "Private Enterprise Number"},
		{"hwmodel empty", "a1 190103 40", "0 bytes, want 1..32"},
		{"hwversion not array", "a1 190104 63 312e30", "want array"},
		{"hwversion scheme 0", "a1 190104 82 63 312e30 00", "version-scheme 0"},
		{"dbgstat 9", "a1 190107 09", "unknown debug status 9"},
		{"text label", "a1 63 666f6f 01", "text claim label \"foo\""},
		{"invalid utf8", "a1 01 62 c328", "not valid UTF-8"},
		{"manifest body map", "a1 190110 81 82 183c a0", "body is a map"},
		{"manifest one element", "a1 190110 81 81 183c", "1 elements, want 2..2"},
		{"manifests empty", "a1 190110 80", "0 elements, want 1..64"},
		{"cnf private key", "a1 08 a1 01 a4 0101 2006 2158200000000000000000000000000000000000000000000000000000000000000000 2358200000000000000000000000000000000000000000000000000000000000000001", "private key"},
		{"cnf empty", "a1 08 a0", "cnf (8): empty map"},
		{"two-byte simple", "a1 19010e f8 10", "two-byte form"},
		{"reserved ai", "a1 01 1c", "reserved additional information"},
		{"truncated", "a1 0a 48 0102", "runs past the end"},
		{"submod wrong type", "a1 19010a a1 61 61 f5", "want a claims-set, a nested token or a digest"},
		{"iat text", "a1 06 63 616263", "want a NumericDate"},
		{"intuse 9", "a1 190113 09", "unknown intended use 9"},
	}
	for _, tc := range cases {
		_, err := DecodeClaims(mustHex(strings.ReplaceAll(tc.hex, " ", "")), ParseOptions{})
		if err == nil || !errors.Is(err, ErrMalformed) || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: got %v, want an ErrMalformed containing %q", tc.name, err, tc.want)
		}
	}
}

func TestLimits(t *testing.T) {
	nest := strings.Repeat("81", 40) + "00"
	cases := []struct {
		name string
		in   []byte
		lim  Limits
		want string
	}{
		{"deep nesting", mustHex("a1 3a00011170" + nest), DefaultLimits, "nesting deeper than 16"},
		{"too many claims", manyClaims(200), DefaultLimits, "200 entries, limit 128"},
		{"too large", mustHex("a1 3a00011170 5a00020000" + strings.Repeat("00", 0x20000)), DefaultLimits, "exceeds the limit"},
		{"item count", mustHex("a1 3a00011170 98c8" + strings.Repeat("00", 200)), func() Limits { l := DefaultLimits; l.MaxItems = 100; return l }(), "more than 100 data items"},
		{"forged length", mustHex("a1 3a00011170 9b00ffffffffffffff 00"), DefaultLimits, "runs past the end"},
	}
	for _, tc := range cases {
		lim := tc.lim
		_, err := DecodeClaims(tc.in, ParseOptions{Limits: &lim})
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: got %v, want %q", tc.name, err, tc.want)
		}
	}
	// submodules nested beyond MaxSubmodDepth
	c := &Claims{SWName: "leaf"}
	for i := 0; i < 6; i++ {
		c = &Claims{Submods: map[string]*Submodule{"s": {Claims: c}}}
	}
	if _, err := c.MarshalCBOR(); err == nil {
		t.Error("encoding 6 nested submodules succeeded")
	}
}

func manyClaims(n int) []byte {
	b := cborwire.AppendHead(nil, cborwire.MajorMap, uint64(n))
	for i := 0; i < n; i++ {
		b = cborwire.AppendInt(b, int64(-1000-i))
		b = append(b, 0)
	}
	return b
}

func TestParseRejects(t *testing.T) {
	agent, _ := newSigner(t, "ed25519")
	_, s := newSigner(t, "esp256")
	payload, err := fullClaims(t, agent).MarshalCBOR()
	if err != nil {
		t.Fatal(err)
	}
	detached, _ := cosekey.Sign1Detached(payload, s, nil)
	multi, _ := cosekey.SignMulti(payload, []*cosekey.Signer{s}, nil)
	badClaims, _ := cosekey.Sign1(mustHex("a10a43010203"), s, nil)
	good, _ := Sign(fullClaims(t, agent), s, SignOptions{})
	cases := []struct {
		name string
		in   []byte
		want string
	}{
		{"empty", nil, "empty token"},
		{"detached", detached, "detached payload"},
		{"COSE_Sign", multi, "tag 98, want a COSE_Sign1"},
		{"other tag", append([]byte{0xd8, 0x40}, good...), "tag 64"},
		{"map", mustHex("a0"), "want a COSE_Sign1 array"},
		{"bad claims", badClaims, "claims-set: eat: offset 2: eat_nonce (10): 3 bytes"},
		{"trailing", append(bytes.Clone(good), 0), "trailing"},
		{"too large", bytes.Repeat([]byte{0}, DefaultLimits.MaxTokenSize+1), "exceeds the limit"},
	}
	for _, tc := range cases {
		_, err := Parse(tc.in, ParseOptions{})
		if err == nil || !errors.Is(err, ErrMalformed) || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: got %v, want an ErrMalformed containing %q", tc.name, err, tc.want)
		}
	}
}

// Versions sent as byte strings, as C Attesters encode them: strict decoding
// refuses them, LenientUnsafe reads them and records one deviation.
func TestLenientByteStringVersion(t *testing.T) {
	cases := []struct {
		name, in string
		scheme   VersionScheme
	}{
		{"bare byte string (libteep)", "a1190104" + "45312e332e34", 0},
		{"[bstr, scheme]", "a1190104" + "82" + "45312e332e34" + "194000", 16384},
		{"[bstr]", "a1190104" + "81" + "45312e332e34", 0},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			in := mustHex(c.in)
			if _, err := DecodeClaims(in, ParseOptions{}); err == nil || !errors.Is(err, ErrMalformed) {
				t.Fatalf("strict decoder: err = %v, want ErrMalformed", err)
			}
			got, err := DecodeClaims(in, ParseOptions{LenientUnsafe: true})
			if err != nil {
				t.Fatal(err)
			}
			if got.HWVersion.Version != "1.3.4" || got.HWVersion.Scheme != c.scheme || len(got.Deviations) != 1 {
				t.Errorf("hwversion %+v, deviations %q", got.HWVersion, got.Deviations)
			}
		})
	}
	// Lenient is not careless: a byte string that is not UTF-8 stays refused.
	if _, err := DecodeClaims(mustHex("a1190104"+"82"+"42ff00"+"01"), ParseOptions{LenientUnsafe: true}); err == nil {
		t.Fatal("lenient decoder accepted a non-UTF-8 version")
	}
}

func TestJSONRoundTrip(t *testing.T) {
	agent, _ := newSigner(t, "esp256")
	c := fullClaims(t, agent)
	c.CNF = &Confirmation{Key: agent.PublicKey(), KID: agent.KID()}
	j, err := json.Marshal(c)
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{`"eat_nonce":"0102030405060708"`, `"ueid":"01070707`, `"oemid":32473`, `"hwversion":["1.0.0",16384]`,
		`"dbgstat":3`, `"iat":1767225600`, `"eat_profile":"urn:ietf:rfc:rfcXXXX"`, `"location":{"cbor":"a2011a05f5e100021a05f5e100"}`, `"-70000":{"cbor":"83010203"}`} {
		if !strings.Contains(string(j), name) {
			t.Errorf("JSON lacks %s:\n%s", name, j)
		}
	}
	var back Claims
	if err := json.Unmarshal(j, &back); err != nil {
		t.Fatal(err)
	}
	want, _ := c.MarshalCBOR()
	got, err := back.MarshalCBOR()
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want) {
		// the cnf COSE_Key comes back from JWK, so compare everything else
		back.CNF, c.CNF = nil, nil
		w, _ := c.MarshalCBOR()
		g, _ := back.MarshalCBOR()
		if !bytes.Equal(g, w) {
			t.Errorf("JSON round trip changed the claims:\n got %x\nwant %x", g, w)
		}
	}
	for _, bad := range []string{
		`{"eat_nonce":"zz"}`, `{"nosuchclaim":1}`, `{"ueid":"01","ueid":"02"}`, `{"hwversion":"1.0"}`,
		`{"dbgstat":"sometimes"}`, `{"300":5}`, `{"manifests":[[60]]}`, `{"cnf":{"x5t":1}}`, `[]`, `{"iat":"now"}`,
	} {
		var c Claims
		if err := json.Unmarshal([]byte(bad), &c); err == nil {
			t.Errorf("accepted %s", bad)
		}
	}
	// names are accepted for dbgstat
	var ds Claims
	if err := json.Unmarshal([]byte(`{"dbgstat":"disabled-since-boot"}`), &ds); err != nil || *ds.DbgStat != DebugDisabledSinceBoot {
		t.Errorf("dbgstat by name: %v", err)
	}
}

func TestMediaType(t *testing.T) {
	for mt, want := range map[string]bool{
		MediaTypeTEEP: true,
		"application/eat+cwt; eat_profile=urn:ietf:rfc:rfcXXXX":    true,
		"Application/EAT+CWT;eat_profile=\"urn:ietf:rfc:rfcXXXX\"": true,
		"application/eat+cwt": false,
		"application/eat+cwt; eat_profile=\"tag:psacertified.org,2023:psa#tfm\"": false,
		"application/teep+cbor": false,
	} {
		if got := IsTEEPMediaType(mt); got != want {
			t.Errorf("IsTEEPMediaType(%q) = %v", mt, got)
		}
	}
}

func TestNumericDates(t *testing.T) {
	frac := time.Unix(1700000000, 500000000).UTC()
	c := &Claims{IssuedAt: &frac}
	b, err := c.MarshalCBOR()
	if err != nil {
		t.Fatal(err)
	}
	d, err := DecodeClaims(b, ParseOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if !d.IssuedAt.Equal(frac) {
		t.Errorf("iat %v, want %v", d.IssuedAt, frac)
	}
	// float16 and float32 NumericDates decode too
	for in, want := range map[string]int64{"a106f93c00": 1, "a106fa4f000000": 2147483648} {
		d, err := DecodeClaims(mustHex(in), ParseOptions{})
		if err != nil || d.IssuedAt.Unix() != want {
			t.Errorf("%s: %v %v", in, d, err)
		}
	}
}

// TestJSONNumericDates: fractional dates in the JSON form agree with the CBOR
// form, including dates too far out for time.UnixNano.
func TestJSONNumericDates(t *testing.T) {
	far := time.Unix(1<<39, 500000000).UTC() // about year 19400
	j, err := json.Marshal(&Claims{IssuedAt: &far})
	if err != nil {
		t.Fatal(err)
	}
	if want := `{"iat":549755813888.5}`; string(j) != want {
		t.Errorf("JSON %s, want %s", j, want)
	}
	var c Claims
	if err := json.Unmarshal([]byte(`{"iat":1700000000.1}`), &c); err != nil {
		t.Fatal(err)
	}
	b, err := c.MarshalCBOR()
	if err != nil {
		t.Fatal(err)
	}
	d, err := DecodeClaims(b, ParseOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if !d.IssuedAt.Equal(*c.IssuedAt) {
		t.Errorf("iat from JSON %v, after a CBOR round trip %v", c.IssuedAt, d.IssuedAt)
	}
}
