// Package fleet runs, in one process, a TAM (internal/tam/tamserver: SQLite,
// TEEP over HTTP per draft-ietf-teep-otrp-over-http-15 on 127.0.0.1) and a
// fleet of devices (internal/device) whose software TEEs trust it and one
// Trusted Component signer, the TAM's Verifier endorsing every TEE's
// attestation key (the background-check model of RFC 9334 §5.2). `teep demo`
// tells a story with it and `teep bench` measures it. Envelope builds the
// signed Trusted Components they use: SUIT manifests in the layout of
// draft-ietf-teep-protocol-26 Appendix E with the payload integrated.
package fleet
