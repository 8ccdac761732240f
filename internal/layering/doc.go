// Package layering holds the dependency guard: a test that fails when a
// package imports something its layer must not.
//
// The rules, from docs/architecture.md:
//   - the public protocol libraries (every package outside internal/ and
//     cmd/) do no I/O and know nothing of servers: they must not depend on
//     net/http, database/sql, a database driver, a CoAP stack, Prometheus, or
//     any package under internal/, even indirectly;
//   - the TAM engine (internal/tam itself, not its sub-packages) is
//     transport-agnostic: it must not depend on net/http;
//   - internal/httpd, the HTTP plumbing every server shares, depends on no
//     package of this module, and the admin API does not import the TEEP
//     endpoint (internal/tam/teephttp) for it.
//
// Test imports do not count: a library's tests may use net/http/httptest.
package layering
