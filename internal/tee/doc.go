// Package tee defines what a TEEP Agent needs from the Trusted Execution
// Environment it runs in: keys that never leave it (the Agent's signing key,
// a key-agreement key for encrypted SUIT payloads, a separate attestation
// key), Evidence, and sealed, rollback-protected, transactional storage.
//
// It follows the TEE model of RFC 9397 §4 and §5 (one key pair per TEE,
// several TEEs per device) and the Agent requirements of
// draft-ietf-teep-protocol-26 §4 and §7. The software implementation is in
// package softtee; docs/tee-backends.md explains how an OP-TEE or SGX backend
// would implement the same interface.
package tee
