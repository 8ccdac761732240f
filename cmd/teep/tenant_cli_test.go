package main

import (
	"encoding/hex"
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/teep-go/teep/cosekey"
	"github.com/teep-go/teep/internal/keyfile"
	adminapi "github.com/teep-go/teep/internal/tam/admin"
	"github.com/teep-go/teep/internal/tam/tamtest"
)

// cliTenant is one tenant as its users drive it: the CLI with a
// tenant-scoped token in TEEP_ADMIN_TOKEN and --server, nothing else.
type cliTenant struct {
	id, token  string
	signer     *cosekey.Signer
	signerFile string
	envelope   string // its component's envelope file
	comp       string // the component id tc add printed
	labels     []string
}

// must runs teep with the tenant's token and the server, and fails the test
// unless the command succeeds.
func (c *cliTenant) must(t *testing.T, base string, args ...string) string {
	t.Helper()
	out, errOut, code := teepAs(t, c.token, append(args, "--server", base)...)
	if code != 0 {
		t.Fatalf("%s: teep %s: exit %d: %s", c.id, strings.Join(args, " "), code, errOut)
	}
	return out
}

// asJSON runs a listing command with --json and decodes it.
func asJSON[T any](t *testing.T, c *cliTenant, base string, args ...string) T {
	t.Helper()
	var v T
	out := c.must(t, base, append(args, "--json")...)
	if err := json.Unmarshal([]byte(out), &v); err != nil {
		t.Fatalf("%s: teep %s --json: %v\n%s", c.id, strings.Join(args, " "), err, out)
	}
	return v
}

// TestTenantCLI: tokens of tenants made with `teep tam token create`, then
// each tenant uses the admin commands with only its token: it manages and
// sees its own signer, component, policy, labels, personalization item and
// audit log, none of the other's; another tenant's objects answer 404; and
// a read-only token of the tenant is refused every change (exit 1, a 403
// naming its role and what the change needs) without changing anything.
func TestTenantCLI(t *testing.T) {
	dir := t.TempDir()
	data := filepath.Join(dir, "data")
	base, _ := tamStart(t, data)
	P := []string{"--server", base, "--data", data} // the provider

	// Tenants exist only once the provider adds them.
	if _, errOut, code := teepRun(t, nil, append([]string{"tam", "token", "create", "early", "--tenant", "acme", "--role", "admin"}, P...)...); code != 1 || !strings.Contains(errOut, "404") {
		t.Fatalf("token of a tenant not yet added: exit %d %q", code, errOut)
	}
	// A device the provider registers; both tenants label it.
	agentKey, err := cosekey.Generate(cosekey.AlgESP256)
	if err != nil {
		t.Fatal(err)
	}
	agentFile := filepath.Join(dir, "agent.jwk")
	if err := keyfile.Save(agentFile, agentKey.PublicKey(), cosekey.FormatJWK, false); err != nil {
		t.Fatal(err)
	}
	kid := strings.TrimSpace(tamMust(t, append([]string{"tam", "trust", "add-agent", agentFile, "--label", "lab"}, P...)...))

	tenants := map[string]*cliTenant{}
	for _, id := range []string{"acme", "globex"} {
		if got := tamMust(t, append([]string{"tam", "tenant", "add", id}, P...)...); got != id+"\n" {
			t.Fatalf("tenant add printed %q", got)
		}
		c := &cliTenant{id: id, signer: tamtest.Signer(t), signerFile: filepath.Join(dir, id+".pub"),
			envelope: filepath.Join(dir, id+".suit"), labels: []string{"fleet", id + "-lab"}}
		slices.Sort(c.labels) // as the TAM answers them
		c.token = strings.TrimSpace(tamMust(t, append([]string{"tam", "token", "create", id + "-admin", "--tenant", id, "--role", "admin"}, P...)...))
		if err := keyfile.Save(c.signerFile, c.signer.PublicKey(), cosekey.FormatPEM, false); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(c.envelope, tamtest.Envelope(t, c.signer, id+"-app", 1, []byte(id+" TA")), 0o644); err != nil {
			t.Fatal(err)
		}
		if w := c.must(t, base, "tam", "whoami"); !strings.Contains(w, "tenant: "+id) || !strings.Contains(w, "role: admin") {
			t.Fatalf("%s whoami: %q", id, w)
		}
		if got := strings.TrimSpace(c.must(t, base, "tam", "trust", "add-signer", c.signerFile)); got != hex.EncodeToString(c.signer.PublicKey().KID()) {
			t.Fatalf("%s add-signer printed %q", id, got)
		}
		c.comp = strings.TrimSpace(c.must(t, base, "tam", "tc", "add", c.envelope))
		if out := c.must(t, base, "tam", "policy", "require", c.comp, "--label", "fleet"); !strings.Contains(out, "required on label fleet") {
			t.Fatalf("%s policy require printed %q", id, out)
		}
		label := []string{"tam", "device", "label", kid}
		for _, l := range c.labels {
			label = append(label, "--label", l)
		}
		if out := c.must(t, base, label...); out != kid+" labels: "+strings.Join(c.labels, ",")+"\n" {
			t.Fatalf("%s device label printed %q", id, out)
		}
		cfg := filepath.Join(dir, id+"-cfg")
		if err := os.WriteFile(cfg, []byte(id+" settings"), 0o600); err != nil {
			t.Fatal(err)
		}
		c.must(t, base, "tam", "personalize", "set", kid, "cfg", cfg) // one name for both: per tenant
		tenants[id] = c
	}
	// A tenant's admin makes its own read-only token: --tenant defaults to
	// the caller's, and it cannot make one for another tenant.
	acme, globex := tenants["acme"], tenants["globex"]
	viewer := &cliTenant{id: "acme read-only", token: strings.TrimSpace(acme.must(t, base, "tam", "token", "create", "viewer", "--role", "read-only"))}
	if w := viewer.must(t, base, "tam", "whoami"); !strings.Contains(w, "tenant: acme") || !strings.Contains(w, "role: read-only") {
		t.Fatalf("viewer whoami: %q", w)
	}
	if _, errOut, code := teepAs(t, acme.token, "tam", "token", "create", "spy", "--tenant", "globex", "--role", "read-only", "--server", base); code != 1 || !strings.Contains(errOut, "403") {
		t.Fatalf("acme creating a globex token: exit %d %q", code, errOut)
	}

	// Each tenant sees only its own objects; the other's answer 404.
	for _, c := range []struct{ own, other *cliTenant }{{acme, globex}, {globex, acme}, {viewer, globex}} {
		own := c.own
		if own == viewer {
			own = acme
		}
		if cs := asJSON[[]adminapi.Component](t, c.own, base, "tam", "tc", "list"); len(cs) != 1 || cs[0].ID != own.comp {
			t.Errorf("%s tc list: %+v", c.own.id, cs)
		}
		if ps := asJSON[[]adminapi.Policy](t, c.own, base, "tam", "policy", "list"); len(ps) != 1 || ps[0].Component != own.comp || ps[0].Value != "fleet" {
			t.Errorf("%s policy list: %+v", c.own.id, ps)
		}
		if ks := asJSON[[]adminapi.TrustedKey](t, c.own, base, "tam", "trust", "list"); len(ks) != 1 || ks[0].KID != hex.EncodeToString(own.signer.PublicKey().KID()) {
			t.Errorf("%s trust list: %+v", c.own.id, ks)
		}
		ds := asJSON[[]adminapi.Device](t, c.own, base, "tam", "device", "list")
		if len(ds) != 1 || ds[0].KID != kid || !slices.Equal(ds[0].Labels, own.labels) || ds[0].TenantLabels != nil {
			t.Errorf("%s device list: %+v", c.own.id, ds)
		}
		d := asJSON[adminapi.DeviceDetail](t, c.own, base, "tam", "device", "show", kid)
		if len(d.Personalization) != 1 || d.Personalization[0].Tenant != own.id || d.Personalization[0].Name != "cfg" {
			t.Errorf("%s device show: personalization %+v", c.own.id, d.Personalization)
		}
		if pz := c.own.must(t, base, "tam", "personalize", "list", kid); strings.Count(pz, "cfg ") != 1 {
			t.Errorf("%s personalize list: %q", c.own.id, pz)
		}
		if tc := c.own.must(t, base, "tam", "tc", "list"); strings.Contains(tc, c.other.id+"-app") {
			t.Errorf("%s tc list names %s's component: %q", c.own.id, c.other.id, tc)
		}
		for _, args := range [][]string{{"tam", "tc", "show", c.other.comp}, {"tam", "tc", "get", c.other.comp, "--sequence", "1"}} {
			if _, errOut, code := teepAs(t, c.own.token, append(args, "--server", base)...); code != 1 || !strings.Contains(errOut, "404") {
				t.Errorf("%s: teep %s: exit %d %q, want 1 and a 404", c.own.id, strings.Join(args, " "), code, errOut)
			}
		}
	}
	// The provider sees both tenants' components and labels.
	var all []adminapi.Component
	if err := json.Unmarshal([]byte(tamMust(t, append([]string{"tam", "tc", "list", "--json"}, P...)...)), &all); err != nil || len(all) != 2 {
		t.Fatalf("provider tc list: %+v %v", all, err)
	}

	// Globex cannot change acme's component or policy, nor upload with
	// acme's signer; a tenant's admin may not add tenants.
	forged := filepath.Join(dir, "forged.suit")
	if err := os.WriteFile(forged, tamtest.Envelope(t, acme.signer, "globex-app", 2, []byte("forged")), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"tam", "policy", "require", acme.comp, "--all"}, "404"},
		{[]string{"tam", "policy", "remove", acme.comp}, "404"},
		{[]string{"tam", "tc", "delete", acme.comp}, "404"},
		{[]string{"tam", "tc", "add", forged}, "422"},
		{[]string{"tam", "trust", "remove", hex.EncodeToString(acme.signer.PublicKey().KID())}, "404"},
		{[]string{"tam", "tenant", "add", "initech"}, "403"},
	} {
		if _, errOut, code := teepAs(t, globex.token, append(c.args, "--server", base)...); code != 1 || !strings.Contains(errOut, c.want) {
			t.Errorf("globex: teep %s: exit %d %q, want 1 and %s", strings.Join(c.args, " "), code, errOut, c.want)
		}
	}

	// A read-only token of acme reads, but every change is refused with
	// exit 1 and a 403 saying which role it needs.
	acmeCfg := filepath.Join(dir, "acme-cfg")
	v2 := filepath.Join(dir, "acme-v2.suit")
	if err := os.WriteFile(v2, tamtest.Envelope(t, acme.signer, "acme-app", 2, []byte("acme TA v2")), 0o644); err != nil {
		t.Fatal(err)
	}
	changes := []struct {
		args  []string
		needs string
	}{
		{[]string{"tam", "tc", "add", v2}, "needs admin"},
		{[]string{"tam", "tc", "delete", acme.comp}, "needs admin"},
		{[]string{"tam", "policy", "require", acme.comp, "--all"}, "needs operator"},
		{[]string{"tam", "policy", "remove", acme.comp}, "needs operator"},
		{[]string{"tam", "trust", "add-signer", globex.signerFile}, "needs admin"},
		{[]string{"tam", "trust", "remove", hex.EncodeToString(acme.signer.PublicKey().KID())}, "needs admin"},
		{[]string{"tam", "device", "label", kid, "--label", "other"}, "needs operator"},
		{[]string{"tam", "personalize", "set", kid, "cfg", acmeCfg}, "needs operator"},
		{[]string{"tam", "personalize", "delete", kid, "cfg"}, "needs operator"},
		{[]string{"tam", "token", "create", "more", "--role", "read-only"}, "needs admin"},
	}
	for _, c := range changes {
		cmd := strings.Join(c.args[:3], " ")
		out, errOut, code := teepAs(t, viewer.token, append(c.args, "--server", base)...)
		if code != 1 || out != "" || !strings.HasPrefix(errOut, "teep "+cmd+": 403 Forbidden: role read-only may not ") || !strings.Contains(errOut, c.needs) {
			t.Errorf("read-only: teep %s: exit %d, stdout %q, stderr %q; want exit 1 and a 403 that %s", strings.Join(c.args, " "), code, out, errOut, c.needs)
		}
	}
	// Nothing changed: acme's component is at version 1 with its policy,
	// its labels and its item are as they were.
	d := asJSON[adminapi.ComponentDetail](t, acme, base, "tam", "tc", "show", acme.comp)
	if d.LatestSequence != 1 || len(d.Policies) != 1 {
		t.Errorf("acme's component after the refused changes: %+v", d)
	}
	if dd := asJSON[adminapi.DeviceDetail](t, acme, base, "tam", "device", "show", kid); !slices.Equal(dd.Labels, acme.labels) || len(dd.Personalization) != 1 || dd.Personalization[0].Sequence != 1 {
		t.Errorf("acme's device view after the refused changes: labels %q personalization %+v", dd.Labels, dd.Personalization)
	}

	// Acme's audit log holds acme's entries only, the refusals included.
	page := asJSON[adminapi.AuditPage](t, acme, base, "tam", "audit", "--limit", "100")
	refused := 0
	for _, e := range page.Entries {
		if e.Tenant != "acme" {
			t.Errorf("acme's audit log has %+v", e)
		}
		if strings.HasPrefix(e.Outcome, "403") && e.TokenName == "viewer" {
			refused++
		}
	}
	if refused != len(changes) {
		t.Errorf("acme's audit log has %d refused changes of the read-only token, want %d", refused, len(changes))
	}
}
