package console_test

import (
	"context"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"regexp"
	"strings"
	"testing"

	"github.com/teep-go/teep/internal/tam/admin"
	"github.com/teep-go/teep/internal/tam/console"
	"github.com/teep-go/teep/internal/tam/tamtest"
)

var csrfRE = regexp.MustCompile(`name="csrf" value="([^"]+)"`)

type browser struct {
	t    *testing.T
	base string
	c    *http.Client
	csrf string
}

func newBrowser(t *testing.T, srv *tamtest.TAM) *browser {
	jar, _ := cookiejar.New(nil)
	c := &http.Client{Jar: jar, Transport: srv.HTTPClient.Transport,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	return &browser{t: t, base: srv.BaseURL, c: c}
}

func (b *browser) do(method, path string, form url.Values) (*http.Response, string) {
	b.t.Helper()
	req, _ := http.NewRequest(method, b.base+path, strings.NewReader(form.Encode()))
	if method == "POST" {
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	}
	resp, err := b.c.Do(req)
	if err != nil {
		b.t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if m := csrfRE.FindStringSubmatch(string(body)); m != nil {
		b.csrf = m[1]
	}
	return resp, string(body)
}

func (b *browser) signIn(token string) *http.Response {
	b.t.Helper()
	resp, _ := b.do("POST", "/console/login", url.Values{"token": {token}})
	if resp.StatusCode != http.StatusSeeOther {
		b.t.Fatalf("sign-in: %d", resp.StatusCode)
	}
	b.do("GET", "/console/", nil)
	return resp
}

func fixture(t *testing.T) (*tamtest.TAM, string) {
	srv := tamtest.Start(t, tamtest.Options{})
	signer := tamtest.Signer(t)
	srv.TrustSigner(signer.PublicKey())
	srv.Upload(tamtest.Envelope(t, signer, "app", 1, []byte("app v1")))
	ro, err := srv.Client.CreateToken(context.Background(), admin.NewAPIToken{Name: "viewer", Role: "read-only"})
	if err != nil {
		t.Fatal(err)
	}
	return srv, ro.Secret
}

func TestSessionCookieCSPAndCSRF(t *testing.T) {
	srv, _ := fixture(t)
	b := newBrowser(t, srv)
	if resp, _ := b.do("GET", "/console/", nil); resp.StatusCode != http.StatusSeeOther || !strings.HasPrefix(resp.Header.Get("Location"), "/console/login") {
		t.Fatalf("no session: %d %s", resp.StatusCode, resp.Header.Get("Location"))
	}
	if resp, _ := b.do("POST", "/console/login", url.Values{"token": {"wrong-token-wrong-token"}}); resp.StatusCode != http.StatusUnauthorized {
		t.Fatalf("wrong token: %d", resp.StatusCode)
	}
	resp := b.signIn(srv.Token)
	sc := resp.Header.Get("Set-Cookie")
	for _, want := range []string{console.CookieName + "=", "Path=/console", "HttpOnly", "SameSite=Strict"} {
		if !strings.Contains(sc, want) {
			t.Fatalf("cookie %q lacks %q", sc, want)
		}
	}
	if strings.Contains(sc, "Secure") {
		t.Fatalf("Secure over plain HTTP: %q", sc)
	}
	for _, p := range []string{"/console/", "/console/devices", "/console/components", "/console/policies", "/console/trust", "/console/tokens", "/console/audit"} {
		resp, body := b.do("GET", p, nil)
		if resp.StatusCode != 200 || resp.Header.Get("Content-Security-Policy") != console.CSP || strings.Contains(body, "<script") {
			t.Fatalf("%s: %d csp %q", p, resp.StatusCode, resp.Header.Get("Content-Security-Policy"))
		}
	}
	comps, _ := srv.Client.Components(context.Background())
	form := url.Values{"component": {comps[0].ID}, "mode": {"required"}, "scope": {"all"}}
	if resp, _ := b.do("POST", "/console/policies", form); resp.StatusCode != http.StatusForbidden {
		t.Fatalf("POST without CSRF: %d", resp.StatusCode)
	}
	form.Set("csrf", b.csrf+"x")
	if resp, _ := b.do("POST", "/console/policies", form); resp.StatusCode != http.StatusForbidden {
		t.Fatalf("POST with a wrong CSRF token: %d", resp.StatusCode)
	}
	if ps, _ := srv.Client.Policies(context.Background()); len(ps) != 0 {
		t.Fatalf("refused POSTs changed state: %+v", ps)
	}
	form.Set("csrf", b.csrf)
	if resp, _ := b.do("POST", "/console/policies", form); resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("POST with CSRF: %d", resp.StatusCode)
	}
	if ps, _ := srv.Client.Policies(context.Background()); len(ps) != 1 {
		t.Fatalf("policy not set: %+v", ps)
	}
	page, err := srv.Client.Audit(context.Background(), admin.AuditQuery{Action: "POST /admin/v1/policies"})
	if err != nil || len(page.Entries) != 1 || page.Entries[0].Outcome != "ok" || page.Entries[0].TokenID != admin.ProviderTokenID {
		t.Fatalf("audit: %+v %v", page, err)
	}
	// Cross-site sign-in is refused.
	req, _ := http.NewRequest("POST", srv.BaseURL+"/console/login", strings.NewReader("token="+srv.Token))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Origin", "http://evil.example")
	if resp, err := http.DefaultClient.Do(req); err != nil || resp.StatusCode != http.StatusForbidden {
		t.Fatalf("cross-site sign-in: %v %v", resp, err)
	}
	// Sign out: the old cookie no longer works.
	old := b.c.Jar.Cookies(mustURL(srv.BaseURL + "/console/"))
	if resp, _ := b.do("POST", "/console/logout", url.Values{"csrf": {b.csrf}}); resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("sign-out: %d", resp.StatusCode)
	}
	req, _ = http.NewRequest("GET", srv.BaseURL+"/console/devices", nil)
	for _, c := range old {
		req.AddCookie(c)
	}
	if resp, err := b.c.Do(req); err != nil || resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("old cookie after sign-out: %v %v", resp, err)
	}
}

func mustURL(s string) *url.URL { u, _ := url.Parse(s); return u }

func TestReadOnlyAndRevocation(t *testing.T) {
	srv, ro := fixture(t)
	b := newBrowser(t, srv)
	b.signIn(ro)
	_, body := b.do("GET", "/console/components", nil)
	if strings.Contains(body, `enctype="multipart/form-data"`) {
		t.Fatal("a read-only token is shown the upload form")
	}
	_, body = b.do("GET", "/console/policies", nil)
	if strings.Contains(body, `id="policy-form"`) {
		t.Fatal("a read-only token is shown the policy form")
	}
	if resp, _ := b.do("GET", "/console/tokens", nil); resp.StatusCode != http.StatusForbidden {
		t.Fatalf("read-only token on the tokens page: %d", resp.StatusCode)
	}
	comps, _ := srv.Client.Components(context.Background())
	form := url.Values{"csrf": {b.csrf}, "component": {comps[0].ID}, "mode": {"required"}, "scope": {"all"}}
	if resp, _ := b.do("POST", "/console/policies", form); resp.StatusCode != http.StatusForbidden {
		t.Fatalf("forged POST of a read-only token: %d", resp.StatusCode)
	}
	if ps, _ := srv.Client.Policies(context.Background()); len(ps) != 0 {
		t.Fatalf("read-only token changed state: %+v", ps)
	}
	// Revoking the token ends the session at its next request.
	toks, _ := srv.Client.Tokens(context.Background(), "")
	for _, k := range toks {
		if k.Name == "viewer" {
			if err := srv.Client.RevokeToken(context.Background(), k.ID); err != nil {
				t.Fatal(err)
			}
		}
	}
	if resp, _ := b.do("GET", "/console/devices", nil); resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("revoked token still signed in: %d", resp.StatusCode)
	}
}

func TestOtherTenant(t *testing.T) {
	srv, _ := fixture(t)
	ctx := context.Background()
	if _, err := srv.Client.AddTenant(ctx, "acme", "Acme"); err != nil {
		t.Fatal(err)
	}
	tok, err := srv.Client.CreateToken(ctx, admin.NewAPIToken{Name: "acme", Tenant: "acme", Role: "admin"})
	if err != nil {
		t.Fatal(err)
	}
	b := newBrowser(t, srv)
	b.signIn(tok.Secret)
	comps, _ := srv.Client.Components(ctx)
	if resp, _ := b.do("GET", "/console/components/"+comps[0].ID, nil); resp.StatusCode != http.StatusNotFound {
		t.Fatalf("another tenant's component: %d", resp.StatusCode)
	}
	if _, body := b.do("GET", "/console/components", nil); strings.Contains(body, comps[0].ID) {
		t.Fatal("another tenant's component is listed")
	}
}
