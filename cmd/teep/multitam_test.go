package main

import (
	"path/filepath"
	"strings"
	"testing"

	"github.com/teep-go/teep/cosekey"
	"github.com/teep-go/teep/internal/device"
	"github.com/teep-go/teep/internal/keyfile"
	"github.com/teep-go/teep/internal/tam/tamtest"
)

// TestDeviceRunSeveralTAMs: `teep device run` with two named TAMs, each
// with its own TAM key and signer given as NAME=FILE, installs each TAM's
// component; `device request --tam NAME` goes to that TAM; bad TAM flags
// are usage errors.
func TestDeviceRunSeveralTAMs(t *testing.T) {
	dir := t.TempDir()
	state := filepath.Join(dir, "state")
	attest, err := device.Provision(state, "main")
	if err != nil {
		t.Fatal(err)
	}
	save := func(name string, k *cosekey.Key) string {
		t.Helper()
		p := filepath.Join(dir, name+".pem")
		if err := keyfile.Save(p, k, cosekey.FormatPEM, false); err != nil {
			t.Fatal(err)
		}
		return p
	}
	var args []string
	for _, name := range []string{"a", "b"} {
		srv := tamtest.Start(t, tamtest.Options{Endorse: attest})
		signer := tamtest.Signer(t)
		srv.TrustSigner(signer.PublicKey())
		srv.Require(srv.Upload(tamtest.Envelope(t, signer, name+"-app", 1, []byte(name))))
		args = append(args, "--tam", name+"="+srv.URL, "--tam-key", name+"="+save(name+"-tam", srv.Key()),
			"--signer-key", name+"="+save(name+"-signer", signer.PublicKey()))
	}
	out := deviceMust(t, append([]string{"device", "run", "--state", state, "--tee", "main", "--once"}, args...)...)
	for _, name := range []string{"a", "b"} {
		if !strings.Contains(out, tamtest.PayloadID(name+"-app").String()) {
			t.Fatalf("TAM %s's component not installed:\n%s", name, out)
		}
	}
	if !strings.Contains(out, "TAM") {
		t.Fatalf("status has no TAM column:\n%s", out)
	}
	sts, _ := deviceStatusJSON(t, state)
	for _, c := range sts[0].Components {
		if want := strings.Split(deviceReadable(c.ID), "/")[2][:1]; c.TAM != want {
			t.Fatalf("component %s: tam %q, want %q", c.ID, c.TAM, want)
		}
	}
	// Remembered: a second run needs only the state directory.
	deviceMust(t, "device", "run", "--state", state, "--once")

	out = deviceMust(t, "device", "request", "--state", state, "--tam", "b", "TEEP-Device/SecureFS/new-app")
	if !strings.Contains(out, "with TAM b") {
		t.Fatalf("request to TAM b: %s", out)
	}
	if _, errOut, code := deviceCmd(t, "device", "request", "--state", state, "--tam", "c", "TEEP-Device/SecureFS/x"); code != 1 || !strings.Contains(errOut, `unknown TAM "c"`) {
		t.Fatalf("request to an unknown TAM: exit %d\n%s", code, errOut)
	}
	other := filepath.Join(dir, "other")
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"--tam", "a=http://127.0.0.1:1/a", "--tam", "a=http://127.0.0.1:1/b"}, "--tam given twice"},
		{[]string{"--tam", "a=http://127.0.0.1:1/a", "--tam-key", "b=" + filepath.Join(dir, "a-tam.pem")}, "TAM b: a URL is required"},
		{[]string{"--tam", "a=http://127.0.0.1:1/a", "--tam", "b=http://127.0.0.1:1/a"}, "already TAM a"},
		{[]string{"--tam", "a=http://127.0.0.1:1/a"}, "trusts no key of TAM a"},
		{[]string{"--tam", "a=http://127.0.0.1:1/a", "--tam", "b=http://127.0.0.1:1/b",
			"--tam-key", "a=" + filepath.Join(dir, "a-tam.pem"), "--tam-key", "b=" + filepath.Join(dir, "a-tam.pem")}, "already trusted for TAM a"},
	} {
		_, errOut, code := deviceCmd(t, append([]string{"device", "run", "--state", other + c.want, "--once"}, c.args...)...)
		if code == 0 || !strings.Contains(errOut, c.want) {
			t.Errorf("device run %s: exit %d, stderr %q; want %q", strings.Join(c.args, " "), code, errOut, c.want)
		}
	}
}
