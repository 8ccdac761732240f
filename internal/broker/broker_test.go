package broker

import (
	"bytes"
	"context"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"errors"
	"io"
	"log"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"

	"github.com/teep-go/teep/internal/keyrule"
	"github.com/teep-go/teep/suit"
)

// fastRetry keeps retry tests quick while still exercising backoff.
var fastRetry = Retry{MaxAttempts: 3, BaseDelay: time.Millisecond, MaxDelay: 5 * time.Millisecond}

type seen struct {
	method, accept, contentType string
	body                        []byte
}

// tamServer is a scripted TAM: each POST gets the next answer.
type tamServer struct {
	mu      sync.Mutex
	seen    []seen
	answers []func(w http.ResponseWriter)
}

func (s *tamServer) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	s.mu.Lock()
	s.seen = append(s.seen, seen{r.Method, r.Header.Get("Accept"), r.Header.Get("Content-Type"), body})
	var a func(http.ResponseWriter)
	if len(s.answers) > 0 {
		a, s.answers = s.answers[0], s.answers[1:]
	}
	s.mu.Unlock()
	if a == nil {
		w.WriteHeader(http.StatusNoContent)
		return
	}
	a(w)
}

func (s *tamServer) requests() []seen {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]seen(nil), s.seen...)
}

func teepAnswer(body string) func(http.ResponseWriter) {
	return func(w http.ResponseWriter) {
		w.Header().Set("Content-Type", MediaType)
		w.Write([]byte(body))
	}
}

func statusAnswer(code int, hdr ...string) func(http.ResponseWriter) {
	return func(w http.ResponseWriter) {
		for i := 0; i+1 < len(hdr); i += 2 {
			w.Header().Set(hdr[i], hdr[i+1])
		}
		w.WriteHeader(code)
	}
}

func TestPostHeadersAndEndOfSession(t *testing.T) {
	tam := &tamServer{answers: []func(http.ResponseWriter){teepAnswer("QR"), statusAnswer(http.StatusNoContent)}}
	srv := httptest.NewServer(tam)
	defer srv.Close()
	c := NewClient(ClientOptions{Retry: fastRetry})
	got, err := c.Post(context.Background(), srv.URL+"/tam", nil)
	if err != nil || string(got) != "QR" {
		t.Fatalf("first POST = %q, %v", got, err)
	}
	got, err = c.Post(context.Background(), srv.URL+"/tam", []byte("QRESP"))
	if err != nil || got != nil {
		t.Fatalf("second POST = %q, %v; want no content", got, err)
	}
	reqs := tam.requests()
	if len(reqs) != 2 {
		t.Fatalf("%d requests", len(reqs))
	}
	// draft-ietf-teep-otrp-over-http-15 §5: Accept always, Content-Type with a body.
	if r := reqs[0]; r.method != "POST" || r.accept != MediaType || r.contentType != "" || len(r.body) != 0 {
		t.Errorf("empty POST: %+v", r)
	}
	if r := reqs[1]; r.accept != MediaType || r.contentType != MediaType || string(r.body) != "QRESP" {
		t.Errorf("message POST: %+v", r)
	}
}

func TestPostRejectsBadResponses(t *testing.T) {
	other := &tamServer{}
	otherSrv := httptest.NewServer(other)
	defer otherSrv.Close()
	cases := []struct {
		name   string
		answer func(http.ResponseWriter)
		want   error
	}{
		{"redirect to another host", statusAnswer(http.StatusFound, "Location", otherSrv.URL+"/tam"), ErrRedirect},
		{"redirect to same host", statusAnswer(http.StatusTemporaryRedirect, "Location", "/elsewhere"), ErrRedirect},
		{"wrong content type", func(w http.ResponseWriter) {
			w.Header().Set("Content-Type", "application/cbor")
			w.Write([]byte{0x80})
		}, ErrBadResponse},
		{"content type with parameter", func(w http.ResponseWriter) {
			w.Header().Set("Content-Type", MediaType+"; charset=utf-8")
			w.Write([]byte{0x80})
		}, ErrBadResponse},
		{"oversize body", func(w http.ResponseWriter) {
			w.Header().Set("Content-Type", MediaType)
			w.Write(make([]byte, 1025))
		}, ErrBadResponse},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			tam := &tamServer{answers: []func(http.ResponseWriter){tc.answer}}
			srv := httptest.NewServer(tam)
			defer srv.Close()
			c := NewClient(ClientOptions{Retry: fastRetry, MaxMessageSize: 1024})
			_, err := c.Post(context.Background(), srv.URL+"/tam", []byte("x"))
			if !errors.Is(err, tc.want) {
				t.Fatalf("err = %v, want %v", err, tc.want)
			}
			if n := len(tam.requests()); n != 1 {
				t.Fatalf("%d requests, want 1 (no retry)", n)
			}
		})
	}
	if n := len(other.requests()); n != 0 {
		t.Fatalf("redirect target got %d requests", n)
	}
}

func TestPostRetries(t *testing.T) {
	cases := []struct {
		name     string
		answers  []func(http.ResponseWriter)
		wantErr  bool
		wantPost int
	}{
		{"503 then ok", []func(http.ResponseWriter){statusAnswer(503), teepAnswer("ok")}, false, 2},
		{"429 429 then ok", []func(http.ResponseWriter){statusAnswer(429, "Retry-After", "0"), statusAnswer(429), teepAnswer("ok")}, false, 3},
		{"502 always", []func(http.ResponseWriter){statusAnswer(502), statusAnswer(502), statusAnswer(502), statusAnswer(502)}, true, 3},
		{"400 not retried", []func(http.ResponseWriter){statusAnswer(400), teepAnswer("ok")}, true, 1},
		{"500 not retried", []func(http.ResponseWriter){statusAnswer(500), teepAnswer("ok")}, true, 1},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			tam := &tamServer{answers: tc.answers}
			srv := httptest.NewServer(tam)
			defer srv.Close()
			c := NewClient(ClientOptions{Retry: fastRetry})
			got, err := c.Post(context.Background(), srv.URL, nil) // only the empty POST is retried
			if (err != nil) != tc.wantErr {
				t.Fatalf("err = %v", err)
			}
			if !tc.wantErr && string(got) != "ok" {
				t.Fatalf("got %q", got)
			}
			var he *HTTPError
			if tc.wantErr && !errors.As(err, &he) {
				t.Fatalf("error %v is not an HTTPError", err)
			}
			if n := len(tam.requests()); n != tc.wantPost {
				t.Fatalf("%d POSTs, want %d", n, tc.wantPost)
			}
		})
	}
}

// A TEEP message is sent once: it may have reached the TAM (Broker.session
// restarts the session instead).
func TestPostDoesNotResendAMessage(t *testing.T) {
	tam := &tamServer{answers: []func(http.ResponseWriter){statusAnswer(503), teepAnswer("ok")}}
	srv := httptest.NewServer(tam)
	defer srv.Close()
	c := NewClient(ClientOptions{Retry: fastRetry})
	if _, err := c.Post(context.Background(), srv.URL, []byte("m")); !isStatus(err, 503) {
		t.Fatalf("err = %v, want the 503", err)
	}
	if n := len(tam.requests()); n != 1 {
		t.Fatalf("%d POSTs of one message, want 1", n)
	}
}

func TestPostRetriesConnectionRefused(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close() // nothing listens there now
	c := NewClient(ClientOptions{Retry: fastRetry})
	var sleeps []time.Duration
	c.sleep = func(ctx context.Context, d time.Duration) error { sleeps = append(sleeps, d); return nil }
	_, err = c.Post(context.Background(), "http://"+addr+"/tam", nil)
	if err == nil {
		t.Fatal("POST to a closed port succeeded")
	}
	if len(sleeps) != fastRetry.MaxAttempts-1 {
		t.Fatalf("slept %d times, want %d", len(sleeps), fastRetry.MaxAttempts-1)
	}
}

func TestBackoffBounds(t *testing.T) {
	c := NewClient(ClientOptions{Retry: Retry{MaxAttempts: 10, BaseDelay: 100 * time.Millisecond, MaxDelay: time.Second}})
	for attempt := 1; attempt <= 9; attempt++ {
		nominal := min(100*time.Millisecond<<(attempt-1), time.Second)
		for i := 0; i < 50; i++ {
			d := c.backoff(attempt, 0)
			if d < nominal/2 || d > nominal {
				t.Fatalf("attempt %d: delay %v outside [%v, %v]", attempt, d, nominal/2, nominal)
			}
		}
	}
	if d := c.backoff(1, 10*time.Second); d != time.Second {
		t.Fatalf("Retry-After not capped: %v", d)
	}
	if d := c.backoff(1, 700*time.Millisecond); d != 700*time.Millisecond {
		t.Fatalf("Retry-After not honoured: %v", d)
	}
}

func TestPostTLS(t *testing.T) {
	tam := &tamServer{answers: []func(http.ResponseWriter){teepAnswer("hello"), teepAnswer("hello")}}
	srv := httptest.NewUnstartedServer(tam)
	srv.Config.ErrorLog = log.New(io.Discard, "", 0) // the refused handshake below is expected
	srv.StartTLS()
	defer srv.Close()
	// With the TAM's CA (as --tam-ca FILE gives it): works.
	caFile := filepath.Join(t.TempDir(), "ca.pem")
	os.WriteFile(caFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: srv.Certificate().Raw}), 0o644)
	pool, err := LoadCAFile(caFile)
	if err != nil {
		t.Fatal(err)
	}
	c := NewClient(ClientOptions{RootCAs: pool, Retry: fastRetry})
	if got, err := c.Post(context.Background(), srv.URL, nil); err != nil || string(got) != "hello" {
		t.Fatalf("TLS POST = %q, %v", got, err)
	}
	// With system roots only: refused, and not retried.
	c = NewClient(ClientOptions{RootCAs: x509.NewCertPool(), Retry: fastRetry})
	var slept int
	c.sleep = func(context.Context, time.Duration) error { slept++; return nil }
	if _, err := c.Post(context.Background(), srv.URL, nil); err == nil {
		t.Fatal("untrusted TAM certificate accepted")
	}
	if slept != 0 {
		t.Fatalf("certificate failure retried %d times", slept)
	}
	if _, err := LoadCAFile(filepath.Join(t.TempDir(), "none.pem")); err == nil {
		t.Fatal("missing CA file accepted")
	}
	os.WriteFile(caFile, []byte("not pem"), 0o644)
	if _, err := LoadCAFile(caFile); err == nil {
		t.Fatal("CA file without certificates accepted")
	}
}

func TestCheckTAMURI(t *testing.T) {
	for uri, ok := range map[string]bool{
		"https://tam.example/tam":   true,
		"http://127.0.0.1:8080/tam": true,
		"ftp://tam.example/":        false,
		"https:///tam":              false,
		"/tam":                      false,
		"https://u:p@tam.example/":  false,
		"https://tam.example/#frag": false,
		"https://tam.example/%zz":   false,
		"HTTPS://tam.example/upper": true,
	} {
		if _, err := CheckTAMURI(uri); (err == nil) != ok {
			t.Errorf("CheckTAMURI(%q) = %v", uri, err)
		}
	}
}

// fakeAgent answers each TAM message with "re:"+message until it has sent
// replies, then nothing; its policy check names tam once per round.
type fakeAgent struct {
	mu        sync.Mutex
	tam       string
	replies   int
	checked   bool
	problems  []string
	messages  []string
	errors    []string
	requested []suit.ComponentID
	released  []suit.ComponentID
}

func (a *fakeAgent) RequestTA(_ context.Context, id suit.ComponentID, tam string) (Result, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.requested = append(a.requested, id)
	return Result{TAMURI: a.tam}, nil
}

func (a *fakeAgent) UnrequestTA(_ context.Context, id suit.ComponentID, tam string) (Result, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.released = append(a.released, id)
	return Result{}, nil
}

func (a *fakeAgent) RequestPolicyCheck(context.Context) (Result, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.checked {
		a.checked = false
		return Result{Problems: a.problems}, nil
	}
	a.checked = true
	return Result{TAMURI: a.tam}, nil
}

func (a *fakeAgent) ProcessTeepMessage(_ context.Context, tam string, msg []byte) (Result, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.messages = append(a.messages, string(msg))
	if a.replies == 0 {
		return Result{}, nil
	}
	a.replies--
	return Result{TAMURI: tam, Message: []byte("re:" + string(msg))}, nil
}

func (a *fakeAgent) ProcessError(_ context.Context, tam string, err error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.errors = append(a.errors, err.Error())
}

func (a *fakeAgent) Status(context.Context) (*TEEStatus, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	return &TEEStatus{TAM: a.tam, Components: []Component{{
		ID: suit.ComponentID{[]byte("TEEP-Device"), {0x8d, 0x82}}, SequenceNumber: 3, SHA256: make([]byte, 32), Size: 20,
	}}, Requested: a.requested}, nil
}

func TestSessionRelaysUntilNoContent(t *testing.T) {
	tam := &tamServer{answers: []func(http.ResponseWriter){teepAnswer("QueryRequest"), teepAnswer("Update")}}
	srv := httptest.NewServer(tam)
	defer srv.Close()
	reg := prometheus.NewRegistry()
	m, err := NewMetrics(reg)
	if err != nil {
		t.Fatal(err)
	}
	b := New(Options{Client: NewClient(ClientOptions{Retry: fastRetry}), Metrics: m})
	a := &fakeAgent{tam: srv.URL + "/tam", replies: 5}
	b.AddAgent("tee0", a)
	if err := b.Sync(context.Background(), ""); err != nil {
		t.Fatal(err)
	}
	var bodies []string
	for _, r := range tam.requests() {
		bodies = append(bodies, string(r.body))
	}
	want := []string{"", "re:QueryRequest", "re:Update"}
	if strings.Join(bodies, "|") != strings.Join(want, "|") {
		t.Fatalf("TAM saw %q, want %q", bodies, want)
	}
	if got := counterValue(t, m.sessions.WithLabelValues("tee0", "ok")); got != 1 {
		t.Fatalf("sessions ok = %v", got)
	}
	if got := counterValue(t, m.posts.WithLabelValues("tee0", "ok")); got != 3 {
		t.Fatalf("posts ok = %v", got)
	}
}

func TestSessionTransportFailureReachesAgent(t *testing.T) {
	tam := &tamServer{answers: []func(http.ResponseWriter){statusAnswer(http.StatusForbidden)}}
	srv := httptest.NewServer(tam)
	defer srv.Close()
	b := New(Options{Client: NewClient(ClientOptions{Retry: fastRetry})})
	a := &fakeAgent{tam: srv.URL}
	b.AddAgent("tee0", a)
	err := b.Sync(context.Background(), "tee0")
	var se *SyncError
	if !errors.As(err, &se) || se.TEE != "tee0" || len(se.Problems) != 1 || !strings.Contains(se.Problems[0], "403") {
		t.Fatalf("Sync = %v, want a SyncError naming the failure", err)
	}
	if len(a.errors) != 1 || !strings.Contains(a.errors[0], "403") {
		t.Fatalf("ProcessError calls: %q", a.errors)
	}
}

func TestSessionBounded(t *testing.T) {
	var n atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n.Add(1)
		w.Header().Set("Content-Type", MediaType)
		w.Write([]byte("again"))
	}))
	defer srv.Close()
	b := New(Options{Client: NewClient(ClientOptions{Retry: fastRetry})})
	b.AddAgent("t", &fakeAgent{tam: srv.URL, replies: 1 << 20})
	err := b.Sync(context.Background(), "t")
	if err == nil || !strings.Contains(err.Error(), "exceeded") {
		t.Fatalf("endless session: %v", err)
	}
	if got := n.Load(); got != MaxExchangesPerSession {
		t.Fatalf("%d exchanges, want %d", got, MaxExchangesPerSession)
	}
}

func TestRoutingToTEEs(t *testing.T) {
	tam := &tamServer{}
	srv := httptest.NewServer(tam)
	defer srv.Close()
	b := New(Options{Client: NewClient(ClientOptions{Retry: fastRetry})})
	a, c := &fakeAgent{tam: srv.URL}, &fakeAgent{tam: srv.URL}
	b.AddAgent("a", a)
	b.AddAgent("c", c)
	if err := b.AddAgent("a", c); err == nil {
		t.Fatal("duplicate TEE name accepted")
	}
	id := suit.ComponentID{[]byte("x")}
	if name, err := b.RequestTA(context.Background(), "c", id, ""); err != nil || name != "c" {
		t.Fatalf("RequestTA(c) = %q, %v", name, err)
	}
	if name, err := b.RequestTA(context.Background(), "", id, ""); err != nil || name != "a" {
		t.Fatalf("RequestTA(default) = %q, %v", name, err)
	}
	if len(a.requested) != 1 || len(c.requested) != 1 {
		t.Fatalf("requests: a %d, c %d", len(a.requested), len(c.requested))
	}
	if _, err := b.RequestTA(context.Background(), "zz", id, ""); !errors.Is(err, ErrUnknownTEE) {
		t.Fatalf("unknown TEE: %v", err)
	}
	if err := b.Sync(context.Background(), ""); err != nil {
		t.Fatal(err)
	}
	// Requests ran a session each; the sync one more per TEE.
	if n := len(tam.requests()); n != 4 {
		t.Fatalf("TAM saw %d requests, want 4", n)
	}
}

func startLocal(t *testing.T, h http.Handler) string {
	t.Helper()
	sock := filepath.Join(t.TempDir(), "s.sock")
	ln, err := ListenUnix(sock)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- Serve(ctx, ln, h, time.Second, nil) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Serve: %v", err)
		}
	})
	return sock
}

func TestLocalAPI(t *testing.T) {
	tam := &tamServer{}
	srv := httptest.NewServer(tam)
	defer srv.Close()
	b := New(Options{Client: NewClient(ClientOptions{Retry: fastRetry})})
	a := &fakeAgent{tam: srv.URL}
	b.AddAgent("main", a)
	sock := startLocal(t, b.LocalHandler())
	fi, err := os.Stat(sock)
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("socket mode: %v %v", fi.Mode(), err)
	}
	ctx := context.Background()
	c := NewLocalClient(sock)
	id := suit.ComponentID{[]byte("TEEP-Device"), {1, 2}}
	if name, err := c.Request(ctx, "", id, ""); err != nil || name != "main" {
		t.Fatalf("Request = %q, %v", name, err)
	}
	if _, err := c.Release(ctx, "main", id, ""); err != nil {
		t.Fatal(err)
	}
	if !a.requested[0].Equal(id) || !a.released[0].Equal(id) {
		t.Fatalf("agent saw %v / %v", a.requested, a.released)
	}
	if err := c.Sync(ctx, ""); err != nil {
		t.Fatal(err)
	}
	st, err := c.Status(ctx)
	if err != nil || len(st) != 1 || st[0].Name != "main" || st[0].Components[0].Size != 20 {
		t.Fatalf("Status = %+v, %v", st, err)
	}
	var le *LocalError
	if _, err := c.Request(ctx, "nope", id, ""); !errors.As(err, &le) || le.Status != http.StatusNotFound {
		t.Fatalf("unknown TEE: %v", err)
	}
	if _, err := c.Request(ctx, "", nil, ""); !errors.As(err, &le) || le.Status != http.StatusBadRequest {
		t.Fatalf("missing id: %v", err)
	}
	// A second server on the same live socket is refused.
	if _, err := ListenUnix(sock); err == nil {
		t.Fatal("second listener on a live socket")
	}
	hc := unixHTTPClient(sock)
	// The status answer, as sent, follows the machine-output naming rule.
	resp, err := hc.Get("http://x/v1/status")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if bad := keyrule.Violations(body); len(bad) > 0 {
		t.Errorf("status keys break the naming rule: %q\n%s", bad, body)
	}
	// Raw bad requests.
	for _, body := range []string{`{"tee":1}`, `{"bogus":true}`, `{} {}`, `{"component_id":["zz"]}`, `{"tam":"ftp://x"}`} {
		resp, err := hc.Post("http://x/v1/request", "application/json", strings.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusBadRequest {
			t.Errorf("%s: status %d", body, resp.StatusCode)
		}
	}
}

func TestLocalClientNotRunning(t *testing.T) {
	c := NewLocalClient(filepath.Join(t.TempDir(), "none.sock"))
	if _, err := c.Status(context.Background()); !errors.Is(err, ErrNotRunning) {
		t.Fatalf("no socket: %v", err)
	}
	// A stale socket file with no listener.
	sock := filepath.Join(t.TempDir(), "stale.sock")
	ln, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	ln.(*net.UnixListener).SetUnlinkOnClose(false)
	ln.Close()
	if _, err := NewLocalClient(sock).Status(context.Background()); !errors.Is(err, ErrNotRunning) {
		t.Fatalf("stale socket: %v", err)
	}
	if _, err := ListenUnix(filepath.Join(t.TempDir(), strings.Repeat("s", MaxSocketPath))); err == nil || !strings.Contains(err.Error(), "longer") {
		t.Fatalf("overlong socket path: %v", err)
	}
	// ListenUnix replaces the stale socket.
	ln, err = ListenUnix(sock)
	if err != nil {
		t.Fatalf("stale socket not replaced: %v", err)
	}
	ln.Close()
}

func TestRemoteAgentAcrossSocket(t *testing.T) {
	tam := &tamServer{answers: []func(http.ResponseWriter){teepAnswer("QueryRequest")}}
	srv := httptest.NewServer(tam)
	defer srv.Close()
	inner := &fakeAgent{tam: srv.URL + "/tam", replies: 1}
	sock := startLocal(t, AgentHandler(inner))
	remote := DialAgent(sock)
	b := New(Options{Client: NewClient(ClientOptions{Retry: fastRetry})})
	b.AddAgent("remote", remote)
	if err := b.Sync(context.Background(), ""); err != nil {
		t.Fatal(err)
	}
	reqs := tam.requests()
	if len(reqs) != 2 || string(reqs[1].body) != "re:QueryRequest" {
		t.Fatalf("TAM saw %+v", reqs)
	}
	if _, err := b.RequestTA(context.Background(), "remote", suit.ComponentID{{0xff}}, ""); err != nil {
		t.Fatal(err)
	}
	if len(inner.requested) != 1 || inner.requested[0][0][0] != 0xff {
		t.Fatalf("remote RequestTA not delivered: %v", inner.requested)
	}
	st := b.Status(context.Background())
	if len(st) != 1 || st[0].Error != "" || st[0].Components[0].SequenceNumber != 3 {
		t.Fatalf("Status across the boundary: %+v", st)
	}
	remote.ProcessError(context.Background(), srv.URL, errors.New("boom"))
	if len(inner.errors) != 1 || inner.errors[0] != "boom" {
		t.Fatalf("ProcessError across the boundary: %q", inner.errors)
	}
	// A dead Agent process is reported, not hung on.
	dead := DialAgent(filepath.Join(t.TempDir(), "dead.sock"))
	if _, err := dead.RequestPolicyCheck(context.Background()); !errors.Is(err, ErrNotRunning) {
		t.Fatalf("dead agent: %v", err)
	}
}

func FuzzDecodeLocalRequest(f *testing.F) {
	for _, s := range []string{`{}`, `{"tee":"a","component_id":["5445"],"tam":"https://t/x"}`, `{"component_id":[]}`, `{"x":1}`, `[]`, `{"tee":"a"} x`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		r, err := DecodeLocalRequest(data)
		if err != nil {
			return
		}
		// Whatever decodes re-encodes and decodes to the same request.
		b, err := jsonMarshal(r)
		if err != nil {
			t.Fatal(err)
		}
		r2, err := DecodeLocalRequest(b)
		if err != nil || r2.TEE != r.TEE || r2.TAM != r.TAM || !r2.ComponentID.Equal(r.ComponentID) {
			t.Fatalf("round trip: %+v → %s → %+v, %v", r, b, r2, err)
		}
	})
}

func FuzzDecodeAgentCall(f *testing.F) {
	for _, s := range []string{`{}`, `{"tam":"http://127.0.0.1/tam","message":"gwE="}`, `{"error":"x","component_id":["00"]}`, `{"message":"!"}`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		c, err := DecodeAgentCall(data)
		if err != nil {
			return
		}
		b, err := jsonMarshal(c)
		if err != nil {
			t.Fatal(err)
		}
		c2, err := DecodeAgentCall(b)
		if err != nil || !bytes.Equal(c.Message, c2.Message) || c.TAM != c2.TAM || c.Error != c2.Error {
			t.Fatalf("round trip: %+v → %s → %+v, %v", c, b, c2, err)
		}
	})
}

func jsonMarshal(v any) ([]byte, error) { return json.Marshal(v) }

func counterValue(t *testing.T, c prometheus.Counter) float64 {
	t.Helper()
	var m dto.Metric
	if err := c.Write(&m); err != nil {
		t.Fatal(err)
	}
	return m.GetCounter().GetValue()
}

// BenchmarkSession measures a three-exchange TEEP/HTTP session through the
// Broker (empty POST, two messages, 204) against the baseline of the same
// three POSTs made directly with net/http on one keep-alive connection.
func BenchmarkSession(b *testing.B) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		if string(body) == "re:Update" {
			w.WriteHeader(http.StatusNoContent)
			return
		}
		w.Header().Set("Content-Type", MediaType)
		if len(body) == 0 {
			w.Write([]byte("QueryRequest"))
		} else {
			w.Write([]byte("Update"))
		}
	}))
	defer srv.Close()
	b.Run("baseline-net-http", func(b *testing.B) {
		c := srv.Client()
		for b.Loop() {
			for _, body := range []string{"", "re:QueryRequest", "re:Update"} {
				resp, err := c.Post(srv.URL, MediaType, strings.NewReader(body))
				if err != nil {
					b.Fatal(err)
				}
				io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
			}
		}
	})
	b.Run("broker-sync", func(b *testing.B) {
		br := New(Options{Client: NewClient(ClientOptions{Transport: srv.Client().Transport})})
		a := &fakeAgent{tam: srv.URL, replies: 1 << 30}
		br.AddAgent("t", a)
		for b.Loop() {
			if err := br.Sync(context.Background(), "t"); err != nil {
				b.Fatal(err)
			}
		}
	})
}

func TestPostTimeouts(t *testing.T) {
	release := make(chan struct{})
	defer close(release)
	var n atomic.Int32
	slowHeaders := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n.Add(1)
		select {
		case <-release:
		case <-r.Context().Done():
		}
	}))
	defer slowHeaders.Close()
	c := NewClient(ClientOptions{Retry: fastRetry, RequestTimeout: 50 * time.Millisecond})
	_, err := c.Post(context.Background(), slowHeaders.URL, nil)
	if err == nil || !strings.Contains(err.Error(), "no response headers within 50ms") {
		t.Fatalf("slow headers: %v", err)
	}
	if got := n.Load(); got != int32(fastRetry.MaxAttempts) {
		t.Fatalf("%d attempts, want %d (a timeout is retried)", got, fastRetry.MaxAttempts)
	}
	slowBody := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", MediaType)
		w.Write([]byte("part"))
		w.(http.Flusher).Flush()
		select {
		case <-release:
		case <-r.Context().Done():
		}
	}))
	defer slowBody.Close()
	c = NewClient(ClientOptions{Retry: Retry{MaxAttempts: 1}, BodyTimeout: 50 * time.Millisecond})
	if _, err := c.Post(context.Background(), slowBody.URL, nil); err == nil || !strings.Contains(err.Error(), "body not read within") {
		t.Fatalf("slow body: %v", err)
	}
	// The caller's own cancellation is not retried.
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Millisecond)
	defer cancel()
	c = NewClient(ClientOptions{Retry: fastRetry})
	if _, err := c.Post(ctx, slowHeaders.URL, nil); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("cancelled: %v", err)
	}
}

func TestJitter(t *testing.T) {
	seen := map[time.Duration]bool{}
	for i := 0; i < 200; i++ {
		d := Jitter(time.Hour)
		if d < 54*time.Minute || d > 66*time.Minute {
			t.Fatalf("Jitter(1h) = %v, outside ±10%%", d)
		}
		seen[d] = true
	}
	if len(seen) < 100 {
		t.Fatalf("only %d distinct values: not random", len(seen))
	}
	if Jitter(5*time.Nanosecond) != 5*time.Nanosecond {
		t.Fatal("a period too short to jitter changed")
	}
}
