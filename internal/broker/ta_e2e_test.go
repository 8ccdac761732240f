package broker_test

import (
	"context"
	"crypto/ed25519"
	"encoding/hex"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/teep-go/teep/cosekey"
	"github.com/teep-go/teep/internal/broker"
	"github.com/teep-go/teep/internal/fetch"
	"github.com/teep-go/teep/internal/tam/tamtest"
	"github.com/teep-go/teep/internal/tee/wasmta/handta"
	"github.com/teep-go/teep/internal/tee/wasmta/tabuild"
	"github.com/teep-go/teep/suit"
)

// serveLocal serves the device's local API on a Unix socket for the test.
func serveLocal(t *testing.T, d *simDevice) *broker.LocalClient {
	t.Helper()
	sock := filepath.Join(t.TempDir(), "s.sock")
	ln, err := broker.ListenUnix(sock)
	if err != nil {
		t.Fatal(err)
	}
	sctx, stop := context.WithCancel(ctx)
	served := make(chan error, 1)
	go func() { served <- broker.Serve(sctx, ln, d.Broker().LocalHandler(), time.Second, nil) }()
	t.Cleanup(func() {
		stop()
		if err := <-served; err != nil {
			t.Errorf("Serve: %v", err)
		}
	})
	return broker.NewLocalClient(sock)
}

// taEnvelope is a signed Trusted Component for a TA: integrated, or
// fetched from uri; with invoke, its manifest runs the TA after install.
func taEnvelope(t *testing.T, signer *cosekey.Signer, name string, seq uint64, code []byte, uri string, invoke bool) []byte {
	t.Helper()
	c := suit.ComponentSpec{ID: tamtest.PayloadID(name), Payload: code, Integrated: uri == "", URI: uri, Invoke: invoke}
	e, err := suit.Build(suit.ManifestSpec{ManifestComponentID: tamtest.ManifestID(name), SequenceNumber: seq, Components: []suit.ComponentSpec{c}})
	if err != nil {
		t.Fatal(err)
	}
	if err := e.Sign(signer); err != nil {
		t.Fatal(err)
	}
	b, err := e.Marshal(suit.MarshalOptions{})
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestE2ESignerTA: the example signer TA, installed through the TAM,
// answers its public key and signatures that verify with it over the
// local API; its outputs are exactly a key and a signature; another TA
// cannot read its key; the key survives the update to v2 and is gone
// after removal (a reinstalled signer has a new one).
func TestE2ESignerTA(t *testing.T) {
	v1 := tabuild.Build(t, "../../examples/ta/signer")
	v2 := tabuild.Build(t, "../../examples/ta/signer", "-ldflags=-X main.version=2")
	spy := tabuild.Build(t, "../tee/wasmta/testdata/ta")
	srv, d, signer := defaultDevice(t)
	c := serveLocal(t, d)
	ta := tamtest.PayloadID("signer")
	invoke := func(id suit.ComponentID, in string) string {
		t.Helper()
		r, err := c.Invoke(ctx, "", id, []byte(in))
		if err != nil {
			t.Fatalf("invoke %q: %v", in, err)
		}
		return string(r.Output)
	}
	pub := func() ed25519.PublicKey {
		t.Helper()
		out := invoke(ta, "pub")
		b, err := hex.DecodeString(out)
		if err != nil || len(b) != ed25519.PublicKeySize {
			t.Fatalf("pub answered %q", out)
		}
		return b
	}
	verify := func(pk ed25519.PublicKey, msg string) {
		t.Helper()
		out := invoke(ta, "sign "+msg)
		sig, err := hex.DecodeString(out)
		if err != nil || len(sig) != ed25519.SignatureSize || !ed25519.Verify(pk, []byte(msg), sig) {
			t.Fatalf("signature of %q: %q does not verify", msg, out)
		}
	}

	id := srv.Upload(taEnvelope(t, signer, "signer", 1, v1, "", false))
	srv.Require(id)
	spyID := srv.Upload(taEnvelope(t, signer, "spy", 1, spy, "", false))
	srv.Require(spyID)
	d.sync()
	pk := pub()
	verify(pk, "hello")
	verify(pk, "a longer message, with spaces")
	if got := invoke(tamtest.PayloadID("spy"), "get ed25519-seed"); got != "<none>" {
		t.Fatalf("another TA reads the signer's key: %q", got)
	}
	if _, err := c.Invoke(ctx, "", ta, []byte("export")); !isStatus(err, 502) {
		t.Fatalf("unknown command: %v", err)
	}

	srv.Upload(taEnvelope(t, signer, "signer", 2, v2, "", false))
	d.sync()
	if got := pub(); !got.Equal(pk) {
		t.Fatal("the update to v2 changed the key")
	}
	verify(pk, "after the update")

	srv.Unrequire(id)
	d.sync()
	if _, err := c.Invoke(ctx, "", ta, []byte("pub")); !isStatus(err, 404) {
		t.Fatalf("invoke after removal: %v", err)
	}
	srv.Upload(taEnvelope(t, signer, "signer", 3, v1, "", false))
	srv.Require(id)
	d.sync()
	if got := pub(); got.Equal(pk) {
		t.Fatal("the reinstalled signer has the removed one's key")
	}
}

// TestE2ESUITInvoke: a manifest with suit-invoke runs its TA once right
// after the install (the counter is at 1 before anyone calls it); a TA
// that fails there makes the Update a manifest processing failure whose
// SUIT report names the invoke directive, and stays installed.
func TestE2ESUITInvoke(t *testing.T) {
	srv, d, signer := defaultDevice(t)
	c := serveLocal(t, d)
	id := srv.Upload(taEnvelope(t, signer, "counter", 1, handta.Counter("1"), "", true))
	srv.Require(id)
	d.sync()
	r, err := c.Invoke(ctx, "", tamtest.PayloadID("counter"), nil)
	if err != nil || string(r.Output) != "counter v1: 2" {
		t.Fatalf("first call after an invoking install: %+v %v", r, err)
	}
	// A later session that changes nothing does not run it again.
	d.sync()
	if r, err := c.Invoke(ctx, "", tamtest.PayloadID("counter"), nil); err != nil || string(r.Output) != "counter v1: 3" {
		t.Fatalf("after an idle session: %+v %v", r, err)
	}

	bad := srv.Upload(taEnvelope(t, signer, "trap", 1, handta.Trap(), "", true))
	srv.Require(bad)
	err = d.Broker().Sync(ctx, "")
	if err == nil || !strings.Contains(err.Error(), "invoke") {
		t.Fatalf("sync with a failing suit-invoke: %v", err)
	}
	if got := d.installed("tee0"); got[payload("trap")] != 1 {
		t.Fatalf("the TA whose invocation failed is not installed: %v", got)
	}
	kid := d.TEE("tee0").Agent.PublicKey().KID()
	var found bool
	for _, rep := range srv.Device(kid).Reports {
		for _, raw := range rep.SUITReports {
			sr, err := suit.ParseReport(raw)
			if err != nil {
				t.Fatalf("report: %v", err)
			}
			if f := sr.Failure; f != nil && f.Reason == suit.ReasonOperationFailed && f.Record.Section == suit.SectionInvoke {
				found = true
			}
		}
	}
	if !found {
		t.Fatalf("no SUIT report of the failed invoke reached the TAM: %+v", srv.Device(kid).Reports)
	}
}

// TestE2EInvokeByTEEName: on a device with two TEEs, an invocation goes
// to the TEE it names (each TEE keeps its own TA state), the default TEE
// when it names none, and an unknown name is refused.
func TestE2EInvokeByTEEName(t *testing.T) {
	srv, d, signer := defaultDevice(t, "tee0", "tee1")
	c := serveLocal(t, d)
	id := srv.Upload(taEnvelope(t, signer, "counter", 1, handta.Counter("1"), "", false))
	srv.Require(id)
	d.sync()
	ta := tamtest.PayloadID("counter")
	for _, step := range []struct{ tee, wantTEE, out string }{
		{"tee1", "tee1", "counter v1: 1"},
		{"tee1", "tee1", "counter v1: 2"},
		{"tee0", "tee0", "counter v1: 1"},
		{"", "tee0", "counter v1: 2"},
		{"tee1", "tee1", "counter v1: 3"},
	} {
		r, err := c.Invoke(ctx, step.tee, ta, nil)
		if err != nil || r.TEE != step.wantTEE || string(r.Output) != step.out {
			t.Fatalf("invoke on %q: %+v %v, want %s %q", step.tee, r, err, step.wantTEE, step.out)
		}
	}
	if _, err := c.Invoke(ctx, "tee9", ta, nil); !isStatus(err, 404) {
		t.Fatalf("unknown TEE: %v", err)
	}
}

// TestE2ELargeTA: a TA of more than 10 MiB (the counter with a large
// custom section, made here) is installed through the TAM over loopback,
// its payload fetched by URI, and runs.
func TestE2ELargeTA(t *testing.T) {
	code := withBlob(handta.Counter("big"), 10<<20+12345)
	var fetched atomic.Int64
	files := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fetched.Add(1)
		w.Write(code)
	}))
	defer files.Close()
	tees := openTEEs(t, t.TempDir(), "tee0")
	srv := startTAM(t, attestationKeys(tees))
	signer := tamtest.Signer(t)
	srv.TrustSigner(signer.PublicKey())
	d := newDevice(t, tees, []string{"tee0"}, deviceOptions{tamURL: srv.URL, tamKeys: srv.Keys(),
		signerKeys: []*cosekey.Key{signer.PublicKey()}, fetcher: &fetch.HTTP{Client: files.Client()}})
	c := serveLocal(t, d)
	id := srv.Upload(taEnvelope(t, signer, "big", 1, code, files.URL+"/big.wasm", false))
	srv.Require(id)
	d.sync()
	if fetched.Load() != 1 {
		t.Fatalf("payload fetched %d times", fetched.Load())
	}
	if got := d.content("tee0", tamtest.PayloadID("big")); len(got) != len(code) || len(got) < 10<<20 {
		t.Fatalf("installed %d bytes, want %d", len(got), len(code))
	}
	for i, want := range []string{"counter vbig: 1", "counter vbig: 2"} {
		r, err := c.Invoke(ctx, "", tamtest.PayloadID("big"), nil)
		if err != nil || string(r.Output) != want {
			t.Fatalf("call %d: %+v %v", i, r, err)
		}
	}
}

// withBlob appends a custom section (WebAssembly Core Specification §5.5.3,
// ignored when run) of about n bytes to a module.
func withBlob(code []byte, n int) []byte {
	name := "teep-test-blob"
	content := append([]byte{byte(len(name))}, name...)
	blob := make([]byte, n)
	for i := range blob {
		blob[i] = byte(i * 31)
	}
	content = append(content, blob...)
	out := append([]byte{}, code...)
	out = append(out, 0x00)
	for v := uint64(len(content)); ; {
		b := byte(v & 0x7f)
		v >>= 7
		if v != 0 {
			out = append(out, b|0x80)
			continue
		}
		out = append(out, b)
		break
	}
	return append(out, content...)
}
