package main

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/teep-go/teep/internal/tam/tamtest"
	"github.com/teep-go/teep/internal/tam/teepcoap"
)

// teep conform tam --tam-psk against a coaps:// (DTLS PSK) TAM: the key
// file is read as teep device run reads it, and a wrong key fails the run.
func TestConformTAMOverDTLSWithPSK(t *testing.T) {
	x := tamtest.Start(t, tamtest.Options{})
	h, err := teepcoap.NewHandler(teepcoap.Config{Engine: x.Engine, Registerer: prometheus.NewRegistry()})
	if err != nil {
		t.Fatal(err)
	}
	srv, err := teepcoap.Listen(teepcoap.ServerConfig{Handler: h, DTLSAddr: "127.0.0.1:0",
		PSK: map[string][]byte{"kit": []byte("0123456789abcdef")}})
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
	url := "coaps://" + srv.Addr(teepcoap.TransportDTLS).String() + "/tam"
	dir := t.TempDir()
	good, bad := filepath.Join(dir, "good.psk"), filepath.Join(dir, "bad.psk")
	if err := os.WriteFile(good, []byte("kit 30313233343536373839616263646566\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(bad, []byte("kit 00000000000000000000000000000000\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	out, errs, code := teepRun(t, nil, "conform", "tam", "--numbering", "draft-26", "--tam-psk", good, url)
	if code != 0 || !strings.Contains(out, "PASS: every required check passed") {
		t.Fatalf("with the PSK: exit %d\n%s%s", code, out, errs)
	}
	_, errs, code = teepRun(t, nil, "conform", "tam", "--numbering", "draft-26", "--timeout", "3s", "--tam-psk", bad, url)
	if code == 0 || !strings.Contains(errs, "DTLS handshake") {
		t.Fatalf("with a wrong PSK: exit %d, %s", code, errs)
	}
}
