package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestDemo(t *testing.T) {
	tmp := t.TempDir()
	t.Setenv("TMPDIR", tmp) // where the demo's temporary directory goes
	out, errOut, code := deviceCmd(t, "demo")
	if code != 0 {
		t.Fatalf("demo: exit %d\n%s\n%s", code, out, errOut)
	}
	// The story, in order: every TEE attests and installs v1, updates to
	// v2; one TEE installs the counter TA, runs it twice, updates it and
	// runs it again with its count kept; one TEE installs the requested
	// component; every TEE removes v1.
	for _, c := range []struct {
		line  string
		count int
	}{
		{"attestation: Evidence", 5},
		{"appraised device-", 5},
		{": affirming;", 5},
		{"installed hello-ta v1", 5},
		{"updated hello-ta to v2", 5},
		{"installed extra-ta v1", 1},
		{"device-1/tee       installed counter-ta v1", 1},
		{"device-1/tee       updated counter-ta to v2", 1},
		{"invokes counter-ta", 3},
		{`device-1/tee       an application invokes counter-ta: "counter v1: 1"`, 1},
		{`device-1/tee       an application invokes counter-ta: "counter v1: 2"`, 1},
		{`device-1/tee       an application invokes counter-ta: "counter v2: 3"`, 1},
		{"removed hello-ta", 5},
		{"PROBLEM", 0},
		{"device-4/tee       installed hello-ta v1", 1}, // the CoAP device
		{"and coap://127.0.0.1:", 1},
	} {
		if n := strings.Count(out, c.line); n != c.count {
			t.Errorf("%q appears %d times, want %d\n%s", c.line, n, c.count, out)
		}
	}
	// The end-state table, its columns as wide as their longest entry.
	words := strings.Join(strings.Fields(out), " ")
	for _, row := range []string{"device-1/tee counter-ta 2 ", "device-2/tee - device-3/main - device-3/secure2 extra-ta 1 "} {
		if !strings.Contains(words, row) {
			t.Errorf("end state lacks %q\n%s", row, out)
		}
	}
	order := []string{"1. ", "installed hello-ta v1", "2. ", "updated hello-ta to v2",
		"3. ", "installed counter-ta v1", `"counter v1: 1"`, `"counter v1: 2"`,
		"4. ", "updated counter-ta to v2", `"counter v2: 3"`,
		"5. ", "installed extra-ta v1", "6. ", "removed hello-ta", "7. "}
	at := 0
	for _, s := range order {
		i := strings.Index(out[at:], s)
		if i < 0 {
			t.Fatalf("%q missing or out of order\n%s", s, out)
		}
		at += i
	}
	left, _ := os.ReadDir(tmp)
	if len(left) != 0 {
		t.Fatalf("demo left %d entries in the temporary directory", len(left))
	}
}

func TestDemoKeep(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "kept")
	out, errOut, code := deviceCmd(t, "demo", "--keep", dir)
	if code != 0 || !strings.Contains(out, "State kept in "+dir) {
		t.Fatalf("demo --keep: exit %d\n%s\n%s", code, out, errOut)
	}
	for _, p := range []string{"tam/tam.db", "devices/device-3/tee/secure2/index"} {
		if _, err := os.Stat(filepath.Join(dir, p)); err != nil {
			t.Errorf("kept state lacks %s: %v", p, err)
		}
	}
	// The kept devices are ordinary device state directories.
	sts, code := deviceStatusJSON(t, filepath.Join(dir, "devices", "device-3"))
	if code != 0 || len(sts) != 2 || len(sts[1].Components) != 1 {
		t.Fatalf("status of a kept device: %d %+v", code, sts)
	}
	if _, _, code := deviceCmd(t, "demo", "--keep", dir); code != 2 {
		t.Fatalf("--keep over an existing directory: exit %d", code)
	}
}
