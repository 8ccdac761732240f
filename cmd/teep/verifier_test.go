package main

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/teep-go/teep/internal/verifier"
)

// verifierWritePolicy writes a policy trusting the attestation key file.
func verifierWritePolicy(t *testing.T, dir, attPub string) string {
	t.Helper()
	p := filepath.Join(dir, "policy.json")
	policy := `{"id":"cli-test","endorsements":[{"name":"lab","key_file":"` + filepath.Base(attPub) + `","oemid":"894823"}],
	 "devices":[{"oemid":"894823","hwmodel":"736f6674746565","min_swversion":"0.2"}],"require_debug_disabled":true}`
	if err := os.WriteFile(p, []byte(policy), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

// TestVerifierServePassport runs `teep verifier serve` on a loopback port,
// makes Evidence with `teep eat create` (nonce = the TEEP token, cnf = the
// Agent key), fetches the passport over HTTP, and checks it with
// `teep verifier check-result` as the TAM would.
func TestVerifierServePassport(t *testing.T) {
	dir := t.TempDir()
	attPriv, attPub, _ := eatKey(t, dir, "att", "esp256")
	vPriv, vPub, _ := eatKey(t, dir, "verifier", "esp256")
	_, agentPub, _ := eatKey(t, dir, "agent", "ed25519")
	_, otherAgent, _ := eatKey(t, dir, "other-agent", "ed25519")
	policy := verifierWritePolicy(t, dir, attPub)

	ready := make(chan string, 1)
	var stop func()
	var mu sync.Mutex
	verifierServeReady = func(addr string, s func()) {
		mu.Lock()
		stop = s
		mu.Unlock()
		ready <- addr
	}
	defer func() { verifierServeReady = nil }()
	var serveOut, serveErr verifierSyncBuffer
	done := make(chan int, 1)
	go func() {
		e := &env{stdin: bytes.NewReader(nil), stdout: &serveOut, stderr: &serveErr, getenv: func(string) string { return "" }}
		done <- run(e, []string{"verifier", "serve", "--listen", "127.0.0.1:0", "--key", vPriv, "--policy", policy, "--log-format", "json"})
	}()
	var addr string
	select {
	case addr = <-ready:
	case code := <-done:
		t.Fatalf("serve exited %d: %s", code, serveErr.String())
	case <-time.After(10 * time.Second):
		t.Fatal("serve did not start")
	}

	token := "746f6b656e2d30303031" // "token-0001"
	ev, stderr, code := teepRun(t, nil, "eat", "create", "--key", attPriv, "--nonce", token, "--cnf-key", agentPub, "--claims", eatClaimsJSON)
	if code != 0 {
		t.Fatal(stderr)
	}
	passport, err := (&verifier.Client{URL: "http://" + addr}).Result(context.Background(), []byte(ev))
	if err != nil {
		t.Fatal(err)
	}
	out, stderr, code := teepRun(t, passport, "verifier", "check-result", "--key", vPub, "--agent-key", agentPub, "--nonce", token)
	var a verifierAppraisalJSON
	if code != 0 || json.Unmarshal([]byte(out), &a) != nil || a.Status != "affirming" || a.PolicyID != "cli-test" {
		t.Fatalf("check-result: %d %s %s", code, out, stderr)
	}
	for name, args := range map[string][]string{
		"another token":  {"verifier", "check-result", "--key", vPub, "--agent-key", agentPub, "--nonce", "746f6b656e2d30303032"},
		"another Agent":  {"verifier", "check-result", "--key", vPub, "--agent-key", otherAgent, "--nonce", token},
		"wrong verifier": {"verifier", "check-result", "--key", attPub, "--agent-key", agentPub, "--nonce", token},
	} {
		out, stderr, code := teepRun(t, passport, args...)
		if code != 1 || !strings.Contains(out, `"status": "contraindicated"`) || !strings.Contains(stderr, "verifier:") {
			t.Errorf("%s: %d %s %s", name, code, out, stderr)
		}
	}

	// SIGHUP reloads the policy: a broken file is refused and the old policy
	// kept; a policy revoking this device takes effect.
	os.WriteFile(policy, []byte(`{"endorsements":[}`), 0o644)
	verifierSignalAndWait(t, &serveErr, "policy reload failed")
	if _, err := (&verifier.Client{URL: "http://" + addr}).Result(context.Background(), []byte(ev)); err != nil {
		t.Errorf("the old policy was dropped: %v", err)
	}
	os.WriteFile(policy, []byte(`{"id":"revoked","endorsements":[{"key_file":"`+filepath.Base(attPub)+`"}],
	 "denied_ueids":["014242424242424242424242424242424242424242424242424242424242424242"]}`), 0o644)
	verifierSignalAndWait(t, &serveErr, "policy reloaded")
	revoked, err := (&verifier.Client{URL: "http://" + addr}).Result(context.Background(), []byte(ev))
	if err != nil {
		t.Fatal(err)
	}
	if out, _, code := teepRun(t, revoked, "verifier", "check-result", "--key", vPub, "--agent-key", agentPub, "--nonce", token); code != 1 || !strings.Contains(out, "contraindicated") {
		t.Errorf("after revocation: %d %s", code, out)
	}

	mu.Lock()
	stop()
	mu.Unlock()
	select {
	case code := <-done:
		if code != 0 {
			t.Errorf("serve exited %d: %s", code, serveErr.String())
		}
	case <-time.After(15 * time.Second):
		t.Fatal("serve did not stop")
	}
	if !strings.Contains(serveErr.String(), `"msg":"attestation result issued"`) {
		t.Errorf("no request log:\n%s", serveErr.String())
	}
}

// verifierSignalAndWait sends SIGHUP to this process (the serve command
// handles it) and waits for a log line.
func verifierSignalAndWait(t *testing.T, log *verifierSyncBuffer, want string) {
	t.Helper()
	if err := syscall.Kill(os.Getpid(), syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for !strings.Contains(log.String(), want) {
		if time.Now().After(deadline) {
			t.Fatalf("no %q in the log:\n%s", want, log.String())
		}
		time.Sleep(10 * time.Millisecond)
	}
	log.Reset()
}

// verifierSyncBuffer is a bytes.Buffer safe for the serve goroutine and the test.
type verifierSyncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *verifierSyncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *verifierSyncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func (s *verifierSyncBuffer) Reset() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.b.Reset()
}

func TestVerifierAppraise(t *testing.T) {
	dir := t.TempDir()
	attPriv, attPub, _ := eatKey(t, dir, "att", "esp256")
	_, agentPub, _ := eatKey(t, dir, "agent", "ed25519")
	policy := verifierWritePolicy(t, dir, attPub)
	ev := filepath.Join(dir, "ev.cbor")
	if _, stderr, code := teepRun(t, nil, "eat", "create", "--key", attPriv, "--nonce", "0102030405060708", "--cnf-key", agentPub, "--claims", eatClaimsJSON, "--out", ev); code != 0 {
		t.Fatal(stderr)
	}
	out, stderr, code := teepRun(t, nil, "verifier", "appraise", "--policy", policy, "--nonce", "0102030405060708", "--agent-key", agentPub, ev)
	if code != 0 || !strings.Contains(out, `"status": "affirming"`) || !strings.Contains(out, `"endorsement": "lab"`) {
		t.Errorf("appraise: %d %s %s", code, out, stderr)
	}
	// --trust builds a policy from keys alone
	if out, _, code := teepRun(t, nil, "verifier", "appraise", "--trust", attPub, ev); code != 0 || !strings.Contains(out, `"affirming"`) {
		t.Errorf("appraise --trust: %d %s", code, out)
	}
	// ... and that policy still requires the TEEP profile's claims
	bare := filepath.Join(dir, "bare.cbor")
	if _, stderr, code := teepRun(t, nil, "eat", "create", "--key", attPriv, "--nonce", "0102030405060708", "--cnf-key", agentPub, "--out", bare); code != 0 {
		t.Fatal(stderr)
	}
	if out, _, code := teepRun(t, nil, "verifier", "appraise", "--trust", attPub, bare); code != 1 || !strings.Contains(out, "required claim ueid is missing") {
		t.Errorf("appraise --trust, no identity claims: %d %s", code, out)
	}
	enabled := strings.Replace(eatClaimsJSON, `"disabled-permanently"`, `"enabled"`, 1)
	if _, stderr, code := teepRun(t, nil, "eat", "create", "--key", attPriv, "--nonce", "0102030405060708", "--cnf-key", agentPub, "--claims", enabled, "--out", ev); code != 0 {
		t.Fatal(stderr)
	}
	out, stderr, code = teepRun(t, nil, "verifier", "appraise", "--policy", policy, "--nonce", "0102030405060708", "--agent-key", agentPub, ev)
	if code != 1 || !strings.Contains(out, "debug is enabled") || !strings.Contains(stderr, "reference values not met") {
		t.Errorf("debug enabled: %d %s %s", code, out, stderr)
	}
	for name, args := range map[string][]string{
		"no policy":           {"verifier", "appraise", ev},
		"policy and trust":    {"verifier", "appraise", "--policy", policy, "--trust", attPub, ev},
		"serve without trust": {"verifier", "serve"},
		"serve bad log":       {"verifier", "serve", "--trust", attPub, "--log-format", "xml"},
		"check no agent key":  {"verifier", "check-result", "--key", attPub, "--nonce", "00"},
		"check two modes":     {"verifier", "check-result", "--key", attPub, "--agent-key", agentPub, "--nonce", "00", "--timestamp"},
	} {
		if _, _, code := teepRun(t, nil, args...); code != 2 {
			t.Errorf("%s: exit %d, want 2", name, code)
		}
	}
}
