package tamserver_test

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/teep-go/teep/cosekey"
	"github.com/teep-go/teep/internal/tam"
	"github.com/teep-go/teep/internal/tam/admin"
	"github.com/teep-go/teep/internal/tam/tamserver"
	"github.com/teep-go/teep/internal/tam/tamtest"
	"github.com/teep-go/teep/teep"
)

const kill9DirEnv = "TEEP_TAMSERVER_KILL9_DIR"

// TestKill9Child is the TAM process of TestKill9KeepsDurableState (this test
// binary re-executed): a TAM on SQLite in the given data directory, serving
// until it is killed. Run directly, it does nothing.
func TestKill9Child(t *testing.T) {
	dir := os.Getenv(kill9DirEnv)
	if dir == "" {
		return
	}
	srv, err := tamserver.Open(context.Background(), tamserver.Options{DataDir: dir, Attestation: tam.AttestNever, Version: "kill9"})
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	tmp := filepath.Join(dir, "url.tmp")
	if err := os.WriteFile(tmp, []byte("http://"+ln.Addr().String()), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, filepath.Join(dir, "url")); err != nil {
		t.Fatal(err)
	}
	t.Fatal(srv.Serve(context.Background(), ln, nil))
}

// startKill9Child starts the TAM process and returns it, its base URL and
// a channel that yields its exit.
func startKill9Child(t *testing.T, dir string) (*exec.Cmd, string, <-chan error) {
	t.Helper()
	os.Remove(filepath.Join(dir, "url"))
	cmd := exec.Command(os.Args[0], "-test.run=^TestKill9Child$")
	cmd.Env = append(os.Environ(), kill9DirEnv+"="+dir)
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { err := cmd.Wait(); exited <- err; close(exited) }()
	t.Cleanup(func() { cmd.Process.Kill(); <-exited })
	for {
		if b, err := os.ReadFile(filepath.Join(dir, "url")); err == nil {
			return cmd, string(b), exited
		}
		select {
		case err := <-exited:
			t.Fatalf("the TAM process exited before listening: %v", err)
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// A TAM process on SQLite is killed with SIGKILL while devices install and
// run steady rounds and the operator adds components and policies. After a
// restart on the same data directory, everything the TAM acknowledged
// before the kill that must survive a power cut is there
// (docs/operations.md, "Durability"): components, policies, devices and
// their installed components; and every QueryResponse and Success it
// accepted, sent again, is refused.
func TestKill9KeepsDurableState(t *testing.T) {
	if testing.Short() {
		t.Skip("starts TAM processes")
	}
	ctx := context.Background()
	dir := t.TempDir()
	cmd, base, exited := startKill9Child(t, dir)
	token, err := tamserver.ReadToken(dir)
	if err != nil {
		t.Fatal(err)
	}
	client := func(base string) *admin.Client { return &admin.Client{BaseURL: base, Token: token} }
	signer := tamtest.Signer(t)
	pem, err := signer.PublicKey().MarshalPEM(false)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := client(base).AddTrustedKey(ctx, admin.TrustSigners, pem, "kill9"); err != nil {
		t.Fatal(err)
	}
	tamKeys := []*cosekey.Key{}
	for _, kt := range []cosekey.KeyType{cosekey.KeyTypeP256, cosekey.KeyTypeEd25519} {
		k, err := tamserver.PublicKey(dir, kt)
		if err != nil {
			t.Fatal(err)
		}
		tamKeys = append(tamKeys, k)
	}

	// What the TAM acknowledged before the kill.
	type install struct {
		kid, component string
	}
	var (
		mu       sync.Mutex
		installs []install
		policies = map[int64]bool{}
		accepted [][]byte // QueryResponses and Successes answered without error
		done     = make(chan struct{})
		acked    = make(chan struct{}, 1000)
	)
	httpc := &http.Client{Timeout: 10 * time.Second}
	worker := func(w int) error {
		c := client(base)
		post := tamtest.HTTPTransport(httpc, base+"/tam")
		for i := 0; ; i++ {
			select {
			case <-done:
				return nil
			default:
			}
			ak, err := cosekey.Generate(cosekey.AlgESP256)
			if err != nil {
				return err
			}
			as, err := cosekey.NewSigner(ak, 0)
			if err != nil {
				return err
			}
			akPEM, err := ak.PublicKey().MarshalPEM(false)
			if err != nil {
				return err
			}
			dev, err := c.AddAgent(ctx, akPEM, nil)
			if err != nil {
				return err
			}
			name := fmt.Sprintf("app-%d-%d", w, i)
			v, err := c.AddComponent(ctx, tamtest.Envelope(t, signer, name, 1, []byte("payload")))
			if err != nil {
				return err
			}
			p, err := c.SetPolicy(ctx, admin.Policy{Component: v.ComponentID, Mode: "required", Scope: "device", Value: dev.KID})
			if err != nil {
				return err
			}
			mu.Lock()
			policies[p.ID] = true
			mu.Unlock()
			// Install, then two steady rounds.
			var tcList []teep.SystemPropertyClaims
			for r := 0; r < 3; r++ {
				qr, err := post(ctx, nil)
				if err != nil {
					return err
				}
				resp, err := answer(qr, tamKeys, as, tcList)
				if err != nil {
					return err
				}
				u, err := post(ctx, resp)
				if err != nil {
					return err
				}
				mu.Lock()
				accepted = append(accepted, resp)
				mu.Unlock()
				if r > 0 {
					if u != nil {
						return fmt.Errorf("steady round answered with %d bytes", len(u))
					}
					continue
				}
				if u == nil {
					return errors.New("no Update for a device-scoped policy")
				}
				s, err := answer(u, tamKeys, as, nil)
				if err != nil {
					return err
				}
				if out, err := post(ctx, s); err != nil || out != nil {
					return fmt.Errorf("Success: %v", err)
				}
				mu.Lock()
				accepted = append(accepted, s)
				installs = append(installs, install{dev.KID, v.ComponentID})
				mu.Unlock()
				tcList = []teep.SystemPropertyClaims{{ComponentID: tamtest.ManifestID(name)}}
				acked <- struct{}{}
			}
		}
	}
	const workers = 4
	errs := make(chan error, workers)
	for w := 0; w < workers; w++ {
		go func() { errs <- worker(w) }()
	}
	// Kill once enough is acknowledged, while the workers are mid-session.
	for n := 0; n < 12; n++ {
		select {
		case <-acked:
		case err := <-errs:
			t.Fatalf("before the kill: %v", err)
		}
	}
	if err := cmd.Process.Signal(os.Kill); err != nil {
		t.Fatal(err)
	}
	close(done)
	for w := 0; w < workers; w++ {
		<-errs // connection failures after the kill are expected
	}
	<-exited

	_, base, _ = startKill9Child(t, dir)
	c := client(base)
	mu.Lock()
	defer mu.Unlock()
	ps, err := c.Policies(ctx)
	if err != nil {
		t.Fatal(err)
	}
	have := map[int64]bool{}
	for _, p := range ps {
		have[p.ID] = true
	}
	for id := range policies {
		if !have[id] {
			t.Errorf("acknowledged policy %d lost", id)
		}
	}
	for _, in := range installs {
		d, err := c.Device(ctx, in.kid, 0)
		if err != nil {
			t.Errorf("device %s: %v", in.kid, err)
			continue
		}
		found := false
		for _, ic := range d.Components {
			found = found || (ic.ID == in.component && ic.Sequence == 1)
		}
		if !found {
			t.Errorf("device %s: acknowledged install of %s lost: %+v", in.kid, in.component, d.Components)
		}
	}
	post := tamtest.HTTPTransport(httpc, base+"/tam")
	for i, m := range accepted {
		_, err := post(ctx, m)
		var se *tamtest.HTTPStatusError
		if !errors.As(err, &se) || se.Status != http.StatusBadRequest {
			t.Errorf("accepted message %d sent again after the restart: %v, want 400", i, err)
		}
	}
	t.Logf("%d installs, %d policies, %d accepted messages acknowledged before the kill", len(installs), len(policies), len(accepted))
}

// answer is a minimal Agent: a QueryResponse with tcList, or a Success.
func answer(in []byte, tamKeys []*cosekey.Key, s *cosekey.Signer, tcList []teep.SystemPropertyClaims) ([]byte, error) {
	op, err := teep.Open(in, teep.OpenOptions{Keys: tamKeys})
	if err != nil {
		return nil, err
	}
	switch m := op.Message.(type) {
	case *teep.QueryRequest:
		return teep.Sign(&teep.QueryResponse{Token: m.Token, TCList: tcList}, s, teep.SignOptions{})
	case *teep.Update:
		return teep.Sign(&teep.Success{Token: m.Token}, s, teep.SignOptions{})
	}
	return nil, fmt.Errorf("unexpected %T", op.Message)
}
