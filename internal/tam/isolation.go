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
	if err := notPersonalization(v); err != nil {
		return err
	}
	signer, err := tx.Owner(ctx, OwnedSigner, hex.EncodeToString(v.SignerKID))
	if err != nil {
		return err
	}
	if acting, confined := actingTenant(ctx); confined && signer != acting {
		return fmt.Errorf("%w: the signer %x is not a key of tenant %s", ErrUntrustedSigner, v.SignerKID, acting)
	}
	if err := idsFree(ctx, tx, v, signer); err != nil {
		return err
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

// notPersonalization refuses a component whose manifest or payload ids are
// under "personalization", where the TAM writes each tenant's
// personalization data (TenantPersonalizationComponent): such a component,
// signed by a signer the device trusts, would replace or squat one tenant's
// data on a shared device.
func notPersonalization(v ComponentVersion) error {
	for _, id := range append([]suit.ComponentID{v.ComponentID}, v.PayloadIDs...) {
		if len(id) > 0 && string(id[0]) == "personalization" {
			return invalidf("component id %s: ids under \"personalization\" are reserved for personalization data", IDName(id))
		}
	}
	return nil
}

// idsFree refuses v when a component of another tenant uses one of v's
// ids (its manifest id or a payload id) as either: on a shared device,
// whichever manifest came first would hold the payload, so one tenant could
// squat or, with a higher sequence number, replace another's Trusted
// Component. It reads every registered version, which costs an upload
// O(catalog); sessions never run it.
func idsFree(ctx context.Context, tx Tx, v ComponentVersion, owner string) error {
	mine := map[string]bool{IDHex(v.ComponentID): true}
	for _, id := range v.PayloadIDs {
		mine[IDHex(id)] = true
	}
	vs, err := tx.AllVersions(ctx)
	if err != nil {
		return err
	}
	owners, err := tx.Owners(ctx, OwnedComponent)
	if err != nil {
		return err
	}
	for _, o := range vs {
		if o.ComponentID.Equal(v.ComponentID) {
			continue // the same component: its owner was checked
		}
		other, ok := owners[IDHex(o.ComponentID)]
		if !ok {
			other = DefaultTenant
		}
		if other == owner {
			continue
		}
		for _, id := range append([]suit.ComponentID{o.ComponentID}, o.PayloadIDs...) {
			if mine[IDHex(id)] {
				return fmt.Errorf("%w: component id %s is used by a component of another tenant", ErrExists, IDName(id))
			}
		}
	}
	return nil
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

// sharedChange refuses a change to what every tenant shares (devices
// themselves, Verifier keys) unless the caller is the provider or the
// default tenant, the operator's own: another tenant could otherwise
// delete a device that others' components are on, reset their failure
// counts, or trust a device or a Verifier for everyone.
func sharedChange(ctx context.Context, what string) error {
	if acting, confined := actingTenant(ctx); confined && acting != DefaultTenant {
		return fmt.Errorf("%w: tenant %s may not %s (only the provider and the default tenant do)", ErrForbidden, acting, what)
	}
	return nil
}

// owners is who owns each component and TC signer, read once per call.
type owners struct {
	components map[string]string // IDHex -> tenant; absent: DefaultTenant
	signers    map[string]string // hex kid -> tenant; absent: DefaultTenant
}

func loadOwners(ctx context.Context, tx OwnerTx) (owners, error) {
	var o owners
	var err error
	if o.components, err = tx.Owners(ctx, OwnedComponent); err != nil {
		return o, err
	}
	o.signers, err = tx.Owners(ctx, OwnedSigner)
	return o, err
}

func ownerIn(m map[string]string, key string) string {
	if t, ok := m[key]; ok {
		return t
	}
	return DefaultTenant
}

func (o owners) component(id suit.ComponentID) string { return ownerIn(o.components, IDHex(id)) }
func (o owners) signer(kid []byte) string             { return ownerIn(o.signers, hex.EncodeToString(kid)) }

// deviceView confines what a tenant reads about a shared device to its
// own: the components it owns and its personalization data, its labels,
// and (for a tenant other than the default) none of the device-wide
// diagnostics, which may name other tenants' components.
type deviceView struct {
	tenant     string
	registered map[cidKey]bool
	owners     owners
}

// newDeviceView returns nil when the caller is not confined (the provider
// sees everything).
func newDeviceView(ctx context.Context, tx Tx) (*deviceView, error) {
	acting, confined := actingTenant(ctx)
	if !confined {
		return nil, nil
	}
	o, err := loadOwners(ctx, tx)
	if err != nil {
		return nil, err
	}
	cs, err := tx.Components(ctx)
	if err != nil {
		return nil, err
	}
	v := &deviceView{tenant: acting, registered: make(map[cidKey]bool, len(cs)), owners: o}
	for _, c := range cs {
		v.registered[keyOf(c.ID)] = true
	}
	return v, nil
}

// owns reports whether the view's tenant owns what a device holds under
// id: a registered component of the tenant, or one of its personalization
// items (pz is the device's personalization data, every tenant's).
func (v *deviceView) owns(id suit.ComponentID, pz []Personalization) bool {
	k := keyOf(id)
	if v.registered[k] {
		return v.owners.component(id) == v.tenant
	}
	for _, p := range pz {
		if keyOf(p.ComponentID) == k || keyOf(p.PayloadID) == k {
			return tenantOr(p.Tenant) == v.tenant
		}
	}
	return false
}

func tenantOr(t string) string {
	if t == "" {
		return DefaultTenant
	}
	return t
}

// device strips other tenants' labels and, for a tenant other than the
// default, the device-wide diagnostics.
func (v *deviceView) device(d Device) Device {
	own := d.LabelsOf(v.tenant)
	d.Labels, d.TenantLabels = nil, nil
	d.SetLabelsOf(v.tenant, own)
	if v.tenant != DefaultTenant {
		d.LastError, d.LastErrorCode = "", 0
	}
	return d
}

func (v *deviceView) installed(in []Installed, pz []Personalization) []Installed {
	var out []Installed
	for _, x := range in {
		if v.owns(x.ComponentID, pz) {
			out = append(out, x)
		}
	}
	return out
}

// confine reduces di to the view's tenant's part: its components and
// personalization data, failures and outstanding manifests of those, and,
// for a tenant other than the default, no reports (an Agent's reports
// cover every component on the device).
func (v *deviceView) confine(di *DeviceInfo) {
	all := di.Personalization
	di.Device = v.device(di.Device)
	di.Installed = v.installed(di.Installed, all)
	var pz []Personalization
	for _, p := range all {
		if tenantOr(p.Tenant) == v.tenant {
			pz = append(pz, p)
		}
	}
	di.Personalization = pz
	var fs []InstallFailure
	for _, f := range di.Failures {
		if v.owns(f.ComponentID, all) {
			fs = append(fs, f)
		}
	}
	di.Failures = fs
	var pending []PendingUpdate
	for _, p := range di.Pending {
		var in []SentManifest
		for _, m := range p.Install {
			if v.owns(m.ComponentID, all) {
				in = append(in, m)
			}
		}
		var rm []suit.ComponentID
		for _, id := range p.Remove {
			if v.owns(id, all) {
				rm = append(rm, id)
			}
		}
		if len(in)+len(rm) > 0 {
			p.Install, p.Remove = in, rm
			pending = append(pending, p)
		}
	}
	di.Pending = pending
	if v.tenant != DefaultTenant {
		di.Reports = nil
	}
}
