package tam_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/teep-go/teep/cosekey"
	"github.com/teep-go/teep/internal/tam"
	"github.com/teep-go/teep/internal/tam/tamtest"
)

// TestTenantIsolation: a component signed by tenant A's signer can never be
// updated, installed, removed or taken over by tenant B, whatever B
// calls; A keeps managing it, and a real device keeps A's version.
func TestTenantIsolation(t *testing.T) {
	f := newFixture(t)
	if err := f.store.Update(ctx, func(tx tam.Tx) error {
		if err := tx.AddTenant(ctx, tam.Tenant{ID: "acme", Name: "A"}); err != nil {
			return err
		}
		return tx.AddTenant(ctx, tam.Tenant{ID: "beta", Name: "B"})
	}); err != nil {
		t.Fatal(err)
	}
	actx, bctx := tam.WithTenant(ctx, "acme"), tam.WithTenant(ctx, "beta")
	sa, sb := tamtest.Signer(t), tamtest.Signer(t)
	if _, err := f.eng.AddTrustedKey(actx, tam.RoleTCSigner, sa.PublicKey(), "A"); err != nil {
		t.Fatal(err)
	}
	if _, err := f.eng.AddTrustedKey(bctx, tam.RoleTCSigner, sb.PublicKey(), "B"); err != nil {
		t.Fatal(err)
	}
	v1, err := f.eng.AddComponent(actx, tamtest.Envelope(t, sa, "app", 1, []byte("A v1")))
	if err != nil {
		t.Fatal(err)
	}
	app := v1.ComponentID
	if _, err := f.eng.SetPolicy(actx, tam.Policy{Component: app, Mode: tam.Required, Scope: tam.ScopeAll}); err != nil {
		t.Fatal(err)
	}
	a := f.agent(tamtest.AgentOptions{Trust: []*cosekey.Key{sa.PublicKey(), sb.PublicKey()}})
	runSession(t, a)
	if seq, ok := installedSeq(t, a, "app"); !ok || seq != 1 {
		t.Fatalf("device has app %d %v", seq, ok)
	}
	before := f.dump()

	attempts := []struct {
		name string
		err  error
		want error
	}{}
	try := func(name string, err, want error) {
		attempts = append(attempts, struct {
			name      string
			err, want error
		}{name, err, want})
	}
	_, err = f.eng.AddComponent(bctx, tamtest.Envelope(t, sb, "app", 2, []byte("B v2")))
	try("B updates A's component with B's signer", err, tam.ErrUntrustedSigner)
	_, err = f.eng.AddComponent(ctx, tamtest.Envelope(t, sb, "app", 3, []byte("B v3")))
	try("B's signer updates A's component through the provider", err, tam.ErrUntrustedSigner)
	_, err = f.eng.AddComponent(bctx, tamtest.Envelope(t, sa, "app", 4, []byte("A's key, B's call")))
	try("B registers an envelope of A's signer", err, tam.ErrUntrustedSigner)
	_, err = f.eng.SetPolicy(bctx, tam.Policy{Component: app, Mode: tam.Required, Scope: tam.ScopeAll})
	try("B's policy installs A's component", err, tam.ErrNotFound)
	_, err = f.eng.RemovePolicies(bctx, tam.PolicyFilter{Component: app})
	try("B removes A's policies", err, tam.ErrNotFound)
	_, err = f.eng.RemovePolicies(bctx, tam.PolicyFilter{Scope: tam.ScopeAll})
	try("B removes every policy", err, tam.ErrInvalid)
	try("B deletes A's component", f.eng.DeleteComponent(bctx, app), tam.ErrNotFound)
	_, err = f.eng.AddTrustedKey(bctx, tam.RoleTCSigner, sa.PublicKey(), "taken over")
	try("B takes over A's signer", err, tam.ErrExists)
	try("B removes A's signer", f.eng.RemoveTrustedKey(bctx, tam.RoleTCSigner, sa.PublicKey().KID()), tam.ErrNotFound)
	_, err = f.eng.AddComponent(bctx, tamtest.EnvelopeAt(t, sb, tamtest.ManifestID("squat"), tamtest.PayloadID("app"), 9, []byte("squat")))
	try("B's own manifest writes A's payload", err, tam.ErrExists)
	_, err = f.eng.AddComponent(bctx, tamtest.EnvelopeAt(t, sb, tamtest.ManifestID("squat"), tamtest.ManifestID("app"), 9, []byte("squat")))
	try("B's own manifest writes A's manifest id", err, tam.ErrExists)
	_, err = f.eng.AddComponent(bctx, tamtest.EnvelopeAt(t, sb, tamtest.PayloadID("app"), tamtest.PayloadID("squat"), 9, []byte("squat")))
	try("B's manifest id is A's payload", err, tam.ErrExists)
	// B's item "suit" would write ["personalization", "beta", "suit"], the
	// manifest id of the default tenant's item named "beta".
	_, err = f.eng.SetPersonalization(bctx, a.KID(), "suit", []byte("x"), tam.PersonalizationOptions{})
	try("B's personalization item named suit", err, tam.ErrInvalid)
	for _, at := range attempts {
		if !errors.Is(at.err, at.want) {
			t.Errorf("%s: got %v, want %v", at.name, at.err, at.want)
		}
	}
	if after := f.dump(); after != before {
		t.Fatalf("B's attempts changed the state:\n%s\nwas\n%s", after, before)
	}
	runSession(t, a)
	if seq, _ := installedSeq(t, a, "app"); seq != 1 {
		t.Fatalf("device moved to app %d", seq)
	}

	// A still manages its component: an update reaches the device.
	if _, err := f.eng.AddComponent(actx, tamtest.Envelope(t, sa, "app", 2, []byte("A v2"))); err != nil {
		t.Fatal(err)
	}
	runSession(t, a)
	if seq, _ := installedSeq(t, a, "app"); seq != 2 {
		t.Fatalf("A's update did not reach the device: app %d", seq)
	}
	// B's own component is B's: A cannot delete it.
	if _, err := f.eng.AddComponent(bctx, tamtest.Envelope(t, sb, "tool", 1, []byte("B"))); err != nil {
		t.Fatal(err)
	}
	if err := f.eng.DeleteComponent(actx, tamtest.ManifestID("tool")); !errors.Is(err, tam.ErrNotFound) {
		t.Fatalf("A deletes B's component: %v", err)
	}
}

// TestCanceledRequest: a QueryResponse whose peer went away (its context
// canceled) or that ran out of time is a retryable refusal, not an
// internal error, and loses nothing: the same message then goes through.
func TestCanceledRequest(t *testing.T) {
	f := newFixture(t)
	a := f.agent(tamtest.AgentOptions{})
	if _, err := f.eng.AddAgent(ctx, a.Key().PublicKey(), nil); err != nil {
		t.Fatal(err)
	}
	qr, err := f.eng.Handle(ctx, nil, tam.HandleOptions{})
	if err != nil {
		t.Fatal(err)
	}
	resp, err := a.Answer(ctx, qr)
	if err != nil {
		t.Fatal(err)
	}
	before := f.dump()
	for _, c := range []struct {
		name string
		mk   func() (context.Context, context.CancelFunc)
	}{
		{"canceled", func() (context.Context, context.CancelFunc) { return context.WithCancel(ctx) }},
		{"timed out", func() (context.Context, context.CancelFunc) {
			return context.WithDeadline(ctx, time.Now().Add(-time.Second))
		}},
	} {
		cctx, cancel := c.mk()
		cancel()
		_, err := f.eng.Handle(cctx, resp, tam.HandleOptions{})
		var te *tam.Error
		if !errors.As(err, &te) || te.Kind != tam.KindUnavailable {
			t.Errorf("%s: %v, want an unavailable refusal", c.name, err)
		}
	}
	if after := f.dump(); after != before {
		t.Fatalf("a canceled request changed the state:\n%s\nwas\n%s", after, before)
	}
	if _, err := f.eng.Handle(ctx, resp, tam.HandleOptions{}); err != nil {
		t.Fatalf("the same QueryResponse after the canceled tries: %v", err)
	}
}
