package verifier

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/teep-go/teep/cosekey"
	"github.com/teep-go/teep/eat"
	"github.com/teep-go/teep/internal/attester"
	"github.com/teep-go/teep/internal/httpd"
)

// startServer runs the Verifier service on a loopback port.
func startServer(t *testing.T, f *fixture) (string, *prometheus.Registry) {
	t.Helper()
	reg := prometheus.NewRegistry()
	s, err := NewServer(ServerConfig{Verifier: f.v, Registry: reg, MaxEvidenceSize: 4096})
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	serve(t, s, ln)
	return "http://" + ln.Addr().String(), reg
}

// serve runs s on ln until the test ends, then checks the shutdown.
func serve(t *testing.T, s *Server, ln net.Listener) {
	t.Helper()
	srv, err := s.HTTPServer()
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
}

// TestPassportFlow runs the passport model end to end: the Agent's attester
// makes Evidence with eat_nonce = the TEEP token, posts it to the Verifier
// service over a real socket, gets a signed result, and the TAM accepts it
// for that token and that Agent key only.
func TestPassportFlow(t *testing.T) {
	f := newFixture(t)
	url, reg := startServer(t, f)
	ctx := context.Background()
	token := []byte("query-token-7")

	evidence := f.evidence(t, attester.Request{Nonce: token})
	agentSide := &Client{URL: url}
	passport, err := agentSide.Result(ctx, evidence)
	if err != nil {
		t.Fatal(err)
	}

	// The TAM pins the Verifier's key out of band; here it reads it from /v1/key.
	resp, err := http.Get(url + PathKey)
	if err != nil {
		t.Fatal(err)
	}
	keyBytes, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	vk, err := cosekey.ParseCOSEKey(keyBytes)
	if err != nil || !vk.Equal(f.vKey) {
		t.Fatalf("/v1/key: %v", err)
	}
	trusted := []*cosekey.Key{vk}

	a, err := VerifyResult(passport, trusted, Expectations{Nonce: token, AgentKey: f.agent, Now: now})
	if err != nil || a.Status != Affirming {
		t.Fatalf("TAM rejected a good passport: %v", err)
	}
	if _, err := VerifyResult(passport, trusted, Expectations{Nonce: []byte("query-token-8"), AgentKey: f.agent, Now: now}); !errors.Is(err, ErrFreshness) {
		t.Errorf("replay with another token: %v", err)
	}
	if _, err := VerifyResult(passport, trusted, Expectations{Nonce: token, AgentKey: newKey(t, "esp256"), Now: now}); !errors.Is(err, ErrBinding) {
		t.Errorf("presented by another Agent: %v", err)
	}

	// A contraindicated appraisal still yields a result, saying so.
	enabled := eat.DebugEnabled
	bad, err := agentSide.Result(ctx, f.evidence(t, attester.Request{Nonce: token, DebugStatus: &enabled}))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := VerifyResult(bad, trusted, Expectations{Nonce: token, AgentKey: f.agent, Now: now}); !errors.Is(err, ErrResult) {
		t.Errorf("contraindicated result accepted: %v", err)
	}

	// Background-check through the remote Verifier: the TAM's challenge is
	// the nonce, checked on the result.
	tamSide := &Client{URL: url, VerifierKeys: trusted}
	challenge := []byte("challenge-123456")
	if _, err := tamSide.AppraiseEvidence(ctx, f.evidence(t, attester.Request{Nonce: challenge}), Expectations{Nonce: challenge, AgentKey: f.agent, Now: now}); err != nil {
		t.Errorf("remote background-check: %v", err)
	}
	if _, err := tamSide.AppraiseEvidence(ctx, f.evidence(t, attester.Request{Nonce: challenge}), Expectations{Nonce: token, AgentKey: f.agent, Now: now}); !errors.Is(err, ErrFreshness) {
		t.Errorf("remote background-check with a wrong challenge: %v", err)
	}

	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	counts := map[string]float64{}
	for _, mf := range mfs {
		for _, m := range mf.GetMetric() {
			if mf.GetName() == "teep_verifier_appraisals_total" {
				counts[m.GetLabel()[0].GetValue()] = m.GetCounter().GetValue()
			}
		}
	}
	if counts["affirming"] != 3 || counts["contraindicated"] != 1 {
		t.Errorf("appraisal counters %v", counts)
	}
}

func TestServerRejects(t *testing.T) {
	f := newFixture(t)
	url, _ := startServer(t, f)
	stranger := newKey(t, "esp256")
	untrusted, err := (&attester.Attester{Key: signer(t, stranger), Identity: f.att.Identity}).Evidence(attester.Request{Nonce: []byte("nonce-0001"), AgentKey: f.agent})
	if err != nil {
		t.Fatal(err)
	}
	good := f.evidence(t, attester.Request{Nonce: []byte("nonce-0001")})
	cases := []struct {
		name, method, path, ctype string
		body                      []byte
		code                      int
		detail                    string
	}{
		{"malformed", "POST", PathEvidence, eat.MediaTypeEAT, []byte("junk"), 400, "evidence:"},
		{"untrusted", "POST", PathEvidence, eat.MediaTypeTEEP, untrusted, 403, "not signed by a trusted key"},
		{"wrong type", "POST", PathEvidence, "application/json", good, 415, "Content-Type"},
		{"other profile", "POST", PathEvidence, `application/eat+cwt; eat_profile="tag:x,2026:y"`, good, 415, "Content-Type"},
		{"too large", "POST", PathEvidence, eat.MediaTypeEAT, make([]byte, 5000), 413, "exceeds 4096 bytes"},
		{"wrong method", "GET", PathEvidence, "", nil, 405, "GET is not allowed"},
		{"unknown path", "GET", "/v1/nothing", "", nil, 404, "no such resource"},
	}
	for _, tc := range cases {
		req, _ := http.NewRequest(tc.method, url+tc.path, bytes.NewReader(tc.body))
		if tc.ctype != "" {
			req.Header.Set("Content-Type", tc.ctype)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != tc.code || !strings.Contains(string(body), tc.detail) {
			t.Errorf("%s: %d %s, want %d with %q", tc.name, resp.StatusCode, body, tc.code, tc.detail)
		}
		p, err := httpd.ParseProblem(resp.Header.Get("Content-Type"), body)
		if err != nil || p.Status != tc.code || p.Detail == "" || resp.Header.Get("X-Content-Type-Options") != "nosniff" {
			t.Errorf("%s: not a problem document for %d: %v %s", tc.name, tc.code, err, body)
		}
		if tc.code == 405 && resp.Header.Get("Allow") != "POST" {
			t.Errorf("%s: Allow %q", tc.name, resp.Header.Get("Allow"))
		}
	}
	// the client reports the service's reason
	if _, err := (&Client{URL: url}).Result(context.Background(), untrusted); err == nil || !strings.Contains(err.Error(), "403") || !strings.Contains(err.Error(), "not signed by a trusted key") {
		t.Errorf("client error: %v", err)
	}
	for _, path := range []string{PathHealth, PathMetrics} {
		resp, err := http.Get(url + path)
		if err != nil || resp.StatusCode != 200 {
			t.Errorf("%s: %v %v", path, resp.Status, err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if path == PathMetrics && !strings.Contains(string(body), `teep_verifier_requests_total{code="403"}`) {
			t.Errorf("metrics lack the 403 count:\n%s", body)
		}
	}
}

func TestServerBusy(t *testing.T) {
	f := newFixture(t)
	s, err := NewServer(ServerConfig{Verifier: f.v, MaxInFlight: 1})
	if err != nil {
		t.Fatal(err)
	}
	s.sem <- struct{}{} // one appraisal in progress
	ln, _ := net.Listen("tcp", "127.0.0.1:0")
	serve(t, s, ln)
	_, err = (&Client{URL: "http://" + ln.Addr().String()}).Result(context.Background(), f.evidence(t, attester.Request{Nonce: []byte("nonce-0001")}))
	if err == nil || !strings.Contains(err.Error(), "503") {
		t.Errorf("got %v, want 503", err)
	}
	if _, err := NewServer(ServerConfig{Verifier: &Verifier{}}); err == nil {
		t.Error("server without a result key")
	}
}

func TestClientRefusesRedirectsAndWrongType(t *testing.T) {
	mux := http.NewServeMux()
	mux.HandleFunc("/a/v1/evidence", func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, "/b/v1/evidence", http.StatusTemporaryRedirect)
	})
	mux.HandleFunc("/c/v1/evidence", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain")
		io.WriteString(w, "hello")
	})
	ln, _ := net.Listen("tcp", "127.0.0.1:0")
	srv := &http.Server{Handler: mux}
	go srv.Serve(ln)
	defer srv.Close()
	base := "http://" + ln.Addr().String()
	if _, err := (&Client{URL: base + "/a"}).Result(context.Background(), []byte{1}); err == nil || !strings.Contains(err.Error(), "307") {
		t.Errorf("redirect: %v", err)
	}
	if _, err := (&Client{URL: base + "/c"}).Result(context.Background(), []byte{1}); err == nil || !strings.Contains(err.Error(), "Content-Type") {
		t.Errorf("wrong type: %v", err)
	}
}

func TestServerSetVerifier(t *testing.T) {
	f := newFixture(t)
	reg := prometheus.NewRegistry()
	s, err := NewServer(ServerConfig{Verifier: f.v, Registry: reg})
	if err != nil {
		t.Fatal(err)
	}
	ln, _ := net.Listen("tcp", "127.0.0.1:0")
	serve(t, s, ln)
	c := &Client{URL: "http://" + ln.Addr().String(), VerifierKeys: []*cosekey.Key{f.vKey.PublicKey()}}
	nonce := []byte("nonce-0001")
	exp := Expectations{Nonce: nonce, AgentKey: f.agent, Now: now}
	if _, err := c.AppraiseEvidence(context.Background(), f.evidence(t, attester.Request{Nonce: nonce}), exp); err != nil {
		t.Fatal(err)
	}
	// the new policy revokes this device
	p := *f.policy
	p.DeniedUEIDs = [][]byte{f.att.Identity.UEID}
	v2, err := New(Config{Policy: &p, Key: signer(t, f.vKey), Clock: clock})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.SetVerifier(v2); err != nil {
		t.Fatal(err)
	}
	if _, err := c.AppraiseEvidence(context.Background(), f.evidence(t, attester.Request{Nonce: nonce}), exp); !errors.Is(err, ErrResult) {
		t.Errorf("after the policy change: %v", err)
	}
	other, _ := New(Config{Policy: &p, Key: signer(t, newKey(t, "esp256"))})
	if err := s.SetVerifier(other); err == nil {
		t.Error("swapped in a Verifier with another result key")
	}
}
