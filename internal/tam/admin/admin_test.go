package admin_test

import (
	"bytes"
	"context"
	"encoding/hex"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/teep-go/teep/cosekey"
	"github.com/teep-go/teep/internal/httpd"
	"github.com/teep-go/teep/internal/tam/admin"
	"github.com/teep-go/teep/internal/tam/tamtest"
	"github.com/teep-go/teep/suit"
)

var ctx = context.Background()

func raw(t *testing.T, srv *tamtest.TAM, method, path, token string, body []byte) (*http.Response, string) {
	t.Helper()
	req, _ := http.NewRequest(method, srv.BaseURL+path, bytes.NewReader(body))
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := srv.HTTPClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp, string(b)
}

func status(t *testing.T, err error, want int) {
	t.Helper()
	ae, ok := err.(*admin.APIError)
	if want == 0 {
		if err != nil {
			t.Fatalf("unexpected error %v", err)
		}
		return
	}
	if !ok || ae.Status != want {
		t.Fatalf("got %v, want status %d", err, want)
	}
}

func TestAuth(t *testing.T) {
	srv := tamtest.Start(t, tamtest.Options{})
	for _, tok := range []string{"", "wrong", srv.Token + "x", strings.ToUpper(srv.Token)} {
		resp, body := raw(t, srv, "GET", "/admin/v1/devices", tok, nil)
		p, err := httpd.ParseProblem(resp.Header.Get("Content-Type"), []byte(body))
		if resp.StatusCode != 401 || resp.Header.Get("WWW-Authenticate") == "" || err != nil || p.Status != 401 || p.Detail == "" {
			t.Fatalf("token %q: %d %s", tok, resp.StatusCode, body)
		}
	}
	req, _ := http.NewRequest("GET", srv.BaseURL+"/admin/v1/devices", nil)
	req.Header.Set("Authorization", "bearer "+srv.Token) // scheme is case-insensitive
	resp, err := srv.HTTPClient.Do(req)
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("lower-case scheme: %v %d", err, resp.StatusCode)
	}
	resp.Body.Close()
	// Health and metrics need no token; unknown admin paths need one.
	for path, want := range map[string]string{"/healthz": `"ok"`, "/readyz": `"database": "ok"`, "/metrics": "teep_tam_sessions_started_total"} {
		resp, body := raw(t, srv, "GET", path, "", nil)
		if resp.StatusCode != 200 || !strings.Contains(body, want) {
			t.Fatalf("%s: %d %q", path, resp.StatusCode, body[:min(len(body), 200)])
		}
	}
	if resp, _ := raw(t, srv, "GET", "/admin/v1/nope", srv.Token, nil); resp.StatusCode != 404 {
		t.Fatalf("unknown path: %d", resp.StatusCode)
	}
	if resp, _ := raw(t, srv, "GET", "/admin/v1/nope", "", nil); resp.StatusCode != 401 {
		t.Fatalf("unknown path without token: %d", resp.StatusCode)
	}
}

func TestComponentsAndPolicies(t *testing.T) {
	srv := tamtest.Start(t, tamtest.Options{})
	c := srv.Client
	signer := tamtest.Signer(t)
	env := tamtest.Envelope(t, signer, "app", 3, []byte("payload"))

	_, err := c.AddComponent(ctx, env)
	status(t, err, 422) // no trusted signer yet
	pem, _ := signer.PublicKey().MarshalPEM(false)
	k, err := c.AddTrustedKey(ctx, admin.TrustSigners, pem, "vendor A")
	status(t, err, 0)
	if k.KID == "" || k.Type != "P-256" || k.Comment != "vendor A" {
		t.Fatalf("trusted key %+v", k)
	}
	v, err := c.AddComponent(ctx, env)
	status(t, err, 0)
	if v.Sequence != 3 || v.Name != "TEEP-Device/SecureFS/app/suit" || len(v.PayloadIDs) != 1 || v.SignerKID != k.KID {
		t.Fatalf("version %+v", v)
	}
	_, err = c.AddComponent(ctx, env)
	status(t, err, 409)
	_, err = c.AddComponent(ctx, []byte("not suit"))
	status(t, err, 400)
	_, err = c.AddComponent(ctx, tamtest.Envelope(t, tamtest.Signer(t), "other", 1, []byte("x")))
	status(t, err, 422)
	resp, _ := raw(t, srv, "POST", "/admin/v1/components", srv.Token, make([]byte, admin.DefaultMaxUploadBytes+1))
	if resp.StatusCode != 413 {
		t.Fatalf("oversize upload: %d", resp.StatusCode)
	}

	cs, err := c.Components(ctx)
	status(t, err, 0)
	if len(cs) != 1 || cs[0].ID != v.ComponentID || cs[0].LatestSequence != 3 {
		t.Fatalf("components %+v", cs)
	}
	for _, ref := range []string{v.ComponentID, v.Name} {
		d, err := c.Component(ctx, ref)
		status(t, err, 0)
		if d.ID != v.ComponentID || len(d.VersionList) != 1 {
			t.Fatalf("component by %q: %+v", ref, d)
		}
	}
	_, err = c.Component(ctx, "TEEP-Device/none")
	status(t, err, 404)
	got, err := c.Envelope(ctx, v.ComponentID, 3)
	status(t, err, 0)
	parsed, err := suit.ParseEnvelope(got, suit.ParseOptions{})
	if err != nil || parsed.Tagged || parsed.Manifest().SequenceNumber != 3 {
		t.Fatalf("downloaded envelope: %v", err)
	}
	_, err = c.Envelope(ctx, v.ComponentID, 4)
	status(t, err, 404)

	// Policies.
	p, err := c.SetPolicy(ctx, admin.Policy{Component: v.Name})
	status(t, err, 0)
	if p.Mode != "required" || p.Scope != "all" || p.ID == 0 {
		t.Fatalf("default policy %+v", p)
	}
	_, err = c.SetPolicy(ctx, admin.Policy{Component: v.ComponentID, Mode: "optional", Scope: "label", Value: "beta"})
	status(t, err, 0)
	for _, bad := range []admin.Policy{
		{Component: v.ComponentID, Scope: "galaxy"},
		{Component: v.ComponentID, Mode: "maybe"},
		{Component: v.ComponentID, Scope: "label", Value: "bad label!"},
		{Component: v.ComponentID, Scope: "all", Value: "x"},
		{Component: v.ComponentID, Scope: "device", Value: "nothex"},
	} {
		_, err = c.SetPolicy(ctx, bad)
		status(t, err, 400)
	}
	_, err = c.SetPolicy(ctx, admin.Policy{Component: "TEEP-Device/none"})
	status(t, err, 404)
	resp, body := raw(t, srv, "POST", "/admin/v1/policies", srv.Token, []byte(`{"component_id":"x","surprise":1}`))
	if resp.StatusCode != 400 || !strings.Contains(body, "unknown field") {
		t.Fatalf("unknown JSON field: %d %s", resp.StatusCode, body)
	}
	ps, err := c.Policies(ctx)
	status(t, err, 0)
	if len(ps) != 2 {
		t.Fatalf("policies %+v", ps)
	}
	n, err := c.RemovePolicies(ctx, v.ComponentID, "label", "beta")
	status(t, err, 0)
	if n != 1 {
		t.Fatalf("removed %d", n)
	}
	_, err = c.RemovePolicies(ctx, v.ComponentID, "label", "beta")
	status(t, err, 404)
	resp, _ = raw(t, srv, "DELETE", "/admin/v1/policies", srv.Token, nil)
	if resp.StatusCode != 400 {
		t.Fatalf("DELETE policies without a filter: %d", resp.StatusCode)
	}
	status(t, c.DeleteComponent(ctx, v.ComponentID), 0)
	status(t, c.DeleteComponent(ctx, v.ComponentID), 404)
	ps, _ = c.Policies(ctx)
	if len(ps) != 0 {
		t.Fatalf("policies survived their component: %+v", ps)
	}
}

func TestDevicesAndTrust(t *testing.T) {
	srv := tamtest.Start(t, tamtest.Options{})
	c := srv.Client
	p256, _ := cosekey.Generate(cosekey.AlgESP256)
	jwk, _ := p256.MarshalJWK(false)
	d, err := c.AddAgent(ctx, jwk, []string{"lab", "beta"})
	status(t, err, 0)
	if d.Status != "registered" || !d.Preregistered || len(d.Labels) != 2 || d.LastSeen != nil {
		t.Fatalf("pre-registered device %+v", d)
	}
	_, err = c.AddAgent(ctx, []byte("not a key"), nil)
	status(t, err, 400)
	_, err = c.AddAgent(ctx, jwk, []string{"no spaces allowed"})
	status(t, err, 400)

	ds, err := c.Devices(ctx)
	status(t, err, 0)
	if len(ds) != 1 || ds[0].KID != d.KID {
		t.Fatalf("devices %+v", ds)
	}
	dd, err := c.Device(ctx, d.KID[:10], 5)
	status(t, err, 0)
	if dd.KID != d.KID || dd.Reports == nil || dd.Failures == nil {
		t.Fatalf("device detail %+v", dd)
	}
	_, err = c.Device(ctx, "abc", 5)
	status(t, err, 400) // prefix too short
	_, err = c.Device(ctx, strings.Repeat("0", 64), 5)
	status(t, err, 404)
	_, err = c.Device(ctx, d.KID, 5000)
	status(t, err, 400)

	d2, err := c.SetLabels(ctx, d.KID, []string{"prod"})
	status(t, err, 0)
	if len(d2.Labels) != 1 || d2.Labels[0] != "prod" {
		t.Fatalf("labels %+v", d2.Labels)
	}
	d2, err = c.Reattest(ctx, d.KID)
	status(t, err, 0)
	if !d2.Attestation.Needed {
		t.Fatal("reattest not recorded")
	}
	_, err = c.Reset(ctx, d.KID)
	status(t, err, 0)

	pz, err := c.SetPersonalization(ctx, d.KID, "config", []byte("secret"), nil)
	status(t, err, 0)
	if pz.Sequence != 1 || pz.Size != 6 {
		t.Fatalf("personalization %+v", pz)
	}
	_, err = c.SetPersonalization(ctx, d.KID, "bad name!", []byte("x"), nil)
	status(t, err, 400)
	_, err = c.SetPersonalization(ctx, d.KID, "config", []byte("x"), []string{"TEEP-Device/none"})
	status(t, err, 404)
	list, err := c.Personalization(ctx, d.KID)
	status(t, err, 0)
	if len(list) != 1 {
		t.Fatalf("personalization list %+v", list)
	}
	body, _ := json.Marshal(list)
	if strings.Contains(string(body), "secret") {
		t.Fatal("personalization data returned by the API")
	}
	status(t, c.DeletePersonalization(ctx, d.KID, "config"), 0)
	status(t, c.DeletePersonalization(ctx, d.KID, "config"), 404)

	ed, _ := cosekey.Generate(cosekey.AlgEd25519)
	edPEM, _ := ed.MarshalPEM(false)
	de, err := c.AddAgent(ctx, edPEM, nil)
	status(t, err, 0)
	_, err = c.SetPersonalization(ctx, de.KID, "config", []byte("x"), nil)
	status(t, err, 422)

	// Trust: Verifier keys, listing, removal, bad input.
	vk, _ := cosekey.Generate(cosekey.AlgEd25519)
	cose, _ := vk.MarshalCOSEKey(false)
	tk, err := c.AddTrustedKey(ctx, admin.TrustVerifiers, cose, "")
	status(t, err, 0)
	ks, err := c.TrustedKeys(ctx, admin.TrustVerifiers)
	status(t, err, 0)
	if len(ks) != 1 || ks[0].KID != tk.KID || !strings.Contains(ks[0].PEM, "BEGIN PUBLIC KEY") {
		t.Fatalf("verifier keys %+v", ks)
	}
	_, err = c.TrustedKeys(ctx, "friends")
	status(t, err, 404)
	status(t, c.RemoveTrustedKey(ctx, admin.TrustVerifiers, "zz"), 400)
	status(t, c.RemoveTrustedKey(ctx, admin.TrustVerifiers, tk.KID), 0)
	status(t, c.RemoveTrustedKey(ctx, admin.TrustVerifiers, tk.KID), 404)

	info, err := c.Info(ctx)
	status(t, err, 0)
	if len(info.Keys) != 2 || info.Keys[0].KID != hex.EncodeToString(srv.Key().KID()) {
		t.Fatalf("info %+v", info)
	}
	status(t, c.DeleteDevice(ctx, d.KID), 0)
	status(t, c.DeleteDevice(ctx, d.KID), 404)
}

// TestClientReadsProblems: the client's error is the problem's detail.
func TestClientReadsProblems(t *testing.T) {
	srv := tamtest.Start(t, tamtest.Options{})
	_, err := srv.Client.Device(context.Background(), "zz", 0)
	var ae *admin.APIError
	if !errors.As(err, &ae) || ae.Status != 400 || ae.Problem == nil || ae.Message != ae.Problem.Detail ||
		!strings.Contains(ae.Message, "hex") || !strings.Contains(err.Error(), "400 Bad Request: ") {
		t.Fatalf("%#v", err)
	}
	if _, err := srv.Client.Component(context.Background(), "0011223344556677"); !admin.IsNotFound(err) {
		t.Fatalf("unknown component: %v", err)
	}
}
