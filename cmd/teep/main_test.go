package main

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"

	"github.com/teep-go/teep/internal/bench"
)

// teepRun runs a command in-process with an empty environment. A stack
// trace on stderr fails the test: no input may make the CLI panic.
func teepRun(t testing.TB, stdin []byte, args ...string) (stdout, stderr string, code int) {
	t.Helper()
	var out, errb bytes.Buffer
	e := &env{stdin: bytes.NewReader(stdin), stdout: &out, stderr: &errb, getenv: func(string) string { return "" }}
	code = run(e, args)
	if s := errb.String(); strings.Contains(s, "goroutine ") || strings.Contains(s, "panic:") {
		t.Fatalf("teep %s: stack trace on stderr:\n%s", strings.Join(args, " "), s)
	}
	return out.String(), errb.String(), code
}

func TestDispatch(t *testing.T) {
	tests := []struct {
		args   []string
		code   int
		stdout string // substring expected on stdout ("" = stdout empty)
		stderr string // substring expected on stderr ("" = stderr empty)
	}{
		{nil, 2, "", "Commands:"},
		{[]string{"--help"}, 0, "key generate", ""},
		{[]string{"help"}, 0, "tam serve", ""},
		{[]string{"key"}, 2, "", "key thumbprint"},
		{[]string{"key", "--help"}, 0, "key thumbprint", ""},
		{[]string{"bogus"}, 2, "", `unknown command "bogus"`},
		{[]string{"key", "bogus"}, 2, "", `unknown command "key bogus"`},
		{[]string{"key", "thumbprint", "--help"}, 0, "Usage: teep key thumbprint", ""},
		{[]string{"key", "thumbprint", "--bogus"}, 2, "", "flag provided but not defined"},
		{[]string{"key", "thumbprint", "/nonexistent"}, 1, "", "no such file"},
	}
	for _, tt := range tests {
		out, errs, code := teepRun(t, nil, tt.args...)
		if code != tt.code {
			t.Errorf("teep %v: exit %d, want %d (stderr %q)", tt.args, code, tt.code, errs)
		}
		for _, c := range []struct{ got, want, name string }{{out, tt.stdout, "stdout"}, {errs, tt.stderr, "stderr"}} {
			if (c.want == "" && c.got != "") || !strings.Contains(c.got, c.want) {
				t.Errorf("teep %v: %s %q, want %q", tt.args, c.name, c.got, c.want)
			}
		}
	}
}

func TestEveryCommandHasHelp(t *testing.T) {
	for path := range commands {
		out, errs, code := teepRun(t, nil, append(strings.Fields(path), "--help")...)
		if code != 0 || !strings.HasPrefix(out, "Usage: teep "+path) || errs != "" {
			t.Errorf("teep %s --help: exit %d, stdout %.60q, stderr %q", path, code, out, errs)
		}
	}
}

// TestBenchQuick runs the bench command's smoke size and checks every
// measurement and its baseline were taken; it asserts no timings.
func TestBenchQuick(t *testing.T) {
	out, errs, code := teepRun(t, nil, "bench", "--quick", "--json")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errs)
	}
	var rows []bench.Row
	if err := json.Unmarshal([]byte(out), &rows); err != nil {
		t.Fatalf("%v: %s", err, out)
	}
	want := []string{"teep.Decode", "teep.Open", "SUIT install", "TA invoke, cold", "TA invoke, warm", "callers at once", "TA memory per instance", "nothing to do", "install new version", "fleet"}
	if len(rows) != len(want) {
		t.Fatalf("%d rows, want %d: %+v", len(rows), len(want), rows)
	}
	for i, r := range rows {
		timed, sized := r.NsPerOp > 0 && r.BaseNs > 0, r.Bytes > 0 && r.BaseBytes > 0
		if !strings.Contains(r.Name, want[i]) || timed == sized || r.Ratio <= 0 || r.Baseline == "" {
			t.Errorf("row %d: %+v", i, r)
		}
	}
}
