// Package teephttp is the TAM side of the TEEP HTTP transport
// (draft-ietf-teep-otrp-over-http-15, "HTTP Transport for TEEP: Agent
// Initiated Communication"): §4 (use of HTTP: POST only, the
// application/teep+cbor media type of draft-ietf-teep-protocol-26 §12.1, the
// response headers, HTTPS), §6 (server behaviour: an empty POST is
// ProcessConnect, a body is ProcessTeepMessage, 2xx with the next message or
// without content when the session is over, 5xx on internal failure), with
// 415 / 406 / 413 / 405 / 400 / 503 for requests it refuses. It also runs the
// HTTP server (timeouts, TLS with optional client certificates, graceful
// shutdown) that carries the TEEP endpoints next to the admin API and
// metrics. statusFor is the one place mapping engine errors to HTTP.
package teephttp
