package pgstore_test

import (
	"context"
	"testing"
	"time"

	"github.com/teep-go/teep/cosekey"
	"github.com/teep-go/teep/internal/tam"
	"github.com/teep-go/teep/internal/tam/pgstore"
	"github.com/teep-go/teep/internal/tam/pgstore/pgtest"
	"github.com/teep-go/teep/internal/tam/tamtest"
	"github.com/teep-go/teep/teep"
	"github.com/veraison/go-cose"
)

// countingStore records which kind of commit the engine asks for.
type countingStore struct {
	*pgstore.Store
	durable, noSync int
}

func (c *countingStore) Update(ctx context.Context, fn func(tam.Tx) error) error {
	c.durable++
	return c.Store.Update(ctx, fn)
}

func (c *countingStore) UpdateNoSync(ctx context.Context, fn func(tam.Tx) error) error {
	c.noSync++
	return c.Store.UpdateNoSync(ctx, fn)
}

// SteadyRound is a commit without sync too (tam.SteadyRoundStore).
func (c *countingStore) SteadyRound(ctx context.Context, token []byte, expires time.Time, epoch uint64, d tam.Device) (bool, error) {
	c.noSync++
	return c.Store.SteadyRound(ctx, token, expires, epoch, d)
}

// agent answers like a light device: QueryResponse with its tc-list,
// Success to every Update.
type agent struct {
	signer *cosekey.Signer
	tam    []*cosekey.Key
	tcList []teep.SystemPropertyClaims
}

func (a *agent) answer(t *testing.T, in []byte) []byte {
	t.Helper()
	op, err := teep.Open(in, teep.OpenOptions{Keys: a.tam})
	if err != nil {
		t.Fatal(err)
	}
	var out teep.Message
	switch m := op.Message.(type) {
	case *teep.QueryRequest:
		out = &teep.QueryResponse{Token: m.Token, TCList: a.tcList}
	case *teep.Update:
		out = &teep.Success{Token: m.Token}
	default:
		t.Fatalf("unexpected %T", m)
	}
	b, err := teep.Sign(out, a.signer, teep.SignOptions{})
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// UpdateNoSync turns synchronous_commit off for its own transaction only.
func TestUpdateNoSyncSetting(t *testing.T) {
	ctx := context.Background()
	s, err := pgstore.Open(ctx, pgtest.DSN(t), pgstore.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	for _, c := range []struct {
		noSync bool
		want   string
	}{{true, "off"}, {false, "on"}, {true, "off"}, {false, "on"}} {
		got, err := pgstore.Setting(ctx, s, c.noSync, "synchronous_commit")
		if err != nil {
			t.Fatal(err)
		}
		if got != c.want {
			t.Fatalf("noSync=%v: synchronous_commit = %s, want %s", c.noSync, got, c.want)
		}
	}
	if iso, err := pgstore.Setting(ctx, s, true, "transaction_isolation"); err != nil || iso != "read committed" {
		t.Fatalf("UpdateNoSync isolation %q (%v), want read committed", iso, err)
	}
}

// On PostgreSQL a steady round commits without waiting for the WAL flush,
// and a consumed QueryRequest token stays refused: by the other replica,
// by both after they restart, and after a database crash (which empties
// used_tokens), both for a token consumed before the crash and for one
// that verified just before it and is answered after.
func TestConsumedTokenStaysRefused(t *testing.T) {
	ctx := context.Background()
	dsn := pgtest.DSN(t)
	keys := []*cosekey.Key{genKey(t, cosekey.AlgESP256), genKey(t, cosekey.AlgEd25519)}
	session := make([]byte, 32)
	open := func() (*countingStore, *tam.Engine) {
		t.Helper()
		s, err := pgstore.Open(ctx, dsn, pgstore.Options{})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { s.Close() })
		cs := &countingStore{Store: s}
		e, err := tam.New(tam.Config{Store: cs, Keys: keys, SessionKey: session})
		if err != nil {
			t.Fatal(err)
		}
		return cs, e
	}
	csA, a := open()
	csB, b := open()
	if csA.Epoch() != csB.Epoch() || csA.Epoch() == 0 {
		t.Fatalf("replica epochs %d and %d: want one non-zero epoch", csA.Epoch(), csB.Epoch())
	}
	signer := tamtest.Signer(t)
	if _, err := a.AddTrustedKey(ctx, tam.RoleTCSigner, signer.PublicKey(), "s"); err != nil {
		t.Fatal(err)
	}
	v, err := a.AddComponent(ctx, tamtest.Envelope(t, signer, "app", 1, []byte("x")))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := a.SetPolicy(ctx, tam.Policy{Component: v.ComponentID, Mode: tam.Required, Scope: tam.ScopeAll}); err != nil {
		t.Fatal(err)
	}
	ak := genKey(t, cosekey.AlgESP256)
	as, err := cosekey.NewSigner(ak, 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := a.AddAgent(ctx, ak.PublicKey(), nil); err != nil {
		t.Fatal(err)
	}
	dev := &agent{signer: as, tam: a.PublicKeys()}
	post := func(e *tam.Engine, in []byte) ([]byte, error) {
		return e.Handle(ctx, in, tam.HandleOptions{Numbering: teep.Draft26})
	}
	must := func(out []byte, err error) []byte {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
		return out
	}
	// Install (durable), then steady rounds on either replica.
	u := must(post(a, dev.answer(t, must(post(a, nil)))))
	if u == nil {
		t.Fatal("no Update for the required component")
	}
	if out := must(post(b, dev.answer(t, u))); out != nil {
		t.Fatal("an answer to a Success")
	}
	dev.tcList = []teep.SystemPropertyClaims{{ComponentID: v.ComponentID}}
	csA.durable, csA.noSync = 0, 0
	steady := dev.answer(t, must(post(b, nil)))
	if out := must(post(a, steady)); out != nil {
		t.Fatal("steady round answered with an Update")
	}
	if csA.durable != 0 || csA.noSync != 1 {
		t.Fatalf("steady round: %d durable, %d unsynced commits; want 0, 1", csA.durable, csA.noSync)
	}
	replayed := func(when string, e *tam.Engine, msg []byte) {
		t.Helper()
		if _, err := post(e, msg); tam.KindOf(err) != tam.KindReplay {
			t.Fatalf("%s: %v, want KindReplay", when, err)
		}
	}
	replayed("replay at the other replica", b, steady)
	replayed("replay at the same replica", a, steady)

	// Both replicas restart (a clean stop keeps the unlogged tables).
	csA.Store.Close()
	csB.Store.Close()
	csA, a = open()
	csB, b = open()
	replayed("replay after both replicas restarted", b, steady)
	replayed("replay after both replicas restarted", a, steady)

	// A token that verified before the crash, answered after it.
	inFlight := dev.answer(t, must(post(a, nil)))
	before := csA.Epoch()
	if err := pgstore.SimulateCrash(ctx, csA.Store, csB.Store); err != nil {
		t.Fatal(err)
	}
	replayed("token minted before the crash, answered after", a, inFlight)
	if csA.Epoch() == before {
		t.Fatal("the epoch did not change after the crash")
	}
	replayed("consumed token replayed after the crash", a, steady)
	replayed("consumed token replayed after the crash, other replica", b, steady)
	if out := must(post(b, dev.answer(t, must(post(a, nil))))); out != nil {
		t.Fatal("steady round after the crash answered with an Update")
	}
}

func genKey(t *testing.T, alg cose.Algorithm) *cosekey.Key {
	t.Helper()
	k, err := cosekey.Generate(alg)
	if err != nil {
		t.Fatal(err)
	}
	return k
}
