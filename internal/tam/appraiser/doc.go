// Package appraiser judges the attestation a QueryResponse carries
// (draft-ietf-teep-protocol-26 §5, RFC 9334 background-check and passport
// models) with the project's Verifier: it is the tam.Appraiser a server
// wires in. It lives outside internal/tam so that the transport-agnostic
// engine does not depend on the Verifier's HTTP client.
package appraiser
