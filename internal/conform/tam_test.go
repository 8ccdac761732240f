package conform

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"strings"
	"sync"
	"testing"

	"github.com/teep-go/teep/cosekey"
	"github.com/teep-go/teep/internal/tam/tamtest"
	"github.com/teep-go/teep/teep"
)

// ourTAM starts the project's TAM with a pre-registered Agent key and a
// component required everywhere, so every check has something to test.
func ourTAM(t *testing.T) (*tamtest.TAM, *cosekey.Key) {
	t.Helper()
	x := tamtest.Start(t, tamtest.Options{})
	signer := tamtest.Signer(t)
	x.TrustSigner(signer.PublicKey())
	x.Require(x.Upload(tamtest.Envelope(t, signer, "conform-app", 1, []byte("a trusted app"))))
	agent, err := cosekey.Generate(cosekey.AlgESP256)
	if err != nil {
		t.Fatal(err)
	}
	x.AddAgent(agent.PublicKey())
	return x, agent
}

// Our own TAM passes every required check, in both numberings, and no
// check is skipped when the kit is given what it needs.
func TestOurTAMConforms(t *testing.T) {
	x, agent := ourTAM(t)
	for _, c := range []struct {
		url string
		num teep.Numbering
	}{{x.URL, teep.Draft26}, {x.LegacyURL, teep.Legacy}, {x.LegacyURL, NumberingAuto}} {
		rep, err := RunTAM(context.Background(), TAMOptions{URL: c.url, Numbering: c.num, AgentKey: agent, TAMKey: x.Key()})
		if err != nil {
			t.Fatal(err)
		}
		var text bytes.Buffer
		rep.WriteText(&text)
		if !rep.OK() || rep.Skipped != 0 || rep.Failed != 0 {
			t.Fatalf("%s:\n%s", c.url, text.String())
		}
		if c.num == NumberingAuto && rep.Numbering != teep.Legacy.String() {
			t.Fatalf("auto numbering found %s on the legacy endpoint", rep.Numbering)
		}
	}
}

// fault breaks one behaviour of a real TAM behind a proxy.
type fault struct {
	name string
	// request may answer instead of the TAM (true: handled).
	request func(w http.ResponseWriter, r *http.Request, body []byte) bool
	// response may change the TAM's answer.
	response func(r *http.Request, status int, h http.Header, body []byte) (int, []byte)
	fails    string // the check that must fail
}

func brokenTAMs() []fault {
	return []fault{
		{name: "415 to an empty POST without Content-Type", fails: "http.empty-post",
			request: func(w http.ResponseWriter, r *http.Request, body []byte) bool {
				if len(body) == 0 && r.Header.Get("Content-Type") == "" && r.Method == http.MethodPost {
					w.WriteHeader(http.StatusUnsupportedMediaType)
					return true
				}
				return false
			}},
		{name: "no nosniff header", fails: "http.response-headers",
			response: func(r *http.Request, st int, h http.Header, b []byte) (int, []byte) {
				h.Del("X-Content-Type-Options")
				return st, b
			}},
		{name: "accepts text/plain bodies", fails: "http.wrong-content-type",
			request: func(w http.ResponseWriter, r *http.Request, body []byte) bool {
				if r.Header.Get("Content-Type") == "text/plain" {
					w.WriteHeader(http.StatusBadRequest)
					return true
				}
				return false
			}},
		{name: "takes untyped bodies", fails: "http.missing-content-type",
			request: func(w http.ResponseWriter, r *http.Request, body []byte) bool {
				if len(body) > 0 && r.Header.Get("Content-Type") == "" {
					w.WriteHeader(http.StatusNoContent)
					return true
				}
				return false
			}},
		{name: "ignores Accept", fails: "http.wrong-accept",
			request: func(w http.ResponseWriter, r *http.Request, body []byte) bool {
				if r.Header.Get("Accept") == "text/html" {
					r.Header.Set("Accept", "application/teep+cbor")
				}
				return false
			}},
		{name: "serves GET", fails: "http.only-post",
			request: func(w http.ResponseWriter, r *http.Request, body []byte) bool {
				if r.Method == http.MethodGet {
					w.Write([]byte("hello"))
					return true
				}
				return false
			}},
		{name: "crashes on big bodies", fails: "http.oversized-body",
			request: func(w http.ResponseWriter, r *http.Request, body []byte) bool {
				if len(body) > 1<<20 {
					w.WriteHeader(http.StatusInternalServerError)
					return true
				}
				return false
			}},
		{name: "unsigned QueryRequest", fails: "qr.signed",
			response: func(r *http.Request, st int, h http.Header, b []byte) (int, []byte) {
				if len(b) > 0 {
					return st, b[1:] // the tag gone: not COSE any more
				}
				return st, b
			}},
		{name: "reuses one token", fails: "qr.token-unique",
			response: reuseFirstQueryRequest()},
		{name: "500 with HTML on garbage", fails: "session.malformed-cbor",
			request: func(w http.ResponseWriter, r *http.Request, body []byte) bool {
				if bytes.HasPrefix(body, []byte{0xd2, 0x84, 0xff}) {
					w.Header().Set("Content-Type", "text/html")
					w.WriteHeader(http.StatusInternalServerError)
					w.Write([]byte("<html>panic</html>"))
					return true
				}
				return false
			}},
		{name: "accepts any token", fails: "session.unknown-token",
			response: func(r *http.Request, st int, h http.Header, b []byte) (int, []byte) {
				if st == http.StatusBadRequest || st == http.StatusForbidden || st == http.StatusConflict {
					return http.StatusOK, []byte{0xd2}
				}
				return st, b
			}},
		{name: "processes replays", fails: "session.replayed-token", response: replayAsNew()},
	}
}

// reuseFirstQueryRequest answers every empty POST with the first
// QueryRequest the TAM sent.
func reuseFirstQueryRequest() func(*http.Request, int, http.Header, []byte) (int, []byte) {
	var mu sync.Mutex
	var first []byte
	return func(r *http.Request, st int, h http.Header, b []byte) (int, []byte) {
		mu.Lock()
		defer mu.Unlock()
		if r.ContentLength == 0 && st == http.StatusOK {
			if first == nil {
				first = b
			}
			return st, first
		}
		return st, b
	}
}

// replayAsNew answers a replayed QueryResponse with the answer the first
// copy got.
func replayAsNew() func(*http.Request, int, http.Header, []byte) (int, []byte) {
	answers := map[string][]byte{}
	status := map[string]int{}
	var mu sync.Mutex
	return func(r *http.Request, st int, h http.Header, b []byte) (int, []byte) {
		mu.Lock()
		defer mu.Unlock()
		key := r.Header.Get("X-Body-Digest")
		if key == "" {
			return st, b
		}
		if prev, ok := answers[key]; ok {
			h.Set("Content-Type", "application/teep+cbor")
			return status[key], prev
		}
		answers[key], status[key] = b, st
		return st, b
	}
}

// proxy serves the TAM at target with f applied.
func proxy(t *testing.T, target string, f fault) string {
	u, _ := url.Parse(target)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		if f.request != nil && f.request(w, r, body) {
			return
		}
		if len(body) > 0 {
			sum := sha256.Sum256(body)
			r.Header.Set("X-Body-Digest", hex.EncodeToString(sum[:]))
		}
		req, _ := http.NewRequest(r.Method, target, bytes.NewReader(body))
		req.Header = r.Header.Clone()
		req.Host = u.Host
		resp, err := http.DefaultTransport.RoundTrip(req)
		if err != nil {
			w.WriteHeader(http.StatusBadGateway)
			return
		}
		defer resp.Body.Close()
		rb, _ := io.ReadAll(resp.Body)
		st := resp.StatusCode
		h := resp.Header.Clone()
		if f.response != nil {
			st, rb = f.response(r, st, h, rb)
		}
		for k, v := range h {
			if k != "Content-Length" {
				w.Header()[k] = v
			}
		}
		w.WriteHeader(st)
		w.Write(rb)
	}))
	t.Cleanup(srv.Close)
	return srv.URL + u.Path
}

// Every check that can fail is shown failing against a TAM broken in the
// way it tests, while a faithful proxy passes.
func TestChecksFailAgainstBrokenTAMs(t *testing.T) {
	x, agent := ourTAM(t)
	faithful, err := RunTAM(context.Background(), TAMOptions{URL: proxy(t, x.URL, fault{}), AgentKey: agent})
	if err != nil || !faithful.OK() {
		var b strings.Builder
		faithful.WriteText(&b)
		t.Fatalf("through a faithful proxy: %v\n%s", err, b.String())
	}
	for _, f := range brokenTAMs() {
		t.Run(f.name, func(t *testing.T) {
			rep, err := RunTAM(context.Background(), TAMOptions{URL: proxy(t, x.URL, f), AgentKey: agent})
			if err != nil {
				t.Fatal(err)
			}
			res := rep.Result(f.fails)
			if res == nil || res.Status != Fail {
				var b strings.Builder
				rep.WriteText(&b)
				t.Fatalf("%s did not fail:\n%s", f.fails, b.String())
			}
			if res.Required && rep.OK() {
				t.Fatal("a required check failed but the report is OK")
			}
		})
	}
}

func TestRemoteURLNeedsAllowRemote(t *testing.T) {
	_, err := RunTAM(context.Background(), TAMOptions{URL: "https://tam.example.com/tam"})
	if err != ErrNotLoopback {
		t.Fatalf("err = %v, want ErrNotLoopback", err)
	}
	if _, err := RunTAM(context.Background(), TAMOptions{URL: "ftp://127.0.0.1/tam"}); err == nil {
		t.Fatal("an ftp URL was accepted")
	}
}

// docs/conformance.md lists every check of the catalogue, with its level
// and section, so the document cannot drift from the code.
func TestCatalogueIsDocumented(t *testing.T) {
	doc, err := os.ReadFile("../../docs/conformance.md")
	if err != nil {
		t.Fatal(err)
	}
	type row struct {
		id, title, section string
		required           bool
	}
	var rows []row
	for _, c := range tamChecks {
		rows = append(rows, row{c.id, c.title, c.section, c.required})
	}
	for _, c := range agentScenarios {
		rows = append(rows, row{c.id, c.title, c.section, c.required})
	}
	for _, c := range rows {
		level := "SHOULD"
		if c.required {
			level = "MUST"
		}
		line := "| `" + c.id + "` | " + level + " | " + c.title + " | " + c.section + " |"
		if !strings.Contains(string(doc), line) {
			t.Errorf("docs/conformance.md lacks the row\n%s", line)
		}
	}
}
