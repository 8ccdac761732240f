package httpd

import "net/http"

// SecurityHeaders are set on every response of our servers.
// draft-ietf-teep-otrp-over-http-15 §4 asks for them on TEEP responses with
// content; the other APIs get the same, since sending them costs nothing.
// Cache-Control keeps intermediaries from storing anything.
func SecurityHeaders(h http.Header) {
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Content-Security-Policy", "default-src 'none'")
	h.Set("Referrer-Policy", "no-referrer")
	h.Set("Cache-Control", "no-store")
}

// WithSecurityHeaders sets SecurityHeaders before next runs.
func WithSecurityHeaders(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		SecurityHeaders(w.Header())
		next.ServeHTTP(w, r)
	})
}

// Peer names the client for logs: its address, plus the subject of a
// verified client certificate. No proxy headers are read: none of our
// servers is meant to sit behind one, and a header any client can set would
// let it choose the name it is logged under.
func Peer(r *http.Request) string {
	p := r.RemoteAddr
	if p == "" || p == "@" {
		p = "local socket"
	}
	if r.TLS != nil && len(r.TLS.VerifiedChains) > 0 && len(r.TLS.VerifiedChains[0]) > 0 {
		p += " (" + r.TLS.VerifiedChains[0][0].Subject.String() + ")"
	}
	return p
}

// Routes serves mux, answering the requests none of its patterns takes with
// a problem document instead of the mux's plain-text 404 or 405 (RFC 9110
// §15.5.5, §15.5.6: a 405 keeps its Allow header).
func Routes(mux *http.ServeMux) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h, pattern := mux.Handler(r)
		if pattern != "" {
			mux.ServeHTTP(w, r) // which sets the path values h reads
			return
		}
		// The mux's own handler knows whether the path exists with other
		// methods; let it answer into a recorder, keep its status and Allow.
		rec := &statusRecorder{header: http.Header{}}
		h.ServeHTTP(rec, r)
		code := http.StatusNotFound
		detail := "no such resource: " + r.URL.Path
		if rec.code == http.StatusMethodNotAllowed {
			code = http.StatusMethodNotAllowed
			w.Header().Set("Allow", rec.header.Get("Allow"))
			detail = r.Method + " is not allowed on " + r.URL.Path
		}
		WriteProblem(w, NewProblem(code, detail))
	})
}

// statusRecorder keeps the status and headers of an answer, dropping its
// body.
type statusRecorder struct {
	header http.Header
	code   int
}

func (s *statusRecorder) Header() http.Header         { return s.header }
func (s *statusRecorder) Write(b []byte) (int, error) { return len(b), nil }
func (s *statusRecorder) WriteHeader(code int)        { s.code = code }
