package httpd_test

import (
	"bytes"
	"context"
	"flag"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/teep-go/teep/cosekey"
	"github.com/teep-go/teep/internal/broker"
	"github.com/teep-go/teep/internal/httpd"
	"github.com/teep-go/teep/internal/tam/tamtest"
	"github.com/teep-go/teep/internal/verifier"
)

var update = flag.Bool("update", false, "rewrite testdata/*.golden from what the servers answer")

// TestServersAnswerProblems sends a bad request to each of our four HTTP
// APIs, on real sockets, and checks the answer: the right status, an
// RFC 9457 problem document byte for byte as in testdata/<name>.golden, the
// security headers, and nothing of the server's insides.
func TestServersAnswerProblems(t *testing.T) {
	tam := tamtest.Start(t, tamtest.Options{})
	verifierURL := startVerifier(t)
	brokerClient := startBroker(t)

	cases := []struct {
		name   string
		client *http.Client
		method string
		url    string
		header map[string]string
		body   string
		status int
	}{
		{"tam_teep_media_type", tam.HTTPClient, "POST", tam.URL, map[string]string{"Content-Type": "application/cbor"}, "x", 415},
		{"tam_teep_refused", tam.HTTPClient, "POST", tam.URL, map[string]string{"Content-Type": "application/teep+cbor"}, "\xa0", 400},
		{"tam_unknown_path", tam.HTTPClient, "GET", tam.BaseURL + "/nothing", nil, "", 404},
		{"tam_admin_unauthorized", tam.HTTPClient, "GET", tam.BaseURL + "/admin/v1/devices", nil, "", 401},
		{"tam_admin_unknown_component", tam.HTTPClient, "GET", tam.BaseURL + "/admin/v1/components/0011223344556677",
			map[string]string{"Authorization": "Bearer " + tam.Token}, "", 404},
		{"verifier_media_type", http.DefaultClient, "POST", verifierURL + verifier.PathEvidence,
			map[string]string{"Content-Type": "application/json"}, "{}", 415},
		{"broker_missing_component", brokerClient, "POST", "http://broker/v1/request",
			map[string]string{"Content-Type": "application/json"}, `{}`, 400},
		{"broker_unknown_tee", brokerClient, "POST", "http://broker/v1/sync",
			map[string]string{"Content-Type": "application/json"}, `{"tee": "nope"}`, 404},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			req, err := http.NewRequest(c.method, c.url, strings.NewReader(c.body))
			if err != nil {
				t.Fatal(err)
			}
			for k, v := range c.header {
				req.Header.Set(k, v)
			}
			resp, err := c.client.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != c.status {
				t.Fatalf("status %d, want %d: %s", resp.StatusCode, c.status, body)
			}
			p, err := httpd.ParseProblem(resp.Header.Get("Content-Type"), body)
			if err != nil {
				t.Fatalf("not a problem document (%q): %v\n%s", resp.Header.Get("Content-Type"), err, body)
			}
			if p.Status != c.status || p.Title == "" || p.Detail == "" || p.Type == "" {
				t.Fatalf("problem %+v", p)
			}
			for _, leak := range []string{"goroutine", ".go:", "panic", "runtime/", "/tmp/"} {
				if bytes.Contains(body, []byte(leak)) {
					t.Fatalf("the body shows %q:\n%s", leak, body)
				}
			}
			if got := resp.Header.Get("X-Content-Type-Options"); got != "nosniff" {
				t.Fatalf("X-Content-Type-Options %q", got)
			}
			golden(t, c.name, body)
		})
	}
}

func golden(t *testing.T, name string, got []byte) {
	t.Helper()
	path := filepath.Join("testdata", name+".golden")
	if *update {
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test -update to write it)", err)
	}
	if !bytes.Equal(got, want) {
		t.Fatalf("body differs from %s (go test -update rewrites it):\n%s\nwant:\n%s", path, got, want)
	}
}

func startVerifier(t *testing.T) string {
	t.Helper()
	att, err := cosekey.Generate(cosekey.AlgESP256)
	if err != nil {
		t.Fatal(err)
	}
	rk, err := cosekey.Generate(cosekey.AlgESP256)
	if err != nil {
		t.Fatal(err)
	}
	s, err := cosekey.NewSigner(rk, 0)
	if err != nil {
		t.Fatal(err)
	}
	v, err := verifier.New(verifier.Config{Key: s, Policy: &verifier.Policy{ID: "problems",
		Endorsements: []verifier.Endorsement{{Name: "test", Key: att.PublicKey()}}}})
	if err != nil {
		t.Fatal(err)
	}
	vs, err := verifier.NewServer(verifier.ServerConfig{Verifier: v})
	if err != nil {
		t.Fatal(err)
	}
	srv, err := vs.HTTPServer()
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	serve(t, func(ctx context.Context) error { return srv.Serve(ctx, ln) })
	return "http://" + ln.Addr().String()
}

func startBroker(t *testing.T) *http.Client {
	t.Helper()
	sock := filepath.Join(t.TempDir(), "b.sock")
	ln, err := broker.ListenUnix(sock)
	if err != nil {
		t.Fatal(err)
	}
	b := broker.New(broker.Options{})
	serve(t, func(ctx context.Context) error { return broker.Serve(ctx, ln, b.LocalHandler(), time.Second, nil) })
	return &http.Client{Transport: &http.Transport{DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
		var d net.Dialer
		return d.DialContext(ctx, "unix", sock)
	}}}
}

// serve runs fn until the test ends, then checks that it shut down cleanly.
func serve(t *testing.T, fn func(context.Context) error) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- fn(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("serve: %v", err)
		}
	})
}
