package storetest

import (
	"testing"

	"github.com/teep-go/teep/internal/tam"
)

func testTrustedKeys(t *testing.T, s tam.Store) {
	k1 := tam.TrustedKey{Role: tam.RoleTCSigner, KID: []byte{2, 2}, Key: []byte{1}, Comment: "vendor", CreatedAt: base}
	k2 := tam.TrustedKey{Role: tam.RoleTCSigner, KID: []byte{1, 1}, Key: []byte{2}, CreatedAt: base}
	k3 := tam.TrustedKey{Role: tam.RoleVerifier, KID: []byte{1, 1}, Key: []byte{3}, CreatedAt: base}
	update(t, s, func(tx tam.Tx) error {
		for _, k := range []tam.TrustedKey{k1, k2, k3} {
			if err := tx.PutTrustedKey(ctx, k); err != nil {
				return err
			}
		}
		return nil
	})
	k1.Comment = "vendor, renamed"
	update(t, s, func(tx tam.Tx) error { return tx.PutTrustedKey(ctx, k1) })
	view(t, s, func(tx tam.Tx) error {
		ks, err := tx.TrustedKeys(ctx, tam.RoleTCSigner)
		if err != nil {
			return err
		}
		equal(t, "signers", ks, []tam.TrustedKey{k2, k1})
		ks, err = tx.TrustedKeys(ctx, tam.RoleVerifier)
		equal(t, "verifiers", ks, []tam.TrustedKey{k3})
		return err
	})
	update(t, s, func(tx tam.Tx) error { return tx.DeleteTrustedKey(ctx, tam.RoleTCSigner, k2.KID) })
	err := s.Update(ctx, func(tx tam.Tx) error { return tx.DeleteTrustedKey(ctx, tam.RoleTCSigner, k2.KID) })
	wantErr(t, err, tam.ErrNotFound, "deleting a key twice")
	view(t, s, func(tx tam.Tx) error {
		ks, err := tx.TrustedKeys(ctx, tam.RoleVerifier)
		equal(t, "verifier untouched by signer delete", ks, []tam.TrustedKey{k3})
		return err
	})
}
