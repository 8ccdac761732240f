package storetest

import (
	"testing"
	"time"

	"github.com/teep-go/teep/internal/tam"
	"github.com/teep-go/teep/suit"
)

func testPolicies(t *testing.T, s tam.Store) {
	a, b := cid(t, "a"), cid(t, "b")
	update(t, s, func(tx tam.Tx) error {
		for _, id := range []suit.ComponentID{a, b} {
			if err := tx.AddComponentVersion(ctx, version(t, id, 1), []byte("e")); err != nil {
				return err
			}
		}
		return nil
	})
	var p1, p2, p3 tam.Policy
	update(t, s, func(tx tam.Tx) (err error) {
		if p1, err = tx.PutPolicy(ctx, tam.Policy{Component: a, Mode: tam.Required, Scope: tam.ScopeAll, CreatedAt: base}); err != nil {
			return err
		}
		if p2, err = tx.PutPolicy(ctx, tam.Policy{Component: a, Mode: tam.Optional, Scope: tam.ScopeLabel, Value: "beta", CreatedAt: at(time.Second)}); err != nil {
			return err
		}
		p3, err = tx.PutPolicy(ctx, tam.Policy{Component: b, Mode: tam.Required, Scope: tam.ScopeDevice, Value: "abcd", CreatedAt: at(2 * time.Second)})
		return err
	})
	if p1.ID == 0 || p2.ID == 0 || p3.ID == 0 || p1.ID == p2.ID || p2.ID == p3.ID {
		t.Fatalf("policy ids %d %d %d: want distinct, non-zero", p1.ID, p2.ID, p3.ID)
	}
	equal(t, "PutPolicy result", p2, tam.Policy{ID: p2.ID, Component: a, Mode: tam.Optional, Scope: tam.ScopeLabel, Value: "beta", CreatedAt: at(time.Second)})
	// Same component and scope: the mode changes, the id and creation time stay.
	var p2b tam.Policy
	update(t, s, func(tx tam.Tx) (err error) {
		p2b, err = tx.PutPolicy(ctx, tam.Policy{Component: a, Mode: tam.Required, Scope: tam.ScopeLabel, Value: "beta", CreatedAt: at(time.Hour)})
		return err
	})
	equal(t, "upserted policy", p2b, tam.Policy{ID: p2.ID, Component: a, Mode: tam.Required, Scope: tam.ScopeLabel, Value: "beta", CreatedAt: at(time.Second)})
	view(t, s, func(tx tam.Tx) error {
		ps, err := tx.Policies(ctx)
		if err != nil {
			return err
		}
		equal(t, "Policies", ps, []tam.Policy{p1, p2b, p3})
		return nil
	})
	err := s.Update(ctx, func(tx tam.Tx) error {
		_, err := tx.PutPolicy(ctx, tam.Policy{Component: cid(t, "missing"), Mode: tam.Required, Scope: tam.ScopeAll})
		return err
	})
	wantErr(t, err, tam.ErrNotFound, "policy for an unknown component")

	var n int
	update(t, s, func(tx tam.Tx) (err error) {
		n, err = tx.DeletePolicies(ctx, tam.PolicyFilter{Component: a, Scope: tam.ScopeLabel, Value: "nope"})
		return err
	})
	if n != 0 {
		t.Fatalf("DeletePolicies with no match removed %d", n)
	}
	update(t, s, func(tx tam.Tx) (err error) {
		n, err = tx.DeletePolicies(ctx, tam.PolicyFilter{Component: a})
		return err
	})
	if n != 2 {
		t.Fatalf("DeletePolicies(component a) removed %d, want 2", n)
	}
	update(t, s, func(tx tam.Tx) (err error) {
		n, err = tx.DeletePolicies(ctx, tam.PolicyFilter{ID: p3.ID})
		return err
	})
	if n != 1 {
		t.Fatalf("DeletePolicies(id) removed %d, want 1", n)
	}
	view(t, s, func(tx tam.Tx) error {
		ps, err := tx.Policies(ctx)
		if len(ps) != 0 {
			t.Fatalf("policies left: %+v", ps)
		}
		return err
	})
}
