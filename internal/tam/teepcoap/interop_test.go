package teepcoap_test

// Interop with an independent CoAP implementation: libcoap's coap-client
// (Debian's libcoap3-bin, installed by .ci/run) POSTs an empty payload with
// the TEEP Content-Format to the TAM's CoAP resource, over UDP and over
// DTLS with a PSK, and the answer must be a QueryRequest signed by the TAM.

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/teep-go/teep/internal/coapbind"
	"github.com/teep-go/teep/internal/tam/tamtest"
	"github.com/teep-go/teep/internal/tam/teepcoap"
	"github.com/teep-go/teep/teep"
)

// coapClient finds libcoap's client: Debian ships it as coap-client-<tls
// library>; upstream builds install coap-client.
func coapClient(t *testing.T) string {
	t.Helper()
	for _, name := range []string{"coap-client", "coap-client-openssl", "coap-client-gnutls", "coap-client-notls"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	if os.Getenv("CI") == "true" {
		t.Fatal("coap-client (Debian package libcoap3-bin) is not installed; .ci/run installs it")
	}
	t.Skip("coap-client not found: install Debian's libcoap3-bin to run the interop test")
	return ""
}

func TestInteropLibcoap(t *testing.T) {
	client := coapClient(t)
	srv := tamtest.Start(t, tamtest.Options{})
	h, err := teepcoap.NewHandler(teepcoap.Config{Engine: srv.Engine})
	if err != nil {
		t.Fatal(err)
	}
	const identity, key = "interop-device", "0123456789abcdef0123456789abcdef"
	cs, err := teepcoap.Listen(teepcoap.ServerConfig{Handler: h, UDPAddr: "127.0.0.1:0", DTLSAddr: "127.0.0.1:0", TCPAddr: "127.0.0.1:0",
		PSK: map[string][]byte{identity: []byte(key)}})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- cs.Serve(ctx) }()
	defer func() {
		cancel()
		if err := <-done; err != nil {
			t.Error(err)
		}
	}()
	cf := fmt.Sprint(uint16(coapbind.ContentFormat))
	for _, c := range []struct {
		name string
		uri  string
		args []string
		dtls bool
	}{
		{"udp", "coap://" + cs.Addr(teepcoap.TransportUDP).String() + "/tam", nil, false},
		{"tcp", "coap+tcp://" + cs.Addr(teepcoap.TransportTCP).String() + "/tam", nil, false},
		{"dtls-psk", "coaps://" + cs.Addr(teepcoap.TransportDTLS).String() + "/tam", []string{"-u", identity, "-k", key}, true},
	} {
		t.Run(c.name, func(t *testing.T) {
			if c.dtls && filepath.Base(client) == "coap-client-notls" {
				t.Skip("this coap-client build has no DTLS")
			}
			out := filepath.Join(t.TempDir(), "answer")
			args := append([]string{"-m", "post", "-t", cf, "-A", cf, "-B", "20", "-o", out}, c.args...)
			args = append(args, c.uri)
			cctx, ccancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer ccancel()
			log, err := exec.CommandContext(cctx, client, args...).CombinedOutput()
			if err != nil {
				t.Fatalf("%s %v: %v\n%s", client, args, err, log)
			}
			answer, err := os.ReadFile(out)
			if err != nil {
				t.Fatalf("no answer written: %v\n%s", err, log)
			}
			op, err := teep.Open(answer, teep.OpenOptions{Numbering: teep.Draft26, Keys: srv.Keys()})
			if err != nil {
				t.Fatalf("answer (%d bytes) is not a TEEP message signed by the TAM: %v\n%s", len(answer), err, log)
			}
			if _, ok := op.Message.(*teep.QueryRequest); !ok || !op.Verified {
				t.Fatalf("answer is a verified=%v %T, want a QueryRequest", op.Verified, op.Message)
			}
		})
	}
}
