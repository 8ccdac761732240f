// Package attester builds attestation Evidence inside a TEE: an EAT of the
// TEEP profile (draft-ietf-teep-protocol-26 §5, RFC 9711) signed with the
// TEE's attestation key, carrying the device identity, the SUIT references
// of what is installed, a freshness proof (eat_nonce and/or iat, §5.2 of the
// draft and RFC 9334 §10) and a cnf claim (RFC 8747) that binds the Evidence
// to the TEEP Agent's message-signing key.
//
// The attestation key is separate from the Agent's TEEP key. It is generated
// at first start and kept in the TEE's sealed storage by the TEE backend
// (internal/tee); this package takes the key and identity as inputs and
// persists nothing.
package attester
