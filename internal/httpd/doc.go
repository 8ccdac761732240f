// Package httpd is the HTTP plumbing the project's servers share: the TAM's
// TEEP endpoint and admin API, the Verifier service and the Broker's local
// API. It holds what every one of them needs in the same way, so that they
// answer alike:
//
//   - error bodies: RFC 9457 problem details (application/problem+json,
//     §3.1 members type, title, status, detail; §3.2 extension members in
//     snake_case, defined in problem.go) and the client-side parser that
//     reads them back (ParseProblem, ErrorText);
//   - the response headers every answer carries (SecurityHeaders) and the
//     name of the peer in logs (Peer);
//   - the server: RFC 9110 timeouts on reading and writing, optional TLS
//     with client certificates, a panic becoming a 500 problem, graceful
//     shutdown (Server.Serve);
//   - loading a PEM CA file (LoadCertPool) and the Prometheus registry with
//     the Go and process collectors (NewRegistry).
//
// It imports nothing of this module (internal/layering checks that), so any
// server can use it.
package httpd
