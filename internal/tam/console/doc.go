// Package console is the TAM's web console: HTML pages for operators,
// served under /console/ on the admin listener from templates and a style
// sheet embedded in the binary (no script, no external resources, a strict
// Content-Security-Policy), so it works offline.
//
// The console is a front end of the admin API (package admin), not a second
// implementation of it: a user signs in with an API token (or the provider's
// admin token), and every page and every change is an in-process call of the
// API's own handler with that token as the bearer (RFC 6750 §2.1). The
// authentication, the access table (role and tenant), the error mapping and
// the audit log are therefore the API's; admin.Permits only lets the console
// leave out forms the token could not use.
//
// Sessions (RFC 6265): the browser holds a random session id in a cookie
// (HttpOnly, SameSite=Strict, Path=/console, Secure when the request came
// over TLS); the server keeps the session in memory with an idle and an
// absolute expiry, so a restart of the replica signs its users out. Every
// POST carries the session's CSRF token in a hidden field, compared in
// constant time. docs/console.md describes the pages and the design.
package console
