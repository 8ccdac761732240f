package admin_test

import (
	"testing"

	"github.com/teep-go/teep/internal/tam/admin"
	"github.com/teep-go/teep/internal/tam/tamtest"
)

// TestTwoTenants: acme and the default tenant each trust a signer, register
// a component and label the one shared device; each lists only its own,
// labels are per tenant, and acme cannot touch the default tenant's.
func TestTwoTenants(t *testing.T) {
	f := newFixture(t)
	acme := as(f, "acme-admin")
	signer := tamtest.Signer(t)
	pem, _ := signer.PublicKey().MarshalPEM(false)
	_, err := acme.AddTrustedKey(ctx, admin.TrustSigners, pem, "acme vendor")
	status(t, err, 0)
	v, err := acme.AddComponent(ctx, tamtest.Envelope(t, signer, "acme-app", 1, []byte("acme")))
	status(t, err, 0)
	_, err = acme.SetPolicy(ctx, admin.Policy{Component: v.ComponentID, Scope: "label", Value: "region:eu"})
	status(t, err, 0)
	d, err := acme.SetLabels(ctx, f.kid, []string{"region:eu"})
	status(t, err, 0)
	if len(d.Labels) != 1 || d.Labels[0] != "region:eu" {
		t.Fatalf("acme's labels %q", d.Labels)
	}
	_, err = acme.SetPersonalization(ctx, f.kid, "config", []byte("acme secret"), nil)
	status(t, err, 0)

	// Each tenant lists its own.
	for _, c := range []struct {
		who, comp string
	}{{"admin", f.comp}, {"acme-admin", v.ComponentID}} {
		cl := as(f, c.who)
		cs, err := cl.Components(ctx)
		status(t, err, 0)
		if len(cs) != 1 || cs[0].ID != c.comp {
			t.Errorf("%s components %+v", c.who, cs)
		}
		ps, err := cl.Policies(ctx)
		status(t, err, 0)
		if len(ps) != 1 || ps[0].Component != c.comp {
			t.Errorf("%s policies %+v", c.who, ps)
		}
		ks, err := cl.TrustedKeys(ctx, admin.TrustSigners)
		status(t, err, 0)
		if len(ks) != 1 {
			t.Errorf("%s signers %+v", c.who, ks)
		}
		pz, err := cl.Personalization(ctx, f.kid)
		status(t, err, 0)
		if len(pz) != 1 || pz[0].Name != "config" {
			t.Errorf("%s personalization %+v", c.who, pz)
		}
	}
	// Labels are per tenant; the provider sees both.
	dd, err := as(f, "admin").Device(ctx, f.kid, 0)
	status(t, err, 0)
	if len(dd.Labels) != 1 || dd.Labels[0] != "lab" || dd.TenantLabels != nil {
		t.Errorf("default tenant's view of the labels %q %v", dd.Labels, dd.TenantLabels)
	}
	pd, err := f.srv.Client.Device(ctx, f.kid, 0)
	status(t, err, 0)
	if len(pd.Labels) != 1 || pd.Labels[0] != "lab" || len(pd.TenantLabels["acme"]) != 1 {
		t.Errorf("provider's view of the labels %q %v", pd.Labels, pd.TenantLabels)
	}
	pcs, err := f.srv.Client.Components(ctx)
	status(t, err, 0)
	if len(pcs) != 2 {
		t.Errorf("provider components %+v", pcs)
	}
	// Acme cannot reach the default tenant's component.
	status(t, acme.DeleteComponent(ctx, f.comp), 404)
	_, err = acme.SetPolicy(ctx, admin.Policy{Component: f.comp})
	status(t, err, 404)
	_, err = acme.RemovePolicies(ctx, f.comp, "", "")
	status(t, err, 404)
	status(t, acme.DeleteDevice(ctx, f.kid), 403)
	// Nor the default tenant acme's.
	status(t, as(f, "admin").DeleteComponent(ctx, v.ComponentID), 404)
	cs, err := f.srv.Client.Components(ctx)
	status(t, err, 0)
	if len(cs) != 2 {
		t.Fatalf("components after refused deletes %+v", cs)
	}
}
