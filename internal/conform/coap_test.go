package conform

import (
	"bytes"
	"context"
	"strings"
	"testing"

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

// coapTAM serves the engine of x over CoAP (UDP and TCP) on loopback.
func coapTAM(t *testing.T, x *tamtest.TAM) *teepcoap.Server {
	t.Helper()
	h, err := teepcoap.NewHandler(teepcoap.Config{Engine: x.Engine, LegacyPath: "/tam/legacy", Registerer: prometheus.NewRegistry()})
	if err != nil {
		t.Fatal(err)
	}
	srv, err := teepcoap.Listen(teepcoap.ServerConfig{Handler: h, UDPAddr: "127.0.0.1:0", TCPAddr: "127.0.0.1:0"})
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
	return srv
}

// Our TAM passes every check over CoAP too, over UDP and TCP, in both
// numberings; the HTTP transport checks are not applicable, each saying
// why, and nothing is skipped.
func TestOurTAMConformsOverCoAP(t *testing.T) {
	x, agent := ourTAM(t)
	srv := coapTAM(t, x)
	for _, c := range []struct {
		url string
		num teep.Numbering
	}{
		{"coap://" + srv.Addr(teepcoap.TransportUDP).String() + "/tam", teep.Draft26},
		{"coap+tcp://" + srv.Addr(teepcoap.TransportTCP).String() + "/tam", teep.Draft26},
		{"coap://" + srv.Addr(teepcoap.TransportUDP).String() + "/tam/legacy", NumberingAuto},
	} {
		rep, err := RunTAM(context.Background(), TAMOptions{URL: c.url, Numbering: c.num, AgentKey: agent, TAMKey: x.Key()})
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
