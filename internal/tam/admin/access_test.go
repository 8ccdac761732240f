package admin_test

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/teep-go/teep/cosekey"
	"github.com/teep-go/teep/internal/tam/admin"
	"github.com/teep-go/teep/internal/tam/tamtest"
)

// fixture is a TAM holding one of everything, and a token per principal.
type fixture struct {
	srv    *tamtest.TAM
	comp   string // component id
	kid    string // device kid
	victim string // a read-only token of the default tenant, for revoking
	tokens map[string]string
	signer *cosekey.Signer
}

// principals, in the order of the columns of accessCases.want.
var principals = []string{"ro", "op", "admin", "acme-admin", "acme-ro"}

func newFixture(t *testing.T) *fixture {
	t.Helper()
	srv := tamtest.Start(t, tamtest.Options{})
	c := srv.Client
	f := &fixture{srv: srv, signer: tamtest.Signer(t), tokens: map[string]string{"provider": srv.Token}}
	pem, _ := f.signer.PublicKey().MarshalPEM(false)
	_, err := c.AddTrustedKey(ctx, admin.TrustSigners, pem, "vendor")
	status(t, err, 0)
	v, err := c.AddComponent(ctx, tamtest.Envelope(t, f.signer, "app", 1, []byte("payload")))
	status(t, err, 0)
	f.comp = v.ComponentID
	_, err = c.SetPolicy(ctx, admin.Policy{Component: v.ComponentID})
	status(t, err, 0)
	dk, _ := cosekey.Generate(cosekey.AlgESP256)
	jwk, _ := dk.MarshalJWK(false)
	d, err := c.AddAgent(ctx, jwk, []string{"lab"})
	status(t, err, 0)
	f.kid = d.KID
	_, err = c.SetPersonalization(ctx, d.KID, "config", []byte("secret"), nil)
	status(t, err, 0)
	_, err = c.AddTenant(ctx, "acme", "Acme")
	status(t, err, 0)
	for name, nt := range map[string]admin.NewAPIToken{
		"ro":         {Name: "ro", Role: "read-only"},
		"op":         {Name: "op", Role: "operator"},
		"admin":      {Name: "admin", Role: "admin"},
		"acme-admin": {Name: "acme-admin", Tenant: "acme", Role: "admin"},
		"acme-ro":    {Name: "acme-ro", Tenant: "acme", Role: "read-only"},
		"victim":     {Name: "victim", Role: "read-only"},
	} {
		tok, err := c.CreateToken(ctx, nt)
		status(t, err, 0)
		f.tokens[name] = tok.Secret
		if name == "victim" {
			f.victim = tok.ID
		}
	}
	return f
}

type request struct {
	method, path, ctype string
	body                []byte
}

// A: allowed (2xx); F: 403; N: 404 (another tenant's object); U: 422 (a
// component signed by another tenant's key).
const (
	A = 0
	F = 403
	N = 404
	U = 422
)

var accessCases = []struct {
	pattern string
	req     func(t *testing.T, f *fixture) request
	want    [5]int // ro, op, admin, acme-admin, acme-ro
}{
	{"GET /admin/v1/health", get("/admin/v1/health"), [5]int{A, A, A, A, A}},
	{"GET /admin/v1/tam", get("/admin/v1/tam"), [5]int{A, A, A, A, A}},
	{"GET /admin/v1/whoami", get("/admin/v1/whoami"), [5]int{A, A, A, A, A}},
	{"GET /admin/v1/components", get("/admin/v1/components"), [5]int{A, A, A, A, A}},
	{"POST /admin/v1/components", func(t *testing.T, f *fixture) request {
		return request{"POST", "/admin/v1/components", "application/cbor", tamtest.Envelope(t, f.signer, "app", 2, []byte("v2"))}
	}, [5]int{F, F, A, U, F}},
	{"GET /admin/v1/components/{id}", func(t *testing.T, f *fixture) request {
		return request{"GET", "/admin/v1/components/" + f.comp, "", nil}
	}, [5]int{A, A, A, N, N}},
	{"DELETE /admin/v1/components/{id}", func(t *testing.T, f *fixture) request {
		return request{"DELETE", "/admin/v1/components/" + f.comp, "", nil}
	}, [5]int{F, F, A, N, F}},
	{"GET /admin/v1/components/{id}/versions/{seq}", func(t *testing.T, f *fixture) request {
		return request{"GET", "/admin/v1/components/" + f.comp + "/versions/1", "", nil}
	}, [5]int{A, A, A, N, N}},
	{"GET /admin/v1/policies", get("/admin/v1/policies"), [5]int{A, A, A, A, A}},
	{"POST /admin/v1/policies", func(t *testing.T, f *fixture) request {
		return request{"POST", "/admin/v1/policies", "application/json", []byte(`{"component_id":"` + f.comp + `","scope":"label","value":"beta"}`)}
	}, [5]int{F, A, A, N, F}},
	{"DELETE /admin/v1/policies", func(t *testing.T, f *fixture) request {
		return request{"DELETE", "/admin/v1/policies?component=" + f.comp, "", nil}
	}, [5]int{F, A, A, N, F}},
	{"GET /admin/v1/devices", get("/admin/v1/devices"), [5]int{A, A, A, A, A}},
	{"POST /admin/v1/devices", func(t *testing.T, f *fixture) request {
		k, _ := cosekey.Generate(cosekey.AlgESP256)
		jwk, _ := k.MarshalJWK(false)
		return request{"POST", "/admin/v1/devices", "application/jwk+json", jwk}
	}, [5]int{F, A, A, F, F}},
	{"GET /admin/v1/devices/{kid}", func(t *testing.T, f *fixture) request { return request{"GET", "/admin/v1/devices/" + f.kid, "", nil} }, [5]int{A, A, A, A, A}},
	{"DELETE /admin/v1/devices/{kid}", func(t *testing.T, f *fixture) request {
		return request{"DELETE", "/admin/v1/devices/" + f.kid, "", nil}
	}, [5]int{F, A, A, F, F}},
	{"PUT /admin/v1/devices/{kid}/labels", func(t *testing.T, f *fixture) request {
		return request{"PUT", "/admin/v1/devices/" + f.kid + "/labels", "application/json", []byte(`{"labels":["prod"]}`)}
	}, [5]int{F, A, A, A, F}},
	{"POST /admin/v1/devices/{kid}/reattest", func(t *testing.T, f *fixture) request {
		return request{"POST", "/admin/v1/devices/" + f.kid + "/reattest", "", nil}
	}, [5]int{F, A, A, A, F}},
	{"POST /admin/v1/devices/{kid}/reset", func(t *testing.T, f *fixture) request {
		return request{"POST", "/admin/v1/devices/" + f.kid + "/reset", "", nil}
	}, [5]int{F, A, A, F, F}},
	{"GET /admin/v1/devices/{kid}/personalization", func(t *testing.T, f *fixture) request {
		return request{"GET", "/admin/v1/devices/" + f.kid + "/personalization", "", nil}
	}, [5]int{A, A, A, A, A}},
	{"PUT /admin/v1/devices/{kid}/personalization/{name}", func(t *testing.T, f *fixture) request {
		return request{"PUT", "/admin/v1/devices/" + f.kid + "/personalization/other", "application/octet-stream", []byte("x")}
	}, [5]int{F, A, A, A, F}},
	{"DELETE /admin/v1/devices/{kid}/personalization/{name}", func(t *testing.T, f *fixture) request {
		return request{"DELETE", "/admin/v1/devices/" + f.kid + "/personalization/config", "", nil}
	}, [5]int{F, A, A, N, F}},
	{"GET /admin/v1/trust/{role}", get("/admin/v1/trust/" + admin.TrustSigners), [5]int{A, A, A, A, A}},
	{"POST /admin/v1/trust/{role}", func(t *testing.T, f *fixture) request {
		pem, _ := tamtest.Signer(t).PublicKey().MarshalPEM(false)
		return request{"POST", "/admin/v1/trust/" + admin.TrustSigners, "application/x-pem-file", pem}
	}, [5]int{F, F, A, A, F}},
	{"DELETE /admin/v1/trust/{role}/{kid}", func(t *testing.T, f *fixture) request {
		ks, err := f.srv.Client.TrustedKeys(ctx, admin.TrustSigners)
		status(t, err, 0)
		return request{"DELETE", "/admin/v1/trust/" + admin.TrustSigners + "/" + ks[0].KID, "", nil}
	}, [5]int{F, F, A, N, F}},
	{"GET /admin/v1/tokens", get("/admin/v1/tokens"), [5]int{F, F, A, A, F}},
	{"POST /admin/v1/tokens", func(t *testing.T, f *fixture) request {
		return request{"POST", "/admin/v1/tokens", "application/json", []byte(`{"name":"new","role":"read-only"}`)}
	}, [5]int{F, F, A, A, F}},
	{"DELETE /admin/v1/tokens/{id}", func(t *testing.T, f *fixture) request {
		return request{"DELETE", "/admin/v1/tokens/" + f.victim, "", nil}
	}, [5]int{F, F, A, N, F}},
	{"GET /admin/v1/tenants", get("/admin/v1/tenants"), [5]int{F, F, F, F, F}},
	{"POST /admin/v1/tenants", func(t *testing.T, f *fixture) request {
		return request{"POST", "/admin/v1/tenants", "application/json", []byte(`{"id":"beta"}`)}
	}, [5]int{F, F, F, F, F}},
	{"GET /admin/v1/audit", get("/admin/v1/audit"), [5]int{F, F, A, A, F}},
}

func get(path string) func(*testing.T, *fixture) request {
	return func(*testing.T, *fixture) request { return request{"GET", path, "", nil} }
}

func do(t *testing.T, f *fixture, token string, rq request) (int, string) {
	t.Helper()
	req, _ := http.NewRequest(rq.method, f.srv.BaseURL+rq.path, bytes.NewReader(rq.body))
	req.Header.Set("Authorization", "Bearer "+token)
	if rq.ctype != "" {
		req.Header.Set("Content-Type", rq.ctype)
	}
	resp, err := f.srv.HTTPClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// TestAccessTable tries every endpoint with every role and with another
// tenant's tokens, each on a fresh TAM so that one call's change does not
// decide the next one's answer.
func TestAccessTable(t *testing.T) {
	covered := map[string]bool{}
	for _, c := range accessCases {
		covered[c.pattern] = true
	}
	for _, p := range admin.RoutePatterns() {
		if !covered[p] {
			t.Errorf("route %s has no access case", p)
		}
	}
	for _, c := range accessCases {
		t.Run(c.pattern, func(t *testing.T) {
			for i, who := range append([]string{"provider"}, principals...) {
				f := newFixture(t)
				rq := c.req(t, f)
				if !strings.HasPrefix(c.pattern, rq.method+" ") {
					t.Fatalf("case builds a %s request", rq.method)
				}
				code, body := do(t, f, f.tokens[who], rq)
				want := A
				if i > 0 {
					want = c.want[i-1]
				}
				if want == A && code/100 != 2 || want != A && code != want {
					t.Errorf("%s: got %d %s, want %s", who, code, body, wantText(want))
				}
			}
		})
	}
}

func wantText(w int) string {
	if w == A {
		return "2xx"
	}
	return http.StatusText(w)
}

func TestTokens(t *testing.T) {
	f := newFixture(t)
	c := f.srv.Client
	as := func(name string) *admin.Client { return as(f, name) }
	w, err := c.Whoami(ctx)
	status(t, err, 0)
	if w != (admin.Whoami{TokenID: admin.ProviderTokenID, Name: admin.ProviderTokenID, Role: "provider"}) {
		t.Fatalf("provider whoami %+v", w)
	}
	w, err = as("acme-admin").Whoami(ctx)
	status(t, err, 0)
	if w.Tenant != "acme" || w.Role != "admin" || w.Name != "acme-admin" || !strings.HasPrefix(w.TokenID, "tok-") {
		t.Fatalf("acme whoami %+v", w)
	}

	// A tenant's admin lists its own tokens only, and cannot mint a
	// token of another tenant or a provider token.
	ts, err := as("acme-admin").Tokens(ctx, "")
	status(t, err, 0)
	if len(ts) != 2 {
		t.Fatalf("acme tokens %+v", ts)
	}
	for _, tk := range ts {
		if tk.Tenant != "acme" {
			t.Fatalf("acme admin sees %+v", tk)
		}
	}
	_, err = as("acme-admin").Tokens(ctx, "default")
	status(t, err, 404)
	_, err = as("acme-admin").CreateToken(ctx, admin.NewAPIToken{Name: "x", Tenant: "default", Role: "read-only"})
	status(t, err, 403)
	_, err = as("acme-admin").CreateToken(ctx, admin.NewAPIToken{Name: "x", Role: "provider"})
	status(t, err, 403)
	_, err = c.CreateToken(ctx, admin.NewAPIToken{Name: "x", Tenant: "acme", Role: "provider"})
	status(t, err, 400)
	for _, bad := range []admin.NewAPIToken{
		{Name: "", Role: "admin"},
		{Name: "x", Role: "root"},
		{Name: "x", Role: "admin", ExpiresAt: time.Now().Add(-time.Hour)},
	} {
		_, err = c.CreateToken(ctx, bad)
		status(t, err, 400)
	}
	_, err = c.CreateToken(ctx, admin.NewAPIToken{Name: "x", Tenant: "nobody", Role: "admin"})
	status(t, err, 404)

	// Revoked tokens stop working at once; the list keeps them, marked.
	status(t, c.RevokeToken(ctx, f.victim), 0)
	status(t, c.RevokeToken(ctx, f.victim), 404)
	if code, _ := do(t, f, f.tokens["victim"], request{"GET", "/admin/v1/whoami", "", nil}); code != 401 {
		t.Fatalf("revoked token: %d", code)
	}
	all, err := c.Tokens(ctx, "")
	status(t, err, 0)
	revoked := 0
	for _, tk := range all {
		if !tk.RevokedAt.IsZero() {
			revoked++
		}
	}
	if len(all) != 6 || revoked != 1 {
		t.Fatalf("tokens after revoking %+v", all)
	}
	// The secret is not the start-up token, is not stored, and a guess
	// near it fails.
	for _, bad := range []string{f.tokens["op"] + "x", strings.TrimPrefix(f.tokens["op"], "teep_"), "teep_"} {
		if code, _ := do(t, f, bad, request{"GET", "/admin/v1/whoami", "", nil}); code != 401 {
			t.Fatalf("token %q: %d", bad, code)
		}
	}
	_, err = c.AddTenant(ctx, "acme", "again")
	status(t, err, 409)
	_, err = c.AddTenant(ctx, "Bad_ID", "")
	status(t, err, 400)
	tn, err := c.Tenants(ctx)
	status(t, err, 0)
	if len(tn) != 2 || tn[0].ID != "acme" || tn[1].ID != "default" {
		t.Fatalf("tenants %+v", tn)
	}
}

func TestTokenExpiry(t *testing.T) {
	f := newFixture(t)
	tok, err := f.srv.Client.CreateToken(ctx, admin.NewAPIToken{Name: "short", Role: "read-only", ExpiresAt: time.Now().Add(1500 * time.Millisecond)})
	status(t, err, 0)
	if code, _ := do(t, f, tok.Secret, request{"GET", "/admin/v1/whoami", "", nil}); code != 200 {
		t.Fatalf("fresh token: %d", code)
	}
	for time.Now().Before(tok.ExpiresAt) {
		time.Sleep(100 * time.Millisecond)
	}
	if code, _ := do(t, f, tok.Secret, request{"GET", "/admin/v1/whoami", "", nil}); code != 401 {
		t.Fatalf("expired token: %d", code)
	}
}

func TestAudit(t *testing.T) {
	f := newFixture(t)
	c := f.srv.Client
	op := &admin.Client{BaseURL: f.srv.BaseURL, Token: f.tokens["op"], HTTP: f.srv.HTTPClient}
	_, err := op.SetLabels(ctx, f.kid, []string{"prod"})
	status(t, err, 0)
	_, err = op.AddComponent(ctx, tamtest.Envelope(t, f.signer, "app", 2, []byte("v2")))
	status(t, err, 403)
	_, err = c.AddComponent(ctx, tamtest.Envelope(t, tamtest.Signer(t), "other", 1, []byte("x")))
	status(t, err, 422)
	_, err = as(f, "acme-admin").CreateToken(ctx, admin.NewAPIToken{Name: "ci", Role: "read-only"})
	status(t, err, 0)

	page, err := c.Audit(ctx, admin.AuditQuery{})
	status(t, err, 0)
	e := page.Entries
	if len(e) < 4 {
		t.Fatalf("audit %+v", e)
	}
	opID := ""
	ts, _ := c.Tokens(ctx, "")
	for _, tk := range ts {
		if tk.Name == "op" {
			opID = tk.ID
		}
	}
	check := func(got admin.AuditEntry, tokenID, tenant, action, outcome string) {
		t.Helper()
		if got.TokenID != tokenID || got.Tenant != tenant || got.Action != action || got.Outcome != outcome ||
			got.Remote == "" || got.Time.IsZero() || got.Object == "" {
			t.Errorf("audit entry %+v, want %s %s %s %s", got, tokenID, tenant, action, outcome)
		}
	}
	check(e[0], e[0].TokenID, "acme", "POST /admin/v1/tokens", "ok")
	check(e[1], admin.ProviderTokenID, "", "POST /admin/v1/components", "422 Unprocessable Entity")
	check(e[2], opID, "default", "POST /admin/v1/components", "403 Forbidden")
	check(e[3], opID, "default", "PUT /admin/v1/devices/{kid}/labels", "ok")
	if e[3].Object != "/admin/v1/devices/"+f.kid+"/labels" {
		t.Errorf("object %q", e[3].Object)
	}

	// A tenant's admin sees its own tenant's entries only.
	ap, err := as(f, "acme-admin").Audit(ctx, admin.AuditQuery{})
	status(t, err, 0)
	if len(ap.Entries) != 1 || ap.Entries[0].ID != e[0].ID {
		t.Fatalf("acme audit %+v", ap.Entries)
	}
	_, err = as(f, "acme-admin").Audit(ctx, admin.AuditQuery{Tenant: "default"})
	status(t, err, 404)
	// Filters and paging.
	fp, err := c.Audit(ctx, admin.AuditQuery{Token: opID})
	status(t, err, 0)
	if len(fp.Entries) != 2 {
		t.Fatalf("by token %+v", fp.Entries)
	}
	var seen []int64
	before := int64(0)
	for {
		p, err := c.Audit(ctx, admin.AuditQuery{Limit: 3, Before: before})
		status(t, err, 0)
		for _, x := range p.Entries {
			seen = append(seen, x.ID)
		}
		if p.NextBefore == 0 {
			break
		}
		before = p.NextBefore
	}
	all, _ := c.Audit(ctx, admin.AuditQuery{Limit: 1000})
	if len(seen) != len(all.Entries) {
		t.Fatalf("paged %d entries, unpaged %d", len(seen), len(all.Entries))
	}
	for _, q := range []string{"limit=0", "limit=1001", "before=-1", "since=yesterday"} {
		code, _ := do(t, f, f.srv.Token, request{"GET", "/admin/v1/audit?" + q, "", nil})
		if code != 400 {
			t.Errorf("%s: %d", q, code)
		}
	}
	// Reads are not audited.
	n := len(all.Entries)
	c.Devices(ctx)
	all, _ = c.Audit(ctx, admin.AuditQuery{Limit: 1000})
	if len(all.Entries) != n {
		t.Fatalf("a GET was audited")
	}
	b, _ := json.Marshal(all.Entries[0])
	if !strings.Contains(string(b), `"token_id"`) {
		t.Fatalf("audit JSON %s", b)
	}
}

func as(f *fixture, name string) *admin.Client {
	return &admin.Client{BaseURL: f.srv.BaseURL, Token: f.tokens[name], HTTP: f.srv.HTTPClient}
}
