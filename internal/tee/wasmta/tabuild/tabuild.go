// Package tabuild builds Go programs as WebAssembly Trusted Applications
// (GOOS=wasip1 GOARCH=wasm) for tests, once per test binary and directory.
package tabuild

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
)

var (
	mu    sync.Mutex
	built = map[string][]byte{}
)

// Build compiles the Go main package in dir (relative to the calling
// test's directory, or absolute), with extra `go build` flags, and
// returns the module. It needs the Go toolchain, which every machine that
// runs `go test` has.
func Build(t testing.TB, dir string, flags ...string) []byte {
	t.Helper()
	abs, err := filepath.Abs(dir)
	if err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	defer mu.Unlock()
	key := abs + "\x00" + strings.Join(flags, "\x00")
	if b, ok := built[key]; ok {
		return b
	}
	gobin, err := exec.LookPath("go")
	if err != nil {
		t.Fatalf("the Go toolchain is needed to build test TAs: %v", err)
	}
	tmp, err := os.MkdirTemp("", "tabuild")
	if err != nil {
		t.Fatal(err)
	}
	defer os.RemoveAll(tmp)
	out := filepath.Join(tmp, "ta.wasm")
	cmd := exec.Command(gobin, append(append([]string{"build", "-o", out}, flags...), ".")...)
	cmd.Dir = abs
	cmd.Env = append(os.Environ(), "GOOS=wasip1", "GOARCH=wasm", "CGO_ENABLED=0")
	if msg, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("building %s: %v\n%s", dir, err, msg)
	}
	b, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	built[key] = b
	return b
}
