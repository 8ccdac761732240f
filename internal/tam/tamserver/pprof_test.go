package tamserver

import (
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
)

func TestPprofLoopbackOnly(t *testing.T) {
	ctx := context.Background()
	for _, addr := range []string{"0.0.0.0:0", "[::]:0", ":0", "192.0.2.1:0", "example.com:0"} {
		if s, err := Open(ctx, Options{DataDir: t.TempDir(), PprofAddr: addr}); !errors.Is(err, ErrPprofNotLoopback) {
			if s != nil {
				s.Close()
			}
			t.Errorf("pprof on %q: %v, want ErrPprofNotLoopback", addr, err)
		}
	}
	if _, err := Open(ctx, Options{DataDir: t.TempDir(), PprofAddr: "no-port"}); err == nil {
		t.Error("pprof address without a port accepted")
	}
}

func TestPprofServesOnItsOwnListener(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	s, err := Open(ctx, Options{DataDir: t.TempDir(), PprofAddr: "127.0.0.1:0"})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- s.Serve(ctx, ln, nil) }()
	get := func(url string) (int, string) {
		t.Helper()
		r, err := http.Get(url)
		if err != nil {
			t.Fatal(err)
		}
		defer r.Body.Close()
		b, _ := io.ReadAll(r.Body)
		return r.StatusCode, string(b)
	}
	code, body := get("http://" + s.Pprof.Addr().String() + "/debug/pprof/goroutine?debug=1")
	if code != http.StatusOK || !strings.Contains(body, "goroutine profile:") {
		t.Errorf("pprof listener: %d %.80q", code, body)
	}
	if code, _ := get("http://" + ln.Addr().String() + "/debug/pprof/"); code != http.StatusNotFound {
		t.Errorf("TEEP listener serves /debug/pprof/: %d", code)
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}
