package broker_test

import (
	"context"
	"errors"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/teep-go/teep/internal/broker"
	"github.com/teep-go/teep/internal/tam/tamtest"
	"github.com/teep-go/teep/internal/tee"
	"github.com/teep-go/teep/internal/tee/wasmta/tabuild"
)

// TestE2EInvokeTrustedApplication: the example counter TA is built,
// signed, published to the TAM, installed on the device, invoked over the
// local API, updated to v2 (its sealed counter kept), and removed (invoke
// fails and its state is gone with it).
func TestE2EInvokeTrustedApplication(t *testing.T) {
	v1 := tabuild.Build(t, "../../examples/ta/counter")
	v2 := tabuild.Build(t, "../../examples/ta/counter", "-ldflags=-X main.version=2")
	srv, d, signer := defaultDevice(t)
	sock := filepath.Join(t.TempDir(), "s.sock")
	ln, err := broker.ListenUnix(sock)
	if err != nil {
		t.Fatal(err)
	}
	sctx, stop := context.WithCancel(ctx)
	served := make(chan error, 1)
	go func() { served <- broker.Serve(sctx, ln, d.Broker().LocalHandler(), time.Second, nil) }()
	defer func() {
		stop()
		if err := <-served; err != nil {
			t.Errorf("Serve: %v", err)
		}
	}()
	c := broker.NewLocalClient(sock)
	ta := tamtest.PayloadID("counter")

	if _, err := c.Invoke(ctx, "", ta, nil); !isStatus(err, 404) {
		t.Fatalf("invoke before install: %v", err)
	}
	id := srv.Upload(tamtest.Envelope(t, signer, "counter", 1, v1))
	srv.Require(id)
	d.sync()
	for i, want := range []string{"counter v1: 1", "counter v1: 2"} {
		r, err := c.Invoke(ctx, "", ta, nil)
		if err != nil || string(r.Output) != want || r.TEE != "tee0" {
			t.Fatalf("invoke %d: %+v %v", i, r, err)
		}
	}

	srv.Upload(tamtest.Envelope(t, signer, "counter", 2, v2))
	d.sync()
	if r, err := c.Invoke(ctx, "", ta, nil); err != nil || string(r.Output) != "counter v2: 3" {
		t.Fatalf("invoke after update: %+v %v", r, err)
	}

	srv.Unrequire(id)
	d.sync()
	_, err = c.Invoke(ctx, "", ta, nil)
	if !isStatus(err, 404) || !strings.Contains(err.Error(), "not installed") {
		t.Fatalf("invoke after removal: %v", err)
	}
	// Installed again, it starts from nothing: the old count went with it.
	srv.Upload(tamtest.Envelope(t, signer, "counter", 3, v1))
	srv.Require(id)
	d.sync()
	if r, err := c.Invoke(ctx, "", ta, nil); err != nil || string(r.Output) != "counter v1: 1" {
		t.Fatalf("invoke after reinstall: %+v %v", r, err)
	}
	// A component that is not a module is refused as not runnable.
	data := srv.Upload(tamtest.Envelope(t, signer, "data", 1, []byte("plain data")))
	srv.Require(data)
	d.sync()
	if _, err := c.Invoke(ctx, "", tamtest.PayloadID("data"), nil); !isStatus(err, 409) {
		t.Fatalf("invoke data: %v", err)
	}
	if _, _, err := d.Broker().Invoke(ctx, "", tamtest.PayloadID("data"), nil); !errors.Is(err, tee.ErrNotRunnable) {
		t.Fatalf("broker invoke data: %v", err)
	}
}

func isStatus(err error, status int) bool {
	var le *broker.LocalError
	return errors.As(err, &le) && le.Status == status
}
