package storetest

import (
	"bytes"
	"errors"
	"testing"
	"time"

	"github.com/teep-go/teep/internal/tam"
)

var errRollback = errors.New("storetest: roll back")

// testCatalogGeneration checks tam.CatalogGenerationTx, for stores that
// implement it: every catalog write changes the generation, in its own
// transaction (a rolled-back one leaves it); session writes do not (they
// would make every engine reload its catalog every session).
func testCatalogGeneration(t *testing.T, s tam.Store) {
	gen := func() uint64 {
		t.Helper()
		var g uint64
		view(t, s, func(tx tam.Tx) (err error) {
			gtx, ok := tx.(tam.CatalogGenerationTx)
			if !ok {
				t.Skip("the store keeps no catalog generation (tam.CatalogGenerationTx is optional)")
			}
			g, err = gtx.CatalogGeneration(ctx)
			return err
		})
		return g
	}
	a := cid(t, "a")
	kid := bytes.Repeat([]byte{9}, 32)
	changes := []struct {
		what string
		fn   func(tx tam.Tx) error
	}{
		{"AddComponentVersion", func(tx tam.Tx) error { return tx.AddComponentVersion(ctx, version(t, a, 1), []byte("e1")) }},
		{"AddComponentVersion (second)", func(tx tam.Tx) error { return tx.AddComponentVersion(ctx, version(t, a, 2), []byte("e2")) }},
		{"PutPolicy", func(tx tam.Tx) error {
			_, err := tx.PutPolicy(ctx, tam.Policy{Component: a, Mode: tam.Required, Scope: tam.ScopeAll, CreatedAt: base})
			return err
		}},
		{"PutPolicy (mode change)", func(tx tam.Tx) error {
			_, err := tx.PutPolicy(ctx, tam.Policy{Component: a, Mode: tam.Optional, Scope: tam.ScopeAll, CreatedAt: base})
			return err
		}},
		{"DeletePolicies", func(tx tam.Tx) error { _, err := tx.DeletePolicies(ctx, tam.PolicyFilter{Component: a}); return err }},
		{"PutTrustedKey", func(tx tam.Tx) error {
			return tx.PutTrustedKey(ctx, tam.TrustedKey{Role: tam.RoleTCSigner, KID: kid, Key: []byte("k"), CreatedAt: base})
		}},
		{"SetOwner", func(tx tam.Tx) error { return tx.SetOwner(ctx, tam.OwnedSigner, "09", tam.DefaultTenant) }},
		{"DeleteTrustedKey", func(tx tam.Tx) error { return tx.DeleteTrustedKey(ctx, tam.RoleTCSigner, kid) }},
		{"DeleteComponent", func(tx tam.Tx) error { return tx.DeleteComponent(ctx, a) }},
	}
	prev := gen()
	for _, c := range changes {
		update(t, s, c.fn)
		if g := gen(); g == prev {
			t.Errorf("%s left the catalog generation at %d", c.what, g)
		} else {
			prev = g
		}
	}
	err := s.Update(ctx, func(tx tam.Tx) error {
		if err := tx.AddComponentVersion(ctx, version(t, a, 3), []byte("e3")); err != nil {
			return err
		}
		return errRollback
	})
	wantErr(t, err, errRollback, "rolled-back change")
	if g := gen(); g != prev {
		t.Errorf("a rolled-back change moved the generation from %d to %d", prev, g)
	}
	dev := bytes.Repeat([]byte{7}, 32)
	update(t, s, func(tx tam.Tx) error {
		if err := tx.PutDevice(ctx, tam.Device{KID: dev, Status: tam.StatusOK}); err != nil {
			return err
		}
		if err := tx.UseToken(ctx, []byte("token"), at(time.Hour)); err != nil {
			return err
		}
		if err := tx.PutInstalled(ctx, dev, tam.Installed{ComponentID: a, Sequence: 1, UpdatedAt: base}); err != nil {
			return err
		}
		return tx.PutPending(ctx, tam.PendingUpdate{Token: []byte("u"), DeviceKID: dev, CreatedAt: base, ExpiresAt: at(time.Hour)}, 0)
	})
	if g := gen(); g != prev {
		t.Errorf("session writes moved the generation from %d to %d", prev, g)
	}
}
