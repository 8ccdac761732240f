package conform

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"strings"
	"testing"
	"time"

	"github.com/plgd-dev/go-coap/v3/message"
	"github.com/plgd-dev/go-coap/v3/message/codes"
	"github.com/plgd-dev/go-coap/v3/mux"
	coapnet "github.com/plgd-dev/go-coap/v3/net"
	"github.com/plgd-dev/go-coap/v3/options"
	"github.com/plgd-dev/go-coap/v3/udp"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/teep-go/teep/internal/tam/tamtest"
	"github.com/teep-go/teep/internal/tam/teepcoap"
	"github.com/teep-go/teep/teep"
)

// The DTLS pre-shared key coapTAM accepts.
const (
	testPSKIdentity = "conform-kit"
	testPSK         = "0123456789abcdef0123456789abcdef"
)

// coapTAM serves the engine of x over CoAP on loopback: UDP, DTLS (a
// certificate from the returned roots, or testPSK) and TCP.
func coapTAM(t *testing.T, x *tamtest.TAM) (*teepcoap.Server, *x509.CertPool) {
	t.Helper()
	h, err := teepcoap.NewHandler(teepcoap.Config{Engine: x.Engine, LegacyPath: "/tam/legacy", Registerer: prometheus.NewRegistry()})
	if err != nil {
		t.Fatal(err)
	}
	cert, roots, _ := tamtest.LoopbackCert(t)
	srv, err := teepcoap.Listen(teepcoap.ServerConfig{Handler: h, UDPAddr: "127.0.0.1:0", DTLSAddr: "127.0.0.1:0", TCPAddr: "127.0.0.1:0",
		Certificate: cert, PSK: map[string][]byte{testPSKIdentity: []byte(testPSK)}})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("teepcoap: serve: %v", err)
		}
	})
	return srv, roots
}

// Our TAM passes every check over CoAP too, over UDP and TCP, in both
// numberings; the HTTP transport checks are not applicable, each saying
// why, and nothing is skipped.
func TestOurTAMConformsOverCoAP(t *testing.T) {
	x, agent := ourTAM(t)
	srv, roots := coapTAM(t, x)
	dtlsURL := "coaps://" + srv.Addr(teepcoap.TransportDTLS).String() + "/tam"
	for _, c := range []struct {
		url   string
		num   teep.Numbering
		roots *x509.CertPool
		psk   bool
	}{
		{"coap://" + srv.Addr(teepcoap.TransportUDP).String() + "/tam", teep.Draft26, nil, false},
		{"coap+tcp://" + srv.Addr(teepcoap.TransportTCP).String() + "/tam", teep.Draft26, nil, false},
		{"coap://" + srv.Addr(teepcoap.TransportUDP).String() + "/tam/legacy", NumberingAuto, nil, false},
		{dtlsURL, teep.Draft26, roots, false},
		{dtlsURL, teep.Draft26, nil, true},
	} {
		o := TAMOptions{URL: c.url, Numbering: c.num, AgentKey: agent, TAMKey: x.Key()}
		if c.roots != nil {
			o.TLSConfig = &tls.Config{RootCAs: c.roots, MinVersion: tls.VersionTLS12}
		}
		if c.psk {
			o.PSK, o.PSKIdentity = []byte(testPSK), testPSKIdentity
		}
		rep, err := RunTAM(context.Background(), o)
		if err != nil {
			t.Fatal(err)
		}
		var text bytes.Buffer
		rep.WriteText(&text)
		if !rep.OK() || rep.Skipped != 0 || rep.Failed != 0 {
			t.Fatalf("%s:\n%s", c.url, text.String())
		}
		coapChecks := 0
		for _, res := range rep.Results {
			switch {
			case strings.HasPrefix(res.ID, "http."):
				if res.Status != NotApplicable || !strings.Contains(res.Detail, "not applicable over COAP") {
					t.Errorf("%s: %s %q", res.ID, res.Status, res.Detail)
				}
			case strings.HasPrefix(res.ID, "coap."):
				coapChecks++
			}
		}
		if coapChecks != 6 || rep.NotApplicable != 7 {
			t.Fatalf("%d coap checks, %d not applicable:\n%s", coapChecks, rep.NotApplicable, text.String())
		}
		if c.num == NumberingAuto && rep.Numbering != teep.Legacy.String() {
			t.Fatalf("auto numbering found %s on the legacy endpoint", rep.Numbering)
		}
	}
	// A TAM whose certificate the kit cannot verify, or a wrong PSK: no
	// report, an error naming the connection.
	for name, o := range map[string]TAMOptions{
		"unknown CA": {URL: dtlsURL, Numbering: teep.Draft26},
		"wrong PSK":  {URL: dtlsURL, Numbering: teep.Draft26, PSK: []byte("not the key, not the key, not it"), PSKIdentity: testPSKIdentity},
	} {
		// A refused PSK may get no answer at all: bound the wait.
		ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
		rep, err := RunTAM(ctx, o)
		cancel()
		if err == nil {
			t.Errorf("%s: the kit ran against a DTLS peer it could not authenticate (ok=%v)", name, rep.OK())
		}
	}
	// And over HTTP the CoAP checks are the ones not applicable.
	rep, err := RunTAM(context.Background(), TAMOptions{URL: x.URL, Numbering: teep.Draft26, AgentKey: agent, TAMKey: x.Key()})
	if err != nil {
		t.Fatal(err)
	}
	if r := rep.Result("coap.empty-post"); r == nil || r.Status != NotApplicable || rep.NotApplicable != 6 {
		t.Fatalf("over HTTP: coap.empty-post %+v, %d not applicable", r, rep.NotApplicable)
	}
}

// A CoAP TAM that answers every request 2.04 with a payload and no
// Content-Format, and never checks a method, a format or a size: every
// CoAP transport check must fail against it.
func TestCoAPChecksFail(t *testing.T) {
	l, err := coapnet.NewListenUDP("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	m := mux.NewRouter()
	m.DefaultHandle(mux.HandlerFunc(func(w mux.ResponseWriter, r *mux.Message) {
		w.SetResponse(codes.Changed, message.TextPlain, bytes.NewReader([]byte("anything")))
		w.Message().Remove(message.ContentFormat)
	}))
	srv := udp.NewServer(options.WithMux(m), options.WithBlockwise(false, 0, 0))
	go srv.Serve(l)
	t.Cleanup(srv.Stop)
	rep, err := RunTAM(context.Background(), TAMOptions{URL: "coap://" + l.LocalAddr().String() + "/tam", Numbering: teep.Draft26})
	if err != nil {
		t.Fatal(err)
	}
	for _, id := range []string{"coap.empty-post", "coap.wrong-content-format", "coap.missing-content-format", "coap.wrong-accept", "coap.only-post", "coap.oversized-body"} {
		if r := rep.Result(id); r == nil || r.Status != Fail {
			t.Errorf("%s: %+v, want fail", id, r)
		}
	}
}
