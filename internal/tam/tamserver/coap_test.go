package tamserver

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/teep-go/teep/internal/broker"
	"github.com/teep-go/teep/internal/tam/teepcoap"
	"github.com/teep-go/teep/teep"
)

func TestParsePSKs(t *testing.T) {
	m, err := ParsePSKs([]byte("# devices\n\ndev-1 00112233445566778899aabbccddeeff\n  dev-2   000102030405060708090a0b0c0d0e0f1011 \n"))
	if err != nil || len(m) != 2 || len(m["dev-2"]) != 18 {
		t.Fatalf("%v %v", m, err)
	}
	for _, bad := range []string{
		"dev-1",
		"dev-1 zz112233445566778899aabbccddeeff",
		"dev-1 0011",
		"dev-1 00112233445566778899aabbccddeeff extra",
		"dev-1 00112233445566778899aabbccddeeff\ndev-1 00112233445566778899aabbccddeeff",
		strings.Repeat("i", MaxPSKIdentityLen+1) + " 00112233445566778899aabbccddeeff",
	} {
		if _, err := ParsePSKs([]byte(bad)); err == nil {
			t.Errorf("ParsePSKs(%q) accepted", bad)
		}
	}
}

// TestCoAPListeners: a TAM opened with CoAP listeners (PSKs from the data
// directory) answers an empty POST over UDP and DTLS with a QueryRequest
// it signed; a secure listener without credentials is refused at Open.
func TestCoAPListeners(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	if _, err := Open(ctx, Options{DataDir: dir, CoAPSAddr: "127.0.0.1:0"}); err == nil || !strings.Contains(err.Error(), "needs a certificate") {
		t.Fatalf("coaps without credentials: %v", err)
	}
	key := "000102030405060708090a0b0c0d0e0f"
	if err := os.WriteFile(filepath.Join(dir, FileCoAPPSK), []byte("dev-1 "+key+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	srv, err := Open(ctx, Options{DataDir: dir, CoAPAddr: "127.0.0.1:0", CoAPSAddr: "127.0.0.1:0"})
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	sctx, cancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- srv.CoAP.Serve(sctx) }()
	defer func() {
		cancel()
		<-done
	}()
	psk := make([]byte, 16)
	for i := range psk {
		psk[i] = byte(i)
	}
	for _, c := range []struct {
		uri string
		o   broker.CoAPOptions
	}{
		{"coap://" + srv.CoAP.Addr(teepcoap.TransportUDP).String() + "/tam", broker.CoAPOptions{}},
		{"coaps://" + srv.CoAP.Addr(teepcoap.TransportDTLS).String() + "/tam", broker.CoAPOptions{PSKIdentity: "dev-1", PSK: psk}},
	} {
		cl := broker.NewCoAPClient(c.o)
		msg, err := cl.Post(ctx, c.uri, nil)
		cl.Close()
		if err != nil {
			t.Fatalf("%s: %v", c.uri, err)
		}
		op, err := teep.Open(msg, teep.OpenOptions{Keys: srv.Engine.PublicKeys()})
		if err != nil {
			t.Fatalf("%s: %v", c.uri, err)
		}
		if _, ok := op.Message.(*teep.QueryRequest); !ok {
			t.Fatalf("%s: %T", c.uri, op.Message)
		}
	}
}
