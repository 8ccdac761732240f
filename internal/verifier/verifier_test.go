package verifier

import (
	"bytes"
	"context"
	"encoding/hex"
	"errors"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/teep-go/teep/cborwire"
	"github.com/teep-go/teep/cosekey"
	"github.com/teep-go/teep/eat"
	"github.com/teep-go/teep/internal/attester"
	"github.com/teep-go/teep/internal/keyfile"
	"github.com/teep-go/teep/teep"
)

// now is the fixed time of every test appraisal.
var now = time.Unix(1767225600, 0).UTC()

func clock() time.Time { return now }

type fixture struct {
	policy  *Policy
	v       *Verifier
	att     *attester.Attester
	attKey  *cosekey.Key // endorsed attestation key (the published example key)
	agent   *cosekey.Key // the Agent's TEEP key
	vKey    *cosekey.Key // the Verifier's result-signing key
	debugOK eat.DebugStatus
}

func newKey(t testing.TB, alg string) *cosekey.Key {
	t.Helper()
	a, _ := cosekey.ParseAlg(alg)
	k, err := cosekey.Generate(a)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func signer(t testing.TB, k *cosekey.Key) *cosekey.Signer {
	t.Helper()
	s, err := cosekey.NewSigner(k, 0)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

var agentManifest = eat.SUITReference{URI: "https://tam.example/agent.suit", DigestAlg: eat.AlgSHA256, Digest: bytes.Repeat([]byte{1}, 32)}

func newFixture(t testing.TB) *fixture {
	t.Helper()
	p, err := LoadPolicy("testdata/policy.json")
	if err != nil {
		t.Fatal(err)
	}
	attKey, err := keyfile.Load("../../testdata/suit/keys/example-p256-private.pem")
	if err != nil {
		t.Fatal(err)
	}
	f := &fixture{policy: p, attKey: attKey, agent: newKey(t, "ed25519"), vKey: newKey(t, "esp256"), debugOK: eat.DebugDisabledPermanently}
	ueid := append([]byte{1}, bytes.Repeat([]byte{0x42}, 32)...)
	f.att = &attester.Attester{
		Key: signer(t, attKey),
		Identity: attester.Identity{
			UEID: ueid, OEMID: eat.OEMIDBytes([]byte{0x89, 0x48, 0x23}), HWModel: []byte("softtee"),
			HWVersion: eat.Version{Version: "1.1", Scheme: eat.SchemeMultipartNumeric},
			SWName:    "teep-go agent", SWVersion: eat.Version{Version: "0.3.1", Scheme: eat.SchemeSemVer},
			Manifests: []eat.Manifest{agentManifest.Manifest(eat.ContentFormatCBOR)},
		},
		Clock: clock,
	}
	f.v, err = New(Config{Policy: p, Key: signer(t, f.vKey), Issuer: "https://verifier.example", Clock: clock})
	if err != nil {
		t.Fatal(err)
	}
	return f
}

func (f *fixture) evidence(t testing.TB, req attester.Request) []byte {
	t.Helper()
	if req.AgentKey == nil {
		req.AgentKey = f.agent
	}
	if req.DebugStatus == nil {
		req.DebugStatus = &f.debugOK
	}
	ev, err := f.att.Evidence(req)
	if err != nil {
		t.Fatal(err)
	}
	return ev
}

// signClaims signs hand-made claims with the endorsed attestation key.
func (f *fixture) signClaims(t testing.TB, mutate func(c *eat.Claims)) []byte {
	t.Helper()
	c, err := f.att.Claims(attester.Request{Nonce: []byte("nonce-0001"), AgentKey: f.agent, DebugStatus: &f.debugOK})
	if err != nil {
		t.Fatal(err)
	}
	mutate(c)
	tok, err := eat.Sign(c, signer(t, f.attKey), eat.SignOptions{})
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

func TestAppraiseEvidence(t *testing.T) {
	f := newFixture(t)
	nonce := []byte("nonce-0001")
	enabled := eat.DebugEnabled
	other := newKey(t, "ed25519")
	stranger := newKey(t, "esp256")
	strangerEvidence, err := (&attester.Attester{Key: signer(t, stranger), Identity: f.att.Identity}).Evidence(
		attester.Request{Nonce: nonce, AgentKey: f.agent, DebugStatus: &f.debugOK})
	if err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name     string
		evidence []byte
		exp      Expectations
		status   Status
		kind     error
		reason   string
	}{
		{"good, nonce", f.evidence(t, attester.Request{Nonce: nonce}), Expectations{Nonce: nonce, AgentKey: f.agent}, Affirming, nil, ""},
		{"good, timestamp", f.evidence(t, attester.Request{Timestamp: true}), Expectations{Freshness: teep.FreshnessTimestamp, AgentKey: f.agent}, Affirming, nil, ""},
		{"good, nonce and iat", f.evidence(t, attester.Request{Nonce: nonce, Timestamp: true}), Expectations{Nonce: nonce, AgentKey: f.agent}, Affirming, nil, ""},
		{"wrong nonce", f.evidence(t, attester.Request{Nonce: []byte("nonce-9999")}), Expectations{Nonce: nonce, AgentKey: f.agent}, Contraindicated, ErrFreshness, "does not match the expected"},
		{"no nonce", f.evidence(t, attester.Request{Timestamp: true}), Expectations{Nonce: nonce, AgentKey: f.agent}, Contraindicated, ErrFreshness, "eat_nonce is missing"},
		{"stale iat", f.signClaims(t, func(c *eat.Claims) { c.Nonce = nil; ts := now.Add(-time.Hour); c.IssuedAt = &ts }),
			Expectations{Freshness: teep.FreshnessTimestamp, AgentKey: f.agent}, Contraindicated, ErrFreshness, "is stale (older than 5m0s)"},
		{"future iat", f.signClaims(t, func(c *eat.Claims) { ts := now.Add(time.Hour); c.IssuedAt = &ts }),
			Expectations{Freshness: teep.FreshnessTimestamp, AgentKey: f.agent}, Contraindicated, ErrFreshness, "is in the future"},
		{"iat missing", f.evidence(t, attester.Request{Nonce: nonce}), Expectations{Freshness: teep.FreshnessTimestamp, AgentKey: f.agent}, Contraindicated, ErrFreshness, "iat is missing"},
		{"stale iat under nonce freshness", f.signClaims(t, func(c *eat.Claims) { ts := now.Add(-time.Hour); c.IssuedAt = &ts }),
			Expectations{Nonce: nonce, AgentKey: f.agent}, Warning, nil, "is stale"},
		{"expired", f.signClaims(t, func(c *eat.Claims) { ts := now.Add(-time.Second); c.Expiry = &ts }),
			Expectations{Nonce: nonce, AgentKey: f.agent}, Contraindicated, ErrFreshness, "expired at"},
		{"unendorsed key", strangerEvidence, Expectations{Nonce: nonce, AgentKey: f.agent}, Contraindicated, ErrUntrusted, "evidence signature"},
		{"missing cnf", f.signClaims(t, func(c *eat.Claims) { c.CNF = nil }), Expectations{Nonce: nonce, AgentKey: f.agent}, Contraindicated, ErrBinding, "cnf is missing"},
		{"cnf of another Agent", f.evidence(t, attester.Request{Nonce: nonce, AgentKey: other}), Expectations{Nonce: nonce, AgentKey: f.agent}, Contraindicated, ErrBinding, "cnf kid"},
		{"debug enabled", f.evidence(t, attester.Request{Nonce: nonce, DebugStatus: &enabled}), Expectations{Nonce: nonce, AgentKey: f.agent}, Contraindicated, ErrPolicy, "debug is enabled"},
		{"dbgstat missing", f.signClaims(t, func(c *eat.Claims) { c.DbgStat = nil }), Expectations{Nonce: nonce, AgentKey: f.agent}, Contraindicated, ErrPolicy, "dbgstat is missing"},
		{"unknown hwmodel", f.signClaims(t, func(c *eat.Claims) { c.HWModel = []byte("othertee") }), Expectations{Nonce: nonce, AgentKey: f.agent}, Contraindicated, ErrUntrusted, "does not cover hwmodel"},
		{"too old swversion", f.signClaims(t, func(c *eat.Claims) { c.SWVersion = &eat.Version{Version: "0.1.9"} }), Expectations{Nonce: nonce, AgentKey: f.agent}, Contraindicated, ErrPolicy, "swversion 0.1.9 is older than the minimum 0.2.0"},
		{"pre-release of the minimum", f.signClaims(t, func(c *eat.Claims) { c.SWVersion = &eat.Version{Version: "0.2.0-rc1"} }), Expectations{Nonce: nonce, AgentKey: f.agent}, Contraindicated, ErrPolicy, "older than the minimum"},
		{"swversion missing", f.signClaims(t, func(c *eat.Claims) { c.SWVersion = nil }), Expectations{Nonce: nonce, AgentKey: f.agent}, Contraindicated, ErrPolicy, "swversion is missing"},
		{"revoked ueid", f.signClaims(t, func(c *eat.Claims) { c.UEID = append([]byte{1}, bytes.Repeat([]byte{0xff}, 32)...) }), Expectations{Nonce: nonce, AgentKey: f.agent}, Contraindicated, ErrPolicy, "is revoked"},
		{"missing manifests", f.signClaims(t, func(c *eat.Claims) { c.Manifests = nil }), Expectations{Nonce: nonce, AgentKey: f.agent}, Contraindicated, ErrPolicy, "required claim manifests is missing"},
		{"other profile", f.signClaims(t, func(c *eat.Claims) { c.Profile = "tag:example.com,2026:other" }), Expectations{Nonce: nonce, AgentKey: f.agent}, Contraindicated, ErrPolicy, "is not urn:ietf:rfc:rfcXXXX"},
		{"stale agent manifest", f.signClaims(t, func(c *eat.Claims) {
			old := agentManifest
			old.Digest = bytes.Repeat([]byte{2}, 32)
			c.Manifests = []eat.Manifest{old.Manifest(eat.ContentFormatCBOR)}
		}), Expectations{Nonce: nonce, AgentKey: f.agent}, Warning, nil, "update needed"},
		{"malformed", []byte{0x84, 0x40, 0xa0, 0x41}, Expectations{Nonce: nonce, AgentKey: f.agent}, Contraindicated, ErrMalformed, "evidence:"},
	}
	for _, tc := range cases {
		a, err := f.v.AppraiseEvidence(context.Background(), tc.evidence, tc.exp)
		if a == nil {
			t.Fatalf("%s: no appraisal (%v)", tc.name, err)
		}
		if a.Status != tc.status {
			t.Errorf("%s: status %s, want %s; reasons %q", tc.name, a.Status, tc.status, a.Reasons)
			continue
		}
		if (err != nil) != (tc.status == Contraindicated) {
			t.Errorf("%s: error %v with status %s", tc.name, err, a.Status)
		}
		if tc.kind != nil && !errors.Is(err, tc.kind) {
			t.Errorf("%s: error %v does not wrap %v", tc.name, err, tc.kind)
		}
		joined := strings.Join(a.Reasons, "; ")
		if tc.reason == "" && len(a.Reasons) != 0 || !strings.Contains(joined, tc.reason) {
			t.Errorf("%s: reasons %q, want one containing %q", tc.name, joined, tc.reason)
		}
		if tc.status != Contraindicated && a.Endorsement != "softtee-lab-devices" {
			t.Errorf("%s: endorsement %q", tc.name, a.Endorsement)
		}
	}
}

func TestAppraiseCanceled(t *testing.T) {
	f := newFixture(t)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := f.v.AppraiseEvidence(ctx, f.evidence(t, attester.Request{Nonce: []byte("nonce-0001")}), Expectations{}); !errors.Is(err, context.Canceled) {
		t.Errorf("got %v", err)
	}
}

// TestAppendixD2Evidence signs the draft's example claims with the endorsed
// key. Strict decoding refuses them; lenient decoding turns each deviation
// into a warning, and the example still fails for what it lacks (manifests
// under 272, a cnf that names a real key).
func TestAppendixD2Evidence(t *testing.T) {
	f := newFixture(t)
	d2 := readHex(t, "../../testdata/teep/derived/eat_claims_appendix_d2.hex")
	tok, err := cosekey.Sign1(d2, signer(t, f.attKey), nil)
	if err != nil {
		t.Fatal(err)
	}
	nonce := mustHex("948f8860d13a463e8e")
	a, err := f.v.AppraiseEvidence(context.Background(), tok, Expectations{Nonce: nonce, AgentKey: f.agent})
	if !errors.Is(err, ErrMalformed) || a.Claims != nil {
		t.Fatalf("strict: %v", err)
	}

	lenient := *f.policy
	lenient.LenientDecodingUnsafe = true
	lenient.Devices, lenient.RequireDebugDisabled = nil, false
	lenient.Endorsements = []Endorsement{{Name: "lab", Key: f.attKey.PublicKey()}}
	v, err := New(Config{Policy: &lenient, Clock: clock})
	if err != nil {
		t.Fatal(err)
	}
	a, err = v.AppraiseEvidence(context.Background(), tok, Expectations{Nonce: nonce, AgentKey: f.agent})
	if a == nil || a.Status != Contraindicated {
		t.Fatalf("lenient: %v %v", a, err)
	}
	reasons := strings.Join(a.Reasons, "\n")
	for _, want := range []string{"lenient decoding: ueid (256): RAND UEID with 15 random bytes", "lenient decoding: measurements (273)[0]: body is a bare map",
		"required claim manifests is missing", "cnf kid ba7816bf"} {
		if !strings.Contains(reasons, want) {
			t.Errorf("reasons lack %q:\n%s", want, reasons)
		}
	}
	// with cnf naming the placeholder key and manifests not required, only
	// the warnings remain
	lenient.RequiredClaims = []int64{eat.ClaimUEID, eat.ClaimCnf}
	if v, err = New(Config{Policy: &lenient, Clock: clock}); err != nil {
		t.Fatal(err)
	}
	a, err = v.AppraiseEvidence(context.Background(), tok, Expectations{Nonce: nonce})
	if err != nil || a.Status != Warning || len(a.Reasons) != 2 {
		t.Errorf("lenient, relaxed: %v %v %q", a.Status, err, a.Reasons)
	}
}

// TestIssueResultFromLenientEvidence: a result for leniently decoded
// Evidence re-issues only what strict decoding accepts (byte- or
// text-wrapped manifests, a UEID of valid length), so TAMs can read it.
func TestIssueResultFromLenientEvidence(t *testing.T) {
	f := newFixture(t)
	p := *f.policy
	p.LenientDecodingUnsafe = true
	v, err := New(Config{Policy: &p, Key: signer(t, f.vKey), Clock: clock})
	if err != nil {
		t.Fatal(err)
	}
	// the bare SUIT_Reference map {1: uri, 0: [-16, digest]} of Appendix D.2
	digest := cborwire.AppendBytes(cborwire.AppendInt(cborwire.AppendArrayHead(nil, 2), eat.AlgSHA256), bytes.Repeat([]byte{3}, 32))
	bare := eat.Manifest{ContentFormat: eat.ContentFormatCBOR, Body: cborwire.AppendMap(nil, []cborwire.MapEntry{
		{Key: cborwire.AppendInt(nil, 0), Val: digest},
		{Key: cborwire.AppendInt(nil, 1), Val: cborwire.AppendText(nil, "https://tam.example/tc.suit")},
	})}
	ev := f.signClaims(t, func(c *eat.Claims) {
		c.UEID = append([]byte{1}, bytes.Repeat([]byte{0x42}, 15)...) // RAND with 15 bytes, as in Appendix D.2
		c.Manifests = append(c.Manifests, bare)
		c.Deviations = []string{"encode leniently"}
	})
	a, err := v.AppraiseEvidence(context.Background(), ev, Expectations{Nonce: []byte("nonce-0001"), AgentKey: f.agent})
	if a == nil || a.Claims == nil || len(a.Claims.Deviations) != 2 || len(a.Claims.Manifests) != 2 {
		t.Fatalf("lenient appraisal: %v %v", a, err)
	}
	res, err := v.IssueResult(a)
	if err != nil {
		t.Fatal(err)
	}
	tok, err := eat.Parse(res, eat.ParseOptions{})
	if err != nil {
		t.Fatalf("the result does not decode strictly: %v", err)
	}
	c := tok.Claims
	if c.UEID != nil || len(c.Manifests) != 1 || !bytes.Equal(c.Manifests[0].Body, a.Claims.Manifests[0].Body) {
		t.Errorf("result ueid %x, manifests %d", c.UEID, len(c.Manifests))
	}
}

func TestIssueAndVerifyResult(t *testing.T) {
	f := newFixture(t)
	token := []byte("teep-token-00042")
	a, err := f.v.AppraiseEvidence(context.Background(), f.evidence(t, attester.Request{Nonce: token}), Expectations{})
	if err != nil {
		t.Fatal(err)
	}
	res, err := f.v.IssueResult(a)
	if err != nil {
		t.Fatal(err)
	}
	trusted := []*cosekey.Key{f.vKey.PublicKey()}
	exp := Expectations{Nonce: token, AgentKey: f.agent, Now: now.Add(time.Minute)}
	got, err := VerifyResult(res, trusted, exp)
	if err != nil || got.Status != Affirming {
		t.Fatalf("VerifyResult: %v %v", got, err)
	}
	if got.PolicyID != "example-fleet-2026-01" || got.Claims.Issuer != "https://verifier.example" || !bytes.Equal(got.Claims.UEID, f.att.Identity.UEID) {
		t.Errorf("result claims %+v", got.Claims)
	}
	if p := got.Claims.ProfileProblems(); len(p) != 0 {
		t.Errorf("the result does not meet the TEEP profile: %v", p)
	}

	warnAppraisal := *a
	warnAppraisal.Status = Warning
	warnRes, err := f.v.IssueResult(&warnAppraisal)
	if err != nil {
		t.Fatal(err)
	}
	badAppraisal := *a
	badAppraisal.Status = Contraindicated
	badRes, err := f.v.IssueResult(&badAppraisal)
	if err != nil {
		t.Fatal(err)
	}
	otherVerifier := newKey(t, "esp256")
	cases := []struct {
		name   string
		res    []byte
		keys   []*cosekey.Key
		exp    Expectations
		status Status
		kind   error
	}{
		{"replayed to another token", res, trusted, Expectations{Nonce: []byte("teep-token-00043"), AgentKey: f.agent, Now: now}, Contraindicated, ErrFreshness},
		{"presented by another Agent", res, trusted, Expectations{Nonce: token, AgentKey: newKey(t, "ed25519"), Now: now}, Contraindicated, ErrBinding},
		{"untrusted verifier", res, []*cosekey.Key{otherVerifier}, exp, Contraindicated, ErrUntrusted},
		{"expired", res, trusted, Expectations{Nonce: token, AgentKey: f.agent, Now: now.Add(DefaultResultTTL)}, Contraindicated, ErrFreshness},
		{"no Agent key", res, trusted, Expectations{Nonce: token, Now: now}, Contraindicated, ErrNoAgentKey},
		{"no expected nonce", res, trusted, Expectations{AgentKey: f.agent, Now: now}, Contraindicated, ErrFreshness},
		{"timestamp, fresh", res, trusted, Expectations{Freshness: teep.FreshnessTimestamp, AgentKey: f.agent, Now: now.Add(time.Minute)}, Affirming, nil},
		{"timestamp, stale", res, trusted, Expectations{Freshness: teep.FreshnessTimestamp, AgentKey: f.agent, Now: now.Add(6 * time.Minute), MaxAge: 5 * time.Minute}, Contraindicated, ErrFreshness},
		{"verdict warning", warnRes, trusted, exp, Warning, nil},
		{"verdict contraindicated", badRes, trusted, exp, Contraindicated, ErrResult},
		{"evidence is not a result", f.evidence(t, attester.Request{Nonce: token}), trusted, exp, Contraindicated, ErrUntrusted},
		{"garbage", []byte("not a token"), trusted, exp, Contraindicated, ErrMalformed},
	}
	for _, tc := range cases {
		got, err := VerifyResult(tc.res, tc.keys, tc.exp)
		if got.Status != tc.status || (tc.kind != nil && !errors.Is(err, tc.kind)) || (tc.kind == nil && err != nil) {
			t.Errorf("%s: status %s err %v, want %s %v", tc.name, got.Status, err, tc.status, tc.kind)
		}
	}
}

func TestIssueResultNeedsKey(t *testing.T) {
	f := newFixture(t)
	v, err := New(Config{Policy: f.policy, Clock: clock})
	if err != nil {
		t.Fatal(err)
	}
	a, err := v.AppraiseEvidence(context.Background(), f.evidence(t, attester.Request{Nonce: []byte("nonce-0001")}), Expectations{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := v.IssueResult(a); err == nil {
		t.Error("issued a result without a key")
	}
	if _, err := f.v.IssueResult(&Appraisal{}); err == nil {
		t.Error("issued a result for an empty appraisal")
	}
	if _, err := New(Config{Policy: &Policy{}}); err == nil {
		t.Error("New accepted a policy without endorsements")
	}
}

func TestCompareVersions(t *testing.T) {
	for _, tc := range []struct {
		a, b string
		want int
	}{
		{"1.2.10", "1.2.9", 1}, {"1.2", "1.2.0", 0}, {"1.0.0-rc1", "1.0.0", -1}, {"1.0.0-rc.2", "1.0.0-rc.10", -1},
		{"1.0.0-alpha", "1.0.0-1", 1}, {"2", "10", -1}, {"1.0.0+build5", "1.0.0", 0}, {"1.0.0-a.b", "1.0.0-a", 1},
	} {
		got, err := compareVersions(tc.a, tc.b)
		if err != nil || got != tc.want {
			t.Errorf("compare(%s, %s) = %d %v, want %d", tc.a, tc.b, got, err, tc.want)
		}
	}
	for _, bad := range []string{"", "v1", "1..2", "1.0-", "x.y"} {
		if _, err := compareVersions(bad, "1"); err == nil {
			t.Errorf("compare(%q) accepted", bad)
		}
	}
}

func readHex(t testing.TB, path string) []byte {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return mustHex(string(data))
}

func mustHex(s string) []byte {
	b, err := hex.DecodeString(strings.Join(strings.Fields(s), ""))
	if err != nil {
		panic(err)
	}
	return b
}

// TestEndorsementChoice: one attestation key endorsed twice for different
// models must be matched by the model the Evidence names.
func TestEndorsementChoice(t *testing.T) {
	f := newFixture(t)
	p := *f.policy
	p.Devices = nil
	p.Endorsements = []Endorsement{
		{Name: "model-a", Key: f.attKey.PublicKey(), HWModels: [][]byte{[]byte("model-a")}},
		{Name: "model-b", Key: f.attKey.PublicKey(), HWModels: [][]byte{[]byte("softtee")}},
	}
	v, err := New(Config{Policy: &p, Clock: clock})
	if err != nil {
		t.Fatal(err)
	}
	nonce := []byte("nonce-0001")
	a, err := v.AppraiseEvidence(context.Background(), f.evidence(t, attester.Request{Nonce: nonce}), Expectations{Nonce: nonce, AgentKey: f.agent})
	if err != nil || a.Endorsement != "model-b" {
		t.Errorf("endorsement %q, err %v", a.Endorsement, err)
	}
	p2 := p
	p2.Endorsements = p.Endorsements[:1]
	if v, err = New(Config{Policy: &p2, Clock: clock}); err != nil {
		t.Fatal(err)
	}
	a, err = v.AppraiseEvidence(context.Background(), f.evidence(t, attester.Request{Nonce: nonce}), Expectations{Nonce: nonce, AgentKey: f.agent})
	if !errors.Is(err, ErrUntrusted) || !strings.Contains(strings.Join(a.Reasons, ""), `endorsement "model-a" does not cover hwmodel`) {
		t.Errorf("got %v", err)
	}
}

// TestUnknownDeviceClass: with an endorsement that does not restrict the
// model, the reference values alone must refuse an unlisted hwmodel, and a
// listed model with too old hardware.
func TestUnknownDeviceClass(t *testing.T) {
	f := newFixture(t)
	p := *f.policy
	p.Endorsements = []Endorsement{{Name: "any-model", Key: f.attKey.PublicKey()}}
	p.Devices = append([]DeviceClass{{HWModel: []byte("oldtee"), MinHWVersion: "2.0"}}, p.Devices...)
	v, err := New(Config{Policy: &p, Clock: clock})
	if err != nil {
		t.Fatal(err)
	}
	nonce := []byte("nonce-0001")
	exp := Expectations{Nonce: nonce, AgentKey: f.agent}
	for _, tc := range []struct {
		model, want string
	}{
		{"othertee", "unknown device class: hwmodel 6f74686572746565 of oemid 894823"},
		{"oldtee", "hwversion 1.1 is older than the minimum 2.0"},
	} {
		ev := f.signClaims(t, func(c *eat.Claims) { c.HWModel = []byte(tc.model) })
		a, err := v.AppraiseEvidence(context.Background(), ev, exp)
		if !errors.Is(err, ErrPolicy) || !strings.Contains(strings.Join(a.Reasons, "; "), tc.want) {
			t.Errorf("%s: %v", tc.model, err)
		}
	}
}

// A Policy written in Go that leaves RequiredClaims nil gets the TEEP
// profile's required claims, as one parsed from JSON does; an explicitly
// empty list requires none.
func TestGoPolicyRequiresProfileClaims(t *testing.T) {
	f := newFixture(t)
	f.att.Identity.Manifests = nil // Evidence without the required manifests claim
	nonce := []byte("0123456789abcdef")
	ev := f.evidence(t, attester.Request{Nonce: nonce})
	for _, tc := range []struct {
		required []int64
		want     Status
	}{{nil, Contraindicated}, {[]int64{}, Affirming}} {
		v, err := New(Config{Policy: &Policy{ID: "go", Endorsements: []Endorsement{{Name: "lab", Key: f.attKey.PublicKey()}},
			RequiredClaims: tc.required}, Clock: clock})
		if err != nil {
			t.Fatal(err)
		}
		a, _ := v.AppraiseEvidence(context.Background(), ev, Expectations{Nonce: nonce, AgentKey: f.agent})
		if a == nil || a.Status != tc.want {
			t.Fatalf("required %v: %+v, want %v", tc.required, a, tc.want)
		}
		if tc.want == Contraindicated && !strings.Contains(strings.Join(a.Reasons, "\n"), "manifests") {
			t.Errorf("reasons %q do not name the missing manifests claim", a.Reasons)
		}
	}
}
