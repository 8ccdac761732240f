// Package teepcoap is the TAM side of TEEP over CoAP, a binding of this
// project's own design (docs/coap-binding.md) that mirrors the HTTP binding
// of draft-ietf-teep-otrp-over-http-15: the device initiates, a POST with an
// empty payload to the TAM resource (default /tam) starts a session
// (ProcessConnect), a POST with a payload carries a TEEP message
// (ProcessTeepMessage), and the TAM answers 2.04 Changed with the next
// message, or an empty 2.04 when the session is over.
//
// It carries CoAP over UDP and DTLS 1.2 (RFC 7252, certificates or PSK in
// the RFC 7925 profile) and over TCP and TLS (RFC 8323), with block-wise
// transfer (RFC 7959) for large messages. Duplicate confirmable requests
// (RFC 7252 §4.5) are answered from the response cache of the CoAP stack,
// so the engine never sees the same message twice. Transport-level errors
// carry RFC 9290 concise problem details. codeFor is the one place mapping
// engine errors to CoAP codes (next to teephttp's statusFor for HTTP);
// checkMessage is the one place that judges CoAP-level input of ours
// (block options and sizes) before the stack reassembles a body.
package teepcoap
