package main

import (
	"context"
	"encoding/json"
	"net"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/teep-go/teep/cosekey"
	"github.com/teep-go/teep/internal/broker"
	"github.com/teep-go/teep/internal/device"
	"github.com/teep-go/teep/internal/keyfile"
	"github.com/teep-go/teep/internal/tam/tamtest"
)

// teep conform tam against our own TAM: every check passes, the exit code
// says so, and --json is the same report for machines.
func TestConformTAMCommand(t *testing.T) {
	x := tamtest.Start(t, tamtest.Options{})
	signer := tamtest.Signer(t)
	x.TrustSigner(signer.PublicKey())
	x.Require(x.Upload(tamtest.Envelope(t, signer, "app", 1, []byte("app"))))
	agent, err := cosekey.Generate(cosekey.AlgESP256)
	if err != nil {
		t.Fatal(err)
	}
	x.AddAgent(agent.PublicKey())
	dir := t.TempDir()
	agentFile, tamFile := filepath.Join(dir, "agent.cose"), filepath.Join(dir, "tam.pub")
	if err := keyfile.Save(agentFile, agent, cosekey.FormatCOSE, true); err != nil {
		t.Fatal(err)
	}
	if err := keyfile.Save(tamFile, x.Key(), cosekey.FormatCOSE, false); err != nil {
		t.Fatal(err)
	}
	out, errs, code := teepRun(t, nil, "conform", "tam", "--agent-key", agentFile, "--tam-key", tamFile, x.URL)
	if code != 0 || !strings.Contains(out, "PASS: every required check passed") || strings.Contains(out, "\n  fail") {
		t.Fatalf("exit %d\n%s%s", code, out, errs)
	}
	out, _, code = teepRun(t, nil, "conform", "tam", "--json", "--numbering", "legacy", x.LegacyURL)
	var rep struct {
		Numbering string `json:"numbering"`
		Results   []struct {
			ID     string `json:"id"`
			Status string `json:"status"`
		} `json:"results"`
		RequiredFailed int `json:"required_failed"`
	}
	if err := json.Unmarshal([]byte(out), &rep); err != nil || code != 0 || rep.Numbering != "legacy" || rep.RequiredFailed != 0 || len(rep.Results) < 20 {
		t.Fatalf("--json: exit %d, %v, %+v", code, err, rep)
	}
	// Speaking the wrong numbering to a TAM fails required checks: exit 1.
	if _, _, code := teepRun(t, nil, "conform", "tam", "--numbering", "draft-26", x.LegacyURL); code != 1 {
		t.Fatalf("draft-26 against the legacy endpoint: exit %d, want 1", code)
	}
	for _, args := range [][]string{
		{"conform", "tam"},
		{"conform", "tam", "--numbering", "draft-99", x.URL},
	} {
		if _, _, code := teepRun(t, nil, args...); code != 2 {
			t.Errorf("%v: exit %d, want 2", args, code)
		}
	}
	if _, errs, code := teepRun(t, nil, "conform", "tam", "https://tam.example.com/tam"); code != 1 || !strings.Contains(errs, "allow-remote") {
		t.Errorf("remote URL: exit %d %q", code, errs)
	}
}

// teep conform agent serves the scripted TAM; our device, trusting the keys
// it wrote, passes every scenario and the command exits 0.
func TestConformAgentCommand(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	keys := t.TempDir()
	type result struct {
		out  string
		code int
	}
	done := make(chan result, 1)
	go func() {
		out, _, code := teepRun(t, nil, "conform", "agent", "--keys", keys, "--listen", addr, "--timeout", "2m")
		done <- result{out, code}
	}()
	var tamKey, signerKey *cosekey.Key
	for i := 0; i < 200 && signerKey == nil; i++ {
		time.Sleep(10 * time.Millisecond)
		tamKey, _ = keyfile.Load(filepath.Join(keys, "tam.pub"))
		signerKey, _ = keyfile.Load(filepath.Join(keys, "signer.pub"))
	}
	if tamKey == nil || signerKey == nil {
		t.Fatal("the key files were not written")
	}
	d, err := device.Open(context.Background(), device.Options{StateDir: filepath.Join(t.TempDir(), "state"), TAM: "http://" + addr + "/tam",
		TEEs: []string{"dut"}, TAMKeys: []*cosekey.Key{tamKey}, SignerKeys: []*cosekey.Key{signerKey}, Once: true,
		Retry: broker.Retry{MaxAttempts: 20, BaseDelay: 5 * time.Millisecond, MaxDelay: 20 * time.Millisecond}})
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	for {
		select {
		case r := <-done:
			if r.code != 0 || !strings.Contains(r.out, "10 passed, 0 failed, 0 skipped") {
				t.Fatalf("exit %d\n%s", r.code, r.out)
			}
			return
		default:
			d.Run(context.Background()) // refused sessions fail runs: expected
		}
	}
}
