package broker_test

// End-to-end tests of TEEP over CoAP: software TEEs with their Agents
// behind a Broker whose TAM URIs are coap://, coaps:// (certificate and
// PSK), coap+tcp:// and coaps+tcp://, against a complete TAM (tamtest)
// whose engine and store the CoAP listeners of teepcoap drive, over real
// loopback sockets.

import (
	"bytes"
	"context"
	"crypto/x509"
	"io"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	dto "github.com/prometheus/client_model/go"
	"github.com/teep-go/teep/cosekey"
	"github.com/teep-go/teep/internal/agent"
	"github.com/teep-go/teep/internal/broker"
	"github.com/teep-go/teep/internal/device"
	"github.com/teep-go/teep/internal/tam/tamtest"
	"github.com/teep-go/teep/internal/tam/teepcoap"
)

// coapTAM is a test TAM with CoAP listeners on every transport.
type coapTAM struct {
	*tamtest.TAM
	coap     *teepcoap.Server
	registry *prometheus.Registry
	roots    *x509.CertPool
	pskID    string
	psk      []byte
}

// blocks reads the TAM's counter of Block-wise messages received.
func (c *coapTAM) blocks(transport, option string) prometheus.Collector {
	return counterOf(c.registry, "teep_tam_coap_blocks_total", map[string]string{"transport": transport, "option": option})
}

// counterOf finds one labelled counter in a registry, as a Collector for
// testutil.ToFloat64.
func counterOf(reg *prometheus.Registry, name string, labels map[string]string) prometheus.Collector {
	mfs, _ := reg.Gather()
	v := 0.0
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
		for _, m := range mf.GetMetric() {
			if matches(m, labels) {
				v = m.GetCounter().GetValue()
			}
		}
	}
	g := prometheus.NewGauge(prometheus.GaugeOpts{Name: "value"})
	g.Set(v)
	return g
}

func matches(m *dto.Metric, labels map[string]string) bool {
	n := 0
	for _, lp := range m.GetLabel() {
		if labels[lp.GetName()] == lp.GetValue() {
			n++
		}
	}
	return n == len(labels)
}

// url is the TEEP resource of the TAM over a scheme.
func (c *coapTAM) url(scheme string) string {
	tr := map[string]string{broker.SchemeCoAP: teepcoap.TransportUDP, broker.SchemeCoAPS: teepcoap.TransportDTLS,
		broker.SchemeCoAPTCP: teepcoap.TransportTCP, broker.SchemeCoAPSTCP: teepcoap.TransportTLS}[scheme]
	return scheme + "://" + c.coap.Addr(tr).String() + "/tam"
}

// startCoAPTAM starts a tamtest TAM and CoAP listeners (UDP, DTLS with a
// certificate and a PSK, TCP, TLS) on its engine.
func startCoAPTAM(t *testing.T, endorse []*cosekey.Key, mod ...func(*teepcoap.Config, *teepcoap.ServerConfig)) *coapTAM {
	t.Helper()
	srv := tamtest.Start(t, tamtest.Options{Endorse: endorse})
	cert, roots, _ := tamtest.LoopbackCert(t)
	c := &coapTAM{TAM: srv, registry: prometheus.NewRegistry(), roots: roots, pskID: "device-1", psk: []byte("0123456789abcdef0123456789abcdef")}
	hc := teepcoap.Config{Engine: srv.Engine, LegacyPath: "/tam/legacy", Registerer: c.registry}
	sc := teepcoap.ServerConfig{UDPAddr: "127.0.0.1:0", DTLSAddr: "127.0.0.1:0", TCPAddr: "127.0.0.1:0", TLSAddr: "127.0.0.1:0",
		Certificate: cert, PSK: map[string][]byte{c.pskID: c.psk}}
	for _, m := range mod {
		m(&hc, &sc)
	}
	h, err := teepcoap.NewHandler(hc)
	if err != nil {
		t.Fatal(err)
	}
	sc.Handler = h
	if c.coap, err = teepcoap.Listen(sc); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- c.coap.Serve(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("teepcoap: serve: %v", err)
		}
	})
	return c
}

// coapDevice is one simulated device on CoAP, opened through internal/device
// like every other end-to-end device: software TEE, Agent, Broker.
type coapDevice struct {
	t    *testing.T
	suit *agent.SUIT
	b    *broker.Broker
}

func newCoAPDevice(t *testing.T, tees *fleetTEEs, tee, tamURL string, tamKeys []*cosekey.Key, signers []*cosekey.Key, co broker.CoAPOptions) *coapDevice {
	t.Helper()
	if co.Retry.MaxAttempts == 0 {
		co.Retry = broker.Retry{MaxAttempts: 2, BaseDelay: time.Millisecond, MaxDelay: time.Millisecond}
	}
	d, err := device.Open(ctx, device.Options{StateDir: tees.state, TAM: tamURL, TEEs: []string{tee}, Once: true,
		TAMKeys: tamKeys, SignerKeys: signers, CoAP: co, Retry: co.Retry})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { d.Close() })
	return &coapDevice{t: t, suit: d.TEE(tee).SUIT, b: d.Broker()}
}

func (d *coapDevice) sync() {
	d.t.Helper()
	if err := d.b.Sync(ctx, ""); err != nil {
		d.t.Fatalf("sync: %v", err)
	}
}

func (d *coapDevice) installed() map[string]uint64 {
	d.t.Helper()
	inst, err := d.suit.Installed()
	if err != nil {
		d.t.Fatal(err)
	}
	out := map[string]uint64{}
	for _, c := range inst {
		out[c.ComponentID.String()] = c.Sequence
	}
	return out
}

// coapSetup opens a TEE, starts the CoAP TAM endorsing it, and builds a
// device talking to it over scheme.
func coapSetup(t *testing.T, scheme string, usePSK bool, mod ...func(*teepcoap.Config, *teepcoap.ServerConfig)) (*coapTAM, *coapDevice, *cosekey.Signer) {
	t.Helper()
	tees := openTEEs(t, t.TempDir(), "tee0")
	srv := startCoAPTAM(t, attestationKeys(tees), mod...)
	signer := tamtest.Signer(t)
	srv.TrustSigner(signer.PublicKey())
	co := broker.CoAPOptions{RootCAs: srv.roots}
	if usePSK {
		co = broker.CoAPOptions{PSKIdentity: srv.pskID, PSK: srv.psk}
	}
	d := newCoAPDevice(t, tees, "tee0", srv.url(scheme), srv.Keys(), append(srv.Keys(), signer.PublicKey()), co)
	return srv, d, signer
}

// TestCoAPE2E runs install, update, removal and a requested component
// over every CoAP transport.
func TestCoAPE2E(t *testing.T) {
	for _, c := range []struct {
		name, scheme string
		psk          bool
	}{
		{"udp", broker.SchemeCoAP, false},
		{"dtls-certificate", broker.SchemeCoAPS, false},
		{"dtls-psk", broker.SchemeCoAPS, true},
		{"tcp", broker.SchemeCoAPTCP, false},
		{"tls", broker.SchemeCoAPSTCP, false},
	} {
		t.Run(c.name, func(t *testing.T) {
			srv, d, signer := coapSetup(t, c.scheme, c.psk)
			id := srv.Upload(tamtest.Envelope(t, signer, "app", 1, []byte("app v1")))
			srv.Require(id)
			d.sync()
			if got := d.installed(); got[payload("app")] != 1 {
				t.Fatalf("after first sync: %v", got)
			}
			srv.Upload(tamtest.Envelope(t, signer, "app", 2, []byte("app v2")))
			d.sync()
			if got := d.installed(); got[payload("app")] != 2 {
				t.Fatalf("after update: %v", got)
			}
			srv.Unrequire(id)
			d.sync()
			if got := d.installed(); len(got) != 0 {
				t.Fatalf("after removal: %v", got)
			}
			opt := srv.Upload(tamtest.Envelope(t, signer, "opt", 1, []byte("optional")))
			srv.Offer(opt)
			d.sync()
			if got := d.installed(); len(got) != 0 {
				t.Fatalf("optional component installed unasked: %v", got)
			}
			oid := tamtest.PayloadID("opt")
			if _, err := d.b.RequestTA(ctx, "", oid, ""); err != nil {
				t.Fatal(err)
			}
			if got := d.installed(); got[payload("opt")] != 1 {
				t.Fatalf("after request: %v", got)
			}
			if _, err := d.b.UnrequestTA(ctx, "", oid, ""); err != nil {
				t.Fatal(err)
			}
			if got := d.installed(); len(got) != 0 {
				t.Fatalf("after release: %v", got)
			}
		})
	}
}

// TestCoAPLargeComponent: a 5 MiB Trusted Component reaches the device
// inside an Update over CoAP/UDP, in 1024-byte Block2 blocks.
func TestCoAPLargeComponent(t *testing.T) {
	srv, d, signer := coapSetup(t, broker.SchemeCoAP, false)
	big := make([]byte, 5<<20)
	for i := range big {
		big[i] = byte(i * 7)
	}
	srv.Require(srv.Upload(tamtest.Envelope(t, signer, "big", 1, big)))
	start := time.Now()
	d.sync()
	t.Logf("5 MiB over CoAP/UDP: %v", time.Since(start))
	if got := d.installed(); got[payload("big")] != 1 {
		t.Fatalf("installed: %v", got)
	}
	r, _, err := d.suit.Store().Open(ctx, tamtest.PayloadID("big"))
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	got, err := io.ReadAll(r)
	if err != nil || !bytes.Equal(got, big) {
		t.Fatalf("content differs (%d bytes, %v)", len(got), err)
	}
	blocks := testutil.ToFloat64(srv.blocks("udp", "block2"))
	if blocks < float64(len(big)/1024) {
		t.Fatalf("%v Block2 continuations for a %d-byte Update", blocks, len(big))
	}
}

// testutilValue sums a counter family of a registry.
func testutilValue(reg *prometheus.Registry, name string) float64 {
	mfs, _ := reg.Gather()
	sum := 0.0
	for _, mf := range mfs {
		if mf.GetName() == name {
			for _, m := range mf.GetMetric() {
				sum += m.GetCounter().GetValue()
			}
		}
	}
	return sum
}

// TestCoAPSessionLatency logs the mean time of a policy-check session with
// nothing to install (empty POST, QueryRequest, QueryResponse, end) over
// each transport against the same TAM, next to HTTP. Figures only: it
// asserts that every session succeeds, not how fast.
func TestCoAPSessionLatency(t *testing.T) {
	const rounds = 20
	tees := openTEEs(t, t.TempDir(), "h", "u", "d", "p", "t", "s")
	srv := startCoAPTAM(t, attestationKeys(tees))
	for _, c := range []struct {
		tee, name, url string
		co             broker.CoAPOptions
	}{
		{"h", "http", srv.URL, broker.CoAPOptions{}},
		{"u", "coap (udp)", srv.url(broker.SchemeCoAP), broker.CoAPOptions{}},
		{"d", "coaps (dtls, certificate)", srv.url(broker.SchemeCoAPS), broker.CoAPOptions{RootCAs: srv.roots}},
		{"p", "coaps (dtls, psk)", srv.url(broker.SchemeCoAPS), broker.CoAPOptions{PSKIdentity: srv.pskID, PSK: srv.psk}},
		{"t", "coap+tcp", srv.url(broker.SchemeCoAPTCP), broker.CoAPOptions{}},
		{"s", "coaps+tcp (tls)", srv.url(broker.SchemeCoAPSTCP), broker.CoAPOptions{RootCAs: srv.roots}},
	} {
		d := newCoAPDevice(t, tees, c.tee, c.url, srv.Keys(), srv.Keys(), c.co)
		d.sync() // first contact: attestation, connection set-up
		start := time.Now()
		for i := 0; i < rounds; i++ {
			d.sync()
		}
		t.Logf("%-26s %v per session (mean of %d)", c.name, time.Since(start)/rounds, rounds)
	}
}
