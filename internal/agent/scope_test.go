package agent

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/teep-go/teep/cosekey"
	"github.com/teep-go/teep/internal/tee"
	"github.com/teep-go/teep/internal/tee/softtee"
	"github.com/teep-go/teep/suit"
	"github.com/teep-go/teep/teep"
)

// scopedTAM is a TAM with its own key and TC signer, trusted in a scope
// of the fixture's TEE.
type scopedTAM struct {
	f    *fixture
	name string
	tam  *cosekey.Signer
	sign *fixture // builds envelopes with this TAM's signer
}

func newScopedTAM(t *testing.T, f *fixture, name string) *scopedTAM {
	t.Helper()
	s := &scopedTAM{f: f, name: name, tam: newSigner(t, cosekey.AlgESP256),
		sign: &fixture{t: t, tt: f.tt, signer: newSigner(t, cosekey.AlgESP256)}}
	if err := AddScopedTrustAnchor(f.tt.Storage(), name, RoleTAM, s.tam.PublicKey()); err != nil {
		t.Fatal(err)
	}
	if err := AddScopedTrustAnchor(f.tt.Storage(), name, RoleSigner, s.sign.signer.PublicKey()); err != nil {
		t.Fatal(err)
	}
	return s
}

func (s *scopedTAM) update(u *teep.Update) teep.Message {
	s.f.t.Helper()
	u.Token = s.f.token()
	return s.f.send(u, s.tam)
}

func wantMsg(t *testing.T, e *teep.Error, sub string) {
	t.Helper()
	if !strings.Contains(e.ErrMsg, sub) {
		t.Fatalf("err-msg %q does not say %q", e.ErrMsg, sub)
	}
}

func TestScopedTAMsAreConfined(t *testing.T) {
	f := newFixture(t, teep.Draft26)
	a := newScopedTAM(t, f, "tam-a")
	b := newScopedTAM(t, f, "tam-b")
	st := f.tt.Storage()
	if got := Scopes(st); len(got) != 2 || got[0] != "tam-a" || got[1] != "tam-b" {
		t.Fatalf("Scopes = %v", got)
	}

	// Each TAM installs its own component with its own signer.
	if _, ok := a.update(&teep.Update{ManifestList: [][]byte{a.sign.envelope(appMan, appID, 1, []byte("a1"))}}).(*teep.Success); !ok {
		t.Fatal("TAM a could not install its component")
	}
	if _, ok := b.update(&teep.Update{ManifestList: [][]byte{b.sign.envelope(configMan, configID, 1, []byte("b1"))}}).(*teep.Success); !ok {
		t.Fatal("TAM b could not install its component")
	}
	for _, c := range []struct {
		id   suit.ComponentID
		want string
	}{{appMan, "tam-a"}, {configMan, "tam-b"}} {
		got, err := Owner(st, c.id)
		if err != nil || got != c.want {
			t.Fatalf("Owner = %q, %v; want %q", got, err, c.want)
		}
	}

	// A TAM's manifest signed by the other TAM's signer is refused, even
	// for a new component: the signer is not in its scope.
	e := wantError(t, a.update(&teep.Update{ManifestList: [][]byte{b.sign.envelope(
		suit.NewComponentID("x", "suit"), suit.NewComponentID("x"), 1, []byte("x"))}}), teep.ErrManifestProcessingFailed)
	reportsOK(t, e.SUITReports, e.Token, false)
	// The unscoped signer is not any scope's either.
	wantError(t, a.update(&teep.Update{ManifestList: [][]byte{f.envelope(
		suit.NewComponentID("y", "suit"), suit.NewComponentID("y"), 1, []byte("y"))}}), teep.ErrManifestProcessingFailed)

	// B removing A's component, B updating A's component with its own
	// signer (same manifest id; and another manifest id writing the same
	// component): all refused, A's component untouched.
	e = wantError(t, b.update(&teep.Update{UnneededManifestList: []suit.ComponentID{appMan}}), teep.ErrManifestProcessingFailed)
	wantMsg(t, e, "belongs to TAM tam-a")
	e = wantError(t, b.update(&teep.Update{ManifestList: [][]byte{b.sign.envelope(appMan, appID, 2, []byte("b-over-a"))}}), teep.ErrManifestProcessingFailed)
	wantMsg(t, e, "belongs to TAM tam-a")
	wantError(t, b.update(&teep.Update{ManifestList: [][]byte{b.sign.envelope(
		suit.NewComponentID("b", "suit"), appID, 1, []byte("b-over-a"))}}), teep.ErrManifestProcessingFailed)
	// The unscoped TAM cannot touch a scoped TAM's component either.
	wantError(t, f.update(&teep.Update{UnneededManifestList: []suit.ComponentID{configMan}}), teep.ErrManifestProcessingFailed)
	inst := f.installed()
	if len(inst) != 2 || findInstalled(inst, appMan).Sequence != 1 || findInstalled(inst, configMan).Sequence != 1 {
		t.Fatalf("components changed: %+v", inst)
	}

	// A refused manifest does not stop the TAM's own work in the same
	// Update.
	wantError(t, b.update(&teep.Update{UnneededManifestList: []suit.ComponentID{appMan},
		ManifestList: [][]byte{b.sign.envelope(configMan, configID, 2, []byte("b2"))}}), teep.ErrManifestProcessingFailed)
	if c := findInstalled(f.installed(), configMan); c == nil || c.Sequence != 2 {
		t.Fatalf("TAM b's own update was not applied: %+v", c)
	}

	// Each TAM updates and removes its own.
	if _, ok := a.update(&teep.Update{ManifestList: [][]byte{a.sign.envelope(appMan, appID, 2, []byte("a2"))}}).(*teep.Success); !ok {
		t.Fatal("TAM a could not update its component")
	}
	if _, ok := a.update(&teep.Update{UnneededManifestList: []suit.ComponentID{appMan}}).(*teep.Success); !ok {
		t.Fatal("TAM a could not remove its component")
	}
	if o, _ := Owner(st, appMan); o != "" {
		t.Fatalf("owner of a removed manifest still recorded: %q", o)
	}
	// Once removed, the id is free: B may install it now.
	if _, ok := b.update(&teep.Update{ManifestList: [][]byte{b.sign.envelope(appMan, appID, 3, []byte("b3"))}}).(*teep.Success); !ok {
		t.Fatal("TAM b could not install a freed component id")
	}
}

func TestScopedTrustAnchorRules(t *testing.T) {
	f := newFixture(t, teep.Draft26)
	st := f.tt.Storage()
	k := newSigner(t, cosekey.AlgESP256).PublicKey()
	if err := AddScopedTrustAnchor(st, "Bad Name", RoleTAM, k); err == nil {
		t.Fatal("accepted a bad scope name")
	}
	if err := AddScopedTrustAnchor(st, "a", Role("x"), k); err == nil {
		t.Fatal("accepted an unknown role")
	}
	if err := AddScopedTrustAnchor(st, "a", RoleTAM, k); err != nil {
		t.Fatal(err)
	}
	if err := AddScopedTrustAnchor(st, "a", RoleTAM, k); err != nil {
		t.Fatalf("re-adding a key: %v", err)
	}
	if err := AddScopedTrustAnchor(st, "b", RoleTAM, k); err == nil {
		t.Fatal("one TAM key trusted for two TAMs")
	}
	for i := len(Scopes(st)); i < MaxScopes; i++ {
		if err := AddScopedTrustAnchor(st, "s"+string(rune('a'+i)), RoleSigner, k); err != nil {
			t.Fatal(err)
		}
	}
	if err := AddScopedTrustAnchor(st, "one-too-many", RoleSigner, k); err == nil {
		t.Fatalf("more than %d scopes", MaxScopes)
	}
	// A tampered owner record fails, it is never read as "unowned".
	if err := setOwner(st, appMan, "a"); err != nil {
		t.Fatal(err)
	}
	if err := setOwner(st, configMan, "a"); err != nil {
		t.Fatal(err)
	}
	// Swap the records: each now names the wrong manifest.
	ra, _ := st.Get(ownerName(appMan))
	if err := tee.Update(context.Background(), st, func(tx tee.Tx) error { return tx.Put(ownerName(configMan), ra) }); err != nil {
		t.Fatal(err)
	}
	if _, err := Owner(st, configMan); !errors.Is(err, tee.ErrTampered) {
		t.Fatalf("swapped owner record: %v", err)
	}
}

// TestRequestsGoToTheirTAM: a request names the TAM it goes to; only that
// TAM sees it in its QueryResponse, and one naming no known TAM goes to the
// default TAM.
func TestRequestsGoToTheirTAM(t *testing.T) {
	f := newFixture(t, teep.Draft26)
	const second = "http://127.0.0.1:2/tam"
	a, err := New(Config{TEE: f.tt, Installer: f.suit, TAMs: []string{tamURI, second}})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if r, err := a.RequestTA(ctx, appID, second); err != nil || r.TAMURI != second {
		t.Fatalf("RequestTA to the second TAM: %+v, %v", r, err)
	}
	if r, err := a.RequestTA(ctx, configID, ""); err != nil || r.TAMURI != tamURI {
		t.Fatalf("RequestTA with no TAM: %+v, %v", r, err)
	}
	requested := func(uri string) []string {
		t.Helper()
		q := &teep.QueryRequest{Token: f.token(), SupportedCipherSuites: teep.MandatoryCipherSuites(),
			SupportedSUITCOSEProfiles: teep.MandatorySUITCOSEProfiles(), DataItemRequested: teep.DataItemTrustedComponents}
		data, err := teep.Sign(q, f.tam, teep.SignOptions{})
		if err != nil {
			t.Fatal(err)
		}
		r, err := a.ProcessTeepMessage(ctx, uri, data)
		if err != nil {
			t.Fatal(err)
		}
		op, err := teep.Open(r.Message, teep.OpenOptions{Keys: []*cosekey.Key{a.PublicKey()}})
		if err != nil {
			t.Fatal(err)
		}
		var out []string
		for _, rtc := range op.Message.(*teep.QueryResponse).RequestedTCList {
			out = append(out, suit.ComponentID(rtc.ComponentID).String())
		}
		return out
	}
	if got := requested(tamURI); len(got) != 1 || got[0] != configID.String() {
		t.Fatalf("default TAM sees %v, want only %s", got, configID)
	}
	if got := requested(second); len(got) != 1 || got[0] != appID.String() {
		t.Fatalf("second TAM sees %v, want only %s", got, appID)
	}
}

// FuzzOwner: whatever bytes sit in an owner record, Owner returns a valid
// scope or an error, never panics, and never reads a record naming
// another manifest as this one's.
func FuzzOwner(f *testing.F) {
	enc, _ := stateEnc.Marshal(owner{ID: appMan, Scope: "tam-a"})
	f.Add(enc)
	f.Add([]byte{0xa0})
	f.Add([]byte{0xa2, 0x01, 0x80, 0x02, 0x60})
	tt, err := softtee.Open(f.TempDir(), softtee.Options{})
	if err != nil {
		f.Fatal(err)
	}
	f.Cleanup(func() { tt.Close() })
	st := tt.Storage()
	f.Fuzz(func(t *testing.T, data []byte) {
		if err := tee.Update(context.Background(), st, func(tx tee.Tx) error { return tx.Put(ownerName(appMan), data) }); err != nil {
			t.Skip(err) // too large for the store
		}
		s, err := Owner(st, appMan)
		if err == nil && !ValidScope.MatchString(s) {
			t.Fatalf("Owner = %q from %x", s, data)
		}
		if err != nil && !errors.Is(err, tee.ErrTampered) {
			t.Fatalf("Owner: %v", err)
		}
	})
}
