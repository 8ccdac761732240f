package tam_test

import (
	"context"
	"path/filepath"
	"testing"
	"time"

	"github.com/teep-go/teep/cosekey"
	"github.com/teep-go/teep/internal/tam"
	"github.com/teep-go/teep/internal/tam/sqlitestore"
	"github.com/teep-go/teep/teep"
)

// countingStore records which kind of commit the engine asks for.
type countingStore struct {
	*sqlitestore.Store
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

// A steady round (the device reports what it has and gets 204) commits
// without sync; an install pays one durable commit (the Success). A
// QueryResponse whose token was minted before the database was reopened is
// refused, as it would be if its consumption had been lost in a crash.
func TestDurabilityByKindOfState(t *testing.T) {
	path := filepath.Join(t.TempDir(), "tam.db")
	keys := []*cosekey.Key{mustKey(t, -9), mustKey(t, -19)}
	open := func() (*countingStore, *tam.Engine) {
		t.Helper()
		s, err := sqlitestore.Open(ctx, path, sqlitestore.Options{})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { s.Close() })
		cs := &countingStore{Store: s}
		e, err := tam.New(tam.Config{Store: cs, Keys: keys, SessionKey: make([]byte, 32)})
		if err != nil {
			t.Fatal(err)
		}
		return cs, e
	}
	cs, eng := open()
	signer, err := cosekey.NewSigner(mustKey(t, -9), 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := eng.AddTrustedKey(ctx, tam.RoleTCSigner, signer.PublicKey(), "s"); err != nil {
		t.Fatal(err)
	}
	f := &fixture{t: t, signer: signer}
	v, err := eng.AddComponent(ctx, f.tc("app", 1, []byte("x")))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := eng.SetPolicy(ctx, tam.Policy{Component: v.ComponentID, Mode: tam.Required, Scope: tam.ScopeAll}); err != nil {
		t.Fatal(err)
	}
	ak := mustKey(t, -9)
	as, _ := cosekey.NewSigner(ak, 0)
	if _, err := eng.AddAgent(ctx, ak.PublicKey(), nil); err != nil {
		t.Fatal(err)
	}
	a := &benchAgent{signer: as, tam: eng.PublicKeys()}
	post := func(e *tam.Engine, in []byte) ([]byte, error) {
		return e.Handle(ctx, in, tam.HandleOptions{Numbering: teep.Draft26})
	}
	round := func(e *tam.Engine) (qr []byte, out []byte, err error) {
		t.Helper()
		q, err := post(e, nil)
		if err != nil {
			t.Fatal(err)
		}
		r, err := a.answer(q)
		if err != nil {
			t.Fatal(err)
		}
		out, err = post(e, r)
		return r, out, err
	}
	// First contact: the device row changes (suite, numbering): durable.
	cs.durable, cs.noSync = 0, 0
	_, u, err := round(eng)
	if err != nil || u == nil {
		t.Fatalf("install round: %v", err)
	}
	s, _ := a.answer(u)
	if _, err := post(eng, s); err != nil {
		t.Fatal(err)
	}
	if cs.durable != 2 || cs.noSync != 0 {
		t.Fatalf("first install: %d durable, %d unsynced commits; want 2, 0", cs.durable, cs.noSync)
	}
	a.tcList = []teep.SystemPropertyClaims{{ComponentID: v.ComponentID}}
	cs.durable, cs.noSync = 0, 0
	for i := 0; i < 3; i++ {
		if _, out, err := round(eng); err != nil || out != nil {
			t.Fatalf("steady round: %v", err)
		}
	}
	if cs.durable != 0 || cs.noSync != 3 {
		t.Fatalf("3 steady rounds: %d durable, %d unsynced commits; want 0, 3", cs.durable, cs.noSync)
	}
	// A round answered after a reopen, with a token of the earlier open.
	q, err := post(eng, nil)
	if err != nil {
		t.Fatal(err)
	}
	r, err := a.answer(q)
	if err != nil {
		t.Fatal(err)
	}
	cs.Store.Close()
	_, eng2 := open()
	if _, err := post(eng2, r); tam.KindOf(err) != tam.KindReplay {
		t.Fatalf("token of an earlier open: %v, want KindReplay", err)
	}
	if _, out, err := round(eng2); err != nil || out != nil {
		t.Fatalf("steady round after reopen: %v", err)
	}
}
