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
