package device_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/teep-go/teep/cosekey"
	"github.com/teep-go/teep/internal/broker"
	"github.com/teep-go/teep/internal/device"
	"github.com/teep-go/teep/internal/tam/tamtest"
	"github.com/teep-go/teep/teep"
)

// TestLegacyConfigIsMigrated: a single-TAM device.json is read as one TAM
// named "default", written back in the new form, and the device still
// works from it with no options but the state directory.
func TestLegacyConfigIsMigrated(t *testing.T) {
	f := start(t, "main")
	f.srv.Require(f.srv.Upload(tamtest.Envelope(t, f.signer, "app", 1, []byte("v1"))))
	d := f.open(t, device.Options{StateDir: f.state, TAM: f.srv.URL, TEEs: []string{"main"}, TAMKeys: f.srv.Keys(),
		SignerKeys: []*cosekey.Key{f.signer.PublicKey()}, Retry: fastRetry, Once: true})
	if err := d.Close(); err != nil {
		t.Fatal(err)
	}
	legacy := `{"tam":"` + f.srv.URL + `","tees":["main"],"tam_psk":"/abs/psk"}`
	if err := os.WriteFile(filepath.Join(f.state, device.FileConfig), []byte(legacy), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg, err := device.LoadConfig(f.state)
	if err != nil {
		t.Fatal(err)
	}
	want := device.TAMConfig{Name: device.DefaultTAM, URL: f.srv.URL, PSK: "/abs/psk"}
	if len(cfg.TAMs) != 1 || cfg.TAMs[0] != want || cfg.LegacyTAM != "" || cfg.LegacyTAMPSK != "" {
		t.Fatalf("migrated: %+v", cfg)
	}
	cfg.TAMs[0].PSK = ""
	if err := device.SaveConfig(f.state, cfg); err != nil {
		t.Fatal(err)
	}
	data, _ := os.ReadFile(filepath.Join(f.state, device.FileConfig))
	if strings.Contains(string(data), `"tam":`) || !strings.Contains(string(data), `"tams": [`) {
		t.Fatalf("device.json written in the old form:\n%s", data)
	}
	d = f.open(t, device.Options{StateDir: f.state, Once: true, Retry: fastRetry})
	if err := d.Run(context.Background()); err != nil {
		t.Fatal(err)
	}
	if installed(d.Status(context.Background()), "main", "app") == nil {
		t.Fatal("migrated device lost its component")
	}

	// Bad lists are refused on load.
	for _, bad := range []string{
		`{"tam":"http://a/","tams":[{"name":"default","url":"http://b/"}],"tees":[]}`,
		`{"tams":[{"name":"a","url":"http://a/"},{"name":"a","url":"http://b/"}],"tees":[]}`,
		`{"tams":[{"name":"a","url":"http://a/"},{"name":"b","url":"http://a/"}],"tees":[]}`,
		`{"tams":[{"name":"Not OK","url":"http://a/"}],"tees":[]}`,
		`{"tam_ca":"/x","tees":[]}`,
	} {
		if err := os.WriteFile(filepath.Join(f.state, device.FileConfig), []byte(bad), 0o600); err != nil {
			t.Fatal(err)
		}
		if _, err := device.LoadConfig(f.state); err == nil {
			t.Errorf("accepted %s", bad)
		}
	}
}

// twoTAMs is one device trusting two TAMs, each with its own signer.
type twoTAMs struct {
	a, b   *tamtest.TAM
	sa, sb *cosekey.Signer
	state  string
}

func startTwoTAMs(t *testing.T) *twoTAMs {
	t.Helper()
	state := filepath.Join(t.TempDir(), "state")
	attest, err := device.Provision(state, "main")
	if err != nil {
		t.Fatal(err)
	}
	x := &twoTAMs{a: tamtest.Start(t, tamtest.Options{Endorse: attest}), b: tamtest.Start(t, tamtest.Options{Endorse: attest}),
		sa: tamtest.Signer(t), sb: tamtest.Signer(t), state: state}
	x.a.TrustSigner(x.sa.PublicKey())
	x.b.TrustSigner(x.sb.PublicKey())
	return x
}

func (x *twoTAMs) options() device.Options {
	return device.Options{StateDir: x.state, TEEs: []string{"main"}, Retry: fastRetry, Once: true, TAMs: []device.TAMOptions{
		{Name: "a", URL: x.a.URL, TAMKeys: x.a.Keys(), SignerKeys: []*cosekey.Key{x.sa.PublicKey()}},
		{Name: "b", URL: x.b.URL, TAMKeys: x.b.Keys(), SignerKeys: []*cosekey.Key{x.sb.PublicKey()}},
	}}
}

func (x *twoTAMs) run(t *testing.T, o device.Options) ([]broker.TEEStatus, error) {
	t.Helper()
	d, err := device.Open(context.Background(), o)
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	err = d.Run(context.Background())
	return d.Status(context.Background()), err
}

// refusedWith finds the Error a TAM received for the device, with the
// err-code and a message naming the owner.
func refusedWith(t *testing.T, srv *tamtest.TAM, kid []byte, code teep.ErrCode, owner string) {
	t.Helper()
	for _, r := range srv.Device(kid).Reports {
		if r.Kind == "error" && r.ErrCode == int(code) && strings.Contains(r.Message, "belongs to TAM "+owner) {
			return
		}
	}
	t.Fatalf("the TAM got no Error %s naming TAM %s: %+v", code, owner, srv.Device(kid).Reports)
}

// TestTwoTAMsManageTheirOwnComponents: two TAMs (tamserver on SQLite, over
// loopback) each install their component on one device; each then tries
// to touch the other's (A an update of B's component signed by A's
// signer, B the removal of A's component the device released to it) and
// gets ERR_MANIFEST_PROCESSING_FAILED, while its own updates go through.
func TestTwoTAMsManageTheirOwnComponents(t *testing.T) {
	x := startTwoTAMs(t)
	x.a.Require(x.a.Upload(tamtest.Envelope(t, x.sa, "a-app", 1, []byte("a1"))))
	x.b.Require(x.b.Upload(tamtest.Envelope(t, x.sb, "b-app", 1, []byte("b1"))))
	sts, err := x.run(t, x.options())
	if err != nil {
		t.Fatalf("first run: %v", err)
	}
	if c := installed(sts, "main", "a-app"); c == nil || c.SequenceNumber != 1 {
		t.Fatalf("A's component: %+v", sts)
	}
	if c := installed(sts, "main", "b-app"); c == nil || c.SequenceNumber != 1 {
		t.Fatalf("B's component: %+v", sts)
	}
	kid := sts[0].AgentKID

	// A: an update of B's component id, signed by A's own signer; and an
	// update of its own component. B: its own update, and the removal of
	// A's component, which the device releases to B.
	x.a.Require(x.a.Upload(tamtest.Envelope(t, x.sa, "b-app", 2, []byte("a-over-b"))))
	x.a.Require(x.a.Upload(tamtest.Envelope(t, x.sa, "a-app", 2, []byte("a2"))))
	x.b.Require(x.b.Upload(tamtest.Envelope(t, x.sb, "b-app", 3, []byte("b3"))))
	if r, err := device.Request(context.Background(), x.state, "main", tamtest.ManifestID("a-app"), "b", false); err != nil || r.TAM != "b" {
		t.Fatalf("release to TAM b: %+v, %v", r, err)
	}
	o := x.options()
	o.TAMs[0].TAMKeys, o.TAMs[1].TAMKeys, o.TAMs[0].SignerKeys, o.TAMs[1].SignerKeys = nil, nil, nil, nil // remembered
	sts, err = x.run(t, o)
	var se *broker.SyncError
	if !errors.As(err, &se) {
		t.Fatalf("run with refused manifests: %v", err)
	}
	refusedWith(t, x.a, kid, teep.ErrManifestProcessingFailed, "b")
	refusedWith(t, x.b, kid, teep.ErrManifestProcessingFailed, "a")
	if c := installed(sts, "main", "a-app"); c == nil || c.SequenceNumber != 2 {
		t.Fatalf("A's own update (and nothing of B's removal): %+v", sts)
	}
	if c := installed(sts, "main", "b-app"); c == nil || c.SequenceNumber != 3 {
		t.Fatalf("B's own update (and nothing of A's): %+v", sts)
	}
	if a, b := installed(sts, "main", "a-app"), installed(sts, "main", "b-app"); a.TAM != "a" || b.TAM != "b" {
		t.Fatalf("status names the owners %q and %q, want a and b", a.TAM, b.TAM)
	}
	if _, err := device.Request(context.Background(), x.state, "main", tamtest.ManifestID("a-app"), "c", true); !errors.Is(err, device.ErrUnknownTAM) {
		t.Fatalf("request to an unknown TAM: %v", err)
	}
}

// TestDownTAMDoesNotStopTheOthers: with one of two TAMs unreachable, the
// other still installs its component, and the run reports the down one.
func TestDownTAMDoesNotStopTheOthers(t *testing.T) {
	x := startTwoTAMs(t)
	x.b.Require(x.b.Upload(tamtest.Envelope(t, x.sb, "b-app", 1, []byte("b1"))))
	o := x.options()
	o.TAMs[0].URL = "http://127.0.0.1:1/tam"
	sts, err := x.run(t, o)
	if err == nil || !strings.Contains(err.Error(), "127.0.0.1:1") {
		t.Fatalf("run with TAM a down: %v", err)
	}
	if installed(sts, "main", "b-app") == nil {
		t.Fatalf("TAM b was not contacted: %+v", sts)
	}
}
