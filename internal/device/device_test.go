package device_test

import (
	"context"
	"encoding/json"
	"errors"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/teep-go/teep/cosekey"
	"github.com/teep-go/teep/internal/broker"
	"github.com/teep-go/teep/internal/device"
	"github.com/teep-go/teep/internal/tam/tamtest"
	"github.com/teep-go/teep/internal/tee"
	"github.com/teep-go/teep/internal/tee/softtee"
	"github.com/teep-go/teep/suit"
)

var fastRetry = broker.Retry{MaxAttempts: 2, BaseDelay: time.Millisecond, MaxDelay: time.Millisecond}

// fixture is a TAM with a trusted signer, and TEEs provisioned before it
// started so that its Verifier endorses them.
type fixture struct {
	srv    *tamtest.TAM
	signer *cosekey.Signer
	state  string
}

func start(t *testing.T, tees ...string) *fixture {
	t.Helper()
	state := filepath.Join(t.TempDir(), "state")
	attest, err := device.Provision(state, tees...)
	if err != nil {
		t.Fatal(err)
	}
	f := &fixture{srv: tamtest.Start(t, tamtest.Options{Endorse: attest}), signer: tamtest.Signer(t), state: state}
	f.srv.TrustSigner(f.signer.PublicKey())
	return f
}

func (f *fixture) options(tees ...string) device.Options {
	return device.Options{StateDir: f.state, TAM: f.srv.URL, TEEs: tees, TAMKeys: f.srv.Keys(),
		SignerKeys: []*cosekey.Key{f.signer.PublicKey()}, Retry: fastRetry}
}

func (f *fixture) open(t *testing.T, o device.Options) *device.Device {
	t.Helper()
	d, err := device.Open(context.Background(), o)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { d.Close() })
	return d
}

func installed(sts []broker.TEEStatus, tee, name string) *broker.Component {
	want := tamtest.PayloadID(name).String()
	for _, st := range sts {
		for i, c := range st.Components {
			if st.Name == tee && c.ID.String() == want {
				return &st.Components[i]
			}
		}
	}
	return nil
}

// TestOnceInstallsAndRemembers: a run with Once installs what the TAM
// requires; device.json then remembers the TAM and the TEEs, and the TEEs
// their trust anchors, so a second Open needs no options but the state.
func TestOnceInstallsAndRemembers(t *testing.T) {
	f := start(t, "a", "b")
	f.srv.Require(f.srv.Upload(tamtest.Envelope(t, f.signer, "app", 1, []byte("v1"))))
	o := f.options("a", "b")
	o.Once = true
	d := f.open(t, o)
	if err := d.Run(context.Background()); err != nil {
		t.Fatal(err)
	}
	if c := installed(d.Status(context.Background()), "b", "app"); c == nil || c.SequenceNumber != 1 {
		t.Fatalf("status: %+v", d.Status(context.Background()))
	}
	if err := d.Close(); err != nil {
		t.Fatal(err)
	}
	cfg, err := device.LoadConfig(f.state)
	if err != nil || len(cfg.TAMs) != 1 || cfg.TAMs[0].Name != device.DefaultTAM || cfg.TAMs[0].URL != f.srv.URL || strings.Join(cfg.TEEs, ",") != "a,b" {
		t.Fatalf("device.json: %+v %v", cfg, err)
	}
	f.srv.Upload(tamtest.Envelope(t, f.signer, "app", 2, []byte("v2")))
	d = f.open(t, device.Options{StateDir: f.state, Once: true, Retry: fastRetry})
	if names := d.Broker().TEEs(); strings.Join(names, ",") != "a,b" {
		t.Fatalf("TEEs of the second run: %v", names)
	}
	if err := d.Run(context.Background()); err != nil {
		t.Fatal(err)
	}
	if c := installed(d.Status(context.Background()), "a", "app"); c == nil || c.SequenceNumber != 2 {
		t.Fatalf("after update: %+v", d.Status(context.Background()))
	}
}

func TestOptionErrors(t *testing.T) {
	dir := t.TempDir()
	tamKey, _ := cosekey.Generate(cosekey.AlgESP256)
	agentKey, _ := cosekey.Generate(cosekey.AlgESP256)
	url := "http://127.0.0.1:1/tam"
	for _, c := range []struct {
		name   string
		o      device.Options
		option string
	}{
		{"no state", device.Options{TAM: url}, "StateDir"},
		{"no TAM", device.Options{StateDir: filepath.Join(dir, "1")}, "TAM"},
		{"bad TAM", device.Options{StateDir: filepath.Join(dir, "2"), TAM: "ftp://x/"}, "TAM"},
		{"interval", device.Options{StateDir: filepath.Join(dir, "3"), TAM: url, Interval: time.Millisecond}, "Interval"},
		{"no TAM key", device.Options{StateDir: filepath.Join(dir, "4"), TAM: url}, "TAMKeys"},
		{"bad TEE name", device.Options{StateDir: filepath.Join(dir, "5"), TAM: url, TEEs: []string{"Bad/Name"}}, "TEEs"},
		{"bad verifier", device.Options{StateDir: filepath.Join(dir, "6"), TAM: url, Verifier: "mailto:x"}, "Verifier"},
		{"public agent key", device.Options{StateDir: filepath.Join(dir, "7"), TAM: url, TAMKeys: []*cosekey.Key{tamKey},
			AgentKeys: map[string]*cosekey.Key{"": agentKey.PublicKey()}}, "AgentKeys"},
		{"agent key of a TEE not run", device.Options{StateDir: filepath.Join(dir, "8"), TAM: url, TAMKeys: []*cosekey.Key{tamKey},
			AgentKeys: map[string]*cosekey.Key{"other": agentKey}}, "AgentKeys"},
		{"remote without socket", device.Options{StateDir: filepath.Join(dir, "9"), TAM: url, TAMKeys: []*cosekey.Key{tamKey},
			Remote: []device.RemoteAgent{{Name: "r"}}}, "Remote"},
	} {
		_, err := device.Open(context.Background(), c.o)
		var oe *device.OptionError
		if !errors.As(err, &oe) || oe.Option != c.option {
			t.Errorf("%s: %v, want an OptionError on %s", c.name, err, c.option)
		}
	}
}

// TestDaemon runs the daemon and uses its local API: a request whose
// session runs at once, a sync, the status; then stops it.
func TestDaemon(t *testing.T) {
	f := start(t, "main")
	f.srv.Offer(f.srv.Upload(tamtest.Envelope(t, f.signer, "opt", 1, []byte("optional"))))
	ready := make(chan func(), 1)
	o := f.options("main")
	o.Ready = func(stop func()) { ready <- stop }
	d := f.open(t, o)
	done := make(chan error, 1)
	go func() { done <- d.Run(context.Background()) }()
	var stop func()
	select {
	case stop = <-ready:
	case err := <-done:
		t.Fatalf("daemon ended: %v", err)
	}
	ctx := context.Background()
	id := tamtest.PayloadID("opt")
	r, err := device.Request(ctx, f.state, "", id, "", true)
	if err != nil || !r.Daemon || r.TEE != "main" {
		t.Fatalf("request through the daemon: %+v %v", r, err)
	}
	f.srv.Upload(tamtest.Envelope(t, f.signer, "opt", 2, []byte("optional v2")))
	sts, err := device.Sync(ctx, f.state, "")
	if c := installed(sts, "main", "opt"); err != nil || c == nil || c.SequenceNumber != 2 {
		t.Fatalf("after sync: %+v %v", sts, err)
	}
	if sts, err := device.Status(ctx, f.state); err != nil || installed(sts, "main", "opt") == nil {
		t.Fatalf("status through the socket: %+v %v", sts, err)
	}
	stop()
	if err := <-done; err != nil {
		t.Fatalf("daemon: %v", err)
	}
	if _, err := os.Stat(filepath.Join(f.state, device.FileSocket)); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("socket left behind: %v", err)
	}
	if _, err := device.Sync(ctx, f.state, ""); !errors.Is(err, device.ErrNoDaemon) {
		t.Fatalf("sync without a daemon: %v", err)
	}
}

// TestOffline: without a daemon, requests are recorded in the sealed state
// and the status is read from it; a TEE that is held reports the lock.
func TestOffline(t *testing.T) {
	f := start(t, "main")
	d := f.open(t, f.options("main"))
	ctx := context.Background()
	// The daemon is not running, but the TEE is held: Status reports it.
	sts, err := device.Status(ctx, f.state)
	if err != nil || len(sts) != 1 || !strings.Contains(sts[0].Error, "already running") {
		t.Fatalf("status of a held TEE: %+v %v", sts, err)
	}
	if _, err := device.Request(ctx, f.state, "main", suit.ComponentID{{1}}, "", true); !errors.Is(err, tee.ErrBusy) {
		t.Fatalf("request on a held TEE: %v", err)
	}
	d.Close()
	id := tamtest.PayloadID("opt")
	r, err := device.Request(ctx, f.state, "", id, "", true)
	if err != nil || r.Daemon || r.Nothing || r.TEE != "main" {
		t.Fatalf("offline request: %+v %v", r, err)
	}
	r, err = device.Request(ctx, f.state, "", tamtest.PayloadID("other"), "", false)
	if err != nil || !r.Nothing {
		t.Fatalf("offline release of what is not installed: %+v %v", r, err)
	}
	if _, err := device.Request(ctx, f.state, "nope", id, "", true); err == nil || !strings.Contains(err.Error(), `no TEE "nope"`) {
		t.Fatalf("request on an unknown TEE: %v", err)
	}
	sts, err = device.Status(ctx, f.state)
	if err != nil || len(sts) != 1 || len(sts[0].Requested) != 1 || !sts[0].Requested[0].Equal(id) {
		t.Fatalf("status after the offline request: %+v %v", sts, err)
	}
	if _, err := device.Status(ctx, filepath.Join(t.TempDir(), "none")); err == nil {
		t.Fatal("status of a missing state directory")
	}
}

func TestPublicKey(t *testing.T) {
	state := t.TempDir()
	attest, err := device.Provision(state, "one", "two")
	if err != nil {
		t.Fatal(err)
	}
	k, err := device.PublicKey(state, "two", true)
	if err != nil || !k.Equal(attest[1]) {
		t.Fatalf("attestation key of two: %v", err)
	}
	if _, err := device.PublicKey(state, "three", false); err == nil {
		t.Fatal("key of an unknown TEE")
	}
	if _, err := device.PublicKey(t.TempDir(), "", false); err == nil {
		t.Fatal("key of an empty state directory")
	}
	// Tampered sealed state: Provision refuses it.
	objs, _ := filepath.Glob(filepath.Join(state, device.DirTEE, "one", "objects", "*"))
	if len(objs) == 0 {
		t.Fatal("no sealed objects")
	}
	b, _ := os.ReadFile(objs[0])
	b[len(b)-1] ^= 1
	os.WriteFile(objs[0], b, 0o600)
	if _, err := device.Provision(state, "one"); !errors.Is(err, tee.ErrTampered) {
		t.Fatalf("provision of a tampered TEE: %v", err)
	}
}

// TestServeAgent serves a TEE's Agent on a socket and routes a device's
// Broker to it.
func TestServeAgent(t *testing.T) {
	f := start(t, "remote")
	f.srv.Require(f.srv.Upload(tamtest.Envelope(t, f.signer, "app", 1, []byte("across a socket"))))
	sock := filepath.Join(t.TempDir(), "agent.sock")
	ready := make(chan func(), 1)
	ao := f.options("remote")
	ao.Ready = func(stop func()) { ready <- stop }
	served := make(chan error, 1)
	go func() { served <- device.ServeAgent(context.Background(), ao, sock) }()
	var stop func()
	select {
	case stop = <-ready:
	case err := <-served:
		t.Fatalf("agent ended: %v", err)
	}
	d := f.open(t, device.Options{StateDir: filepath.Join(t.TempDir(), "broker"), TAM: f.srv.URL, Once: true, Retry: fastRetry,
		Remote: []device.RemoteAgent{{Name: "remote", Socket: sock}}})
	if err := d.Run(context.Background()); err != nil {
		t.Fatal(err)
	}
	if c := installed(d.Status(context.Background()), "remote", "app"); c == nil {
		t.Fatalf("status through the remote Agent: %+v", d.Status(context.Background()))
	}
	stop()
	if err := <-served; err != nil {
		t.Fatal(err)
	}
	if _, err := softtee.Open(filepath.Join(f.state, device.DirTEE, "remote"), softtee.Options{}); err != nil {
		t.Fatalf("the Agent process did not release its TEE: %v", err)
	}
}

func FuzzConfig(f *testing.F) {
	f.Add([]byte(`{"tam":"https://t/tam","tees":["a","b"],"legacy_numbering":true,"tam_ca":"/x"}`))
	f.Add([]byte(`{"tam":1}`))
	f.Add([]byte(`{"tams":[{"name":"a","url":"https://a/tam","ca":"/ca"},{"name":"b","url":"coaps://b/tam","psk":"/psk"}],"tees":["x"]}`))
	f.Add([]byte(`{"tam":"https://t/tam","tams":[{"name":"b","url":"https://b/"}],"tees":[]}`))
	f.Add([]byte(`{} {}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		dir := t.TempDir()
		os.WriteFile(filepath.Join(dir, device.FileConfig), data, 0o600)
		c, err := device.LoadConfig(dir)
		if err != nil {
			return
		}
		if err := device.SaveConfig(dir, c); err != nil {
			t.Fatal(err)
		}
		again, err := device.LoadConfig(dir)
		if err != nil || len(again.TAMs) != len(c.TAMs) || len(again.TEEs) != len(c.TEEs) {
			t.Fatalf("round trip: %+v → %+v, %v", c, again, err)
		}
		if _, err := json.Marshal(again); err != nil {
			t.Fatal(err)
		}
	})
}

// TestDaemonMetricsAddrInUse: the daemon does not start when its metrics
// address cannot be had, and leaves no socket behind.
func TestDaemonMetricsAddrInUse(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	f := start(t, "main")
	o := f.options("main")
	o.MetricsAddr = ln.Addr().String()
	d := f.open(t, o)
	if err := d.Run(context.Background()); err == nil || !strings.Contains(err.Error(), "metrics") {
		t.Fatalf("daemon with a taken metrics address: %v", err)
	}
	if _, err := os.Stat(filepath.Join(f.state, device.FileSocket)); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("socket left behind: %v", err)
	}
}
