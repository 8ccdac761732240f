package httpd

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"io"
	"log/slog"
	"math/big"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

func TestServerConfigErrors(t *testing.T) {
	for _, c := range []ServerConfig{
		{},
		{Handler: http.NotFoundHandler(), CertFile: "x"},
		{Handler: http.NotFoundHandler(), ClientCAFile: "ca.pem"},
		{Handler: http.NotFoundHandler(), RequireClientCert: true},
		{Handler: http.NotFoundHandler(), CertFile: "/nonexistent/c.pem", KeyFile: "/nonexistent/k.pem"},
	} {
		if _, err := NewServer(c); err == nil {
			t.Errorf("NewServer(%+v) accepted", c)
		}
	}
}

// peerRecorder answers 200 and remembers the Peer of each request; a "slow"
// body waits for release.
type peerRecorder struct {
	mu      sync.Mutex
	peers   []string
	entered chan struct{}
	release chan struct{}
}

func (p *peerRecorder) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	b, _ := io.ReadAll(r.Body)
	p.mu.Lock()
	p.peers = append(p.peers, Peer(r))
	p.mu.Unlock()
	if string(b) == "slow" {
		p.entered <- struct{}{}
		<-p.release
	}
	io.WriteString(w, "ok")
}

func (p *peerRecorder) last() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.peers[len(p.peers)-1]
}

// TestServerTLSClientCertAndShutdown runs the real server: HTTPS with a
// required client certificate, and a graceful shutdown that lets an
// in-flight request finish.
func TestServerTLSClientCertAndShutdown(t *testing.T) {
	dir := t.TempDir()
	ca, caKey := testCA(t)
	certFile, keyFile := leaf(t, dir, "server", ca, caKey, true)
	clientCert, clientKey := leaf(t, dir, "client", ca, caKey, false)
	caFile := filepath.Join(dir, "ca.pem")
	os.WriteFile(caFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: ca.Raw}), 0o644)

	h := &peerRecorder{entered: make(chan struct{}, 1), release: make(chan struct{})}
	srv, err := NewServer(ServerConfig{Handler: h, CertFile: certFile, KeyFile: keyFile, ClientCAFile: caFile, RequireClientCert: true})
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ctx, ln) }()
	url := "https://" + ln.Addr().String() + "/"
	pool := x509.NewCertPool()
	pool.AddCert(ca)
	noCert := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}}
	if _, err := noCert.Post(url, "application/teep+cbor", strings.NewReader("x")); err == nil {
		t.Fatal("a client without a certificate was served")
	}
	cert, err := tls.LoadX509KeyPair(clientCert, clientKey)
	if err != nil {
		t.Fatal(err)
	}
	withCert := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool, Certificates: []tls.Certificate{cert}}}}
	resp, err := withCert.Post(url, "application/teep+cbor", strings.NewReader("x"))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 || !strings.Contains(h.last(), "CN=client") {
		t.Fatalf("with a client certificate: %d, peer %q", resp.StatusCode, h.last())
	}
	// Graceful shutdown: the slow request in flight completes.
	slow := make(chan int, 1)
	go func() {
		resp, err := withCert.Post(url, "application/teep+cbor", strings.NewReader("slow"))
		if err != nil {
			slow <- 0
			return
		}
		resp.Body.Close()
		slow <- resp.StatusCode
	}()
	<-h.entered
	cancel()
	// Once the listener is closed, shutdown has begun.
	for {
		c, err := net.Dial("tcp", ln.Addr().String())
		if err != nil {
			break
		}
		c.Close()
		time.Sleep(time.Millisecond)
	}
	close(h.release)
	if code := <-slow; code != 200 {
		t.Fatalf("in-flight request during shutdown: %d", code)
	}
	if err := <-served; err != nil {
		t.Fatalf("Serve: %v", err)
	}
	if _, err := withCert.Post(url, "application/teep+cbor", strings.NewReader("x")); err == nil {
		t.Fatal("served after shutdown")
	}
}

func testCA(t *testing.T) (*x509.Certificate, *ecdsa.PrivateKey) {
	k, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "test CA"}, NotBefore: time.Now().Add(-time.Hour),
		NotAfter: time.Now().Add(time.Hour), IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &k.PublicKey, k)
	if err != nil {
		t.Fatal(err)
	}
	c, _ := x509.ParseCertificate(der)
	return c, k
}

func leaf(t *testing.T, dir, name string, ca *x509.Certificate, caKey *ecdsa.PrivateKey, server bool) (string, string) {
	k, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(time.Now().UnixNano()), Subject: pkix.Name{CommonName: name},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour), KeyUsage: x509.KeyUsageDigitalSignature}
	if server {
		tmpl.IPAddresses = []net.IP{net.ParseIP("127.0.0.1")}
		tmpl.ExtKeyUsage = []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}
	} else {
		tmpl.ExtKeyUsage = []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca, &k.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	kd, _ := x509.MarshalECPrivateKey(k)
	cf, kf := filepath.Join(dir, name+".pem"), filepath.Join(dir, name+".key")
	os.WriteFile(cf, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o644)
	os.WriteFile(kf, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kd}), 0o600)
	return cf, kf
}

func TestLoadCertPool(t *testing.T) {
	dir := t.TempDir()
	ca, _ := testCA(t)
	good := filepath.Join(dir, "ca.pem")
	os.WriteFile(good, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: ca.Raw}), 0o644)
	bad := filepath.Join(dir, "bad.pem")
	os.WriteFile(bad, []byte("not PEM"), 0o644)
	if _, err := LoadCertPool(good); err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{bad, filepath.Join(dir, "none.pem")} {
		if _, err := LoadCertPool(p); err == nil {
			t.Errorf("LoadCertPool(%s) accepted", p)
		}
	}
}

func TestServeCancelOnShutdown(t *testing.T) {
	entered := make(chan struct{})
	srv, err := NewServer(ServerConfig{CancelOnShutdown: true, ShutdownTimeout: time.Minute,
		Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			close(entered)
			<-r.Context().Done() // only the shutdown can end this request
			w.WriteHeader(http.StatusServiceUnavailable)
		})})
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ctx, ln) }()
	got := make(chan int, 1)
	go func() {
		resp, err := http.Get("http://" + ln.Addr().String() + "/")
		if err != nil {
			got <- 0
			return
		}
		resp.Body.Close()
		got <- resp.StatusCode
	}()
	<-entered
	cancel()
	if err := <-served; err != nil {
		t.Fatalf("Serve: %v", err)
	}
	if code := <-got; code != http.StatusServiceUnavailable {
		t.Fatalf("request cancelled by the shutdown: %d", code)
	}
}

func TestRecover(t *testing.T) {
	h := Recover(discard(), http.HandlerFunc(func(http.ResponseWriter, *http.Request) { panic("secret /etc/key") }))
	srv := httptestServer(t, h)
	resp, err := http.Get(srv)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	p, err := ParseProblem(resp.Header.Get("Content-Type"), b)
	if err != nil || resp.StatusCode != 500 || p.Status != 500 || strings.Contains(string(b), "secret") || strings.Contains(string(b), "goroutine") {
		t.Fatalf("panic answered %d %q (%v)", resp.StatusCode, b, err)
	}
}

func discard() *slog.Logger { return slog.New(slog.DiscardHandler) }

// httptestServer serves h through a Server on loopback until the test ends.
func httptestServer(t *testing.T, h http.Handler) string {
	t.Helper()
	srv, err := NewServer(ServerConfig{Handler: h})
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ctx, ln) }()
	t.Cleanup(func() {
		cancel()
		if err := <-served; err != nil {
			t.Errorf("Serve: %v", err)
		}
	})
	return "http://" + ln.Addr().String() + "/"
}
