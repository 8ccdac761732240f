package fleetsim

import (
	"context"
	"errors"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/teep-go/teep/cosekey"
	"github.com/teep-go/teep/internal/tam"
	"github.com/teep-go/teep/internal/tam/appraiser"
	"github.com/teep-go/teep/internal/tam/tamserver"
	"github.com/teep-go/teep/internal/tam/teepcoap"
	"github.com/teep-go/teep/internal/verifier"
	"github.com/teep-go/teep/suit"
)

// runningTAM is what `teep tam serve` runs (tamserver), on loopback
// listeners: HTTP (TEEP and the admin API) and CoAP over UDP. Its Verifier
// endorses attest.
type runningTAM struct {
	srv      *tamserver.TAM
	base     string // http://host:port
	url, udp string // TEEP over HTTP, over CoAP/UDP
}

func startRunningTAM(t *testing.T, attest *cosekey.Key) *runningTAM {
	t.Helper()
	v, err := verifier.New(verifier.Config{Policy: &verifier.Policy{ID: "running", Endorsements: []verifier.Endorsement{{Name: "fleet", Key: attest.PublicKey()}}}})
	if err != nil {
		t.Fatal(err)
	}
	srv, err := tamserver.Open(context.Background(), tamserver.Options{DataDir: filepath.Join(t.TempDir(), "tam"), Version: "test",
		CoAPAddr: "127.0.0.1:0", Appraiser: &appraiser.Verifier{Local: v}})
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		srv.Close()
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ctx, ln, nil) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("serve: %v", err)
		}
		srv.Close()
	})
	x := &runningTAM{srv: srv, base: "http://" + ln.Addr().String()}
	x.url = x.base + "/tam"
	x.udp = "coap://" + srv.CoAP.Addr(teepcoap.TransportUDP).String() + "/tam"
	return x
}

// TestRunningTAM drives a running TAM over HTTP and over CoAP/UDP, devices
// pre-registered through its admin API (steady, rollout) or attesting with
// the key its Verifier endorses; the TAM's own store must then hold every
// device in policy. The TAM's process is this one: --tam-pid's figures
// come from /proc/self.
func TestRunningTAM(t *testing.T) {
	ctx := context.Background()
	ak, err := cosekey.Generate(cosekey.AlgESP256)
	if err != nil {
		t.Fatal(err)
	}
	x := startRunningTAM(t, ak)
	for _, c := range []struct {
		name, url, scenario string
	}{
		{"http steady", x.url, ScenarioSteady},
		{"http rollout", x.url, ScenarioRollout},
		{"http attest", x.url, ScenarioAttest},
		{"coap steady", x.udp, ScenarioSteady},
		{"coap rollout", x.udp, ScenarioRollout},
		{"coap attest", x.udp, ScenarioAttest},
	} {
		t.Run(c.name, func(t *testing.T) {
			var keys []*cosekey.Key
			var comp suit.ComponentID
			o := Options{Devices: 12, Concurrency: 4, Rounds: 2, Scenario: c.scenario, TAM: c.url, AdminURL: x.base,
				AdminToken: x.srv.Token, TAMPID: os.Getpid(),
				Keep: func(ctx context.Context, tm *tamserver.TAM, devs []*cosekey.Key, id suit.ComponentID) error {
					if tm != nil {
						t.Error("an in-process TAM for a running one")
					}
					keys, comp = devs, id
					return nil
				}}
			if c.scenario == ScenarioAttest {
				o.AttestationKey = ak
			}
			r, err := Run(ctx, o)
			if err != nil {
				t.Fatal(err)
			}
			if r.ErrorCount != 0 || r.TAM != "external" || r.Database != "" {
				t.Fatalf("%+v", r)
			}
			if want := strings.SplitN(c.url, ":", 2)[0]; r.Transport != want {
				t.Errorf("transport %q, want %q", r.Transport, want)
			}
			if r.TAMCPUMsPerRound <= 0 || r.TAMPeakRSSBytes <= 0 || r.TAMRSSBytes <= 0 {
				t.Errorf("TAM process figures missing: %+v", r)
			}
			if len(keys) != 12 {
				t.Fatalf("%d devices", len(keys))
			}
			// The TAM's own view, not the admin API's.
			if err := CheckPolicy(ctx, x.srv.Engine, keys, comp, 1); err != nil {
				t.Fatal(err)
			}
			di, err := x.srv.Engine.DeviceInfo(ctx, keys[0].KID(), 0)
			if err != nil {
				t.Fatal(err)
			}
			if attested := di.Attestation != tam.AttestationNone; attested != (c.scenario == ScenarioAttest) || di.Preregistered == attested {
				t.Errorf("device: %+v", di.Device)
			}
		})
	}
}

func TestRunningTAMRefused(t *testing.T) {
	ctx := context.Background()
	for _, o := range []Options{
		{TAM: "http://192.0.2.1/tam"},
		{TAM: "coap://127.0.0.1/tam", AdminURL: "http://198.51.100.7:8080"},
		{TAM: "http://example.com/tam"},
	} {
		if _, err := Run(ctx, o); !errors.Is(err, ErrNotLoopback) {
			t.Errorf("%+v: %v, want ErrNotLoopback", o, err)
		}
	}
	for _, o := range []Options{
		{TAM: "coap://127.0.0.1/tam"}, // no admin URL
		{TAM: "http://127.0.0.1:1/tam", DB: "postgres://x"},
		{TAM: "http://127.0.0.1:1/tam", HistoryRounds: 5},
		{TAM: "http://127.0.0.1:1/tam", Scenario: ScenarioAttest}, // no attestation key
		{TAM: "ftp://127.0.0.1/tam", NonLoopbackUnsafe: true},
	} {
		if _, err := Run(ctx, o); err == nil {
			t.Errorf("%+v: accepted", o)
		}
	}
	for _, u := range []string{"http://127.0.0.1:8080/tam", "coap://[::1]:5683/tam", "http://localhost/tam"} {
		if err := checkLoopback(u); err != nil {
			t.Errorf("%s: %v", u, err)
		}
	}
	// A closed port: the admin API cannot be reached, a clear error.
	if _, err := Run(ctx, Options{TAM: "http://127.0.0.1:1/tam"}); err == nil || !strings.Contains(err.Error(), "admin API") {
		t.Errorf("closed port: %v", err)
	}
}
