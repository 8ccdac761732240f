package teephttp

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/teep-go/teep/internal/httpd"
	"github.com/teep-go/teep/internal/tam"
	"github.com/teep-go/teep/teep"
)

type fakeEngine struct {
	mu    sync.Mutex
	calls []tam.HandleOptions
	ins   [][]byte
	fn    func(ctx context.Context, in []byte) ([]byte, error)
}

func (f *fakeEngine) Handle(ctx context.Context, in []byte, o tam.HandleOptions) ([]byte, error) {
	f.mu.Lock()
	f.calls = append(f.calls, o)
	f.ins = append(f.ins, in)
	f.mu.Unlock()
	return f.fn(ctx, in)
}

func echo(_ context.Context, in []byte) ([]byte, error) {
	if len(in) == 0 {
		return []byte("query-request"), nil
	}
	if string(in) == "done" {
		return nil, nil
	}
	return append([]byte("re:"), in...), nil
}

func newHandler(t *testing.T, fn func(context.Context, []byte) ([]byte, error), mod ...func(*Config)) (*fakeEngine, http.Handler) {
	t.Helper()
	fe := &fakeEngine{fn: fn}
	cfg := Config{Engine: fe, LegacyPath: "/tam/legacy", Registerer: prometheus.NewRegistry()}
	for _, m := range mod {
		m(&cfg)
	}
	h, err := NewHandler(cfg)
	if err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	h.Register(mux)
	return fe, httpd.Recover(slog.New(slog.DiscardHandler), mux)
}

func do(h http.Handler, method, path, ct, accept string, body []byte) *httptest.ResponseRecorder {
	r := httptest.NewRequest(method, path, bytes.NewReader(body))
	if ct != "" {
		r.Header.Set("Content-Type", ct)
	}
	if accept != "" {
		r.Header.Set("Accept", accept)
	}
	w := httptest.NewRecorder()
	h.ServeHTTP(w, r)
	return w
}

func TestHandler(t *testing.T) {
	fe, h := newHandler(t, echo)
	cases := []struct {
		name                 string
		method, path, ct, ac string
		body                 string
		status               int
		wantBody             string
		wantCT               string
	}{
		{"session start without Content-Type", "POST", "/tam", "", "application/teep+cbor", "", 200, "query-request", MediaType},
		{"session start with Content-Type", "POST", "/tam", MediaType, "", "", 200, "query-request", MediaType},
		{"message", "POST", "/tam", MediaType, "*/*", "msg", 200, "re:msg", MediaType},
		{"Accept with q and a list", "POST", "/tam", MediaType, "text/html;q=1, application/*;q=0.5", "msg", 200, "re:msg", MediaType},
		{"session over", "POST", "/tam", MediaType, "", "done", 204, "", ""},
		{"media type with a parameter", "POST", "/tam", MediaType + "; foo=bar", "", "msg", 200, "re:msg", MediaType},
		{"wrong media type", "POST", "/tam", "application/cbor", "", "msg", 415, "Content-Type must be", httpd.MediaTypeProblem},
		{"wrong media type on an empty body", "POST", "/tam", "text/plain", "", "", 415, "Content-Type must be", httpd.MediaTypeProblem},
		{"missing media type on a body", "POST", "/tam", "", "", "msg", 415, "Content-Type must be", httpd.MediaTypeProblem},
		{"Accept excludes TEEP", "POST", "/tam", MediaType, "application/json", "msg", 406, MediaType, httpd.MediaTypeProblem},
		{"Accept with q=0", "POST", "/tam", MediaType, "application/teep+cbor;q=0", "msg", 406, MediaType, httpd.MediaTypeProblem},
		{"GET", "GET", "/tam", "", "", "", 405, "only POST", httpd.MediaTypeProblem},
		{"PUT", "PUT", "/tam", MediaType, "", "msg", 405, "only POST", httpd.MediaTypeProblem},
		{"legacy path", "POST", "/tam/legacy", MediaType, "", "msg", 200, "re:msg", MediaType},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			w := do(h, c.method, c.path, c.ct, c.ac, []byte(c.body))
			if w.Code != c.status {
				t.Fatalf("status %d, want %d (%s)", w.Code, c.status, w.Body)
			}
			if !strings.Contains(w.Body.String(), c.wantBody) || (c.wantBody == "" && w.Body.Len() != 0) {
				t.Fatalf("body %q, want %q", w.Body, c.wantBody)
			}
			if got := w.Header().Get("Content-Type"); got != c.wantCT {
				t.Fatalf("Content-Type %q, want %q", got, c.wantCT)
			}
			for k, v := range map[string]string{"X-Content-Type-Options": "nosniff", "Content-Security-Policy": "default-src 'none'",
				"Referrer-Policy": "no-referrer", "Cache-Control": "no-store"} {
				if w.Header().Get(k) != v {
					t.Fatalf("%s = %q", k, w.Header().Get(k))
				}
			}
			if c.status == 405 && w.Header().Get("Allow") != "POST" {
				t.Fatal("405 without Allow: POST")
			}
		})
	}
	last := fe.calls[len(fe.calls)-1]
	if last.Numbering != teep.Legacy {
		t.Fatalf("the legacy path reached the engine with %v", last.Numbering)
	}
	if fe.calls[0].Numbering != teep.Draft26 || fe.calls[0].Peer == "" {
		t.Fatalf("first call %+v", fe.calls[0])
	}
}

func TestBodyLimit(t *testing.T) {
	fe, h := newHandler(t, echo, func(c *Config) { c.MaxBodyBytes = 100 })
	if w := do(h, "POST", "/tam", MediaType, "", make([]byte, 100)); w.Code != 200 {
		t.Fatalf("body at the limit: %d", w.Code)
	}
	if w := do(h, "POST", "/tam", MediaType, "", make([]byte, 101)); w.Code != 413 || !strings.Contains(w.Body.String(), "larger than 100") {
		t.Fatalf("body over the limit: %d %q", w.Code, w.Body)
	}
	// Without Content-Length (chunked): the reader enforces the limit.
	r := httptest.NewRequest("POST", "/tam", io.MultiReader(bytes.NewReader(make([]byte, 60)), bytes.NewReader(make([]byte, 60))))
	r.ContentLength = -1
	r.Header.Set("Content-Type", MediaType)
	w := httptest.NewRecorder()
	h.ServeHTTP(w, r)
	if w.Code != 413 {
		t.Fatalf("chunked body over the limit: %d", w.Code)
	}
	if len(fe.ins) != 1 {
		t.Fatalf("oversize bodies reached the engine (%d calls)", len(fe.ins))
	}
}

func TestEngineErrors(t *testing.T) {
	cases := []struct {
		err    error
		status int
		body   string
	}{
		{&tam.Error{Kind: tam.KindBadMessage, Reason: "signature does not verify", Err: errors.New("detail")}, 400, "signature does not verify"},
		{&tam.Error{Kind: tam.KindUnauthorized, Reason: "unknown Agent key"}, 400, "unknown Agent key"},
		{&tam.Error{Kind: tam.KindReplay, Reason: "token already used"}, 400, "token already used"},
		{&tam.Error{Kind: tam.KindUnavailable, Reason: "busy"}, 503, "busy"},
		{&tam.Error{Kind: tam.KindInternal, Reason: "internal error", Err: errors.New("disk /var/secret full")}, 500, "internal error"},
		{errors.New("database is locked at /var/secret"), 500, "internal error"},
		{fmt.Errorf("waiting: %w", context.DeadlineExceeded), 503, "timed out"},
		// What the engine returns when its store times out.
		{&tam.Error{Kind: tam.KindInternal, Reason: "internal error", Err: fmt.Errorf("begin: %w", context.DeadlineExceeded)}, 503, "timed out"},
	}
	for _, c := range cases {
		_, h := newHandler(t, func(context.Context, []byte) ([]byte, error) { return nil, c.err })
		w := do(h, "POST", "/tam", MediaType, "", []byte("x"))
		if w.Code != c.status || !strings.Contains(w.Body.String(), c.body) || strings.Contains(w.Body.String(), "secret") {
			t.Errorf("%v: %d %q", c.err, w.Code, w.Body)
		}
		if c.status == 503 && w.Header().Get("Retry-After") == "" {
			t.Errorf("%v: 503 without Retry-After", c.err)
		}
	}
}

func TestPanicBecomes500(t *testing.T) {
	_, h := newHandler(t, func(context.Context, []byte) ([]byte, error) { panic("boom") })
	w := do(h, "POST", "/tam", MediaType, "", []byte("x"))
	if w.Code != 500 || strings.Contains(w.Body.String(), "boom") || strings.Contains(w.Body.String(), "goroutine") {
		t.Fatalf("panic: %d %q", w.Code, w.Body)
	}
}

func TestBusyAndTimeout(t *testing.T) {
	release := make(chan struct{})
	entered := make(chan struct{}, 1)
	_, h := newHandler(t, func(ctx context.Context, in []byte) ([]byte, error) {
		if string(in) == "slow" {
			entered <- struct{}{}
			<-release
		}
		return []byte("ok"), nil
	}, func(c *Config) { c.MaxInFlight = 1 })
	done := make(chan int)
	go func() { done <- do(h, "POST", "/tam", MediaType, "", []byte("slow")).Code }()
	<-entered
	w := do(h, "POST", "/tam", MediaType, "", []byte("fast"))
	if w.Code != 503 || w.Header().Get("Retry-After") == "" {
		t.Fatalf("over the in-flight limit: %d", w.Code)
	}
	close(release)
	if code := <-done; code != 200 {
		t.Fatalf("slow request: %d", code)
	}
	if w := do(h, "POST", "/tam", MediaType, "", []byte("fast")); w.Code != 200 {
		t.Fatalf("after the slot freed: %d", w.Code)
	}

	_, h = newHandler(t, func(ctx context.Context, in []byte) ([]byte, error) {
		<-ctx.Done()
		return nil, ctx.Err()
	}, func(c *Config) { c.HandleTimeout = 20 * time.Millisecond })
	if w := do(h, "POST", "/tam", MediaType, "", []byte("x")); w.Code != 503 {
		t.Fatalf("engine timeout: %d", w.Code)
	}
}

func TestConfigErrors(t *testing.T) {
	for _, c := range []Config{
		{},
		{Engine: &fakeEngine{}, Path: "tam"},
		{Engine: &fakeEngine{}, Path: "/tam", LegacyPath: "/tam"},
	} {
		if _, err := NewHandler(c); err == nil {
			t.Errorf("NewHandler(%+v) accepted", c)
		}
	}
}

func TestAcceptsTEEP(t *testing.T) {
	for _, c := range []struct {
		v  []string
		ok bool
	}{
		{nil, true},
		{[]string{"application/teep+cbor"}, true},
		{[]string{"*/*"}, true},
		{[]string{"application/*"}, true},
		{[]string{"text/html", "application/teep+cbor;q=0.1"}, true},
		{[]string{"application/json"}, false},
		{[]string{"application/teep+cbor;q=0"}, false},
		{[]string{"garbage;;"}, false},
	} {
		if got := acceptsTEEP(c.v); got != c.ok {
			t.Errorf("acceptsTEEP(%q) = %v", c.v, got)
		}
	}
}

// TestProblemFor checks the one mapping from engine errors to problem
// documents: the TEEP err-code goes out only when the failure is the
// peer's message, in the numbering of the endpoint it came to.
func TestProblemFor(t *testing.T) {
	manifest := &teep.ProtocolError{Code: teep.ErrManifestProcessingFailed, Msg: "bad manifest"}
	if teep.Draft26.WireErrCode(teep.ErrManifestProcessingFailed) == teep.Legacy.WireErrCode(teep.ErrManifestProcessingFailed) {
		t.Fatal("the numberings agree on this err-code; pick one where they differ")
	}
	cases := []struct {
		name    string
		err     error
		n       teep.Numbering
		status  int
		typ     string
		errCode uint64
	}{
		{"protocol error, draft-26", &tam.Error{Kind: tam.KindBadMessage, Reason: "r", Err: manifest}, teep.Draft26, 400,
			httpd.TypeTEEPMessage, teep.Draft26.WireErrCode(teep.ErrManifestProcessingFailed)},
		{"protocol error, legacy", &tam.Error{Kind: tam.KindBadMessage, Reason: "r", Err: manifest}, teep.Legacy, 400,
			httpd.TypeTEEPMessage, teep.Legacy.WireErrCode(teep.ErrManifestProcessingFailed)},
		{"no cause", &tam.Error{Kind: tam.KindReplay, Reason: "token already used"}, teep.Draft26, 400, httpd.TypeTEEPMessage, 0},
		{"a cause that is not the peer's", &tam.Error{Kind: tam.KindUnauthorized, Reason: "r", Err: errors.New("store")}, teep.Draft26, 400,
			httpd.TypeTEEPMessage, 0},
		{"unavailable", &tam.Error{Kind: tam.KindUnavailable, Reason: "busy"}, teep.Draft26, 503, httpd.TypeBlank, 0},
		{"internal", errors.New("disk"), teep.Draft26, 500, httpd.TypeBlank, 0},
	}
	for _, c := range cases {
		p := problemFor(c.err, c.n)
		if p.Status != c.status || p.Type != c.typ || p.ErrCode != c.errCode {
			t.Errorf("%s: %+v, want %d %s err_code %d", c.name, p, c.status, c.typ, c.errCode)
		}
	}
}
