package tam

import (
	"context"
	"encoding/hex"
	"errors"
	"fmt"

	"github.com/teep-go/teep/suit"
)

// Tenant isolation in the engine. A tenant owns the TC signer keys it adds
// and the components they sign; a component's policies are its owner's.
// The checks run inside the transaction of the change, so no order of
// concurrent requests lets tenant B's signer update tenant A's component,
// B's policy install or remove it, or B delete it.

type tenantKey struct{}

// WithTenant returns a context whose engine calls act for tenant. Without
// it, calls act for the whole TAM (the provider): new objects belong to
// DefaultTenant and every tenant's objects may be changed.
func WithTenant(ctx context.Context, tenant string) context.Context {
	return context.WithValue(ctx, tenantKey{}, tenant)
}

// actingTenant returns the tenant the call acts for and whether it is
// confined to it.
func actingTenant(ctx context.Context) (string, bool) {
	t, ok := ctx.Value(tenantKey{}).(string)
	if !ok {
		return DefaultTenant, false
	}
	return t, true
}

// claimComponent checks that v's signer may register v and records the
// component's owner when v is its first version: the signer's tenant must
// be the caller's (when confined) and the component's owner.
func claimComponent(ctx context.Context, tx Tx, v ComponentVersion) error {
	signer, err := tx.Owner(ctx, OwnedSigner, hex.EncodeToString(v.SignerKID))
	if err != nil {
		return err
	}
	if acting, confined := actingTenant(ctx); confined && signer != acting {
		return fmt.Errorf("%w: the signer %x is not a key of tenant %s", ErrUntrustedSigner, v.SignerKID, acting)
	}
	_, err = tx.Component(ctx, v.ComponentID)
	switch {
	case err == nil:
		owner, err := tx.Owner(ctx, OwnedComponent, IDHex(v.ComponentID))
		if err != nil {
			return err
		}
		if owner != signer {
			return fmt.Errorf("%w: component %s belongs to another tenant than its signer %x", ErrUntrustedSigner, IDName(v.ComponentID), v.SignerKID)
		}
		return nil
	case errors.Is(err, ErrNotFound):
		return tx.SetOwner(ctx, OwnedComponent, IDHex(v.ComponentID), signer)
	}
	return err
}

// ownComponent returns ErrNotFound unless the caller may act on the
// component (a confined caller must own it), so another tenant's component
// looks absent.
func ownComponent(ctx context.Context, tx Tx, id suit.ComponentID) error {
	acting, confined := actingTenant(ctx)
	if !confined {
		return nil
	}
	owner, err := tx.Owner(ctx, OwnedComponent, IDHex(id))
	if err != nil {
		return err
	}
	if owner != acting {
		return fmt.Errorf("component %s: %w", IDName(id), ErrNotFound)
	}
	return nil
}

// claimSigner records a new TC signer key as the caller's; a key another
// tenant trusts already is refused, so no tenant can take over another's.
func claimSigner(ctx context.Context, tx Tx, kid []byte) error {
	acting, _ := actingTenant(ctx)
	key := hex.EncodeToString(kid)
	ks, err := tx.TrustedKeys(ctx, RoleTCSigner)
	if err != nil {
		return err
	}
	for _, k := range ks {
		if string(k.KID) != string(kid) {
			continue
		}
		owner, err := tx.Owner(ctx, OwnedSigner, key)
		if err != nil {
			return err
		}
		if owner != acting {
			return fmt.Errorf("%w: signer %x is trusted by another tenant", ErrExists, kid)
		}
	}
	return tx.SetOwner(ctx, OwnedSigner, key, acting)
}

// ownSigner is ownComponent for TC signer keys.
func ownSigner(ctx context.Context, tx Tx, kid []byte) error {
	acting, confined := actingTenant(ctx)
	if !confined {
		return nil
	}
	owner, err := tx.Owner(ctx, OwnedSigner, hex.EncodeToString(kid))
	if err != nil {
		return err
	}
	if owner != acting {
		return fmt.Errorf("signer key %x: %w", kid, ErrNotFound)
	}
	return nil
}
