// Package tee defines what a TEEP Agent needs from the Trusted Execution
// Environment it runs in: keys that never leave it (the Agent's signing key,
// key-agreement keys for encrypted SUIT payloads, a separate attestation
// key), Evidence, and sealed, rollback-protected, transactional storage
// with named monotonic counters.
//
// ComponentStore builds the SUIT processor's component store
// (processor.ComponentStore) on any TEE's Storage: a processor transaction
// is a storage transaction, so an install is atomic across crashes, and the
// highest sequence number ever installed per manifest is a monotonic
// counter, so downgrades are refused even after an uninstall.
//
// It follows the TEE model of RFC 9397 §4 and §5 (one key pair per TEE,
// several TEEs per device), the Agent requirements of
// draft-ietf-teep-protocol-26 §4 and §10 (rollback of Trusted Components
// stopped by suit-manifest-sequence-number), and the component-store
// contract of suit/processor. The software implementation is package
// softtee; docs/tee-backends.md explains how an OP-TEE or SGX backend would
// implement the same interface, and package teetest is the conformance
// suite every backend runs.
package tee
