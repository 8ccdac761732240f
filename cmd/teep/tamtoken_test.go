package main

import (
	"bytes"
	"encoding/json"
	"path/filepath"
	"strings"
	"testing"

	adminapi "github.com/teep-go/teep/internal/tam/admin"
)

// teepAs runs teep with TEEP_ADMIN_TOKEN set to token.
func teepAs(t *testing.T, token string, args ...string) (string, string, int) {
	t.Helper()
	var out, errb bytes.Buffer
	e := &env{stdin: bytes.NewReader(nil), stdout: &out, stderr: &errb, getenv: func(k string) string {
		if k == "TEEP_ADMIN_TOKEN" {
			return token
		}
		return ""
	}}
	code := run(e, args)
	return out.String(), errb.String(), code
}

func TestTAMTokensCLI(t *testing.T) {
	data := filepath.Join(t.TempDir(), "data")
	base, _ := tamStart(t, data)
	srv := []string{"--server", base}
	adm := func(args ...string) string { return tamMust(t, append(append(args, srv...), "--data", data)...) }

	// The start-up token is the provider.
	out := adm("tam", "whoami", "--json")
	goldenCheck(t, "tam-whoami-provider", out)
	if got := adm("tam", "tenant", "add", "acme", "--name", "Acme"); got != "acme\n" {
		t.Fatalf("tenant add printed %q", got)
	}
	if got := adm("tam", "tenant", "list"); !strings.Contains(got, "acme") || !strings.Contains(got, "default") {
		t.Fatalf("tenant list %q", got)
	}
	var created adminapi.CreatedAPIToken
	if err := json.Unmarshal([]byte(adm("tam", "token", "create", "ci", "--tenant", "acme", "--role", "admin", "--expires", "24h", "--json")), &created); err != nil {
		t.Fatal(err)
	}
	if created.Tenant != "acme" || created.Role != "admin" || created.ExpiresAt.IsZero() || !strings.HasPrefix(created.Secret, "teep_") {
		t.Fatalf("created %+v", created)
	}
	ro := strings.TrimSpace(adm("tam", "token", "create", "viewer", "--role", "read-only"))

	// The new tokens act with their scope.
	out, errOut, code := teepAs(t, created.Secret, append([]string{"tam", "whoami"}, srv...)...)
	if code != 0 || !strings.Contains(out, "tenant: acme") || !strings.Contains(out, "role: admin") {
		t.Fatalf("acme whoami: %d %q %q", code, out, errOut)
	}
	if _, errOut, code := teepAs(t, ro, append([]string{"tam", "policy", "list"}, srv...)...); code != 0 {
		t.Fatalf("read-only policy list: %d %s", code, errOut)
	}
	_, errOut, code = teepAs(t, ro, append([]string{"tam", "device", "label", strings.Repeat("ab", 32), "--label", "x"}, srv...)...)
	if code != 1 || !strings.Contains(errOut, "403") {
		t.Fatalf("read-only label: %d %q", code, errOut)
	}
	out, _, code = teepAs(t, created.Secret, append([]string{"tam", "token", "list"}, srv...)...)
	if code != 0 || !strings.Contains(out, created.ID) || strings.Contains(out, "viewer") {
		t.Fatalf("acme token list: %d %q", code, out)
	}
	if _, errOut, code := teepAs(t, created.Secret, append([]string{"tam", "tenant", "list"}, srv...)...); code != 1 || !strings.Contains(errOut, "403") {
		t.Fatalf("acme tenant list: %d %q", code, errOut)
	}

	// Revoked, the token stops working; the audit log has it all.
	adm("tam", "token", "revoke", created.ID)
	if _, errOut, code := teepAs(t, created.Secret, append([]string{"tam", "whoami"}, srv...)...); code != 1 || !strings.Contains(errOut, "401") {
		t.Fatalf("revoked whoami: %d %q", code, errOut)
	}
	var page adminapi.AuditPage
	if err := json.Unmarshal([]byte(adm("tam", "audit", "--json")), &page); err != nil {
		t.Fatal(err)
	}
	var actions []string
	for _, e := range page.Entries {
		actions = append(actions, e.Action+" "+e.Outcome)
	}
	want := []string{
		"DELETE /admin/v1/tokens/{id} ok",
		"PUT /admin/v1/devices/{kid}/labels 403 Forbidden",
		"POST /admin/v1/tokens ok",
		"POST /admin/v1/tokens ok",
		"POST /admin/v1/tenants ok",
	}
	if strings.Join(actions, "\n") != strings.Join(want, "\n") {
		t.Fatalf("audit:\n%s\nwant:\n%s", strings.Join(actions, "\n"), strings.Join(want, "\n"))
	}
	if out := adm("tam", "audit", "--limit", "2"); strings.Count(out, "\n") != 3 {
		t.Fatalf("audit --limit 2:\n%s", out)
	}
	if _, _, code := teepRun(t, nil, "tam", "audit", "--limit", "0"); code != 2 {
		t.Fatalf("audit --limit 0: exit %d", code)
	}
	if _, _, code := teepRun(t, nil, "tam", "token", "create", "x"); code != 2 {
		t.Fatalf("token create without --role: exit %d", code)
	}
}
