package main

// End-to-end tests of the device commands against a complete TAM
// (internal/tam/tamtest) over loopback HTTP, some across processes: the
// test binary re-runs itself as `teep` with TEEP_DEVICE_CHILD set.

import (
	"context"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/teep-go/teep/cosekey"
	"github.com/teep-go/teep/internal/broker"
	"github.com/teep-go/teep/internal/device"
	"github.com/teep-go/teep/internal/keyfile"
	"github.com/teep-go/teep/internal/tam/tamtest"
	"github.com/teep-go/teep/internal/tee/softtee"
	"github.com/teep-go/teep/suit"
)

// deviceChildMode runs the command in TEEP_DEVICE_ARGS (NUL-separated) and
// exits, when the test binary was started as a child by deviceChild.
// mode "crash-install" kills the process (exit 3, no cleanup) once a
// transaction that writes a component is staged and before it commits.
func deviceChildMode(t *testing.T, mode string) bool {
	if os.Getenv("TEEP_DEVICE_CHILD") != mode {
		return false
	}
	if mode == "crash-install" {
		deviceWithHooks(t, func(o *device.Options) {
			o.FaultHook = func(point string, staged []string) error {
				for _, n := range staged {
					if point == softtee.FaultStaged && strings.HasPrefix(n, "suit/component/") {
						os.Exit(3)
					}
				}
				return nil
			}
		})
	}
	var args []string
	if err := json.Unmarshal([]byte(os.Getenv("TEEP_DEVICE_ARGS")), &args); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	e := &env{stdin: os.Stdin, stdout: os.Stdout, stderr: os.Stderr, getenv: os.Getenv}
	os.Exit(run(e, args))
	return true
}

func deviceChild(t *testing.T, test, mode string, args ...string) *exec.Cmd {
	t.Helper()
	a, _ := json.Marshal(args)
	cmd := exec.Command(os.Args[0], "-test.run=^"+test+"$")
	cmd.Env = append(os.Environ(), "TEEP_DEVICE_CHILD="+mode, "TEEP_DEVICE_ARGS="+string(a))
	return cmd
}

// deviceTAM starts a TAM with a signer, and writes the key files a device
// needs: the TAM's keys, the signer's, and a pre-registered Agent key.
type deviceTAMFixture struct {
	srv      *tamtest.TAM
	signer   *cosekey.Signer
	tamKeys  []string // files
	signerKF string
	agentKF  string
	agentKey *cosekey.Key
	dir      string
}

func deviceStartTAM(t *testing.T, endorse ...*cosekey.Key) *deviceTAMFixture {
	t.Helper()
	return deviceStartTAMWith(t, tamtest.Options{Endorse: endorse})
}

func deviceStartTAMWith(t *testing.T, o tamtest.Options) *deviceTAMFixture {
	t.Helper()
	f := &deviceTAMFixture{dir: t.TempDir(), srv: tamtest.Start(t, o), signer: tamtest.Signer(t)}
	f.srv.TrustSigner(f.signer.PublicKey())
	for i, k := range f.srv.Keys() {
		p := filepath.Join(f.dir, fmt.Sprintf("tam%d.pub", i))
		if err := keyfile.Save(p, k, cosekey.FormatPEM, false); err != nil {
			t.Fatal(err)
		}
		f.tamKeys = append(f.tamKeys, p)
	}
	f.signerKF = filepath.Join(f.dir, "signer.pub")
	if err := keyfile.Save(f.signerKF, f.signer.PublicKey(), cosekey.FormatCOSE, false); err != nil {
		t.Fatal(err)
	}
	var err error
	if f.agentKey, err = cosekey.Generate(cosekey.AlgESP256); err != nil {
		t.Fatal(err)
	}
	f.agentKF = filepath.Join(f.dir, "agent.key")
	if err := keyfile.Save(f.agentKF, f.agentKey, cosekey.FormatJWK, true); err != nil {
		t.Fatal(err)
	}
	f.srv.AddAgent(f.agentKey) // registered in advance: no attestation needed
	return f
}

func (f *deviceTAMFixture) trustArgs() []string {
	var a []string
	for _, k := range f.tamKeys {
		a = append(a, "--tam-key", k)
	}
	return append(a, "--signer-key", f.signerKF)
}

func (f *deviceTAMFixture) upload(t *testing.T, name string, seq uint64, payload string) suit.ComponentID {
	t.Helper()
	return f.srv.Upload(tamtest.Envelope(t, f.signer, name, seq, []byte(payload)))
}

func deviceComponent(t *testing.T, sts []broker.TEEStatus, tee, name string) *broker.Component {
	t.Helper()
	want := tamtest.PayloadID(name).String()
	for _, st := range sts {
		if st.Name != tee {
			continue
		}
		for i, c := range st.Components {
			if c.ID.String() == want {
				return &st.Components[i]
			}
		}
	}
	return nil
}

// TestDeviceRunOnce: install by `device run --once`, the JSON status, an
// update on the next run.
func TestDeviceRunOnce(t *testing.T) {
	f := deviceStartTAM(t)
	id := f.upload(t, "app", 1, "app version 1")
	f.srv.Require((id))
	state := filepath.Join(t.TempDir(), "state")
	out := deviceMust(t, append([]string{"device", "run", "--state", state, "--tam", f.srv.URL, "--agent-key", f.agentKF, "--once"}, f.trustArgs()...)...)
	if !strings.Contains(out, "TEE default") || !strings.Contains(out, deviceHexPrefix("app version 1")) {
		t.Fatalf("--once output:\n%s", out)
	}
	sts, code := deviceStatusJSON(t, state)
	c := deviceComponent(t, sts, "default", "app")
	if code != 0 || c == nil || c.SequenceNumber != 1 || c.Size != uint64(len("app version 1")) {
		t.Fatalf("status: %+v", sts)
	}
	f.upload(t, "app", 2, "app version 2")
	deviceMust(t, "device", "run", "--state", state, "--once")
	sts, _ = deviceStatusJSON(t, state)
	if c := deviceComponent(t, sts, "default", "app"); c == nil || c.SequenceNumber != 2 {
		t.Fatalf("after update: %+v", sts)
	}
}

// TestDeviceCrashMidInstall kills the device process between staging an
// update and committing it. The store is consistent afterwards (the old
// version, intact), and the next run completes the update.
func TestDeviceCrashMidInstall(t *testing.T) {
	if deviceChildMode(t, "crash-install") {
		return
	}
	f := deviceStartTAM(t)
	id := f.upload(t, "app", 1, "app version 1")
	f.srv.Require((id))
	state := filepath.Join(t.TempDir(), "state")
	deviceMust(t, append([]string{"device", "run", "--state", state, "--tam", f.srv.URL, "--agent-key", f.agentKF, "--once"}, f.trustArgs()...)...)
	f.upload(t, "app", 2, "app version 2")

	out, err := deviceChild(t, "TestDeviceCrashMidInstall", "crash-install", "device", "run", "--state", state, "--once").CombinedOutput()
	var ee *exec.ExitError
	if !errors.As(err, &ee) || ee.ExitCode() != 3 {
		t.Fatalf("the child did not die mid-install: %v\n%s", err, out)
	}
	sts, code := deviceStatusJSON(t, state)
	c := deviceComponent(t, sts, "default", "app")
	if code != 0 || c == nil || c.SequenceNumber != 1 || fmt.Sprintf("%x", []byte(c.SHA256)) != deviceSHA256Hex("app version 1") {
		t.Fatalf("after the crash: exit %d %+v", code, sts)
	}
	deviceMust(t, "device", "run", "--state", state, "--once")
	sts, _ = deviceStatusJSON(t, state)
	if c := deviceComponent(t, sts, "default", "app"); c == nil || c.SequenceNumber != 2 || fmt.Sprintf("%x", []byte(c.SHA256)) != deviceSHA256Hex("app version 2") {
		t.Fatalf("after the restart: %+v", sts)
	}
}

// TestDeviceRemoteAgent runs the Agent in a child process behind a Unix
// socket (teep device agent) and the Broker in this one (--remote-agent).
func TestDeviceRemoteAgent(t *testing.T) {
	if deviceChildMode(t, "agent") {
		return
	}
	f := deviceStartTAM(t)
	f.srv.Require((f.upload(t, "app", 1, "served across processes")))
	agentState := filepath.Join(t.TempDir(), "agent-state")
	sock := filepath.Join(t.TempDir(), "agent.sock")
	child := deviceChild(t, "TestDeviceRemoteAgent", "agent",
		append([]string{"device", "agent", "--state", agentState, "--tee", "remote", "--listen", sock, "--tam", f.srv.URL, "--agent-key", f.agentKF}, f.trustArgs()...)...)
	var childOut strings.Builder
	child.Stdout, child.Stderr = &childOut, &childOut
	if err := child.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- child.Wait() }()
	defer func() {
		child.Process.Signal(syscall.SIGTERM)
		select {
		case err := <-exited:
			if err != nil {
				t.Errorf("agent process: %v\n%s", err, childOut.String())
			}
		case <-time.After(20 * time.Second):
			child.Process.Kill()
			t.Errorf("agent process did not stop on SIGTERM\n%s", childOut.String())
		}
	}()
	deviceWaitSocket(t, sock, exited, &childOut)

	brokerState := filepath.Join(t.TempDir(), "broker-state")
	out := deviceMust(t, "device", "run", "--state", brokerState, "--tam", f.srv.URL, "--remote-agent", "remote="+sock, "--once")
	if !strings.Contains(out, "TEE remote") || !strings.Contains(out, deviceHexPrefix("served across processes")) {
		t.Fatalf("--once through the remote Agent:\n%s", out)
	}
	// The component is in the Agent process's TEE.
	if d := f.srv.Device(f.agentKey.KID()); len(d.Installed) != 1 {
		t.Fatalf("the TAM's view: %+v", d.Installed)
	}
}

func deviceWaitSocket(t *testing.T, sock string, exited chan error, out *strings.Builder) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for time.Now().Before(deadline) {
		if c, err := net.Dial("unix", sock); err == nil {
			c.Close()
			return
		}
		select {
		case err := <-exited:
			t.Fatalf("process exited early: %v\n%s", err, out.String())
		case <-time.After(20 * time.Millisecond):
		}
	}
	t.Fatalf("%s never answered\n%s", sock, out.String())
}

// TestDeviceDaemon runs `device run` as a daemon in this process and uses
// its local API through the CLI: status, request (the session runs at
// once), release, then a graceful stop.
func TestDeviceDaemon(t *testing.T) {
	// TEE aux is created before the TAM starts, so the TAM's Verifier can
	// endorse its attestation key: it is registered by attestation, main by
	// its pre-registered Agent key.
	state := filepath.Join(t.TempDir(), "state")
	auxAttest, err := device.Provision(state, "aux")
	if err != nil {
		t.Fatal(err)
	}
	f := deviceStartTAM(t, auxAttest...)
	f.srv.Offer((f.upload(t, "opt", 1, "optional")))
	ready := make(chan func(), 1)
	deviceWithHooks(t, func(o *device.Options) { o.Ready = func(stop func()) { ready <- stop } })
	done := make(chan int, 1)
	var daemonErr strings.Builder
	go func() {
		e := &env{stdin: strings.NewReader(""), stdout: &strings.Builder{}, stderr: &daemonErr, getenv: func(string) string { return "" }}
		done <- run(e, append([]string{"device", "run", "--state", state, "--tam", f.srv.URL, "--agent-key", f.agentKF,
			"--tee", "main", "--tee", "aux", "--log-level", "warn"}, f.trustArgs()...))
	}()
	var stop func()
	select {
	case stop = <-ready:
	case code := <-done:
		t.Fatalf("daemon exited %d:\n%s", code, daemonErr.String())
	case <-time.After(30 * time.Second):
		t.Fatal("daemon not ready")
	}
	defer func() {
		stop()
		if code := <-done; code != 0 {
			t.Errorf("daemon exit %d:\n%s", code, daemonErr.String())
		}
		if _, err := os.Stat(filepath.Join(state, device.FileSocket)); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("socket left behind: %v", err)
		}
	}()
	id := tamtest.PayloadID("opt").String()
	out := deviceMust(t, "device", "request", "--state", state, "--tee", "aux", id)
	if !strings.Contains(out, "session completed") {
		t.Fatalf("request through the daemon: %s", out)
	}
	sts, _ := deviceStatusJSON(t, state) // through the socket: the daemon holds the TEEs
	if deviceComponent(t, sts, "aux", "opt") == nil || deviceComponent(t, sts, "main", "opt") != nil {
		t.Fatalf("after request: %+v", sts)
	}
	if raw, _ := json.Marshal(sts); !strings.Contains(string(raw), `"sequence_number":1`) {
		t.Fatalf("status JSON: %s", raw)
	}
	deviceMust(t, "device", "release", "--state", state, "--tee", "aux", id)
	sts, _ = deviceStatusJSON(t, state)
	if deviceComponent(t, sts, "aux", "opt") != nil {
		t.Fatalf("after release: %+v", sts)
	}
	if _, errOut, code := deviceCmd(t, "device", "sync", "--state", t.TempDir()); code != 1 || !strings.Contains(errOut, "--once") {
		t.Fatalf("sync without a daemon: exit %d %s", code, errOut)
	}
	// A sync on demand picks up a new version at once.
	f.upload(t, "opt", 2, "optional v2")
	out = deviceMust(t, "device", "sync", "--state", state)
	if !strings.Contains(out, "TEE main") || !strings.Contains(out, "TEE aux") {
		t.Fatalf("device sync:\n%s", out)
	}
	// The raw local API is JSON over the socket.
	c := broker.NewLocalClient(filepath.Join(state, device.FileSocket))
	if err := c.Sync(context.Background(), ""); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Request(context.Background(), "nope", suit.ComponentID{{1}}, ""); err == nil {
		t.Fatal("request to an unknown TEE accepted")
	}
}

func deviceSHA256Hex(s string) string { return fmt.Sprintf("%x", sha256.Sum256([]byte(s))) }

// deviceHexPrefix is how the status table starts the SHA-256 of s.
func deviceHexPrefix(s string) string { return deviceSHA256Hex(s)[:16] }

// TestDeviceTLSAndOfflineRequest: a TAM over HTTPS whose certificate only
// --tam-ca vouches for, and a request recorded while no daemon ran that the
// next --once run carries to the TAM.
func TestDeviceTLSAndOfflineRequest(t *testing.T) {
	f := deviceStartTAMWith(t, tamtest.Options{TLS: true})
	f.srv.Offer(f.upload(t, "opt", 1, "over TLS"))
	state := filepath.Join(t.TempDir(), "state")
	// Without the CA: the certificate is refused (and not retried).
	_, errOut, code := deviceCmd(t, append([]string{"device", "run", "--state", state, "--tam", f.srv.URL, "--agent-key", f.agentKF, "--once"}, f.trustArgs()...)...)
	if code != 1 || !strings.Contains(errOut, "certificate") {
		t.Fatalf("unknown CA: exit %d\n%s", code, errOut)
	}
	id := tamtest.PayloadID("opt").String()
	deviceMust(t, "device", "request", "--state", state, id)
	out := deviceMust(t, "device", "run", "--state", state, "--tam-ca", f.srv.CAFile, "--once")
	if !strings.Contains(out, deviceHexPrefix("over TLS")) {
		t.Fatalf("the offline request was not served:\n%s", out)
	}
	sts, _ := deviceStatusJSON(t, state)
	if len(sts[0].Requested) != 0 || deviceComponent(t, sts, "default", "opt") == nil {
		t.Fatalf("status: %+v", sts)
	}
}
