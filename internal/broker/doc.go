// Package broker is the TEEP Broker, the rich-OS side of a device
// (RFC 9397 §4.3, §6.2): it relays TEEP messages between the TEEP Agents of
// the device's TEEs and TAMs, and offers rich-OS applications a local API.
//
//   - Client is the TEEP/HTTP client of draft-ietf-teep-otrp-over-http-15
//     §5: POST only; an empty body starts a session; Accept (and with a body
//     Content-Type) application/teep+cbor; a response without content ends
//     the session; redirects are never followed and cookies never used
//     (§4); TLS 1.2+ with system roots or a given CA pool (BCP 195); request
//     timeouts; retries with exponential backoff and jitter.
//   - Broker routes sessions to one Agent per TEE through the Agent
//     interface, the conceptual API of RFC 9397 §6.2.1 (RequestTA,
//     UnrequestTA, ProcessTeepMessage, RequestPolicyCheck, ProcessError;
//     ProcessConnect is the TAM's side of the empty POST).
//   - LocalHandler is the local JSON API on a Unix socket: request and
//     release a Trusted Component, list what is installed, trigger a sync.
//   - AgentHandler and RemoteAgent carry the Agent interface across a
//     process boundary (an Agent process behind a local socket).
//
// The Broker is untrusted by design (RFC 9397 §4.3): it never reads or
// alters TEEP messages; their signatures protect them end to end.
package broker
