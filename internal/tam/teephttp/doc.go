// Package teephttp is the TAM side of the TEEP HTTP transport
// (draft-ietf-teep-otrp-over-http-15, "HTTP Transport for TEEP: Agent
// Initiated Communication"): §4 (use of HTTP: POST only, the
// application/teep+cbor media type of draft-ietf-teep-protocol-26 §12.1, the
// response headers, HTTPS), §6 (server behaviour: an empty POST is
// ProcessConnect, a body is ProcessTeepMessage, 2xx with the next message or
// without content when the session is over, 5xx on internal failure), with
// 415 / 406 / 413 / 405 / 400 / 503 for requests it refuses. Refusals are
// transport failures and answer RFC 9457 problem details (internal/httpd);
// a message the TAM drops carries the TEEP err-code it maps to. problemFor
// is the one place mapping engine errors to HTTP. The server that carries
// these endpoints next to the admin API is internal/httpd's.
package teephttp
