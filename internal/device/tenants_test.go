package device_test

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/teep-go/teep/cosekey"
	"github.com/teep-go/teep/internal/broker"
	"github.com/teep-go/teep/internal/device"
	"github.com/teep-go/teep/internal/tam"
	"github.com/teep-go/teep/internal/tam/admin"
	"github.com/teep-go/teep/internal/tam/tamtest"
)

// tenantLabel is the label both tenants' policies target. Both set it on
// the device: labels are per tenant, so each policy matches only the label
// its own tenant set, and one tenant dropping it must not affect the other.
const tenantLabel = "fleet"

// tenantSide is one tenant's part of the shared TAM, driven only through
// the admin API with the tenant's admin-scoped token.
type tenantSide struct {
	id     string
	api    *admin.Client
	signer *cosekey.Signer
	app    string // TA name (tamtest.Envelope)
	comp   string // its component id, as the API names it
	labels []string
	data   []byte // personalization item "cfg"
	pz     admin.Personalization
}

// tenantsFixture is one TAM with the tenants acme and globex, and one
// device (software TEE "main") trusting the TAM and both tenants' signers.
type tenantsFixture struct {
	srv          *tamtest.TAM
	state        string
	acme, globex *tenantSide
	kid          string
}

// apiStatus fails unless err is an API error of status want (0: no error)
// whose detail contains detail.
func apiStatus(t *testing.T, what string, err error, want int, detail string) {
	t.Helper()
	if want == 0 {
		if err != nil {
			t.Fatalf("%s: %v", what, err)
		}
		return
	}
	var ae *admin.APIError
	if !errors.As(err, &ae) || ae.Status != want || !strings.Contains(ae.Message, detail) {
		t.Fatalf("%s: got %v, want %d with %q", what, err, want, detail)
	}
}

// startTenants starts the TAM with the tenants acme and globex. Policies
// come first: they match nothing until the device is labelled.
func startTenants(t *testing.T) *tenantsFixture {
	t.Helper()
	state := filepath.Join(t.TempDir(), "state")
	attest, err := device.Provision(state, "main")
	if err != nil {
		t.Fatal(err)
	}
	x := &tenantsFixture{srv: tamtest.Start(t, tamtest.Options{Endorse: attest}), state: state}
	x.acme, x.globex = x.addTenant(t, "acme"), x.addTenant(t, "globex")
	return x
}

// addTenant creates a tenant the way an operator does (the provider adds
// it, then creates an admin token for it); with that token alone the
// tenant trusts its signer, registers its component and requires it on
// devices with tenantLabel.
func (x *tenantsFixture) addTenant(t *testing.T, id string) *tenantSide {
	t.Helper()
	ctx := context.Background()
	_, err := x.srv.Client.AddTenant(ctx, id, strings.ToUpper(id[:1])+id[1:])
	apiStatus(t, "add tenant "+id, err, 0, "")
	tok, err := x.srv.Client.CreateToken(ctx, admin.NewAPIToken{Name: id + "-admin", Tenant: id, Role: "admin"})
	apiStatus(t, "token for "+id, err, 0, "")
	labels := []string{tenantLabel, id + "-lab"}
	slices.Sort(labels) // as the API answers them
	s := &tenantSide{id: id, api: &admin.Client{BaseURL: x.srv.BaseURL, Token: tok.Secret, HTTP: x.srv.HTTPClient},
		signer: tamtest.Signer(t), app: id + "-app", labels: labels, data: []byte(id + " per-device secret")}
	w, err := s.api.Whoami(ctx)
	if err != nil || w.Tenant != id || w.Role != "admin" {
		t.Fatalf("%s's token: %+v %v", id, w, err)
	}
	pem, err := s.signer.PublicKey().MarshalPEM(false)
	if err != nil {
		t.Fatal(err)
	}
	_, err = s.api.AddTrustedKey(ctx, admin.TrustSigners, pem, id+" vendor")
	apiStatus(t, id+" trusts its signer", err, 0, "")
	v, err := s.api.AddComponent(ctx, tamtest.Envelope(t, s.signer, s.app, 1, []byte(id+" TA")))
	apiStatus(t, id+" uploads its component", err, 0, "")
	s.comp = v.ComponentID
	_, err = s.api.SetPolicy(ctx, admin.Policy{Component: s.comp, Mode: "required", Scope: "label", Value: tenantLabel})
	apiStatus(t, id+" sets its policy", err, 0, "")
	return s
}

// options: the device trusts the TAM, and as TC signers both tenants'
// signers and the TAM's keys (which sign personalization manifests).
func (x *tenantsFixture) options() device.Options {
	signers := append(slices.Clone(x.srv.Keys()), x.acme.signer.PublicKey(), x.globex.signer.PublicKey())
	return device.Options{StateDir: x.state, TAM: x.srv.URL, TEEs: []string{"main"}, TAMKeys: x.srv.Keys(),
		SignerKeys: signers, Retry: fastRetry, Once: true}
}

// sync runs the device until the TAM has nothing more for it; any session
// error fails the test.
func (x *tenantsFixture) sync(t *testing.T) []broker.TEEStatus {
	t.Helper()
	ctx := context.Background()
	d, err := device.Open(ctx, x.options())
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	if err := d.Run(ctx); err != nil {
		t.Fatalf("device run: %v", err)
	}
	sts := d.Status(ctx)
	if len(sts) != 1 || sts[0].Error != "" {
		t.Fatalf("device status: %+v", sts)
	}
	return sts
}

// personalized finds a personalization item on the device by its payload
// id, with the content's digest.
func personalized(sts []broker.TEEStatus, p admin.Personalization, data []byte) bool {
	sum := sha256.Sum256(data)
	for _, c := range sts[0].Components {
		if tam.IDHex(c.ID) == p.PayloadID && string(c.SHA256) == string(sum[:]) {
			return true
		}
	}
	return false
}

// onDevice renders what the device holds, for failure messages.
func onDevice(sts []broker.TEEStatus) string {
	var out []string
	for _, c := range sts[0].Components {
		out = append(out, fmt.Sprintf("%s (sequence %d, sha256 %x)", c.ID, c.SequenceNumber, []byte(c.SHA256)))
	}
	return "[" + strings.Join(out, ", ") + "]"
}

// noErrors checks, in the provider's complete view of the device, that no
// session recorded an error or a failed install.
func (x *tenantsFixture) noErrors(t *testing.T) {
	t.Helper()
	d, err := x.srv.Client.Device(context.Background(), x.kid, 100)
	apiStatus(t, "provider's device view", err, 0, "")
	if d.Status != "ok" || d.LastError != "" || len(d.Failures) != 0 {
		t.Fatalf("device status %q, last error %q, failures %+v", d.Status, d.LastError, d.Failures)
	}
	if len(d.Reports) == 0 {
		t.Fatal("the TAM recorded no reports of the sessions")
	}
	for _, r := range d.Reports {
		if r.Kind == "error" || r.ErrCode != 0 {
			t.Fatalf("session report %+v", r)
		}
	}
}

// ids are the component ids of an API device view.
func ids(cs []admin.InstalledComponent) []string {
	var out []string
	for _, c := range cs {
		out = append(out, c.ID)
	}
	return out
}

// checkView: through its own token a tenant sees its component, policy,
// signer, labels and personalization item, and nothing of the other's,
// neither in lists nor on the shared device.
func checkView(t *testing.T, x *tenantsFixture, own, other *tenantSide, ownInstalled bool) {
	t.Helper()
	ctx := context.Background()
	cs, err := own.api.Components(ctx)
	apiStatus(t, own.id+" lists components", err, 0, "")
	if len(cs) != 1 || cs[0].ID != own.comp {
		t.Errorf("%s's components: %+v", own.id, cs)
	}
	ps, err := own.api.Policies(ctx)
	apiStatus(t, own.id+" lists policies", err, 0, "")
	if ownInstalled && (len(ps) != 1 || ps[0].Component != own.comp) {
		t.Errorf("%s's policies: %+v", own.id, ps)
	}
	for _, p := range ps {
		if p.Component != own.comp {
			t.Errorf("%s sees policy %+v", own.id, p)
		}
	}
	ks, err := own.api.TrustedKeys(ctx, admin.TrustSigners)
	apiStatus(t, own.id+" lists signers", err, 0, "")
	if len(ks) != 1 || ks[0].KID != hex.EncodeToString(own.signer.PublicKey().KID()) {
		t.Errorf("%s's signers: %+v", own.id, ks)
	}
	d, err := own.api.Device(ctx, x.kid, 10)
	apiStatus(t, own.id+" reads the device", err, 0, "")
	if !slices.Equal(d.Labels, own.labels) || d.TenantLabels != nil {
		t.Errorf("%s's labels on the device: %q, others %v; want %q", own.id, d.Labels, d.TenantLabels, own.labels)
	}
	got := ids(d.Components)
	if slices.Contains(got, own.comp) != ownInstalled {
		t.Errorf("%s's component on the device: %v, want installed=%v", own.id, got, ownInstalled)
	}
	if slices.Contains(got, other.comp) || slices.Contains(got, other.pz.ComponentID) || slices.Contains(got, other.pz.PayloadID) {
		t.Errorf("%s sees %s's components on the device: %v", own.id, other.id, got)
	}
	if len(d.Personalization) != 1 || d.Personalization[0].Tenant != own.id || d.Personalization[0].PayloadID != own.pz.PayloadID {
		t.Errorf("%s's personalization on the device: %+v", own.id, d.Personalization)
	}
	if len(d.Reports) != 0 || d.LastError != "" {
		t.Errorf("%s sees device-wide diagnostics: %d reports, last error %q", own.id, len(d.Reports), d.LastError)
	}
	ds, err := own.api.Devices(ctx)
	apiStatus(t, own.id+" lists devices", err, 0, "")
	if len(ds) != 1 || !slices.Equal(ds[0].Labels, own.labels) || !slices.Equal(ids(ds[0].Components), got) {
		t.Errorf("%s's device list: %+v, want the device view's labels %q and components %v", own.id, ds, own.labels, got)
	}
}

// TestTwoTenantsOneDevice: two tenants of one TAM (over loopback HTTP)
// manage one shared real device: it gets both tenants' components and
// personalization items; each tenant's API shows only its own; globex
// cannot reach acme's objects; and when globex stops covering the device,
// only globex's component leaves it.
func TestTwoTenantsOneDevice(t *testing.T) {
	for _, c := range []struct {
		name string
		drop func(ctx context.Context, g *tenantSide, kid string) error
	}{
		{"globex removes its policy", func(ctx context.Context, g *tenantSide, kid string) error {
			n, err := g.api.RemovePolicies(ctx, g.comp, "", "")
			if err == nil && n != 1 {
				err = errors.New("did not remove exactly one policy")
			}
			return err
		}},
		{"globex clears its labels", func(ctx context.Context, g *tenantSide, kid string) error {
			g.labels = nil
			_, err := g.api.SetLabels(ctx, kid, nil)
			return err
		}},
	} {
		t.Run(c.name, func(t *testing.T) {
			ctx := context.Background()
			x := startTenants(t)
			a, g := x.acme, x.globex

			// First contact registers the device (by attestation); no
			// tenant has labelled it yet, so nothing is installed.
			sts := x.sync(t)
			x.kid = hex.EncodeToString(sts[0].AgentKID)
			if installed(sts, "main", a.app) != nil || installed(sts, "main", g.app) != nil {
				t.Fatalf("installed before any label: %s", onDevice(sts))
			}
			for _, s := range []*tenantSide{a, g} {
				d, err := s.api.SetLabels(ctx, x.kid, s.labels)
				apiStatus(t, s.id+" labels the device", err, 0, "")
				if !slices.Equal(d.Labels, s.labels) {
					t.Fatalf("%s's labels: %q", s.id, d.Labels)
				}
				// One name for both: items are per (device, tenant).
				s.pz, err = s.api.SetPersonalization(ctx, x.kid, "cfg", s.data, nil)
				apiStatus(t, s.id+" personalizes the device", err, 0, "")
			}
			if a.pz.PayloadID == g.pz.PayloadID {
				t.Fatalf("both tenants' items %q go to one component %s", "cfg", a.pz.PayloadID)
			}

			// The device converges with both tenants' components and items.
			sts = x.sync(t)
			for _, s := range []*tenantSide{a, g} {
				if c := installed(sts, "main", s.app); c == nil || c.SequenceNumber != 1 {
					t.Fatalf("%s's component is not on the device: %s", s.id, onDevice(sts))
				}
				if !personalized(sts, s.pz, s.data) {
					t.Fatalf("%s's personalization item is not on the device: %s", s.id, onDevice(sts))
				}
			}
			x.noErrors(t)
			checkView(t, x, a, g, true)
			checkView(t, x, g, a, true)
			pd, err := x.srv.Client.Device(ctx, x.kid, 0)
			apiStatus(t, "provider's device view", err, 0, "")
			if len(pd.Labels) != 0 || !slices.Equal(pd.TenantLabels["acme"], a.labels) || !slices.Equal(pd.TenantLabels["globex"], g.labels) {
				t.Errorf("provider's view of the labels: %q %v", pd.Labels, pd.TenantLabels)
			}
			if got := ids(pd.Components); !slices.Contains(got, a.comp) || !slices.Contains(got, g.comp) {
				t.Errorf("provider's view of the device's components: %v", got)
			}

			// Globex cannot reach acme's component, policy or signer.
			acmePEM, _ := a.signer.PublicKey().MarshalPEM(false)
			acmeKID := hex.EncodeToString(a.signer.PublicKey().KID())
			for _, r := range []struct {
				what   string
				call   func() error
				status int
				detail string
			}{
				{"policy naming acme's component", func() error {
					_, err := g.api.SetPolicy(ctx, admin.Policy{Component: a.comp, Mode: "required", Scope: "label", Value: tenantLabel})
					return err
				}, 404, ""},
				{"policy naming acme's component by name", func() error {
					_, err := g.api.SetPolicy(ctx, admin.Policy{Component: tamtest.ManifestID(a.app).String(), Mode: "required", Scope: "all"})
					return err
				}, 404, ""},
				{"acme's component read", func() error { _, err := g.api.Component(ctx, a.comp); return err }, 404, ""},
				{"envelope of globex's component signed by acme's signer", func() error {
					_, err := g.api.AddComponent(ctx, tamtest.Envelope(t, a.signer, g.app, 2, []byte("forged")))
					return err
				}, 422, "not a key of tenant globex"},
				{"new component signed by acme's signer", func() error {
					_, err := g.api.AddComponent(ctx, tamtest.Envelope(t, a.signer, "globex-other", 1, []byte("forged")))
					return err
				}, 422, "not a key of tenant globex"},
				{"acme's component signed by globex's signer", func() error {
					_, err := g.api.AddComponent(ctx, tamtest.Envelope(t, g.signer, a.app, 2, []byte("takeover")))
					return err
				}, 422, "belongs to another tenant"},
				// Personalization ids are the TAM's: a component there
				// would replace acme's item on the device (a higher
				// sequence number, a signer the device trusts).
				{"component at acme's personalization id", func() error {
					pid, mid := tam.TenantPersonalizationComponent(a.id, "cfg")
					_, err := g.api.AddComponent(ctx, tamtest.EnvelopeAt(t, g.signer, mid, pid, 9, []byte("globex's data")))
					return err
				}, 400, "personalization"},
				{"component writing acme's personalization payload", func() error {
					pid, _ := tam.TenantPersonalizationComponent(a.id, "cfg")
					_, err := g.api.AddComponent(ctx, tamtest.EnvelopeAt(t, g.signer, tamtest.ManifestID("globex-cfg"), pid, 9, []byte("globex's data")))
					return err
				}, 400, "personalization"},
				{"delete acme's component", func() error { return g.api.DeleteComponent(ctx, a.comp) }, 404, ""},
				{"delete acme's policies", func() error { _, err := g.api.RemovePolicies(ctx, a.comp, "", ""); return err }, 404, ""},
				{"delete acme's label-scoped policy", func() error {
					_, err := g.api.RemovePolicies(ctx, a.comp, "label", tenantLabel)
					return err
				}, 404, ""},
				{"stop trusting acme's signer", func() error { return g.api.RemoveTrustedKey(ctx, admin.TrustSigners, acmeKID) }, 404, ""},
				{"claim acme's signer", func() error {
					_, err := g.api.AddTrustedKey(ctx, admin.TrustSigners, acmePEM, "")
					return err
				}, 409, "another tenant"},
				{"delete the shared device", func() error { return g.api.DeleteDevice(ctx, x.kid) }, 403, ""},
			} {
				apiStatus(t, "globex: "+r.what, r.call(), r.status, r.detail)
			}
			// Nothing of acme's changed.
			ad, err := a.api.Component(ctx, a.comp)
			apiStatus(t, "acme reads its component", err, 0, "")
			if ad.LatestSequence != 1 || len(ad.Policies) != 1 || ad.Policies[0].Value != tenantLabel {
				t.Fatalf("acme's component after globex's attempts: %+v", ad)
			}
			all, err := x.srv.Client.Components(ctx)
			apiStatus(t, "provider lists components", err, 0, "")
			if len(all) != 2 {
				t.Fatalf("components after globex's attempts: %+v", all)
			}
			checkView(t, x, a, g, true)

			// Globex stops covering the device: the next session removes
			// its component only; both personalization items stay.
			if err := c.drop(ctx, g, x.kid); err != nil {
				t.Fatalf("%s: %v", c.name, err)
			}
			sts = x.sync(t)
			if installed(sts, "main", g.app) != nil {
				t.Fatalf("globex's component stayed: %s", onDevice(sts))
			}
			if c := installed(sts, "main", a.app); c == nil || c.SequenceNumber != 1 {
				t.Fatalf("acme's component went with globex's: %s", onDevice(sts))
			}
			for _, s := range []*tenantSide{a, g} {
				if !personalized(sts, s.pz, s.data) {
					t.Fatalf("%s's personalization item left: %s", s.id, onDevice(sts))
				}
			}
			x.noErrors(t)
			checkView(t, x, a, g, true)
			checkView(t, x, g, a, false)
		})
	}
}
