package fetch

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/teep-go/teep/suit/processor"
)

func newTLS(t *testing.T, h http.HandlerFunc) (*httptest.Server, *HTTP) {
	t.Helper()
	srv := httptest.NewTLSServer(h)
	t.Cleanup(srv.Close)
	c := srv.Client()
	f := &HTTP{Client: c}
	c.CheckRedirect = f.checkRedirect
	return srv, f
}

func readAll(t *testing.T, rc io.ReadCloser) ([]byte, error) {
	t.Helper()
	defer rc.Close()
	return io.ReadAll(rc)
}

func TestHTTPS(t *testing.T) {
	payload := bytes.Repeat([]byte("payload!"), 1<<12)
	srv, f := newTLS(t, func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/ok":
			w.Header().Set("Content-Length", strconv.Itoa(len(payload)))
			w.Write(payload)
		case "/chunked":
			w.(http.Flusher).Flush() // no Content-Length
			w.Write(payload)
		case "/redirect-http":
			http.Redirect(w, r, "http://example.invalid/x", http.StatusFound)
		default:
			http.NotFound(w, r)
		}
	})
	ctx := context.Background()
	rc, n, err := f.Fetch(ctx, srv.URL+"/ok")
	if err != nil {
		t.Fatal(err)
	}
	got, err := readAll(t, rc)
	if err != nil || !bytes.Equal(got, payload) || n != int64(len(payload)) {
		t.Fatalf("ok: %v size %d", err, n)
	}
	if _, _, err := f.Fetch(ctx, srv.URL+"/missing"); err == nil || !strings.Contains(err.Error(), "404") {
		t.Errorf("404: %v", err)
	}
	if _, _, err := f.Fetch(ctx, srv.URL+"/redirect-http"); err == nil || !strings.Contains(err.Error(), "refusing redirect") {
		t.Errorf("downgrade redirect: %v", err)
	}
	f.MaxSize = int64(len(payload)) - 1
	if _, _, err := f.Fetch(ctx, srv.URL+"/ok"); !errors.Is(err, ErrTooLarge) {
		t.Errorf("Content-Length over the limit: %v", err)
	}
	rc, _, err = f.Fetch(ctx, srv.URL+"/chunked")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := readAll(t, rc); !errors.Is(err, ErrTooLarge) {
		t.Errorf("streamed body over the limit: %v", err)
	}
}

func TestHTTPRefusedByDefault(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.Write([]byte("x")) }))
	defer srv.Close()
	f := &HTTP{}
	if _, _, err := f.Fetch(context.Background(), srv.URL); err == nil || !strings.Contains(err.Error(), "plain http") {
		t.Fatalf("http allowed by default: %v", err)
	}
	if _, _, err := f.Fetch(context.Background(), "coaps://example.com/x"); err == nil {
		t.Fatal("coaps accepted")
	}
	f = &HTTP{AllowHTTPUnsafe: true}
	rc, _, err := f.Fetch(context.Background(), srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	if b, _ := readAll(t, rc); string(b) != "x" {
		t.Fatalf("got %q", b)
	}
}

func TestIdleTimeout(t *testing.T) {
	release := make(chan struct{})
	defer close(release)
	srv, f := newTLS(t, func(w http.ResponseWriter, r *http.Request) {
		w.Write([]byte("first"))
		w.(http.Flusher).Flush()
		select {
		case <-release:
		case <-r.Context().Done():
		}
	})
	f.IdleTimeout = 100 * time.Millisecond
	rc, _, err := f.Fetch(context.Background(), srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := readAll(t, rc); err == nil {
		t.Fatal("stalled transfer did not time out")
	}
}

func TestContextCancel(t *testing.T) {
	srv, f := newTLS(t, func(w http.ResponseWriter, r *http.Request) {
		w.Write([]byte("first"))
		w.(http.Flusher).Flush()
		<-r.Context().Done()
	})
	ctx, cancel := context.WithCancel(context.Background())
	rc, _, err := f.Fetch(ctx, srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	cancel()
	if _, err := readAll(t, rc); err == nil {
		t.Fatal("read after cancel succeeded")
	}
}

func TestFilesAndChain(t *testing.T) {
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "app.ta"), []byte("ta"), 0o600)
	other := filepath.Join(t.TempDir(), "x")
	os.WriteFile(other, []byte("mapped"), 0o600)
	f := &Files{Dir: dir, Map: map[string]string{"https://h/special": other}}
	ctx := context.Background()
	for uri, want := range map[string]string{"https://example.org/a/app.ta": "ta", "https://h/special": "mapped"} {
		rc, n, err := f.Fetch(ctx, uri)
		if err != nil {
			t.Fatal(err)
		}
		if b, _ := readAll(t, rc); string(b) != want || n != int64(len(want)) {
			t.Errorf("%s = %q", uri, b)
		}
	}
	for _, uri := range []string{"https://example.org/none", "https://example.org/", "https://example.org/.."} {
		if _, _, err := f.Fetch(ctx, uri); !errors.Is(err, processor.ErrNotFound) {
			t.Errorf("%s: %v", uri, err)
		}
	}
	mem := processor.NewMemFetcher(map[string][]byte{"https://example.org/none": []byte("mem")})
	rc, _, err := Chain{f, mem}.Fetch(ctx, "https://example.org/none")
	if err != nil {
		t.Fatal(err)
	}
	if b, _ := readAll(t, rc); string(b) != "mem" {
		t.Errorf("chain: %q", b)
	}
	if _, _, err := (Chain{f}).Fetch(ctx, "https://example.org/zzz"); !errors.Is(err, processor.ErrNotFound) {
		t.Errorf("chain miss: %v", err)
	}
}
