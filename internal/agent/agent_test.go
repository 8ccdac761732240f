package agent

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/teep-go/teep/cosekey"
	"github.com/teep-go/teep/eat"
	"github.com/teep-go/teep/internal/tee"
	"github.com/teep-go/teep/internal/tee/softtee"
	"github.com/teep-go/teep/internal/verifier"
	"github.com/teep-go/teep/suit"
	"github.com/teep-go/teep/teep"
	"github.com/veraison/go-cose"
)

const tamURI = "http://127.0.0.1:1/tam"

// fixture is an Agent in a software TEE, trusting one TAM key and one TC
// signer key, with helpers to play the TAM.
type fixture struct {
	t       *testing.T
	tt      *softtee.TEE
	a       *Agent
	tam     *cosekey.Signer
	signer  *cosekey.Signer
	num     teep.Numbering
	events  []Event
	suit    *SUIT
	tokenNo byte
}

func newFixture(t *testing.T, num teep.Numbering) *fixture {
	t.Helper()
	f := &fixture{t: t, num: num}
	tt, err := softtee.Open(t.TempDir(), softtee.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { tt.Close() })
	f.tt = tt
	f.tam = newSigner(t, cosekey.AlgESP256)
	f.signer = newSigner(t, cosekey.AlgESP256)
	if err := AddTrustAnchor(tt.Storage(), RoleTAM, f.tam.PublicKey()); err != nil {
		t.Fatal(err)
	}
	if err := AddTrustAnchor(tt.Storage(), RoleSigner, f.signer.PublicKey()); err != nil {
		t.Fatal(err)
	}
	if f.suit, err = NewSUIT(SUITConfig{TEE: tt}); err != nil {
		t.Fatal(err)
	}
	f.a, err = New(Config{TEE: tt, Installer: f.suit, TAMs: []string{tamURI}, Numbering: num,
		Events: func(e Event) { f.events = append(f.events, e) }})
	if err != nil {
		t.Fatal(err)
	}
	return f
}

func newSigner(t *testing.T, alg cose.Algorithm) *cosekey.Signer {
	t.Helper()
	k, err := cosekey.Generate(alg)
	if err != nil {
		t.Fatal(err)
	}
	s, err := cosekey.NewSigner(k, 0)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func (f *fixture) token() []byte {
	f.tokenNo++
	return bytes.Repeat([]byte{f.tokenNo}, 16)
}

// send signs m as the TAM (or as by) and returns the Agent's verified answer.
func (f *fixture) send(m teep.Message, by *cosekey.Signer) teep.Message {
	f.t.Helper()
	if by == nil {
		by = f.tam
	}
	data, err := teep.Sign(m, by, teep.SignOptions{Encode: teep.EncodeOptions{Numbering: f.num}})
	if err != nil {
		f.t.Fatal(err)
	}
	return f.sendRaw(data)
}

func (f *fixture) sendRaw(data []byte) teep.Message {
	f.t.Helper()
	r, err := f.a.ProcessTeepMessage(context.Background(), tamURI, data)
	if err != nil {
		f.t.Fatalf("ProcessTeepMessage: %v", err)
	}
	if r.Message == nil {
		return nil
	}
	if r.TAMURI != tamURI {
		f.t.Fatalf("answer addressed to %q", r.TAMURI)
	}
	op, err := teep.Open(r.Message, teep.OpenOptions{Numbering: f.num, Keys: []*cosekey.Key{f.a.PublicKey()}})
	if err != nil {
		f.t.Fatalf("Agent's answer does not verify with its key: %v", err)
	}
	return op.Message
}

func (f *fixture) query(q *teep.QueryRequest) teep.Message {
	if q.SupportedCipherSuites == nil {
		q.SupportedCipherSuites = teep.MandatoryCipherSuites()
	}
	if q.SupportedSUITCOSEProfiles == nil {
		q.SupportedSUITCOSEProfiles = teep.MandatorySUITCOSEProfiles()
	}
	return f.send(q, nil)
}

func wantError(t *testing.T, m teep.Message, code teep.ErrCode) *teep.Error {
	t.Helper()
	e, ok := m.(*teep.Error)
	if !ok {
		t.Fatalf("answer is %T, want Error %s", m, code)
	}
	if e.ErrCode != code {
		t.Fatalf("err-code %s (%q), want %s", e.ErrCode, e.ErrMsg, code)
	}
	return e
}

var (
	appID      = suit.NewComponentID("TEEP-Device", "SecureFS", "app")
	appMan     = suit.NewComponentID("TEEP-Device", "SecureFS", "app", "suit")
	configID   = suit.NewComponentID("TEEP-Device", "SecureFS", "config")
	configMan  = suit.NewComponentID("TEEP-Device", "SecureFS", "config", "suit")
	otherClass = make([]byte, 16)
)

// envelope builds and signs a manifest installing payload as comp.
func (f *fixture) envelope(man, comp suit.ComponentID, seq uint64, payload []byte, mutate ...func(*suit.ManifestSpec)) []byte {
	f.t.Helper()
	id := f.tt.Identity()
	spec := suit.ManifestSpec{
		ManifestComponentID: man, SequenceNumber: seq, VendorID: id.VendorID[:], ClassID: id.ClassID[:],
		Components: []suit.ComponentSpec{{ID: comp, Payload: payload, Integrated: true}},
	}
	for _, m := range mutate {
		m(&spec)
	}
	e, err := suit.Build(spec)
	if err != nil {
		f.t.Fatal(err)
	}
	if err := e.Sign(f.signer); err != nil {
		f.t.Fatal(err)
	}
	b, err := e.Marshal(suit.MarshalOptions{})
	if err != nil {
		f.t.Fatal(err)
	}
	return b
}

func (f *fixture) update(u *teep.Update) teep.Message {
	f.t.Helper()
	if u.Token == nil {
		u.Token = f.token()
	}
	return f.send(u, nil)
}

func (f *fixture) installed() []Installed {
	f.t.Helper()
	inst, err := f.suit.Installed()
	if err != nil {
		f.t.Fatal(err)
	}
	return inst
}

func reportsOK(t *testing.T, reports [][]byte, token []byte, wantOK bool) {
	t.Helper()
	if len(reports) == 0 {
		t.Fatal("no SUIT reports")
	}
	for _, b := range reports {
		r, err := suit.ParseReport(b)
		if err != nil {
			t.Fatalf("SUIT report: %v", err)
		}
		if !bytes.Equal(r.Nonce, token) {
			t.Fatalf("suit-report-nonce %x, want the token %x", r.Nonce, token)
		}
		if wantOK && !r.Success() {
			t.Fatalf("report says failure: %+v", r.Failure)
		}
	}
}

func TestQueryRequest(t *testing.T) {
	for _, num := range []teep.Numbering{teep.Draft26, teep.Legacy} {
		t.Run(num.String(), func(t *testing.T) {
			f := newFixture(t, num)
			challenge := []byte("challenge-0123456789")
			tok := f.token()
			m := f.query(&teep.QueryRequest{Token: tok, Challenge: challenge,
				DataItemRequested: teep.DataItemAttestation | teep.DataItemTrustedComponents})
			qr, ok := m.(*teep.QueryResponse)
			if !ok {
				t.Fatalf("answer is %T %+v", m, m)
			}
			if !bytes.Equal(qr.Token, tok) || qr.SelectedVersion == nil || *qr.SelectedVersion != 0 {
				t.Fatalf("token %x selected-version %v", qr.Token, qr.SelectedVersion)
			}
			if qr.AttestationPayloadFormat != "" {
				t.Fatalf("format %q", qr.AttestationPayloadFormat)
			}
			ev, err := eat.Parse(qr.AttestationPayload, eat.ParseOptions{})
			if err != nil {
				t.Fatal(err)
			}
			if _, err := ev.Verify([]*cosekey.Key{f.tt.AttestationPublicKey()}); err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(ev.Claims.Nonce, challenge) {
				t.Fatalf("background-check: eat_nonce %q, want the challenge", ev.Claims.Nonce)
			}
			if err := ev.Claims.CNF.Binds(f.a.PublicKey()); err != nil {
				t.Fatal(err)
			}
			// Passport model: no challenge, the token is the nonce.
			tok = f.token()
			m = f.query(&teep.QueryRequest{Token: tok, DataItemRequested: teep.DataItemAttestation})
			ev, err = eat.Parse(m.(*teep.QueryResponse).AttestationPayload, eat.ParseOptions{})
			if err != nil || !bytes.Equal(ev.Claims.Nonce, tok) {
				t.Fatalf("passport: eat_nonce %x, want the token %x (%v)", ev.Claims.Nonce, tok, err)
			}
			// Timestamp freshness only.
			m = f.query(&teep.QueryRequest{Token: f.token(), DataItemRequested: teep.DataItemAttestation,
				SupportedFreshnessMechanisms: []teep.FreshnessMechanism{teep.FreshnessTimestamp}})
			ev, err = eat.Parse(m.(*teep.QueryResponse).AttestationPayload, eat.ParseOptions{})
			if err != nil || ev.Claims.IssuedAt == nil || ev.Claims.Nonce != nil {
				t.Fatalf("timestamp freshness: %+v %v", ev, err)
			}
		})
	}
}

func TestQueryRequestNegotiationErrors(t *testing.T) {
	f := newFixture(t, teep.Draft26)
	tok := f.token()
	e := wantError(t, f.query(&teep.QueryRequest{Token: tok, Versions: []uint32{7}}), teep.ErrUnsupportedMsgVersion)
	if len(e.Versions) != 1 || e.Versions[0] != 0 || !bytes.Equal(e.Token, tok) {
		t.Fatalf("versions %v token %x", e.Versions, e.Token)
	}
	e = wantError(t, f.query(&teep.QueryRequest{Token: tok,
		SupportedCipherSuites: []teep.CipherSuite{teep.Sign1Suite(-35)}}), teep.ErrUnsupportedCipherSuites)
	if len(e.SupportedCipherSuites) == 0 || !e.SupportedCipherSuites[0].Equal(teep.CipherSuiteESP256) {
		t.Fatalf("suites %v", e.SupportedCipherSuites)
	}
	e = wantError(t, f.query(&teep.QueryRequest{Token: tok, DataItemRequested: teep.DataItemAttestation,
		SupportedFreshnessMechanisms: []teep.FreshnessMechanism{9}}), teep.ErrUnsupportedFreshnessMechanisms)
	if len(e.SupportedFreshnessMechanisms) != 2 {
		t.Fatalf("freshness %v", e.SupportedFreshnessMechanisms)
	}
	// Attestation with nonce freshness but neither challenge nor token.
	wantError(t, f.query(&teep.QueryRequest{DataItemRequested: teep.DataItemAttestation}), teep.ErrPermanentError)
	// An Ed25519-only TAM offer to a P-256 Agent: no common suite.
	wantError(t, f.query(&teep.QueryRequest{Token: tok,
		SupportedCipherSuites: []teep.CipherSuite{teep.CipherSuiteEd25519}}), teep.ErrUnsupportedCipherSuites)
	// The legacy ES256 id is accepted, and the answer is signed with it.
	m := f.query(&teep.QueryRequest{Token: tok, SupportedCipherSuites: []teep.CipherSuite{teep.Sign1Suite(-7)}})
	if _, ok := m.(*teep.QueryResponse); !ok {
		t.Fatalf("ES256-only offer: %T", m)
	}
}

func TestUntrustedAndInvalidMessages(t *testing.T) {
	f := newFixture(t, teep.Draft26)
	tok := f.token()
	q := &teep.QueryRequest{Token: tok, SupportedCipherSuites: teep.MandatoryCipherSuites(),
		SupportedSUITCOSEProfiles: teep.MandatorySUITCOSEProfiles()}
	// A TAM whose key is not a trust anchor.
	e := wantError(t, f.send(q, newSigner(t, cosekey.AlgESP256)), teep.ErrBadCertificate)
	if !bytes.Equal(e.Token, tok) {
		t.Fatalf("token not echoed: %x", e.Token)
	}
	// An Ed25519 TAM key when only P-256 TAM keys are trusted.
	wantError(t, f.send(q, newSigner(t, cosekey.AlgEd25519)), teep.ErrBadCertificate)
	// A trusted kid with a broken signature.
	data, _ := teep.Sign(q, f.tam, teep.SignOptions{})
	data[len(data)-1] ^= 1
	wantError(t, f.sendRaw(data), teep.ErrPermanentError)
	// Not COSE at all.
	wantError(t, f.sendRaw([]byte{0x82, 0x01, 0xa0}), teep.ErrPermanentError)
	// A message only Agents send.
	wantError(t, f.send(&teep.Success{Token: tok}, nil), teep.ErrPermanentError)
	// Numbering mismatch: a legacy-numbered Update to a draft-26 Agent.
	leg, _ := teep.Sign(&teep.Error{Token: tok, ErrCode: teep.ErrPermanentError}, f.tam,
		teep.SignOptions{Encode: teep.EncodeOptions{Numbering: teep.Legacy}})
	wantError(t, f.sendRaw(leg), teep.ErrPermanentError)
	failures := 0
	for _, ev := range f.events {
		if ev.Kind == EventFailure {
			failures++
		}
	}
	if failures < 4 {
		t.Fatalf("%d failure events", failures)
	}
}

func TestUpdateInstallUpgradeRollbackRemove(t *testing.T) {
	for _, num := range []teep.Numbering{teep.Draft26, teep.Legacy} {
		t.Run(num.String(), func(t *testing.T) {
			f := newFixture(t, num)
			v1 := f.envelope(appMan, appID, 1, []byte("app version 1"))
			tok := f.token()
			s, ok := f.update(&teep.Update{Token: tok, ManifestList: [][]byte{v1}}).(*teep.Success)
			if !ok || !bytes.Equal(s.Token, tok) {
				t.Fatalf("install: %+v", s)
			}
			reportsOK(t, s.SUITReports, tok, true)
			inst := f.installed()
			if len(inst) != 1 || inst[0].Sequence != 1 || !inst[0].ComponentID.Equal(appID) {
				t.Fatalf("installed %+v", inst)
			}
			// The tc-list reports it with the image digest.
			qr := f.query(&teep.QueryRequest{Token: f.token(), DataItemRequested: teep.DataItemTrustedComponents}).(*teep.QueryResponse)
			if len(qr.TCList) != 1 || qr.TCList[0].ImageDigest == nil || !bytes.Equal(qr.TCList[0].ImageDigest.Bytes, inst[0].SHA256) ||
				*qr.TCList[0].ImageSize != uint64(len("app version 1")) {
				t.Fatalf("tc-list %+v", qr.TCList)
			}

			// Update to version 2.
			v2 := f.envelope(appMan, appID, 2, []byte("app version 2"))
			if _, ok := f.update(&teep.Update{ManifestList: [][]byte{v2}}).(*teep.Success); !ok {
				t.Fatal("update to v2 failed")
			}
			if inst := f.installed(); inst[0].Sequence != 2 {
				t.Fatalf("after update: %+v", inst)
			}
			v2sha := f.installed()[0].SHA256

			// Rollback to version 1: refused, v2 intact.
			tok = f.token()
			e := wantError(t, f.update(&teep.Update{Token: tok, ManifestList: [][]byte{v1}}), teep.ErrManifestProcessingFailed)
			reportsOK(t, e.SUITReports, tok, false)
			if inst := f.installed(); inst[0].Sequence != 2 || !bytes.Equal(inst[0].SHA256, v2sha) {
				t.Fatalf("after rollback attempt: %+v", inst)
			}

			// A manifest whose payload does not match its digest.
			// The integrated payload is not covered by the signature, only
			// by the image digest: corrupt it in transit.
			bad := f.envelope(appMan, appID, 3, []byte("app version 3"))
			bad = bytes.Replace(bad, []byte("app version 3"), []byte("app versioX 3"), 1)
			tok = f.token()
			e = wantError(t, f.update(&teep.Update{Token: tok, ManifestList: [][]byte{bad}}), teep.ErrManifestProcessingFailed)
			reportsOK(t, e.SUITReports, tok, false)
			if inst := f.installed(); inst[0].Sequence != 2 || !bytes.Equal(inst[0].SHA256, v2sha) {
				t.Fatalf("after bad digest: %+v", inst)
			}

			// Removal through unneeded-manifest-list.
			tok = f.token()
			s, ok = f.update(&teep.Update{Token: tok, UnneededManifestList: []suit.ComponentID{appMan}}).(*teep.Success)
			if !ok {
				t.Fatal("removal failed")
			}
			if !bytes.Equal(s.Token, tok) {
				t.Fatalf("removal Success token %x, want %x", s.Token, tok)
			}
			if inst := f.installed(); len(inst) != 0 {
				t.Fatalf("after removal: %+v", inst)
			}
			// Reinstalling the old version after removal is still a rollback.
			wantError(t, f.update(&teep.Update{ManifestList: [][]byte{v1}}), teep.ErrManifestProcessingFailed)

			kinds := map[EventKind]int{}
			for _, ev := range f.events {
				kinds[ev.Kind]++
			}
			if kinds[EventInstall] != 2 || kinds[EventUninstall] != 1 || kinds[EventFailure] != 3 {
				t.Fatalf("events %v", kinds)
			}
		})
	}
}

func TestUpdateUntrustedSignerAndWrongClass(t *testing.T) {
	f := newFixture(t, teep.Draft26)
	other := &fixture{t: t, tt: f.tt, signer: newSigner(t, cosekey.AlgESP256)}
	bad := other.envelope(appMan, appID, 1, []byte("x"))
	wantError(t, f.update(&teep.Update{ManifestList: [][]byte{bad}}), teep.ErrManifestProcessingFailed)
	wrong := f.envelope(appMan, appID, 1, []byte("x"), func(s *suit.ManifestSpec) { s.ClassID = otherClass })
	wantError(t, f.update(&teep.Update{ManifestList: [][]byte{wrong}}), teep.ErrManifestProcessingFailed)
	// A good and a bad manifest in one Update: the good one is installed.
	good := f.envelope(appMan, appID, 1, []byte("x"))
	wantError(t, f.update(&teep.Update{ManifestList: [][]byte{wrong, good}}), teep.ErrManifestProcessingFailed)
	if len(f.installed()) != 1 {
		t.Fatal("independent manifest not installed")
	}
}

func TestUpdateWithTAMError(t *testing.T) {
	f := newFixture(t, teep.Draft26)
	f.a.RequestPolicyCheck(context.Background())
	if m := f.update(&teep.Update{ErrCode: teep.ErrAttestationRequired, ErrMsg: "attestation failed"}); m != nil {
		t.Fatalf("answered a TAM error with %T", m)
	}
	r, _ := f.a.RequestPolicyCheck(context.Background())
	if r.TAMURI != "" || len(r.Problems) != 1 {
		t.Fatalf("round after a TAM error: %+v", r)
	}
}

func TestRequestedAndUnneededLists(t *testing.T) {
	f := newFixture(t, teep.Draft26)
	ctx := context.Background()
	r, err := f.a.RequestTA(ctx, appID, "https://elsewhere.example/tam")
	if err != nil || r.TAMURI != tamURI {
		t.Fatalf("RequestTA = %+v, %v (an unknown TAM hint falls back to the configured TAM)", r, err)
	}
	f.a.RequestTA(ctx, appID, "") // twice: one entry
	qr := f.query(&teep.QueryRequest{Token: f.token()}).(*teep.QueryResponse)
	if len(qr.RequestedTCList) != 1 || !qr.RequestedTCList[0].ComponentID.Equal(appID) {
		t.Fatalf("requested-tc-list %+v", qr.RequestedTCList)
	}
	f.update(&teep.Update{ManifestList: [][]byte{f.envelope(appMan, appID, 1, []byte("x"))}})
	qr = f.query(&teep.QueryRequest{Token: f.token()}).(*teep.QueryResponse)
	if len(qr.RequestedTCList) != 0 {
		t.Fatalf("satisfied request still listed: %+v", qr.RequestedTCList)
	}
	// Installed: RequestTA needs nothing.
	if r, _ := f.a.RequestTA(ctx, appID, ""); r.TAMURI != "" {
		t.Fatalf("RequestTA of an installed component: %+v", r)
	}
	// Release by component id: its manifest becomes unneeded.
	if r, _ := f.a.UnrequestTA(ctx, appID, ""); r.TAMURI != tamURI {
		t.Fatalf("UnrequestTA: %+v", r)
	}
	qr = f.query(&teep.QueryRequest{Token: f.token()}).(*teep.QueryResponse)
	if len(qr.UnneededManifestList) != 1 || !qr.UnneededManifestList[0].Equal(appMan) {
		t.Fatalf("unneeded-manifest-list %+v", qr.UnneededManifestList)
	}
	f.update(&teep.Update{UnneededManifestList: []suit.ComponentID{appMan}})
	st, _ := f.a.Status(ctx)
	if len(st.Unneeded) != 0 || len(st.Installed) != 0 {
		t.Fatalf("after removal: %+v", st)
	}
	// Releasing something never installed and never requested: nothing to do.
	if r, _ := f.a.UnrequestTA(ctx, configID, ""); r.TAMURI != "" {
		t.Fatalf("UnrequestTA of unknown: %+v", r)
	}
	// Requests survive a restart (they are sealed in the TEE).
	f.a.RequestTA(ctx, configID, "")
	a2, _ := New(Config{TEE: f.tt, Installer: f.suit, TAMs: []string{tamURI}})
	st, _ = a2.Status(ctx)
	if len(st.Requested) != 1 {
		t.Fatalf("requests after restart: %+v", st.Requested)
	}
}

func TestPolicyCheckRounds(t *testing.T) {
	f := newFixture(t, teep.Draft26)
	ctx := context.Background()
	check := func() Result {
		r, err := f.a.RequestPolicyCheck(ctx)
		if err != nil {
			t.Fatal(err)
		}
		return r
	}
	// A session that changes nothing ends the round.
	if r := check(); r.TAMURI != tamURI {
		t.Fatalf("first check: %+v", r)
	}
	if r := check(); r.TAMURI != "" || len(r.Problems) != 0 {
		t.Fatalf("round did not end: %+v", r)
	}
	// A session that installs something is followed by another one.
	check()
	f.update(&teep.Update{ManifestList: [][]byte{f.envelope(appMan, appID, 1, []byte("x"))}})
	if r := check(); r.TAMURI != tamURI {
		t.Fatalf("after a change: %+v", r)
	}
	if r := check(); r.TAMURI != "" {
		t.Fatalf("second session changed nothing: %+v", r)
	}
	// A failed session ends the round with the problem.
	check()
	f.update(&teep.Update{ManifestList: [][]byte{f.envelope(configMan, configID, 1, []byte("y"), func(s *suit.ManifestSpec) { s.ClassID = otherClass })}})
	r := check()
	if r.TAMURI != "" || len(r.Problems) != 1 {
		t.Fatalf("after a failure: %+v", r)
	}
	// A transport failure drops the TAM from the round.
	check()
	f.a.ProcessError(ctx, tamURI, errors.New("connection refused"))
	if r := check(); r.TAMURI != "" {
		t.Fatalf("after ProcessError: %+v", r)
	}
}

func TestTrustAnchors(t *testing.T) {
	f := newFixture(t, teep.Draft26)
	st := f.tt.Storage()
	k := newSigner(t, cosekey.AlgEd25519).PublicKey()
	for i := 0; i < 2; i++ { // idempotent
		if err := AddTrustAnchor(st, RoleTAM, k); err != nil {
			t.Fatal(err)
		}
	}
	keys, _ := TrustAnchors(st, RoleTAM)
	if len(keys) != 2 {
		t.Fatalf("%d TAM keys", len(keys))
	}
	if err := RemoveTrustAnchor(st, RoleTAM, k.KID()); err != nil {
		t.Fatal(err)
	}
	keys, _ = TrustAnchors(st, RoleTAM)
	if len(keys) != 1 || !keys[0].Equal(f.tam.PublicKey()) {
		t.Fatalf("after removal: %v", keys)
	}
	if err := AddTrustAnchor(st, "bogus", k); err == nil {
		t.Fatal("unknown role accepted")
	}
	// A trust anchor stored under the wrong name is tampering.
	tee.Update(context.Background(), st, func(tx tee.Tx) error {
		enc, _ := k.MarshalCOSEKey(false)
		return tx.Put(objTrustPrefix+"tam/"+fmt.Sprintf("%x", f.tam.PublicKey().KID()), enc)
	})
	if _, err := TrustAnchors(st, RoleTAM); !errors.Is(err, tee.ErrTampered) {
		t.Fatalf("swapped anchor: %v", err)
	}
}

func TestAbandonedRoundIsForgotten(t *testing.T) {
	f := newFixture(t, teep.Draft26)
	ctx := context.Background()
	f.a.RequestPolicyCheck(ctx)
	f.update(&teep.Update{ErrCode: teep.ErrTemporaryError, ErrMsg: "busy"}) // a problem in this round
	// The Broker goes away; much later a new round starts clean.
	f.a.mu.Lock()
	f.a.round.touched = f.a.round.touched.Add(-2 * RoundIdle)
	f.a.mu.Unlock()
	if r, _ := f.a.RequestPolicyCheck(ctx); r.TAMURI != tamURI {
		t.Fatalf("new round: %+v", r)
	}
	if r, _ := f.a.RequestPolicyCheck(ctx); r.TAMURI != "" || len(r.Problems) != 0 {
		t.Fatalf("the abandoned round's problems leaked: %+v", r)
	}
}

// TestPassport: asked for attestation without a challenge, an Agent with a
// Verifier presents the Verifier's Attestation Result (nonce = token, cnf =
// its key) instead of its Evidence.
func TestPassport(t *testing.T) {
	f := newFixture(t, teep.Draft26)
	vk, _ := cosekey.Generate(cosekey.AlgESP256)
	vs, _ := cosekey.NewSigner(vk, 0)
	v, err := verifier.New(verifier.Config{Key: vs, Issuer: "test", Policy: &verifier.Policy{ID: "p", ResultTTL: time.Minute,
		Endorsements: []verifier.Endorsement{{Name: "softtee", Key: f.tt.AttestationPublicKey()}}}})
	if err != nil {
		t.Fatal(err)
	}
	vsrv, err := verifier.NewServer(verifier.ServerConfig{Verifier: v})
	if err != nil {
		t.Fatal(err)
	}
	hs := httptest.NewServer(vsrv.Handler())
	defer hs.Close()
	f.a.cfg.Passport = &verifier.Client{URL: hs.URL}
	tok := f.token()
	qr := f.query(&teep.QueryRequest{Token: tok, DataItemRequested: teep.DataItemAttestation}).(*teep.QueryResponse)
	a, err := verifier.VerifyResult(qr.AttestationPayload, []*cosekey.Key{vk.PublicKey()},
		verifier.Expectations{Nonce: tok, AgentKey: f.a.PublicKey()})
	if err != nil || a.Status != verifier.Affirming {
		t.Fatalf("passport: %+v, %v", a, err)
	}
	// Background-check (a challenge): Evidence, not a result.
	qr = f.query(&teep.QueryRequest{Token: f.token(), Challenge: []byte("challenge-0123456"), DataItemRequested: teep.DataItemAttestation}).(*teep.QueryResponse)
	ev, err := eat.Parse(qr.AttestationPayload, eat.ParseOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := ev.Verify([]*cosekey.Key{f.tt.AttestationPublicKey()}); err != nil {
		t.Fatal("background-check answer is not the TEE's Evidence")
	}
	// A Verifier that is down: the TAM still gets Evidence.
	hs.Close()
	qr = f.query(&teep.QueryRequest{Token: f.token(), DataItemRequested: teep.DataItemAttestation}).(*teep.QueryResponse)
	ev, err = eat.Parse(qr.AttestationPayload, eat.ParseOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := ev.Verify([]*cosekey.Key{f.tt.AttestationPublicKey()}); err != nil {
		t.Fatalf("fallback to Evidence: %v", err)
	}
}

// A TAM that resends the installed manifest in every session gets a
// Success each time, nothing is reinstalled, and the policy round ends.
func TestResentUpdateChangesNothing(t *testing.T) {
	f := newFixture(t, teep.Draft26)
	ctx := context.Background()
	env := f.envelope(appMan, appID, 1, []byte("x"))
	if _, err := f.a.RequestPolicyCheck(ctx); err != nil {
		t.Fatal(err)
	}
	if _, ok := f.update(&teep.Update{ManifestList: [][]byte{env}}).(*teep.Success); !ok {
		t.Fatal("first Update failed")
	}
	if r, _ := f.a.RequestPolicyCheck(ctx); r.TAMURI != tamURI {
		t.Fatalf("after an install the TAM is asked again: %+v", r)
	}
	f.events = nil
	s, ok := f.update(&teep.Update{ManifestList: [][]byte{env}}).(*teep.Success)
	if !ok {
		t.Fatal("resent Update not answered with Success")
	}
	reportsOK(t, s.SUITReports, s.Token, true)
	var kinds []EventKind
	for _, e := range f.events {
		kinds = append(kinds, e.Kind)
	}
	if len(kinds) != 1 || kinds[0] != EventUnchanged {
		t.Fatalf("events %v, want one %q", kinds, EventUnchanged)
	}
	if r, _ := f.a.RequestPolicyCheck(ctx); r.TAMURI != "" || len(r.Problems) != 0 {
		t.Fatalf("a session that changed nothing must end the round: %+v", r)
	}
	if inst := f.installed(); len(inst) != 1 || inst[0].Sequence != 1 {
		t.Fatalf("installed %+v", inst)
	}
}
