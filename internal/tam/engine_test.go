package tam_test

import (
	"bytes"
	"context"
	"errors"
	"path/filepath"
	"strings"
	"testing"

	"github.com/teep-go/teep/cosekey"
	"github.com/teep-go/teep/internal/tam"
	"github.com/teep-go/teep/internal/tam/appraiser"
	"github.com/teep-go/teep/internal/tam/sqlitestore"
	"github.com/teep-go/teep/internal/tam/tamtest"
	"github.com/teep-go/teep/internal/verifier"
	"github.com/teep-go/teep/suit"
	"github.com/teep-go/teep/teep"
	"github.com/veraison/go-cose"
)

var ctx = context.Background()

type fixture struct {
	t      testing.TB
	eng    *tam.Engine
	store  *sqlitestore.Store
	signer *cosekey.Signer // TC signer
	att    *cosekey.Key    // attestation key all test devices share
	keys   []*cosekey.Key  // the TAM's private keys
}

func mustKey(t testing.TB, alg int64) *cosekey.Key {
	t.Helper()
	k, err := cosekey.Generate(cosekeyAlg(alg))
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func newFixture(t testing.TB, mod ...func(*tam.Config)) *fixture {
	t.Helper()
	st, err := sqlitestore.Open(ctx, filepath.Join(t.TempDir(), "tam.db"), sqlitestore.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	f := &fixture{t: t, store: st, att: mustKey(t, -9)}
	v, err := verifier.New(verifier.Config{Policy: &verifier.Policy{ID: "test", Endorsements: []verifier.Endorsement{{Name: "test-devices", Key: f.att.PublicKey()}}}})
	if err != nil {
		t.Fatal(err)
	}
	f.keys = []*cosekey.Key{mustKey(t, -9), mustKey(t, -19)}
	cfg := tam.Config{
		Store:     st,
		Keys:      f.keys,
		Appraiser: &appraiser.Verifier{Local: v},
	}
	for _, m := range mod {
		m(&cfg)
	}
	if f.eng, err = tam.New(cfg); err != nil {
		t.Fatal(err)
	}
	if f.signer, err = cosekey.NewSigner(mustKey(t, -9), 0); err != nil {
		t.Fatal(err)
	}
	if _, err := f.eng.AddTrustedKey(ctx, tam.RoleTCSigner, f.signer.PublicKey(), "test signer"); err != nil {
		t.Fatal(err)
	}
	return f
}

func (f *fixture) transport(n teep.Numbering) tamtest.Transport {
	return func(ctx context.Context, msg []byte) ([]byte, error) {
		return f.eng.Handle(ctx, msg, tam.HandleOptions{Numbering: n, Peer: "test"})
	}
}

func (f *fixture) agent(o tamtest.AgentOptions) *tamtest.Agent {
	o.TAMKeys = f.eng.PublicKeys()
	o.Trust = append(o.Trust, f.signer.PublicKey())
	if o.AttestationKey == nil {
		o.AttestationKey = f.att
	}
	if o.Transport == nil {
		o.Transport = f.transport(o.Numbering)
	}
	return tamtest.NewAgent(f.t, o)
}

// tc builds a signed envelope for a TA with an integrated payload.
func (f *fixture) tc(name string, seq uint64, payload []byte, deps ...[]byte) []byte {
	return tamtest.Envelope(f.t, f.signer, name, seq, payload, deps...)
}

func (f *fixture) add(env []byte) suit.ComponentID {
	f.t.Helper()
	v, err := f.eng.AddComponent(ctx, env)
	if err != nil {
		f.t.Fatal(err)
	}
	return v.ComponentID
}

func (f *fixture) require(id suit.ComponentID, mode tam.PolicyMode, scope tam.ScopeKind, value string) {
	f.t.Helper()
	if _, err := f.eng.SetPolicy(ctx, tam.Policy{Component: id, Mode: mode, Scope: scope, Value: value}); err != nil {
		f.t.Fatal(err)
	}
}

func (f *fixture) dump() string {
	f.t.Helper()
	d, err := f.store.Dump(ctx)
	if err != nil {
		f.t.Fatal(err)
	}
	return d
}

func (f *fixture) device(kid []byte) tam.DeviceInfo {
	f.t.Helper()
	d, err := f.eng.DeviceInfo(ctx, kid, 10)
	if err != nil {
		f.t.Fatal(err)
	}
	return d
}

func runSession(t *testing.T, a *tamtest.Agent, want ...string) *tamtest.Trace {
	t.Helper()
	tr, err := a.Sync(ctx)
	if err != nil {
		t.Fatalf("session: %v (trace %v)", err, tr.Types)
	}
	if len(want) > 0 && strings.Join(tr.Types, ",") != strings.Join(want, ",") {
		t.Fatalf("session went %v, want %v", tr.Types, want)
	}
	return tr
}

func installedSeq(t *testing.T, a *tamtest.Agent, name string) (uint64, bool) {
	t.Helper()
	for id, seq := range a.Installed(ctx) {
		if strings.Contains(id, "/"+name+"/") {
			return seq, true
		}
	}
	return 0, false
}

func TestLifecycle(t *testing.T) {
	f := newFixture(t)
	v1 := f.tc("app", 1, []byte("app version 1"))
	id := f.add(v1)
	f.require(id, tam.Required, tam.ScopeAll, "")
	a := f.agent(tamtest.AgentOptions{})

	// First contact: unknown key, attestation, registration, install.
	runSession(t, a, "query-request", "query-response", "query-request", "query-response", "update", "success")
	if seq, ok := installedSeq(t, a, "app"); !ok || seq != 1 {
		t.Fatalf("after first contact the Agent has app at %d (%v)", seq, ok)
	}
	payload, ok := a.Component(ctx, suit.NewComponentID("TEEP-Device", "SecureFS", "app", "ta"))
	if !ok || string(payload) != "app version 1" {
		t.Fatalf("installed payload %q", payload)
	}
	d := f.device(a.KID())
	if d.Status != tam.StatusOK || d.Attestation != tam.AttestationAffirming || string(d.HWModel) != "tamtest-model" {
		t.Fatalf("device after first contact: status %s attestation %s hwmodel %q", d.Status, d.Attestation, d.HWModel)
	}
	if len(d.Installed) != 1 || !d.Installed[0].ComponentID.Equal(id) || d.Installed[0].Sequence != 1 || !d.Installed[0].Managed {
		t.Fatalf("inventory %+v", d.Installed)
	}

	// Known device, nothing to do: one round trip, no attestation.
	runSession(t, a, "query-request", "query-response")

	// Update to a higher sequence number.
	f.add(f.tc("app", 2, []byte("app version 2")))
	runSession(t, a, "query-request", "query-response", "update", "success")
	if seq, _ := installedSeq(t, a, "app"); seq != 2 {
		t.Fatalf("after update the Agent has app at %d", seq)
	}
	if d := f.device(a.KID()); d.Installed[0].Sequence != 2 {
		t.Fatalf("inventory after update %+v", d.Installed)
	}
	// tc-list reconciliation recognises the version from the reported digest.
	runSession(t, a, "query-request", "query-response")
	if d := f.device(a.KID()); len(d.Installed) != 1 || d.Installed[0].Sequence != 2 {
		t.Fatalf("inventory after reconciliation %+v", d.Installed)
	}

	// Removing the requirement removes the component.
	if n, err := f.eng.RemovePolicies(ctx, tam.PolicyFilter{Component: id}); err != nil || n != 1 {
		t.Fatalf("RemovePolicies: %d, %v", n, err)
	}
	tr := runSession(t, a, "query-request", "query-response", "update", "success")
	op, err := teep.Open(tr.Messages[2], teep.OpenOptions{Keys: f.eng.PublicKeys()})
	if err != nil {
		t.Fatal(err)
	}
	if u := op.Message.(*teep.Update); len(u.UnneededManifestList) != 1 || len(u.ManifestList) != 0 {
		t.Fatalf("removal Update: %d unneeded, %d manifests", len(u.UnneededManifestList), len(u.ManifestList))
	}
	if _, ok := installedSeq(t, a, "app"); ok {
		t.Fatal("app still installed after removal")
	}
	if d := f.device(a.KID()); len(d.Installed) != 0 {
		t.Fatalf("inventory after removal %+v", d.Installed)
	}
}

// A device whose inventory the TAM lost (or never had) gets its sequence
// numbers back from the image digests in its tc-list: nothing is resent.
func TestReconcileRecognisesDigest(t *testing.T) {
	f := newFixture(t)
	id := f.add(f.tc("app", 1, []byte("app version 1")))
	f.add(f.tc("app", 2, []byte("app version 2")))
	f.require(id, tam.Required, tam.ScopeAll, "")
	a := f.agent(tamtest.AgentOptions{})
	runSession(t, a)
	err := f.store.Update(ctx, func(tx tam.Tx) error { return tx.DeleteInstalled(ctx, a.KID(), id) })
	if err != nil {
		t.Fatal(err)
	}
	runSession(t, a, "query-request", "query-response")
	if d := f.device(a.KID()); len(d.Installed) != 1 || !d.Installed[0].ComponentID.Equal(id) || d.Installed[0].Sequence != 2 {
		t.Fatalf("inventory rebuilt from the tc-list: %+v", d.Installed)
	}
}

func TestRequestedOptionalComponent(t *testing.T) {
	f := newFixture(t)
	id := f.add(f.tc("extra", 5, []byte("optional")))
	f.require(id, tam.Optional, tam.ScopeAll, "")
	f.add(f.tc("hidden", 1, []byte("not offered")))
	a := f.agent(tamtest.AgentOptions{})
	runSession(t, a) // registers; nothing required
	if n := len(a.Installed(ctx)); n != 0 {
		t.Fatalf("optional component installed without a request (%d)", n)
	}
	min := uint64(6)
	a.Request(suit.NewComponentID("TEEP-Device", "SecureFS", "extra", "suit"), &min)
	runSession(t, a, "query-request", "query-response") // minimum 6 > latest 5: not satisfiable
	if d := f.device(a.KID()); !strings.Contains(d.LastError, "sequence 6") {
		t.Fatalf("unsatisfiable request not noted: %q", d.LastError)
	}
	a = f.agent(tamtest.AgentOptions{Key: a.Key()})
	a.Request(suit.NewComponentID("TEEP-Device", "SecureFS", "extra", "ta"), nil) // by payload id
	a.Request(suit.NewComponentID("TEEP-Device", "SecureFS", "hidden", "suit"), nil)
	runSession(t, a, "query-request", "query-response", "update", "success")
	if seq, ok := installedSeq(t, a, "extra"); !ok || seq != 5 {
		t.Fatalf("requested component: %d %v", seq, ok)
	}
	if _, ok := installedSeq(t, a, "hidden"); ok {
		t.Fatal("a component no policy offers was installed on request")
	}
	d := f.device(a.KID())
	if len(d.Installed) != 1 || !d.Installed[0].ComponentID.Equal(id) || !d.Installed[0].Requested {
		t.Fatalf("inventory %+v", d.Installed)
	}
	// It stays while offered, and goes when the Agent declares it unneeded.
	runSession(t, a, "query-request", "query-response")
	a.Unrequest(suit.NewComponentID("TEEP-Device", "SecureFS", "extra", "suit"))
	runSession(t, a, "query-request", "query-response", "update", "success")
	if _, ok := installedSeq(t, a, "extra"); ok {
		t.Fatal("unneeded component not removed")
	}
}

func TestDependencyOrder(t *testing.T) {
	f := newFixture(t)
	base := f.tc("lib", 1, []byte("library"))
	f.add(base)
	app := f.add(f.tc("app", 1, []byte("application"), base))
	f.require(app, tam.Required, tam.ScopeAll, "")
	a := f.agent(tamtest.AgentOptions{})
	tr := runSession(t, a)
	var u *teep.Update
	for _, m := range tr.Messages {
		if op, err := teep.Open(m, teep.OpenOptions{SkipVerifyUnsafe: true}); err == nil {
			if x, ok := op.Message.(*teep.Update); ok {
				u = x
			}
		}
	}
	if u == nil || len(u.ManifestList) != 2 {
		t.Fatalf("Update with the dependency: %+v", u)
	}
	first, err := suit.ParseEnvelope(u.ManifestList[0], suit.ParseOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(first.Manifest().ComponentID.String(), "lib") {
		t.Fatalf("first manifest is %s; the dependency must come first", first.Manifest().ComponentID)
	}
	if _, ok := installedSeq(t, a, "app"); !ok {
		t.Fatal("app not installed")
	}
}

func TestPersonalization(t *testing.T) {
	f := newFixture(t)
	a := f.agent(tamtest.AgentOptions{})
	runSession(t, a) // register
	secret := []byte(`{"name":"FOO Bar","secret":"0123456789abfcdef0123456789abcd"}`)
	p, err := f.eng.SetPersonalization(ctx, a.KID(), "config", secret, tam.PersonalizationOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Contains(p.Envelope, secret[10:30]) {
		t.Fatal("personalization data stored in the clear")
	}
	runSession(t, a, "query-request", "query-response", "update", "success")
	got, ok := a.Component(ctx, p.PayloadID)
	if !ok || !bytes.Equal(got, secret) {
		t.Fatalf("device got %q", got)
	}
	// Replacing the data raises the sequence number and delivers it again.
	p2, err := f.eng.SetPersonalization(ctx, a.KID(), "config", []byte("second"), tam.PersonalizationOptions{})
	if err != nil || p2.Sequence != 2 {
		t.Fatalf("second version: %+v %v", p2.Sequence, err)
	}
	runSession(t, a, "query-request", "query-response", "update", "success")
	if got, _ := a.Component(ctx, p.PayloadID); string(got) != "second" {
		t.Fatalf("device got %q after replacement", got)
	}
	// Deleting it removes it from the device.
	if err := f.eng.DeletePersonalization(ctx, a.KID(), "config"); err != nil {
		t.Fatal(err)
	}
	runSession(t, a, "query-request", "query-response", "update", "success")
	if _, ok := a.Component(ctx, p.PayloadID); ok {
		t.Fatal("personalization data still on the device")
	}

	// An Ed25519 Agent key cannot receive encrypted data.
	b := f.agent(tamtest.AgentOptions{Key: mustKey(t, -19)})
	runSession(t, b)
	_, err = f.eng.SetPersonalization(ctx, b.KID(), "config", secret, tam.PersonalizationOptions{})
	if !errors.Is(err, tam.ErrUnsupportedKey) {
		t.Fatalf("Ed25519 device: %v", err)
	}
}

func TestLegacyNumbering(t *testing.T) {
	f := newFixture(t)
	id := f.add(f.tc("app", 1, []byte("legacy app")))
	f.require(id, tam.Required, tam.ScopeAll, "")
	a := f.agent(tamtest.AgentOptions{Numbering: teep.Legacy})
	runSession(t, a, "query-request", "query-response", "query-request", "query-response", "update", "success")
	if d := f.device(a.KID()); d.Numbering != "legacy" || len(d.Installed) != 1 {
		t.Fatalf("legacy device %+v", d.Device)
	}
	// A legacy session's token is refused on the draft-26 endpoint: never mixed.
	q, err := f.eng.Handle(ctx, nil, tam.HandleOptions{Numbering: teep.Legacy})
	if err != nil {
		t.Fatal(err)
	}
	resp, err := a.Answer(ctx, q)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.eng.Handle(ctx, resp, tam.HandleOptions{Numbering: teep.Draft26}); err == nil {
		t.Fatal("a legacy-numbering QueryResponse was accepted on the draft-26 endpoint")
	}
}

func TestPreregisteredAgentWithoutAttestation(t *testing.T) {
	f := newFixture(t, func(c *tam.Config) { c.Appraiser = nil })
	id := f.add(f.tc("app", 1, []byte("x")))
	f.require(id, tam.Required, tam.ScopeLabel, "lab")
	a := f.agent(tamtest.AgentOptions{})
	// Unknown and no attestation configured: refused, nothing written.
	before := f.dump()
	if _, err := a.Sync(ctx); tam.KindOf(err) != tam.KindUnauthorized {
		t.Fatalf("unknown Agent without attestation: %v", err)
	}
	if after := f.dump(); after != before {
		t.Fatalf("database changed:\n%s\n---\n%s", before, after)
	}
	if _, err := f.eng.AddAgent(ctx, a.Key().PublicKey(), []string{"lab"}); err != nil {
		t.Fatal(err)
	}
	runSession(t, a, "query-request", "query-response", "update", "success")
	other := f.agent(tamtest.AgentOptions{})
	if _, err := f.eng.AddAgent(ctx, other.Key().PublicKey(), nil); err != nil {
		t.Fatal(err)
	}
	runSession(t, other, "query-request", "query-response") // no label: nothing required
}

// Only a version that failed too often flags a device failed, not a note
// that merely mentions a component whose name contains "failed".
func TestUnofferedRequestDoesNotFlagDevice(t *testing.T) {
	f := newFixture(t)
	a := f.agent(tamtest.AgentOptions{})
	a.Tamper = func(m teep.Message) {
		if r, ok := m.(*teep.QueryResponse); ok {
			r.RequestedTCList = []teep.RequestedTC{{ComponentID: tamtest.ManifestID("failed-app")}}
		}
	}
	runSession(t, a)
	d := f.device(a.KID())
	if d.Status != tam.StatusOK || !strings.Contains(d.LastError, "failed-app/suit, which no policy offers") {
		t.Fatalf("status %s, last error %q", d.Status, d.LastError)
	}
}

func TestInstallFailuresFlagDevice(t *testing.T) {
	f := newFixture(t)
	id := f.add(f.tc("app", 1, []byte("x")))
	f.require(id, tam.Required, tam.ScopeAll, "")
	a := f.agent(tamtest.AgentOptions{})
	a.FailUpdates = teep.ErrManifestProcessingFailed
	for i := 0; i < tam.DefaultMaxInstallAttempts; i++ {
		runSession(t, a)
	}
	d := f.device(a.KID())
	if d.Status != tam.StatusFailed || len(d.Failures) != 1 || d.Failures[0].Attempts != tam.DefaultMaxInstallAttempts {
		t.Fatalf("after %d failures: status %s failures %+v", tam.DefaultMaxInstallAttempts, d.Status, d.Failures)
	}
	if len(d.Reports) != tam.DefaultMaxInstallAttempts {
		t.Fatalf("%d reports, want one per Error", len(d.Reports))
	}
	if d, err := f.eng.DeviceInfo(ctx, a.KID(), 0); err != nil || len(d.Reports) != 0 || d.Status != tam.StatusFailed {
		t.Fatalf("DeviceInfo without reports: %d reports, %v", len(d.Reports), err)
	}
	// The version is no longer offered.
	runSession(t, a, "query-request", "query-response")
	if d := f.device(a.KID()); d.Status != tam.StatusFailed {
		t.Fatalf("status %s", d.Status)
	}
	// A reset offers it again.
	a.FailUpdates = 0
	if _, err := f.eng.ResetDevice(ctx, a.KID()); err != nil {
		t.Fatal(err)
	}
	runSession(t, a, "query-request", "query-response", "update", "success")
	if d := f.device(a.KID()); d.Status != tam.StatusOK || len(d.Installed) != 1 {
		t.Fatalf("after reset: %s %+v", d.Status, d.Installed)
	}
	// A temporary error only asks for a retry.
	f.add(f.tc("app", 2, []byte("y")))
	a.FailUpdates = teep.ErrTemporaryError
	runSession(t, a)
	if d := f.device(a.KID()); d.Status != tam.StatusRetry || d.LastErrorCode != int(teep.ErrTemporaryError) {
		t.Fatalf("after a temporary error: %s %d", d.Status, d.LastErrorCode)
	}
}

// Negative cases: each is refused as the draft says and leaves the database
// exactly as it was.
func TestRejectedMessagesLeaveStateUnchanged(t *testing.T) {
	f := newFixture(t)
	id := f.add(f.tc("app", 1, []byte("x")))
	f.require(id, tam.Required, tam.ScopeAll, "")
	a := f.agent(tamtest.AgentOptions{})
	runSession(t, a)
	f.add(f.tc("app", 2, []byte("y")))
	h := func(msg []byte) ([]byte, error) { return f.eng.Handle(ctx, msg, tam.HandleOptions{Peer: "test"}) }

	// A QueryRequest / QueryResponse pair to replay and tamper with.
	q, err := h(nil)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := a.Answer(ctx, q)
	if err != nil {
		t.Fatal(err)
	}

	cases := []struct {
		name string
		msg  func() []byte
		kind tam.Kind
	}{
		{"garbage", func() []byte { return []byte("\x00not cbor at all") }, tam.KindBadMessage},
		{"bare TEEP message", func() []byte {
			b, _ := teep.Encode(&teep.Success{Token: bytes.Repeat([]byte{1}, 16)}, teep.EncodeOptions{})
			return b
		}, tam.KindBadMessage},
		{"bad signature", func() []byte {
			b := bytes.Clone(resp)
			b[len(b)-1] ^= 1
			return b
		}, tam.KindBadMessage},
		{"signed by another key", func() []byte {
			other := f.agent(tamtest.AgentOptions{Key: mustKey(t, -9)})
			op, _ := teep.Open(resp, teep.OpenOptions{SkipVerifyUnsafe: true})
			b, _ := other.Sign(op.Message)
			// keep the registered device's kid: the signature is what fails
			return withKID(t, b, a.KID())
		}, tam.KindBadMessage},
		{"unknown token", func() []byte {
			b, _ := a.Sign(&teep.QueryResponse{Token: bytes.Repeat([]byte{7}, 42)})
			return b
		}, tam.KindReplay},
		{"query response with empty options", func() []byte {
			b, _ := a.Sign(&teep.QueryResponse{})
			return b
		}, tam.KindBadMessage},
		{"unexpected message type", func() []byte {
			b, _ := a.Sign(&teep.QueryRequest{SupportedCipherSuites: teep.MandatoryCipherSuites(), SupportedSUITCOSEProfiles: teep.MandatorySUITCOSEProfiles()})
			return b
		}, tam.KindBadMessage},
		{"success with unknown token", func() []byte {
			b, _ := a.Sign(&teep.Success{Token: bytes.Repeat([]byte{9}, 24)})
			return b
		}, tam.KindReplay},
		{"error without token", func() []byte {
			b, _ := a.Sign(&teep.Error{ErrCode: teep.ErrPermanentError})
			return b
		}, tam.KindBadMessage},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			before := f.dump()
			out, err := h(c.msg())
			t.Logf("refused: %v", err)
			if tam.KindOf(err) != c.kind || out != nil {
				t.Fatalf("got %v (kind %v), want kind %v", err, tam.KindOf(err), c.kind)
			}
			if after := f.dump(); after != before {
				t.Fatalf("database changed:\n%s\n---\n%s", before, after)
			}
		})
	}

	// The genuine response works once...
	u, err := h(resp)
	if err != nil || u == nil {
		t.Fatalf("genuine QueryResponse: %v", err)
	}
	// ...and is refused when replayed.
	t.Run("replayed token", func(t *testing.T) {
		before := f.dump()
		if _, err := h(resp); tam.KindOf(err) != tam.KindReplay {
			t.Fatalf("replayed QueryResponse: %v", err)
		}
		if f.dump() != before {
			t.Fatal("database changed")
		}
	})
	success, err := a.Answer(ctx, u)
	if err != nil {
		t.Fatal(err)
	}
	t.Run("success with a report nonce mismatch", func(t *testing.T) {
		op, _ := teep.Open(success, teep.OpenOptions{SkipVerifyUnsafe: true})
		s := *op.Message.(*teep.Success)
		rep := &suit.Report{Nonce: bytes.Repeat([]byte{1}, 24), Reference: suit.Reference{Digest: suit.Digest{Alg: -16, Bytes: make([]byte, 32)}}}
		rb, err := rep.Marshal()
		if err != nil {
			t.Fatal(err)
		}
		s.SUITReports = [][]byte{rb}
		bad, _ := a.Sign(&s)
		before := f.dump()
		if _, err := h(bad); tam.KindOf(err) != tam.KindBadMessage {
			t.Fatalf("nonce mismatch: %v", err)
		}
		if f.dump() != before {
			t.Fatal("database changed")
		}
	})
	if out, err := h(success); err != nil || out != nil {
		t.Fatalf("genuine Success: %v", err)
	}
	t.Run("replayed success", func(t *testing.T) {
		before := f.dump()
		if _, err := h(success); tam.KindOf(err) != tam.KindReplay {
			t.Fatalf("replayed Success: %v", err)
		}
		if f.dump() != before {
			t.Fatal("database changed")
		}
	})
}

func TestUnknownAgentAttestation(t *testing.T) {
	f := newFixture(t)
	h := func(msg []byte) ([]byte, error) { return f.eng.Handle(ctx, msg, tam.HandleOptions{}) }
	cases := []struct {
		name   string
		opts   tamtest.AgentOptions
		tamper func(m teep.Message)
		kind   tam.Kind
	}{
		{"no evidence", tamtest.AgentOptions{}, func(m teep.Message) {
			if r, ok := m.(*teep.QueryResponse); ok {
				r.AttestationPayload = nil
			}
		}, tam.KindUnauthorized},
		{"evidence from an unendorsed key", tamtest.AgentOptions{AttestationKey: mustKey(t, -9)}, nil, tam.KindUnauthorized},
		{"cnf names the key by kid only", tamtest.AgentOptions{KIDOnlyCNF: true}, nil, tam.KindUnauthorized},
		{"garbage evidence", tamtest.AgentOptions{}, func(m teep.Message) {
			if r, ok := m.(*teep.QueryResponse); ok && r.AttestationPayload != nil {
				r.AttestationPayload = []byte("junk")
			}
		}, tam.KindUnauthorized},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			a := f.agent(c.opts)
			before := f.dump()
			q1, err := h(nil)
			if err != nil {
				t.Fatal(err)
			}
			r1, _ := a.Answer(ctx, q1)
			q2, err := h(r1) // unknown key: asked to attest
			if err != nil || q2 == nil {
				t.Fatalf("first QueryResponse of an unknown Agent: %v", err)
			}
			a.Tamper = c.tamper
			r2, err := a.Answer(ctx, q2)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := h(r2); tam.KindOf(err) != c.kind {
				t.Fatalf("got %v, want kind %v", err, c.kind)
			}
			if after := f.dump(); after != before {
				t.Fatalf("database changed:\n%s\n---\n%s", before, after)
			}
		})
	}
	// Evidence with a stale challenge (from another session) is refused.
	t.Run("evidence for another challenge", func(t *testing.T) {
		a := f.agent(tamtest.AgentOptions{})
		q1, _ := h(nil)
		r1, _ := a.Answer(ctx, q1)
		q2a, _ := h(r1)
		q2b, _ := h(r1) // a second attestation request, other challenge
		r2a, _ := a.Answer(ctx, q2a)
		r2b, _ := a.Answer(ctx, q2b)
		opA, _ := teep.Open(r2a, teep.OpenOptions{SkipVerifyUnsafe: true})
		opB, _ := teep.Open(r2b, teep.OpenOptions{SkipVerifyUnsafe: true})
		mix := *opB.Message.(*teep.QueryResponse)
		mix.AttestationPayload = opA.Message.(*teep.QueryResponse).AttestationPayload
		bad, _ := a.Sign(&mix)
		before := f.dump()
		if _, err := h(bad); tam.KindOf(err) != tam.KindUnauthorized {
			t.Fatalf("evidence for another challenge: %v", err)
		}
		if f.dump() != before {
			t.Fatal("database changed")
		}
	})
}

func TestIsolationBetweenDevices(t *testing.T) {
	f := newFixture(t)
	id := f.add(f.tc("app", 1, []byte("x")))
	f.require(id, tam.Required, tam.ScopeAll, "")
	a, b := f.agent(tamtest.AgentOptions{}), f.agent(tamtest.AgentOptions{})
	runSession(t, a)
	runSession(t, b)
	f.add(f.tc("app", 2, []byte("y")))
	h := func(msg []byte) ([]byte, error) { return f.eng.Handle(ctx, msg, tam.HandleOptions{}) }
	q, _ := h(nil)
	ra, _ := a.Answer(ctx, q)
	ua, err := h(ra)
	if err != nil || ua == nil {
		t.Fatalf("Update for a: %v", err)
	}
	// b answers a's Update: the token is bound to a, b's signature does not
	// verify with a's key.
	sb, err := b.Answer(ctx, ua)
	if err != nil {
		t.Fatal(err)
	}
	before := f.dump()
	if _, err := h(sb); tam.KindOf(err) != tam.KindBadMessage {
		t.Fatalf("b completing a's Update: %v", err)
	}
	if f.dump() != before {
		t.Fatal("database changed")
	}
	// b reusing a's QueryRequest token after a used it.
	rb, _ := b.Answer(ctx, q)
	if _, err := h(rb); tam.KindOf(err) != tam.KindReplay {
		t.Fatalf("b reusing a's token: %v", err)
	}
}

func TestConfigChecks(t *testing.T) {
	st, err := sqlitestore.Open(ctx, filepath.Join(t.TempDir(), "tam.db"), sqlitestore.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	p256, ed := mustKey(t, -9), mustKey(t, -19)
	for _, c := range []struct {
		name string
		cfg  tam.Config
	}{
		{"no store", tam.Config{Keys: []*cosekey.Key{p256, ed}}},
		{"no Ed25519 key", tam.Config{Store: st, Keys: []*cosekey.Key{p256}}},
		{"two P-256 keys", tam.Config{Store: st, Keys: []*cosekey.Key{p256, mustKey(t, -9), ed}}},
		{"public key", tam.Config{Store: st, Keys: []*cosekey.Key{p256.PublicKey(), ed}}},
		{"short session key", tam.Config{Store: st, Keys: []*cosekey.Key{p256, ed}, SessionKey: []byte("short")}},
	} {
		if _, err := tam.New(c.cfg); err == nil {
			t.Errorf("%s: accepted", c.name)
		}
	}
}

func cosekeyAlg(a int64) cose.Algorithm { return cose.Algorithm(a) }

// withKID re-labels the kid of a signed message (unprotected header) so the
// TAM looks up the wrong key; used to show the signature check catches it.
func withKID(t *testing.T, signed, kid []byte) []byte {
	t.Helper()
	i := bytes.Index(signed, append([]byte{0x04, 0x58, 0x20}, []byte{}...))
	if i < 0 {
		t.Fatal("no kid header found")
	}
	out := bytes.Clone(signed)
	copy(out[i+3:i+3+32], kid)
	return out
}

// An Agent with nothing installed that answers tc-list: [] (draft-26 §4.2:
// present when requested; the CDDL wants one entry) is served like one that
// lists nothing: it is registered and gets what policy requires.
func TestEmptyTCListMeansNothingInstalled(t *testing.T) {
	for _, n := range []teep.Numbering{teep.Draft26, teep.Legacy} {
		t.Run(n.String(), func(t *testing.T) {
			f := newFixture(t)
			id := f.add(f.tc("app", 1, []byte("app version 1")))
			f.require(id, tam.Required, tam.ScopeAll, "")
			a := f.agent(tamtest.AgentOptions{Numbering: n, EmptyTCList: true})
			tr := runSession(t, a, "query-request", "query-response", "query-request", "query-response", "update", "success")
			op, err := teep.Open(tr.Messages[3], teep.OpenOptions{Numbering: n, SkipVerifyUnsafe: true})
			if err != nil {
				t.Fatal(err)
			}
			if qr := op.Message.(*teep.QueryResponse); qr.TCList == nil || len(qr.TCList) != 0 {
				t.Fatalf("the test Agent did not send tc-list: [] (%#v)", qr.TCList)
			}
			if seq, ok := installedSeq(t, a, "app"); !ok || seq != 1 {
				t.Fatalf("app at %d (%v), want installed at 1", seq, ok)
			}
		})
	}
}

// The reason logged and sent for a message teep.Open refuses names what was
// wrong: a signed message with a bad payload is not "not signed".
func TestOpenFailureReasons(t *testing.T) {
	f := newFixture(t)
	a := f.agent(tamtest.AgentOptions{})
	signer, err := cosekey.NewSigner(a.Key(), cosekey.AlgESP256)
	if err != nil {
		t.Fatal(err)
	}
	signedJunk, err := cosekey.Sign1([]byte{0x82, 0x02, 0x07}, signer, &cosekey.SignOptions{})
	if err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name, reason string
		msg          []byte
	}{
		{"garbage", "not a signed TEEP message", []byte{0xff, 0x00, 0x13, 0x37}},
		{"COSE_Sign1 tag over a broken structure", "malformed COSE structure", []byte{0xd2, 0x84, 0x40, 0xa0}},
		{"signed, payload not a TEEP message", "signed message whose payload is not a valid TEEP message", signedJunk},
		{"too large", "TEEP message exceeds a limit", append([]byte{0xd2}, make([]byte, 17<<20)...)},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := f.eng.Handle(ctx, c.msg, tam.HandleOptions{Peer: "test"})
			var te *tam.Error
			if !errors.As(err, &te) || te.Reason != c.reason {
				t.Fatalf("err = %v, want reason %q", err, c.reason)
			}
		})
	}
}

// busyStore, once busy, fails every write as a replica that lost a race
// would.
type busyStore struct {
	tam.Store
	busy *bool
}

func (s busyStore) Update(ctx context.Context, fn func(tam.Tx) error) error {
	if *s.busy {
		return errors.Join(errors.New("pgstore: transaction conflict"), tam.ErrStoreBusy)
	}
	return s.Store.Update(ctx, fn)
}

// A transaction lost to another replica is "unavailable, retry", not an
// internal error (HTTP 503, not 500).
func TestStoreBusyIsUnavailable(t *testing.T) {
	busy := false
	f := newFixture(t, func(c *tam.Config) { c.Store = busyStore{c.Store, &busy} })
	a := f.agent(tamtest.AgentOptions{})
	runSession(t, a)
	q, err := f.eng.Handle(ctx, nil, tam.HandleOptions{Peer: "test"})
	if err != nil {
		t.Fatal(err)
	}
	resp, err := a.Answer(ctx, q)
	if err != nil {
		t.Fatal(err)
	}
	busy = true
	_, err = f.eng.Handle(ctx, resp, tam.HandleOptions{Peer: "test"})
	if tam.KindOf(err) != tam.KindUnavailable {
		t.Fatalf("err = %v (kind %v), want KindUnavailable", err, tam.KindOf(err))
	}
}
