package httpd

import (
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"unicode/utf8"
)

func TestWriteProblem(t *testing.T) {
	long := strings.Repeat("é", MaxDetailBytes) // 2 bytes each: must be cut at a boundary
	cases := []struct {
		name   string
		in     *Problem
		status int
		want   Problem
	}{
		{"about:blank", NewProblem(404, "no such device"), 404,
			Problem{Type: TypeBlank, Title: "Not Found", Status: 404, Detail: "no such device"}},
		{"empty type is about:blank", &Problem{Status: 409, Detail: "exists"}, 409,
			Problem{Type: TypeBlank, Title: "Conflict", Status: 409, Detail: "exists"}},
		{"about:blank keeps the status text as title", &Problem{Type: TypeBlank, Title: "mine", Status: 400}, 400,
			Problem{Type: TypeBlank, Title: "Bad Request", Status: 400}},
		{"typed with extensions", &Problem{Type: TypeTEEPMessage, Title: "TEEP message refused", Status: 400, Detail: "bad", ErrCode: 1}, 400,
			Problem{Type: TypeTEEPMessage, Title: "TEEP message refused", Status: 400, Detail: "bad", ErrCode: 1}},
		{"typed without title", &Problem{Type: TypeSyncFailed, Status: 502, Problems: []string{"a", "b"}}, 502,
			Problem{Type: TypeSyncFailed, Title: "Bad Gateway", Status: 502, Problems: []string{"a", "b"}}},
		{"not an error status", &Problem{Status: 200, Detail: "fine"}, 500,
			Problem{Type: TypeBlank, Title: "Internal Server Error", Status: 500}},
		{"status 0", &Problem{}, 500, Problem{Type: TypeBlank, Title: "Internal Server Error", Status: 500}},
		{"invalid UTF-8", NewProblem(400, "bad \xff byte"), 400,
			Problem{Type: TypeBlank, Title: "Bad Request", Status: 400, Detail: "bad \uFFFD byte"}},
		{"long detail", NewProblem(400, long), 400,
			Problem{Type: TypeBlank, Title: "Bad Request", Status: 400, Detail: strings.Repeat("é", MaxDetailBytes/2)}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			w := httptest.NewRecorder()
			WriteProblem(w, c.in)
			if w.Code != c.status {
				t.Fatalf("status %d, want %d", w.Code, c.status)
			}
			if ct := w.Header().Get("Content-Type"); ct != MediaTypeProblem {
				t.Fatalf("Content-Type %q", ct)
			}
			var got Problem
			if err := json.Unmarshal(w.Body.Bytes(), &got); err != nil {
				t.Fatal(err)
			}
			if !equal(got, c.want) {
				t.Fatalf("got %+v\nwant %+v", got, c.want)
			}
			if !utf8.Valid(w.Body.Bytes()) || len(got.Detail) > MaxDetailBytes {
				t.Fatalf("body %q", w.Body)
			}
			// The document reads back as what was sent.
			back, err := ParseProblem(w.Header().Get("Content-Type"), w.Body.Bytes())
			if err != nil || !equal(*back, c.want) {
				t.Fatalf("ParseProblem = %+v, %v", back, err)
			}
		})
	}
}

func equal(a, b Problem) bool {
	return a.Type == b.Type && a.Title == b.Title && a.Status == b.Status && a.Detail == b.Detail &&
		a.Instance == b.Instance && a.ErrCode == b.ErrCode && strings.Join(a.Problems, "\n") == strings.Join(b.Problems, "\n")
}

func TestParseProblem(t *testing.T) {
	cases := []struct {
		name, ct, body string
		err            error
		want           Problem
	}{
		{"minimal", MediaTypeProblem, `{"status":404}`, nil, Problem{Type: TypeBlank, Status: 404}},
		{"with parameters", MediaTypeProblem + "; charset=utf-8", `{"title":"x"}`, nil, Problem{Type: TypeBlank, Title: "x"}},
		{"unknown extension ignored", MediaTypeProblem, `{"status":400,"detail":"d","balance":30,"accounts":["/a"]}`, nil,
			Problem{Type: TypeBlank, Status: 400, Detail: "d"}},
		{"extensions", MediaTypeProblem, `{"type":"` + TypeTEEPMessage + `","status":400,"err_code":2,"problems":["p"]}`, nil,
			Problem{Type: TypeTEEPMessage, Status: 400, ErrCode: 2, Problems: []string{"p"}}},
		{"plain JSON", "application/json", `{"status":400}`, ErrNotProblem, Problem{}},
		{"no Content-Type", "", `{"status":400}`, ErrNotProblem, Problem{}},
		{"not an object", MediaTypeProblem, `["status"]`, ErrBadProblem, Problem{}},
		{"empty", MediaTypeProblem, ``, ErrBadProblem, Problem{}},
		{"duplicate member", MediaTypeProblem, `{"status":400,"status":200}`, ErrBadProblem, Problem{}},
		{"trailing data", MediaTypeProblem, `{"status":400} {}`, ErrBadProblem, Problem{}},
		{"truncated", MediaTypeProblem, `{"status":400`, ErrBadProblem, Problem{}},
		{"mistyped status", MediaTypeProblem, `{"status":"400"}`, ErrBadProblem, Problem{}},
		{"fractional status", MediaTypeProblem, `{"status":400.5}`, ErrBadProblem, Problem{}},
		{"status out of range", MediaTypeProblem, `{"status":1000}`, ErrBadProblem, Problem{}},
		{"mistyped detail", MediaTypeProblem, `{"detail":{"a":1}}`, ErrBadProblem, Problem{}},
		{"null member", MediaTypeProblem, `{"status":null}`, ErrBadProblem, Problem{}},
		{"null unknown extension is ignored", MediaTypeProblem, `{"status":400,"other":null}`, nil, Problem{Type: TypeBlank, Status: 400}},
		{"negative err_code", MediaTypeProblem, `{"err_code":-1}`, ErrBadProblem, Problem{}},
		{"too large", MediaTypeProblem, `{"detail":"` + strings.Repeat("x", MaxProblemBytes) + `"}`, ErrBadProblem, Problem{}},
		{"too many problems", MediaTypeProblem, `{"problems":[` + strings.Repeat(`"x",`, MaxProblemItems) + `"x"]}`, ErrBadProblem, Problem{}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			p, err := ParseProblem(c.ct, []byte(c.body))
			if c.err != nil {
				if !errors.Is(err, c.err) {
					t.Fatalf("err %v, want %v", err, c.err)
				}
				return
			}
			if err != nil || !equal(*p, c.want) {
				t.Fatalf("got %+v, %v; want %+v", p, err, c.want)
			}
		})
	}
}

func TestErrorText(t *testing.T) {
	cases := []struct {
		name, ct, body, want string
	}{
		{"problem detail", MediaTypeProblem, `{"status":404,"title":"Not Found","detail":"no such device"}`, "no such device"},
		{"problem without detail", MediaTypeProblem, `{"status":404,"title":"Not Found"}`, "Not Found"},
		{"control characters", MediaTypeProblem, `{"detail":"a\u001b[31mb\nc"}`, "a [31mb c"},
		{"malformed problem shows the text", MediaTypeProblem, `{"detail":`, `{"detail":`},
		{"text", "text/plain; charset=utf-8", "  busy; retry later\n", "busy; retry later"},
		{"old JSON error", "application/json", `{"error":"x"}`, `{"error":"x"}`},
		{"binary", "application/teep+cbor", "\x81\x01", "2-byte application/teep+cbor body"},
		{"empty binary", "application/octet-stream", "", ""},
		{"long text", "text/plain", strings.Repeat("a", MaxErrorText+10), strings.Repeat("a", MaxErrorText) + "…"},
	}
	for _, c := range cases {
		if got := ErrorText(c.ct, []byte(c.body)); got != c.want {
			t.Errorf("%s: %q, want %q", c.name, got, c.want)
		}
	}
}

func TestProblemError(t *testing.T) {
	var err error = NewProblem(http.StatusConflict, "exists")
	var p *Problem
	if !errors.As(err, &p) || p.Status != 409 || err.Error() != "409 Conflict: exists" {
		t.Fatalf("%v", err)
	}
	if got := NewProblem(503, "").Error(); got != "503 Service Unavailable" {
		t.Fatal(got)
	}
}

// FuzzParseProblem: the parser never panics, and what it accepts is written
// back as a bounded, valid problem document that parses again.
func FuzzParseProblem(f *testing.F) {
	for _, s := range []string{`{"status":404}`, `{"type":"about:blank","title":"Not Found","status":404,"detail":"x","err_code":3,"problems":["a"]}`,
		`{"status":400,"status":400}`, `{"a":{"b":[1,2,{"c":null}]}}`, `[]`, `{"detail":"\ud800"}`, ``} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		p, err := ParseProblem(MediaTypeProblem, body)
		if err != nil {
			if !errors.Is(err, ErrBadProblem) {
				t.Fatalf("error outside the class: %v", err)
			}
			return
		}
		if p.Status == 0 {
			p.Status = 400
		}
		w := httptest.NewRecorder()
		WriteProblem(w, p)
		back, err := ParseProblem(w.Header().Get("Content-Type"), w.Body.Bytes())
		if err != nil || back.Status < 400 || len(back.Detail) > MaxDetailBytes || !utf8.ValidString(back.Detail) {
			t.Fatalf("rewritten %q: %+v, %v", w.Body, back, err)
		}
		_ = ErrorText(MediaTypeProblem, body)
	})
}

func TestRoutes(t *testing.T) {
	mux := http.NewServeMux()
	mux.HandleFunc("POST /items/{id}", func(w http.ResponseWriter, r *http.Request) {
		w.Write([]byte("item " + r.PathValue("id")))
	})
	mux.HandleFunc("GET /dir/", func(w http.ResponseWriter, r *http.Request) { w.Write([]byte("dir")) })
	h := Routes(mux)
	cases := []struct {
		method, path string
		status       int
		body, allow  string
	}{
		{"POST", "/items/7", 200, "item 7", ""}, // path values reach the handler
		{"GET", "/items/7", 405, "GET is not allowed on /items/7", "POST"},
		{"GET", "/nothing", 404, "no such resource: /nothing", ""},
		{"GET", "/dir", http.StatusTemporaryRedirect, "", ""}, // the mux's own redirect stays
	}
	for _, c := range cases {
		w := httptest.NewRecorder()
		h.ServeHTTP(w, httptest.NewRequest(c.method, c.path, nil))
		if w.Code != c.status || !strings.Contains(w.Body.String(), c.body) || w.Header().Get("Allow") != c.allow {
			t.Errorf("%s %s: %d %q Allow %q", c.method, c.path, w.Code, w.Body, w.Header().Get("Allow"))
			continue
		}
		if c.status >= 400 {
			if p, err := ParseProblem(w.Header().Get("Content-Type"), w.Body.Bytes()); err != nil || p.Status != c.status {
				t.Errorf("%s %s: not a problem: %v", c.method, c.path, err)
			}
		}
	}
}

func TestSecurityHeadersAndPeer(t *testing.T) {
	w := httptest.NewRecorder()
	WithSecurityHeaders(http.NotFoundHandler()).ServeHTTP(w, httptest.NewRequest("GET", "/", nil))
	for k, v := range map[string]string{"X-Content-Type-Options": "nosniff", "Content-Security-Policy": "default-src 'none'",
		"Referrer-Policy": "no-referrer", "Cache-Control": "no-store"} {
		if got := w.Header().Get(k); got != v {
			t.Errorf("%s = %q, want %q", k, got, v)
		}
	}
	r := httptest.NewRequest("GET", "/", nil)
	r.RemoteAddr = "192.0.2.1:1234"
	r.Header.Set("X-Forwarded-For", "198.51.100.7")
	if got := Peer(r); got != "192.0.2.1:1234" {
		t.Errorf("Peer = %q: a client-set header must not name the peer", got)
	}
	r.RemoteAddr = "@"
	if got := Peer(r); got != "local socket" {
		t.Errorf("Peer on a Unix socket = %q", got)
	}
}
