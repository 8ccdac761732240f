package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/teep-go/teep/internal/device"
	"github.com/teep-go/teep/internal/tam/tamtest"
	"github.com/teep-go/teep/internal/tee/wasmta/tabuild"
)

// TestDeviceInvoke: the counter TA, required by the TAM, is installed by
// the daemon and run with `teep device invoke`; bad calls fail clearly.
func TestDeviceInvoke(t *testing.T) {
	code := tabuild.Build(t, "../../examples/ta/counter")
	state := filepath.Join(t.TempDir(), "state")
	f := deviceStartTAM(t)
	f.srv.Require(f.srv.Upload(tamtest.Envelope(t, f.signer, "counter", 1, code)))
	ready := make(chan func(), 1)
	deviceWithHooks(t, func(o *device.Options) { o.Ready = func(stop func()) { ready <- stop } })
	done := make(chan int, 1)
	var daemonErr strings.Builder
	go func() {
		e := &env{stdin: strings.NewReader(""), stdout: &strings.Builder{}, stderr: &daemonErr, getenv: func(string) string { return "" }}
		done <- run(e, append([]string{"device", "run", "--state", state, "--tam", f.srv.URL, "--agent-key", f.agentKF,
			"--tee", "main", "--log-level", "warn"}, f.trustArgs()...))
	}()
	var stop func()
	select {
	case stop = <-ready:
	case c := <-done:
		t.Fatalf("daemon exited %d:\n%s", c, daemonErr.String())
	case <-time.After(30 * time.Second):
		t.Fatal("daemon not ready")
	}
	defer func() {
		stop()
		if c := <-done; c != 0 {
			t.Errorf("daemon exit %d:\n%s", c, daemonErr.String())
		}
	}()
	deviceMust(t, "device", "sync", "--state", state)
	id := tamtest.PayloadID("counter").String()
	in := filepath.Join(t.TempDir(), "in")
	if err := os.WriteFile(in, []byte("ignored"), 0o600); err != nil {
		t.Fatal(err)
	}
	if out := deviceMust(t, "device", "invoke", "--state", state, "--component", id); out != "counter v1: 1" {
		t.Fatalf("first invoke: %q", out)
	}
	if out := deviceMust(t, "device", "invoke", "--state", state, "--component", id, "--input", in); out != "counter v1: 2" {
		t.Fatalf("second invoke: %q", out)
	}
	for _, c := range []struct {
		args []string
		code int
		msg  string
	}{
		{[]string{"--component", tamtest.PayloadID("absent").String()}, 1, "not installed"},
		{[]string{}, 2, "--component is required"},
		{[]string{"--component", id, "extra"}, 2, "no arguments"},
		{[]string{"--component", id, "--tee", "nope"}, 1, "unknown TEE"},
	} {
		out, errOut, got := deviceCmd(t, append([]string{"device", "invoke", "--state", state}, c.args...)...)
		if got != c.code || !strings.Contains(errOut, c.msg) {
			t.Errorf("%v: exit %d, stdout %q, stderr %q; want %d and %q", c.args, got, out, errOut, c.code, c.msg)
		}
	}
	// Without a daemon the command says so.
	other := filepath.Join(t.TempDir(), "none")
	if _, errOut, got := deviceCmd(t, "device", "invoke", "--state", other, "--component", id); got != 1 || !strings.Contains(errOut, "no daemon") {
		t.Errorf("without a daemon: exit %d %q", got, errOut)
	}
}
