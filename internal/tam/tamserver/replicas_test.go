package tamserver_test

import (
	"context"
	"errors"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/teep-go/teep/cosekey"
	"github.com/teep-go/teep/internal/tam"
	"github.com/teep-go/teep/internal/tam/pgstore/pgtest"
	"github.com/teep-go/teep/internal/tam/tamserver"
	"github.com/teep-go/teep/internal/tam/tamtest"
)

// replica is one TAM process's worth: a tamserver on its own data
// directory and loopback listener, sharing the database with the others.
type replica struct {
	srv *tamserver.TAM
	url string
}

func startReplica(t *testing.T, dataDir, dsn string) *replica {
	t.Helper()
	srv, err := tamserver.Open(context.Background(), tamserver.Options{DataDir: dataDir, DB: dsn, Attestation: tam.AttestNever, Version: "replica-test"})
	if err != nil {
		t.Fatal(err)
	}
	if srv.Store != nil {
		t.Fatal("a postgres:// DB opened the SQLite store")
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
	return &replica{srv: srv, url: "http://" + ln.Addr().String() + "/tam"}
}

// Replicas share the key files of one data directory (docs/operations.md):
// the second starts from a copy of the first's, without any database file.
func copyKeys(t *testing.T, from, to string) {
	t.Helper()
	if err := os.MkdirAll(to, 0o700); err != nil {
		t.Fatal(err)
	}
	for _, f := range []string{tamserver.FileP256Key, tamserver.FileEd25519Key, tamserver.FileSessionKey, tamserver.FileToken} {
		b, err := os.ReadFile(filepath.Join(from, f))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(to, f), b, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := os.Stat(filepath.Join(from, tamserver.FileDB)); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("a TAM on PostgreSQL created %s: %v", tamserver.FileDB, err)
	}
}

// Two TAM replicas on one PostgreSQL database, each device switching
// replica on every request, so every token is issued by one replica and
// answered at the other: every device converges to policy, each version is
// installed once per device, and no token (QueryRequest or Update) is
// accepted twice, whether replayed later or raced to both replicas at once.
func TestTwoReplicasOnePostgres(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	dsn := pgtest.DSN(t)
	dirA, dirB := filepath.Join(t.TempDir(), "a"), filepath.Join(t.TempDir(), "b")
	a := startReplica(t, dirA, dsn)
	copyKeys(t, dirA, dirB)
	b := startReplica(t, dirB, dsn)
	replicas := []*replica{a, b}
	client := &http.Client{Timeout: 30 * time.Second}
	post := func(r *replica) tamtest.Transport { return tamtest.HTTPTransport(client, r.url) }

	signer := tamtest.Signer(t)
	if _, err := a.srv.Engine.AddTrustedKey(ctx, tam.RoleTCSigner, signer.PublicKey(), ""); err != nil {
		t.Fatal(err)
	}
	v1, err := a.srv.Engine.AddComponent(ctx, tamtest.Envelope(t, signer, "app", 1, []byte("version one")))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := b.srv.Engine.SetPolicy(ctx, tam.Policy{Component: v1.ComponentID, Mode: tam.Required, Scope: tam.ScopeAll}); err != nil {
		t.Fatal(err)
	}

	const devices = 16
	type device struct {
		agent *tamtest.Agent
		kid   []byte
		// signed is every non-empty message a replica accepted from the
		// device, for the replays at the end.
		mu     sync.Mutex
		signed [][]byte
	}
	var requests atomic.Int64
	devs := make([]*device, devices)
	for i := range devs {
		k, err := cosekey.Generate(cosekey.AlgESP256)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := replicas[i%2].srv.Engine.AddAgent(ctx, k.PublicKey(), nil); err != nil {
			t.Fatal(err)
		}
		d := &device{kid: k.KID()}
		var n atomic.Int64
		n.Store(int64(i))
		d.agent = tamtest.NewAgent(t, tamtest.AgentOptions{Key: k, TAMKeys: a.srv.Engine.PublicKeys(), Trust: []*cosekey.Key{signer.PublicKey()},
			Transport: func(ctx context.Context, msg []byte) ([]byte, error) {
				requests.Add(1)
				out, err := post(replicas[n.Add(1)%2])(ctx, msg)
				if err == nil && len(msg) > 0 {
					d.mu.Lock()
					d.signed = append(d.signed, msg)
					d.mu.Unlock()
				}
				return out, err
			}})
		devs[i] = d
	}
	updates := make([]atomic.Int32, devices)
	syncAll := func(round string) {
		t.Helper()
		var wg sync.WaitGroup
		for i, d := range devs {
			wg.Add(1)
			go func() {
				defer wg.Done()
				tr, err := d.agent.Sync(ctx)
				if err != nil {
					t.Errorf("%s: device %d: %v (trace %v)", round, i, err, tr.Types)
					return
				}
				for _, typ := range tr.Types {
					if typ == "update" {
						updates[i].Add(1)
					}
				}
			}()
		}
		wg.Wait()
		if t.Failed() {
			t.FailNow()
		}
	}
	converged := func(round string, seq uint64) {
		t.Helper()
		for i, d := range devs {
			want := tamtest.ManifestID("app").String()
			if got := d.agent.Installed(ctx); len(got) != 1 || got[want] != seq {
				t.Errorf("%s: device %d holds %v, want %s at %d", round, i, got, want, seq)
			}
			info, err := replicas[(i+1)%2].srv.Engine.DeviceInfo(ctx, d.kid, 50)
			if err != nil {
				t.Fatal(err)
			}
			if len(info.Installed) != 1 || info.Installed[0].Sequence != seq || info.Status != tam.StatusOK || len(info.Pending) != 0 {
				t.Errorf("%s: the TAM sees device %d as %s with %+v, %d pending", round, i, info.Status, info.Installed, len(info.Pending))
			}
		}
	}

	syncAll("install v1")
	converged("install v1", 1)
	if _, err := b.srv.Engine.AddComponent(ctx, tamtest.Envelope(t, signer, "app", 2, []byte("version two"))); err != nil {
		t.Fatal(err)
	}
	syncAll("update to v2")
	converged("update to v2", 2)
	syncAll("steady")
	converged("steady", 2)
	for i := range devs {
		if n := updates[i].Load(); n != 2 {
			t.Errorf("device %d got %d Updates over three sessions, want 2 (one per version)", i, n)
		}
	}

	// Every message a device sent, replayed to both replicas, is refused.
	for i, d := range devs {
		for j, msg := range d.signed {
			for _, r := range replicas {
				if _, err := post(r)(ctx, msg); !isStatus(err, http.StatusBadRequest) {
					t.Errorf("device %d message %d replayed to %s: %v, want 400", i, j, r.url, err)
				}
			}
		}
	}

	// One QueryResponse raced to both replicas at once: exactly one takes
	// it, for each device.
	v3, err := a.srv.Engine.AddComponent(ctx, tamtest.Envelope(t, signer, "app", 3, []byte("version three")))
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	for i, d := range devs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			q, err := post(replicas[i%2])(ctx, []byte{})
			if err != nil {
				t.Errorf("device %d: %v", i, err)
				return
			}
			resp, err := d.agent.Answer(ctx, q)
			if err != nil {
				t.Errorf("device %d: %v", i, err)
				return
			}
			answers := make([][]byte, 2)
			errs := make([]error, 2)
			var race sync.WaitGroup
			for r := range replicas {
				race.Add(1)
				go func() { defer race.Done(); answers[r], errs[r] = post(replicas[r])(ctx, resp) }()
			}
			race.Wait()
			won := -1
			for r, err := range errs {
				switch {
				case err == nil && won < 0:
					won = r
				case err == nil:
					t.Errorf("device %d: both replicas accepted one QueryResponse", i)
				case !isStatus(err, http.StatusBadRequest):
					t.Errorf("device %d: replica %d: %v", i, r, err)
				}
			}
			if won < 0 {
				t.Errorf("device %d: neither replica accepted the QueryResponse: %v", i, errs)
				return
			}
			success, err := d.agent.Answer(ctx, answers[won])
			if err != nil {
				t.Errorf("device %d: %v", i, err)
				return
			}
			if out, err := post(replicas[1-won])(ctx, success); err != nil || out != nil {
				t.Errorf("device %d: Success at the other replica: %v", i, err)
			}
		}()
	}
	wg.Wait()
	converged("raced v3", v3.Sequence)
	t.Logf("%d devices, %d requests alternating between 2 replicas", devices, requests.Load())
}

func isStatus(err error, code int) bool {
	var se *tamtest.HTTPStatusError
	return errors.As(err, &se) && se.Status == code
}

func TestOpenRefusesUnknownDB(t *testing.T) {
	_, err := tamserver.Open(context.Background(), tamserver.Options{DataDir: t.TempDir(), DB: "mysql://u:s3cret@host/db"})
	if err == nil || strings.Contains(err.Error(), "s3cret") {
		t.Fatalf("unknown database kind: %v", err)
	}
}
