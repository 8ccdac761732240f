package main

import (
	"bytes"
	"context"
	"encoding/hex"
	"encoding/json"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/teep-go/teep/cosekey"
	"github.com/teep-go/teep/internal/keyfile"
	"github.com/teep-go/teep/internal/tam/admin"
	"github.com/teep-go/teep/internal/tam/tamtest"
	"github.com/teep-go/teep/teep"
)

// tamBuffer is a goroutine-safe output buffer for the serving command.
type tamBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *tamBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *tamBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// tamStart runs `teep tam serve` in-process on a loopback port and returns
// its base URL and what it printed; the TAM stops when the test ends.
func tamStart(t *testing.T, data string, extra ...string) (string, *tamBuffer) {
	t.Helper()
	ready := make(chan string, 1)
	var stop func()
	tamServeReady = func(base string, s func()) { stop = s; ready <- base }
	out, errOut := &tamBuffer{}, &tamBuffer{}
	done := make(chan int, 1)
	go func() {
		e := &env{stdin: bytes.NewReader(nil), stdout: out, stderr: errOut, getenv: func(string) string { return "" }}
		done <- run(e, append([]string{"tam", "serve", "--listen", "127.0.0.1:0", "--data", data, "--log-level", "warn"}, extra...))
	}()
	var base string
	select {
	case base = <-ready:
	case code := <-done:
		t.Fatalf("tam serve exited %d: %s", code, errOut.String())
	case <-time.After(20 * time.Second):
		t.Fatal("tam serve did not start")
	}
	tamServeReady = nil
	t.Cleanup(func() {
		stop()
		select {
		case code := <-done:
			if code != 0 {
				t.Errorf("tam serve exited %d: %s", code, errOut.String())
			}
		case <-time.After(20 * time.Second):
			t.Error("tam serve did not stop")
		}
	})
	return base, out
}

// tamRun runs a command in-process with environment variables (teepRun has
// none) and returns exit code, stdout, stderr.
func tamRun(t *testing.T, getenv map[string]string, args ...string) (int, string, string) {
	t.Helper()
	var out, errOut bytes.Buffer
	e := &env{stdin: bytes.NewReader(nil), stdout: &out, stderr: &errOut, getenv: func(k string) string { return getenv[k] }}
	code := run(e, args)
	return code, out.String(), errOut.String()
}

func tamMust(t *testing.T, args ...string) string {
	t.Helper()
	out, errOut, code := teepRun(t, nil, args...)
	if code != 0 {
		t.Fatalf("teep %s: exit %d: %s", strings.Join(args, " "), code, errOut)
	}
	return out
}

func TestTAMServeAndAdminCLI(t *testing.T) {
	dir := t.TempDir()
	data := filepath.Join(dir, "data")
	base, out := tamStart(t, data, "--legacy-path", "/tam/legacy")
	if !strings.Contains(out.String(), "admin token: ") || !strings.Contains(out.String(), "TEEP endpoint: "+base+"/tam") {
		t.Fatalf("serve printed %q", out.String())
	}
	for _, f := range []string{"tam-esp256.key", "tam-ed25519.key", "session.key", "admin.token", "tam.db"} {
		fi, err := os.Stat(filepath.Join(data, f))
		if err != nil {
			t.Fatal(err)
		}
		if fi.Mode().Perm() != 0o600 {
			t.Errorf("%s has mode %v, want 0600", f, fi.Mode().Perm())
		}
	}
	if fi, _ := os.Stat(data); fi.Mode().Perm() != 0o700 {
		t.Errorf("data directory mode %v", fi.Mode().Perm())
	}
	tok, _ := os.ReadFile(filepath.Join(data, "admin.token"))
	if !strings.Contains(out.String(), strings.TrimSpace(string(tok))) {
		t.Fatal("the printed token is not the stored one")
	}
	S := []string{"--server", base, "--data", data}

	// tam key in every format names the same key.
	var kids []string
	for _, f := range []string{"pem", "cose", "jwk"} {
		k, err := cosekey.Parse([]byte(tamMust(t, "tam", "key", "--data", data, "--format", f)))
		if err != nil {
			t.Fatalf("tam key --format %s: %v", f, err)
		}
		if k.IsPrivate() {
			t.Fatal("tam key printed a private key")
		}
		kids = append(kids, string(k.KID()))
	}
	if kids[0] != kids[1] || kids[1] != kids[2] {
		t.Fatal("formats disagree")
	}
	ed, err := cosekey.Parse([]byte(tamMust(t, "tam", "key", "--data", data, "--alg", "ed25519")))
	if err != nil || ed.Type() != cosekey.KeyTypeEd25519 {
		t.Fatalf("tam key --alg ed25519: %v", err)
	}
	tamKey, _ := cosekey.Parse([]byte(tamMust(t, "tam", "key", "--data", data)))

	// A signer, a component, a policy.
	signer := tamtest.Signer(t)
	signerFile := filepath.Join(dir, "signer.pub")
	if err := keyfile.Save(signerFile, signer.PublicKey(), cosekey.FormatPEM, false); err != nil {
		t.Fatal(err)
	}
	env1 := filepath.Join(dir, "app1.suit")
	os.WriteFile(env1, tamtest.Envelope(t, signer, "app", 1, []byte("app one")), 0o644)
	if _, errOut, _ := teepRun(t, nil, append([]string{"tam", "tc", "add", env1}, S...)...); !strings.Contains(errOut, "no TC signer key is trusted") {
		t.Fatalf("tc add before trusting a signer: %q", errOut)
	}
	kid := strings.TrimSpace(tamMust(t, append([]string{"tam", "trust", "add-signer", signerFile}, S...)...))
	if kid != hex.EncodeToString(signer.PublicKey().KID()) {
		t.Fatalf("add-signer printed %q", kid)
	}
	id := strings.TrimSpace(tamMust(t, append([]string{"tam", "tc", "add", env1}, S...)...))
	if id != "844b544545502d446576696365485365637572654653436170704473756974" {
		t.Fatalf("tc add printed %q", id)
	}
	if _, errOut, code := teepRun(t, nil, append([]string{"tam", "tc", "add", env1}, S...)...); code != 1 || !strings.Contains(errOut, "409") {
		t.Fatalf("same sequence again: exit %d %q", code, errOut)
	}
	list := tamMust(t, append([]string{"tam", "tc", "list"}, S...)...)
	if !strings.Contains(list, "TEEP-Device/SecureFS/app/suit") {
		t.Fatalf("tc list: %q", list)
	}
	var comps []admin.Component
	if err := json.Unmarshal([]byte(tamMust(t, append([]string{"tam", "tc", "list", "--json"}, S...)...)), &comps); err != nil || len(comps) != 1 || comps[0].ID != id {
		t.Fatalf("tc list --json: %+v %v", comps, err)
	}
	tamMust(t, append([]string{"tam", "policy", "require", id, "--all"}, S...)...)
	if show := tamMust(t, append([]string{"tam", "tc", "show", "TEEP-Device/SecureFS/app/suit"}, S...)...); !strings.Contains(show, "required on all") {
		t.Fatalf("tc show: %q", show)
	}

	// A device pre-registered from its key file syncs over HTTP.
	agent := tamtest.NewAgent(t, tamtest.AgentOptions{TAMKeys: []*cosekey.Key{tamKey, ed}, Trust: []*cosekey.Key{signer.PublicKey()},
		Transport: tamtest.HTTPTransport(httpClientForTest(), base+"/tam")})
	agentFile := filepath.Join(dir, "agent.jwk")
	keyfile.Save(agentFile, agent.Key().PublicKey(), cosekey.FormatJWK, false)
	akid := strings.TrimSpace(tamMust(t, append([]string{"tam", "trust", "add-agent", agentFile, "--label", "lab"}, S...)...))
	if _, err := agent.Sync(context.Background()); err != nil {
		t.Fatal(err)
	}
	var devs []admin.Device
	if err := json.Unmarshal([]byte(tamMust(t, append([]string{"tam", "device", "list", "--json"}, S...)...)), &devs); err != nil {
		t.Fatal(err)
	}
	if len(devs) != 1 || devs[0].KID != akid || devs[0].Status != "ok" || devs[0].LastSeen == nil || len(devs[0].Labels) != 1 ||
		len(devs[0].Components) != 1 || devs[0].Components[0].ID != id || devs[0].Components[0].Sequence != 1 {
		t.Fatalf("device list --json: %+v", devs)
	}
	text := tamMust(t, append([]string{"tam", "device", "list"}, S...)...)
	for _, want := range []string{akid, "labels: lab", "status: ok", "last-seen: 20", "component " + id, "sequence 1"} {
		if !strings.Contains(text, want) {
			t.Fatalf("device list lacks %q:\n%s", want, text)
		}
	}
	// Personalization, then a session delivers it.
	cfg := filepath.Join(dir, "cfg.json")
	os.WriteFile(cfg, []byte(`{"k":"v"}`), 0o600)
	tamMust(t, append([]string{"tam", "personalize", "set", akid[:12], "config", cfg}, S...)...)
	tamMust(t, append([]string{"tam", "policy", "remove", id}, S...)...)
	tr, err := agent.Sync(context.Background())
	if err != nil || len(tr.Types) != 4 {
		t.Fatalf("session after personalize and policy remove: %v %v", tr.Types, err)
	}
	if _, ok := agent.Installed(context.Background())[tamtest.ManifestID("app").String()]; ok {
		t.Fatal("app still installed after policy remove")
	}
	show := tamMust(t, append([]string{"tam", "device", "show", akid[:10]}, S...)...)
	if !strings.Contains(show, `personalization "config" sequence 1`) {
		t.Fatalf("device show: %q", show)
	}
	// The legacy endpoint answers too.
	q, err := tamtest.HTTPTransport(httpClientForTest(), base+"/tam/legacy")(context.Background(), nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := teep.Open(q, teep.OpenOptions{Numbering: teep.Legacy, Keys: []*cosekey.Key{tamKey}}); err != nil {
		t.Fatalf("legacy endpoint: %v", err)
	}

	// The token from the environment; a wrong one fails with a clear message.
	if code, _, _ := tamRun(t, map[string]string{"TEEP_ADMIN_TOKEN": strings.TrimSpace(string(tok))}, "tam", "tc", "list", "--server", base, "--data", filepath.Join(dir, "nowhere")); code != 1 {
		t.Fatal("an explicit --data without a token should win over TEEP_ADMIN_TOKEN and fail")
	}
	if code, out, errOut := tamRun(t, map[string]string{"TEEP_ADMIN_TOKEN": strings.TrimSpace(string(tok))}, "tam", "tc", "list", "--server", base); code != 0 || !strings.Contains(out, id) {
		t.Fatalf("TEEP_ADMIN_TOKEN: %d %q", code, errOut)
	}
	code, _, errOut := tamRun(t, map[string]string{"TEEP_ADMIN_TOKEN": "wrong-token-wrong-token"}, "tam", "device", "list", "--server", base)
	if code != 1 || !strings.Contains(errOut, "401") || strings.Contains(errOut, "goroutine") {
		t.Fatalf("wrong token: exit %d %q", code, errOut)
	}
}

func TestTAMServeTokenPrintedOnce(t *testing.T) {
	data := filepath.Join(t.TempDir(), "data")
	out1, _ := tamStartStop(t, data)
	out2, _ := tamStartStop(t, data)
	if !strings.Contains(out1, "admin token:") || strings.Contains(out2, "admin token:") {
		t.Fatalf("first start printed %q, second %q", out1, out2)
	}
	old := strings.TrimSpace(tamMust(t, "tam", "token", "--data", data))
	if !strings.Contains(out1, old) {
		t.Fatal("tam token does not print the stored token")
	}
	rotated := strings.TrimSpace(tamMust(t, "tam", "token", "--data", data, "--rotate"))
	if rotated == old || len(rotated) < 40 || strings.TrimSpace(tamMust(t, "tam", "token", "--data", data)) != rotated {
		t.Fatalf("rotation: old %q new %q", old, rotated)
	}
	if fi, _ := os.Stat(filepath.Join(data, "admin.token")); fi.Mode().Perm() != 0o600 {
		t.Fatalf("rotated token file mode %v", fi.Mode().Perm())
	}
}

// tamStartStop starts and stops a TAM, returning what it printed.
func tamStartStop(t *testing.T, data string) (string, string) {
	t.Helper()
	ready := make(chan string, 1)
	var stop func()
	tamServeReady = func(base string, s func()) { stop = s; ready <- base }
	defer func() { tamServeReady = nil }()
	out, errOut := &tamBuffer{}, &tamBuffer{}
	done := make(chan int, 1)
	go func() {
		e := &env{stdin: bytes.NewReader(nil), stdout: out, stderr: errOut, getenv: func(string) string { return "" }}
		done <- run(e, []string{"tam", "serve", "--listen", "127.0.0.1:0", "--data", data})
	}()
	select {
	case <-ready:
	case code := <-done:
		t.Fatalf("exit %d: %s", code, errOut.String())
	}
	stop()
	if code := <-done; code != 0 {
		t.Fatalf("exit %d: %s", code, errOut.String())
	}
	return out.String(), errOut.String()
}

func TestTAMCLIUsage(t *testing.T) {
	for _, c := range []struct {
		args []string
		code int
		want string
	}{
		{[]string{"tam", "serve", "--help"}, 0, "Usage: teep tam serve"},
		{[]string{"tam", "tc", "add", "--help"}, 0, "Prints each component's id"},
		{[]string{"tam", "device", "list", "--help"}, 0, "--json"},
		{[]string{"tam", "serve", "extra"}, 2, "no arguments"},
		{[]string{"tam", "serve", "--attest", "sometimes"}, 2, "--attest"},
		{[]string{"tam", "serve", "--tls-cert", "x.pem"}, 2, "--tls-key"},
		{[]string{"tam", "serve", "--log-level", "loud"}, 2, "--log-level"},
		{[]string{"tam", "key", "--alg", "rsa"}, 2, "--alg"},
		{[]string{"tam", "key", "--data", "/nonexistent/teep"}, 1, "run \"teep tam serve"},
		{[]string{"tam", "tc", "add"}, 2, "want at least one envelope"},
		{[]string{"tam", "policy", "require", "x", "--all", "--label", "l"}, 2, "give one of"},
		{[]string{"tam", "tc", "list", "--data", "/nonexistent/teep"}, 1, "TEEP_ADMIN_TOKEN"},
		{[]string{"tam", "tc", "list", "--bogus"}, 2, "flag provided but not defined"},
	} {
		out, errOut, code := teepRun(t, nil, c.args...)
		if code != c.code || !strings.Contains(out+errOut, c.want) {
			t.Errorf("teep %s: exit %d, output %q; want exit %d containing %q", strings.Join(c.args, " "), code, out+errOut, c.code, c.want)
		}
		if strings.Contains(out+errOut, "goroutine ") {
			t.Errorf("teep %s printed a stack trace", strings.Join(c.args, " "))
		}
	}
}

func httpClientForTest() *http.Client { return &http.Client{Timeout: 30 * time.Second} }
