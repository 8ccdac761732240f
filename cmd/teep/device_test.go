package main

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/teep-go/teep/cosekey"
	"github.com/teep-go/teep/internal/broker"
	"github.com/teep-go/teep/internal/device"
	"github.com/teep-go/teep/internal/keyfile"
)

func init() { deviceHooks = deviceTestHooks }

// deviceTestHooks: sessions with an unreachable TAM fail fast in tests.
func deviceTestHooks(o *device.Options) {
	o.Retry = broker.Retry{MaxAttempts: 2, BaseDelay: time.Millisecond, MaxDelay: 2 * time.Millisecond}
}

// deviceWithHooks adds more test hooks to the devices the commands open
// until the test ends.
func deviceWithHooks(t *testing.T, more func(*device.Options)) {
	deviceHooks = func(o *device.Options) {
		deviceTestHooks(o)
		more(o)
	}
	t.Cleanup(func() { deviceHooks = deviceTestHooks })
}

// deviceCmd runs one teep command in-process (teepRun: a stack trace
// fails the test).
func deviceCmd(t *testing.T, args ...string) (stdout, stderr string, code int) {
	t.Helper()
	return teepRun(t, nil, args...)
}

func deviceMust(t *testing.T, args ...string) string {
	t.Helper()
	out, errOut, code := deviceCmd(t, args...)
	if code != 0 {
		t.Fatalf("teep %s: exit %d\nstdout: %s\nstderr: %s", strings.Join(args, " "), code, out, errOut)
	}
	return out
}

// deviceKeyFiles writes a private key and its public half.
func deviceKeyFiles(t *testing.T, dir, name string, alg string) (priv, pub string, k *cosekey.Key) {
	t.Helper()
	a, _ := cosekey.ParseAlg(alg)
	k, err := cosekey.Generate(a)
	if err != nil {
		t.Fatal(err)
	}
	priv, pub = filepath.Join(dir, name+".key"), filepath.Join(dir, name+".pub")
	if err := keyfile.Save(priv, k, cosekey.FormatPEM, true); err != nil {
		t.Fatal(err)
	}
	if err := keyfile.Save(pub, k, cosekey.FormatJWK, false); err != nil {
		t.Fatal(err)
	}
	return priv, pub, k
}

func deviceStatusJSON(t *testing.T, state string) ([]broker.TEEStatus, int) {
	t.Helper()
	out, errOut, code := deviceCmd(t, "device", "status", "--state", state, "--json")
	var v struct {
		TEEs []broker.TEEStatus `json:"tees"`
	}
	if err := json.Unmarshal([]byte(out), &v); err != nil {
		t.Fatalf("status --json: %v\n%s\n%s", err, out, errOut)
	}
	return v.TEEs, code
}

func TestDeviceUsageErrors(t *testing.T) {
	dir := t.TempDir()
	state := filepath.Join(dir, "state")
	_, tamPub, _ := deviceKeyFiles(t, dir, "tam", "esp256")
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"device", "run", "--state", state, "--once"}, "--tam: a TAM URL is required"},
		{[]string{"device", "run", "--state", state, "--tam", "ftp://x/", "--once"}, "scheme"},
		{[]string{"device", "run", "--state", state, "--tam", "http://127.0.0.1:1/tam", "--once"}, "trusts no TAM key"},
		{[]string{"device", "run", "--state", state, "--tam", "http://127.0.0.1:1/tam", "--tam-key", tamPub, "--vendor-id", "xyz", "--once"}, "--vendor-id"},
		{[]string{"device", "run", "--state", state, "--tam", "http://127.0.0.1:1/tam", "--tee", "Bad/Name", "--tam-key", tamPub, "--once"}, "TEE name"},
		{[]string{"device", "run", "--state", state, "--interval", "1ms"}, "--interval"},
		{[]string{"device", "request", "--state", state}, "exactly one component ID"},
		{[]string{"device", "request", "--state", state, "hex:zz"}, "component ID"},
		{[]string{"device", "agent", "--state", state}, "--listen"},
	} {
		_, errOut, code := deviceCmd(t, c.args...)
		if code != 2 || !strings.Contains(errOut, c.want) {
			t.Errorf("teep %s: exit %d, stderr %q; want 2 and %q", strings.Join(c.args, " "), code, errOut, c.want)
		}
	}
	for _, cmd := range []string{"run", "status", "request", "release", "sync", "key", "agent"} {
		out, _, code := deviceCmd(t, "device", cmd, "--help")
		if code != 0 || !strings.Contains(out, "Usage: teep device "+cmd) {
			t.Errorf("device %s --help: exit %d\n%s", cmd, code, out)
		}
	}
}

// TestDeviceOffline: with no daemon, the commands work on the sealed state
// directly; the TAM is unreachable, which --once reports as a failure.
func TestDeviceOffline(t *testing.T) {
	dir := t.TempDir()
	state := filepath.Join(dir, "state")
	_, tamPub, _ := deviceKeyFiles(t, dir, "tam", "esp256")
	agentPriv, _, agentKey := deviceKeyFiles(t, dir, "agent", "ed25519")
	_, errOut, code := deviceCmd(t, "device", "run", "--state", state, "--tam", "http://127.0.0.1:1/tam", "--tam-key", tamPub,
		"--tee", "main", "--tee", "second", "--agent-key", agentPriv, "--once")
	if code != 1 || !strings.Contains(errOut, "connection refused") {
		t.Fatalf("--once with the TAM down: exit %d\n%s", code, errOut)
	}
	sts, code := deviceStatusJSON(t, state)
	if code != 0 || len(sts) != 2 || sts[0].Name != "main" || sts[1].Name != "second" {
		t.Fatalf("status: %d %+v", code, sts)
	}
	if !bytes.Equal(sts[0].AgentKID, agentKey.KID()) || bytes.Equal(sts[1].AgentKID, agentKey.KID()) {
		t.Fatal("the imported Agent key is not the first TEE's (only)")
	}
	// The Agent key, as registered with a TAM.
	pem := deviceMust(t, "device", "key", "--state", state)
	k, err := cosekey.Parse([]byte(pem))
	if err != nil || !k.Equal(agentKey.PublicKey()) {
		t.Fatalf("device key: %v\n%s", err, pem)
	}
	att := deviceMust(t, "device", "key", "--state", state, "--tee", "second", "--attestation", "--format", "jwk")
	if _, err := cosekey.Parse([]byte(att)); err != nil || !strings.Contains(att, `"kty"`) {
		t.Fatalf("attestation key: %v\n%s", err, att)
	}
	if _, _, code := deviceCmd(t, "device", "key", "--state", state, "--tee", "nope"); code != 1 {
		t.Fatal("key of an unknown TEE")
	}

	// Request and release while no daemon runs: recorded in the TEE.
	id := `["544545502d446576696365","6170702d31"]`
	out := deviceMust(t, "device", "request", "--state", state, "--tee", "second", id)
	if !strings.Contains(out, "recorded for the next session") {
		t.Fatalf("request: %s", out)
	}
	out = deviceMust(t, "device", "release", "--state", state, "544545502d446576696365,6170702d32")
	if !strings.Contains(out, "nothing to release") {
		t.Fatalf("release of something not installed: %s", out)
	}
	if _, errOut, code := deviceCmd(t, "device", "request", "--state", state, "--tee", "nope", id); code != 1 || !strings.Contains(errOut, `no TEE "nope"`) {
		t.Fatalf("offline request on an unknown TEE: exit %d\n%s", code, errOut)
	}
	if _, err := os.Stat(filepath.Join(state, "tee", "nope")); !os.IsNotExist(err) {
		t.Fatalf("an offline request created the unknown TEE: %v", err)
	}
	sts, _ = deviceStatusJSON(t, state)
	if len(sts[1].Requested) != 1 || sts[1].Requested[0].String() != "TEEP-Device/app-1" {
		t.Fatalf("requested after offline request: %+v", sts[1])
	}
	text := deviceMust(t, "device", "status", "--state", state)
	if !strings.Contains(text, "TEE second") || !strings.Contains(text, "requested: TEEP-Device/app-1") {
		t.Fatalf("status text:\n%s", text)
	}

	// Later runs remember the TAM, the TEEs and the trust anchors.
	_, errOut, code = deviceCmd(t, "device", "run", "--state", state, "--once")
	if code != 1 || strings.Contains(errOut, "trusts no TAM key") || !strings.Contains(errOut, "127.0.0.1:1") {
		t.Fatalf("second run: exit %d\n%s", code, errOut)
	}
	// A different Agent key for an existing TEE is refused.
	other, _, _ := deviceKeyFiles(t, dir, "other", "esp256")
	_, errOut, code = deviceCmd(t, "device", "run", "--state", state, "--agent-key", "main="+other, "--once")
	if code != 1 || !strings.Contains(errOut, "different Agent key") {
		t.Fatalf("changing the Agent key: exit %d\n%s", code, errOut)
	}
}

// TestDeviceStatusReportsTampering flips one bit of a sealed object.
func TestDeviceStatusReportsTampering(t *testing.T) {
	dir := t.TempDir()
	state := filepath.Join(dir, "state")
	_, tamPub, _ := deviceKeyFiles(t, dir, "tam", "esp256")
	deviceCmd(t, "device", "run", "--state", state, "--tam", "http://127.0.0.1:1/tam", "--tam-key", tamPub, "--tee", "a", "--tee", "b", "--once")
	objs, err := filepath.Glob(filepath.Join(state, "tee", "b", "objects", "*"))
	if err != nil || len(objs) == 0 {
		t.Fatalf("no objects: %v", err)
	}
	b, _ := os.ReadFile(objs[0])
	b[len(b)-1] ^= 1
	os.WriteFile(objs[0], b, 0o600)
	sts, code := deviceStatusJSON(t, state)
	if code != 1 {
		t.Fatalf("status of a tampered TEE: exit %d", code)
	}
	if sts[0].Error != "" || !strings.Contains(sts[1].Error, "tampered") {
		t.Fatalf("statuses: %+v", sts)
	}
	_, errOut, code := deviceCmd(t, "device", "run", "--state", state, "--once")
	if code != 1 || !strings.Contains(errOut, "tampered") {
		t.Fatalf("run with a tampered TEE: exit %d\n%s", code, errOut)
	}
}
