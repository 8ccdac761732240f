package admin_test

import (
	"net/http"
	"testing"

	"github.com/teep-go/teep/cosekey"
	"github.com/teep-go/teep/internal/keyrule"
	"github.com/teep-go/teep/internal/tam/admin"
	"github.com/teep-go/teep/internal/tam/tamtest"
)

// TestResponseKeys holds the live JSON answers of the admin API (as sent,
// not as the client decodes them) to the machine-output naming rule, on a TAM
// with a component, a policy, a device and trusted keys.
func TestResponseKeys(t *testing.T) {
	srv := tamtest.Start(t, tamtest.Options{})
	c := srv.Client
	signer := tamtest.Signer(t)
	pem, _ := signer.PublicKey().MarshalPEM(false)
	_, err := c.AddTrustedKey(ctx, admin.TrustSigners, pem, "vendor A")
	status(t, err, 0)
	v, err := c.AddComponent(ctx, tamtest.Envelope(t, signer, "app", 3, []byte("payload")))
	status(t, err, 0)
	_, err = c.SetPolicy(ctx, admin.Policy{Component: v.ComponentID, Mode: "required", Scope: "all"})
	status(t, err, 0)
	p256, _ := cosekey.Generate(cosekey.AlgESP256)
	jwk, _ := p256.MarshalJWK(false)
	d, err := c.AddAgent(ctx, jwk, []string{"lab"})
	status(t, err, 0)

	for _, path := range []string{"health", "tam", "components", "components/" + v.ComponentID, "policies", "devices",
		"devices/" + d.KID, "devices/" + d.KID + "/personalization", "trust/" + admin.TrustSigners, "trust/" + admin.TrustVerifiers} {
		resp, body := raw(t, srv, http.MethodGet, "/admin/v1/"+path, srv.Token, nil)
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("GET %s: %d %s", path, resp.StatusCode, body)
		}
		if bad := keyrule.Violations([]byte(body)); len(bad) > 0 {
			t.Errorf("GET %s: keys break the naming rule: %q\n%s", path, bad, body)
		}
	}
}
