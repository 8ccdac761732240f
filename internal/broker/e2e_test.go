package broker_test

// End-to-end tests: software TEEs with their Agents behind a Broker, over
// real loopback HTTP, against a complete TAM (internal/tam/tamtest: SQLite,
// the TEEP HTTP binding, a Verifier that appraises the TEEs' Evidence).

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/teep-go/teep/cosekey"
	"github.com/teep-go/teep/internal/broker"
	"github.com/teep-go/teep/internal/device"
	"github.com/teep-go/teep/internal/fetch"
	"github.com/teep-go/teep/internal/tam"
	"github.com/teep-go/teep/internal/tam/tamtest"
	"github.com/teep-go/teep/internal/tee"
	"github.com/teep-go/teep/internal/tee/softtee"
	"github.com/teep-go/teep/suit"
)

var ctx = context.Background()

// simDevice is one simulated device (internal/device): software TEEs, their
// Agents, a Broker.
type simDevice struct {
	t *testing.T
	*device.Device
}

// fleetTEEs are TEEs provisioned in a state directory before the TAM
// starts, so that the TAM's Verifier can endorse their attestation keys.
type fleetTEEs struct {
	state  string
	names  []string
	attest []*cosekey.Key
}

func openTEEs(t *testing.T, state string, names ...string) *fleetTEEs {
	t.Helper()
	keys, err := device.Provision(state, names...)
	if err != nil {
		t.Fatal(err)
	}
	return &fleetTEEs{state: state, names: names, attest: keys}
}

func attestationKeys(tees *fleetTEEs) []*cosekey.Key { return tees.attest }

type deviceOptions struct {
	tamURL     string
	tamKeys    []*cosekey.Key
	signerKeys []*cosekey.Key
	fetcher    *fetch.HTTP
	legacy     bool
}

// newDevice opens the device of the TEEs, its Agents trusting the TAM's
// keys and the signer keys, its Broker routing to them in the order of
// names.
func newDevice(t *testing.T, tees *fleetTEEs, names []string, o deviceOptions) *simDevice {
	t.Helper()
	do := device.Options{StateDir: tees.state, TAM: o.tamURL, TEEs: names, Once: true, TAMKeys: o.tamKeys, SignerKeys: o.signerKeys,
		LegacyNumbering: &o.legacy, Retry: broker.Retry{MaxAttempts: 2, BaseDelay: time.Millisecond, MaxDelay: time.Millisecond}}
	if o.fetcher != nil {
		do.Fetcher = o.fetcher
	}
	d, err := device.Open(ctx, do)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { d.Close() })
	return &simDevice{t: t, Device: d}
}

func (d *simDevice) sync() {
	d.t.Helper()
	if err := d.Run(ctx); err != nil {
		d.t.Fatalf("sync: %v", err)
	}
}

// installed maps payload component id (string form) → sequence number.
func (d *simDevice) installed(tee string) map[string]uint64 {
	d.t.Helper()
	inst, err := d.TEE(tee).SUIT.Installed()
	if err != nil {
		d.t.Fatal(err)
	}
	out := map[string]uint64{}
	for _, c := range inst {
		out[c.ComponentID.String()] = c.Sequence
	}
	return out
}

// content reads an installed component.
func (d *simDevice) content(tee string, id suit.ComponentID) []byte {
	d.t.Helper()
	r, _, err := d.TEE(tee).SUIT.Store().Open(ctx, id)
	if err != nil {
		d.t.Fatalf("open %s: %v", id, err)
	}
	defer r.Close()
	b, err := io.ReadAll(r)
	if err != nil {
		d.t.Fatal(err)
	}
	return b
}

func payload(name string) string { return tamtest.PayloadID(name).String() }

func startTAM(t *testing.T, endorse []*cosekey.Key) *tamtest.TAM {
	t.Helper()
	return tamtest.Start(t, tamtest.Options{Endorse: endorse})
}

func defaultDevice(t *testing.T, names ...string) (*tamtest.TAM, *simDevice, *cosekey.Signer) {
	t.Helper()
	if len(names) == 0 {
		names = []string{"tee0"}
	}
	tees := openTEEs(t, t.TempDir(), names...)
	srv := startTAM(t, attestationKeys(tees))
	signer := tamtest.Signer(t)
	srv.TrustSigner(signer.PublicKey())
	d := newDevice(t, tees, names, deviceOptions{tamURL: srv.URL, tamKeys: srv.Keys(),
		signerKeys: append(srv.Keys(), signer.PublicKey())})
	return srv, d, signer
}

// TestE2EInstallUpdateRemove: a required component is installed at the
// device's first contact (attestation registers it), updated when a new
// version is uploaded, removed when the policy goes.
func TestE2EInstallUpdateRemove(t *testing.T) {
	srv, d, signer := defaultDevice(t)
	id := srv.Upload(tamtest.Envelope(t, signer, "app", 1, []byte("app v1")))
	srv.Require(id)
	d.sync()
	if got := d.installed("tee0"); got[payload("app")] != 1 {
		t.Fatalf("after first sync: %v", got)
	}
	if got := d.content("tee0", tamtest.PayloadID("app")); string(got) != "app v1" {
		t.Fatalf("content %q", got)
	}
	kid := d.TEE("tee0").Agent.PublicKey().KID()
	info := srv.Device(kid)
	if info.Attestation != tam.AttestationAffirming {
		t.Fatalf("TAM's view after attestation: %+v", info.Device)
	}

	srv.Upload(tamtest.Envelope(t, signer, "app", 2, []byte("app v2")))
	d.sync()
	if got := d.installed("tee0"); got[payload("app")] != 2 {
		t.Fatalf("after update: %v", got)
	}
	if got := d.content("tee0", tamtest.PayloadID("app")); string(got) != "app v2" {
		t.Fatalf("content after update %q", got)
	}

	srv.Unrequire(id)
	d.sync()
	if got := d.installed("tee0"); len(got) != 0 {
		t.Fatalf("after removal: %v", got)
	}
	// A further sync has nothing to do.
	d.sync()
}

// TestE2ERequestedComponent: an optional component is installed only when
// an application asks for it (requested-tc-list), and removed when it is
// released (unneeded-manifest-list).
func TestE2ERequestedComponent(t *testing.T) {
	srv, d, signer := defaultDevice(t)
	opt := srv.Upload(tamtest.Envelope(t, signer, "opt", 1, []byte("optional")))
	srv.Offer(opt)
	d.sync()
	if got := d.installed("tee0"); len(got) != 0 {
		t.Fatalf("optional component installed unasked: %v", got)
	}
	id := tamtest.PayloadID("opt")
	if name, err := d.Broker().RequestTA(ctx, "", id, ""); err != nil || name != "tee0" {
		t.Fatalf("RequestTA = %q, %v", name, err)
	}
	if got := d.installed("tee0"); got[payload("opt")] != 1 {
		t.Fatalf("after request: %v", got)
	}
	st := d.Broker().Status(ctx)
	if len(st[0].Requested) != 0 || len(st[0].Components) != 1 || st[0].Components[0].Size != uint64(len("optional")) {
		t.Fatalf("status after request: %+v", st[0])
	}
	sum := sha256.Sum256([]byte("optional"))
	if !bytes.Equal(st[0].Components[0].SHA256, sum[:]) {
		t.Fatal("status sha256 is not the content's")
	}
	if _, err := d.Broker().UnrequestTA(ctx, "", id, ""); err != nil {
		t.Fatal(err)
	}
	if got := d.installed("tee0"); len(got) != 0 {
		t.Fatalf("after release: %v", got)
	}
}

// TestE2EPersonalization: per-device data encrypted by the TAM to the
// Agent key (ECDH-ES+A128KW, A128CTR), depending on the TA that uses it.
func TestE2EPersonalization(t *testing.T) {
	srv, d, signer := defaultDevice(t)
	app := srv.Upload(tamtest.Envelope(t, signer, "app", 1, []byte("the TA")))
	srv.Require(app)
	d.sync() // registers the device by attestation, installs the TA
	secret := []byte(`{"name":"FOO Bar","secret":"0123456789abfcdef0123456789abcd"}`)
	p := srv.Personalize(d.TEE("tee0").Agent.PublicKey().KID(), "config", secret, app)
	d.sync()
	if got := d.content("tee0", p.PayloadID); !bytes.Equal(got, secret) {
		t.Fatalf("personalization data %q", got)
	}
	if got := d.content("tee0", tamtest.PayloadID("app")); string(got) != "the TA" {
		t.Fatalf("TA %q", got)
	}
	// The plaintext never reaches the disk: every object is sealed.
	files, _ := filepath.Glob(filepath.Join(d.TEE("tee0").TEE.Dir(), "objects", "*"))
	for _, f := range files {
		b, _ := os.ReadFile(f)
		if bytes.Contains(b, []byte("0123456789abfcdef")) {
			t.Fatalf("%s holds the secret in the clear", f)
		}
	}
}

// TestE2ETwoTEEs: one device, two TEEs, two Agents with their own keys; a
// component required on one TEE only reaches that one.
func TestE2ETwoTEEs(t *testing.T) {
	srv, d, signer := defaultDevice(t, "main", "secure2")
	both := srv.Upload(tamtest.Envelope(t, signer, "common", 1, []byte("for all")))
	srv.Require(both)
	d.sync()
	onlyID := srv.Upload(tamtest.Envelope(t, signer, "special", 1, []byte("for secure2")))
	k2 := d.TEE("secure2").Agent.PublicKey().KID()
	if bytes.Equal(k2, d.TEE("main").Agent.PublicKey().KID()) {
		t.Fatal("the two TEEs share an Agent key")
	}
	srv.RequireDevice(onlyID, k2)
	d.sync()
	if got := d.installed("main"); len(got) != 1 || got[payload("common")] != 1 {
		t.Fatalf("main: %v", got)
	}
	if got := d.installed("secure2"); len(got) != 2 || got[payload("special")] != 1 {
		t.Fatalf("secure2: %v", got)
	}
	// A request routed to one TEE does not touch the other.
	opt := srv.Upload(tamtest.Envelope(t, signer, "opt", 1, []byte("o")))
	srv.Offer(opt)
	if _, err := d.Broker().RequestTA(ctx, "main", tamtest.PayloadID("opt"), ""); err != nil {
		t.Fatal(err)
	}
	if _, ok := d.installed("main")[payload("opt")]; !ok {
		t.Fatal("requested component not on main")
	}
	if _, ok := d.installed("secure2")[payload("opt")]; ok {
		t.Fatal("requested component reached the other TEE")
	}
}

// TestE2EUntrustedTAM: a TEE that does not trust the TAM refuses its
// messages (Error ERR_BAD_CERTIFICATE) and installs nothing.
func TestE2EUntrustedTAM(t *testing.T) {
	tees := openTEEs(t, t.TempDir(), "tee0")
	srv := startTAM(t, attestationKeys(tees))
	signer := tamtest.Signer(t)
	srv.TrustSigner(signer.PublicKey())
	srv.Require(srv.Upload(tamtest.Envelope(t, signer, "app", 1, []byte("x"))))
	impostor, _ := cosekey.Generate(cosekey.AlgESP256)
	d := newDevice(t, tees, []string{"tee0"}, deviceOptions{tamURL: srv.URL, tamKeys: []*cosekey.Key{impostor.PublicKey()},
		signerKeys: []*cosekey.Key{signer.PublicKey()}})
	err := d.Broker().Sync(ctx, "")
	var se *broker.SyncError
	if !errors.As(err, &se) || !strings.Contains(strings.Join(se.Problems, " "), "not a trusted TAM") {
		t.Fatalf("sync with an untrusted TAM: %v", err)
	}
	if got := d.installed("tee0"); len(got) != 0 {
		t.Fatalf("installed from an untrusted TAM: %v", got)
	}
}

// TestE2EBadDigest: a payload fetched by URI does not match the manifest's
// digest: the device answers Error with a SUIT report, the previous version
// stays installed.
func TestE2EBadDigest(t *testing.T) {
	var served []byte
	files := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.Write(served) }))
	defer files.Close()
	tees := openTEEs(t, t.TempDir(), "tee0")
	srv := startTAM(t, attestationKeys(tees))
	signer := tamtest.Signer(t)
	srv.TrustSigner(signer.PublicKey())
	d := newDevice(t, tees, []string{"tee0"}, deviceOptions{tamURL: srv.URL, tamKeys: srv.Keys(),
		signerKeys: []*cosekey.Key{signer.PublicKey()}, fetcher: &fetch.HTTP{Client: files.Client()}})

	build := func(seq uint64, content []byte) []byte {
		spec := suit.ManifestSpec{ManifestComponentID: tamtest.ManifestID("app"), SequenceNumber: seq,
			Components: []suit.ComponentSpec{{ID: tamtest.PayloadID("app"), Payload: content, URI: files.URL + "/app.ta"}}}
		e, err := suit.Build(spec)
		if err != nil {
			t.Fatal(err)
		}
		if err := e.Sign(signer); err != nil {
			t.Fatal(err)
		}
		b, _ := e.Marshal(suit.MarshalOptions{})
		return b
	}
	served = []byte("good version 1")
	id := srv.Upload(build(1, served))
	srv.Require(id)
	d.sync()
	if got := d.content("tee0", tamtest.PayloadID("app")); string(got) != "good version 1" {
		t.Fatalf("v1 %q", got)
	}
	srv.Upload(build(2, []byte("good version 2")))
	served = []byte("evil version 2") // what the file server now hands out
	err := d.Broker().Sync(ctx, "")
	if err == nil || !strings.Contains(err.Error(), "install") {
		t.Fatalf("sync with a bad digest: %v", err)
	}
	t.Logf("refused: %v", err)
	if got := d.content("tee0", tamtest.PayloadID("app")); string(got) != "good version 1" {
		t.Fatalf("previous version not intact: %q", got)
	}
	if got := d.installed("tee0"); got[payload("app")] != 1 {
		t.Fatalf("installed: %v", got)
	}
	info := srv.Device(d.TEE("tee0").Agent.PublicKey().KID())
	if len(info.Reports) == 0 || len(info.Failures) == 0 {
		t.Fatalf("the TAM did not get the failure and its SUIT report: %+v", info)
	}
}

// TestE2ERollback: after version 2 is installed, another TAM the device
// trusts offers version 1 of the same component: refused, v2 stays.
func TestE2ERollback(t *testing.T) {
	tees := openTEEs(t, t.TempDir(), "tee0")
	signer := tamtest.Signer(t)
	first := startTAM(t, attestationKeys(tees))
	first.TrustSigner(signer.PublicKey())
	first.Require(first.Upload(tamtest.Envelope(t, signer, "app", 2, []byte("v2"))))
	second := startTAM(t, attestationKeys(tees))
	second.TrustSigner(signer.PublicKey())
	second.Require(second.Upload(tamtest.Envelope(t, signer, "app", 1, []byte("v1"))))
	keys := append(first.Keys(), second.Keys()...)
	d := newDevice(t, tees, []string{"tee0"}, deviceOptions{tamURL: first.URL, tamKeys: keys, signerKeys: []*cosekey.Key{signer.PublicKey()}})
	d.sync()
	if got := d.installed("tee0"); got[payload("app")] != 2 {
		t.Fatalf("from the first TAM: %v", got)
	}
	d.Close() // the same TEE, now pointed at the other TAM
	d2 := newDevice(t, tees, []string{"tee0"}, deviceOptions{tamURL: second.URL, tamKeys: keys, signerKeys: []*cosekey.Key{signer.PublicKey()}})
	err := d2.Broker().Sync(ctx, "")
	if err == nil || !strings.Contains(err.Error(), "sequence") {
		t.Fatalf("downgrade: %v", err)
	}
	t.Logf("refused: %v", err)
	if got := d2.content("tee0", tamtest.PayloadID("app")); string(got) != "v2" {
		t.Fatalf("after the rollback attempt: %q", got)
	}
}

// TestE2ELegacyNumbering: the whole exchange in the numbering of drafts
// -18 to -25, against the TAM's legacy endpoint.
func TestE2ELegacyNumbering(t *testing.T) {
	tees := openTEEs(t, t.TempDir(), "tee0")
	srv := startTAM(t, attestationKeys(tees))
	signer := tamtest.Signer(t)
	srv.TrustSigner(signer.PublicKey())
	srv.Require(srv.Upload(tamtest.Envelope(t, signer, "app", 1, []byte("legacy"))))
	d := newDevice(t, tees, []string{"tee0"}, deviceOptions{tamURL: srv.LegacyURL, tamKeys: srv.Keys(),
		signerKeys: []*cosekey.Key{signer.PublicKey()}, legacy: true})
	d.sync()
	if got := d.installed("tee0"); got[payload("app")] != 1 {
		t.Fatalf("legacy install: %v", got)
	}
}

// TestE2ETamperingDetected: a component installed by the TAM is changed on
// disk; the TEE refuses to open, so nothing tampered is used.
func TestE2ETamperingDetected(t *testing.T) {
	dir := t.TempDir()
	srv, d, signer := func() (*tamtest.TAM, *simDevice, *cosekey.Signer) {
		tees := openTEEs(t, dir, "tee0")
		srv := startTAM(t, attestationKeys(tees))
		signer := tamtest.Signer(t)
		srv.TrustSigner(signer.PublicKey())
		return srv, newDevice(t, tees, []string{"tee0"}, deviceOptions{tamURL: srv.URL, tamKeys: srv.Keys(),
			signerKeys: []*cosekey.Key{signer.PublicKey()}}), signer
	}()
	srv.Require(srv.Upload(tamtest.Envelope(t, signer, "app", 1, bytes.Repeat([]byte("A"), 100000))))
	d.sync()
	d.Close()
	// Flip one byte in every object file of about the component's size.
	files, _ := filepath.Glob(filepath.Join(dir, device.DirTEE, "tee0", "objects", "*"))
	hit := 0
	for _, f := range files {
		b, _ := os.ReadFile(f)
		if len(b) > 100000 {
			b[len(b)/2] ^= 0x20
			os.WriteFile(f, b, 0o600)
			hit++
		}
	}
	if hit != 1 {
		t.Fatalf("%d component files", hit)
	}
	if _, err := softtee.Open(filepath.Join(dir, device.DirTEE, "tee0"), softtee.Options{}); !errors.Is(err, tee.ErrTampered) {
		t.Fatalf("tampered TEE opened: %v", err)
	}
}
