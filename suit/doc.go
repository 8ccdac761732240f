// Package suit implements the SUIT manifest format for TEEP: the envelope and
// manifest model with a strict decoder, authentication (COSE_Sign1,
// COSE_Sign, COSE_Mac0, COSE_Mac), a builder and signer for the TAM and for
// Trusted Component developers, payload encryption, and SUIT_Report.
//
// Specifications (section numbers of the drafts named):
//
//   - draft-ietf-suit-manifest-37: envelope (§8.1-8.2), authentication
//     wrapper and digests (§8.3), manifest, common, components, command
//     sequences, conditions, directives and parameters (§8.4), severable
//     members (§7.4, §8.5), integrated payloads (§7.5)
//   - draft-ietf-suit-trust-domains-12: manifest-component-id,
//     dependencies and dependency-prefix, dependency-resolution,
//     candidate-verification, uninstall, integrated dependencies, the
//     dependency commands (§5-§7)
//   - draft-ietf-suit-firmware-encryption: SUIT_Encryption_Info (COSE_Encrypt
//     with detached ciphertext), AES-KW and ECDH-ES+AES-KW recipients,
//     AES-GCM, AES-CTR and ChaCha20/Poly1305 content encryption
//   - draft-ietf-suit-report-19: SUIT_Report, SUIT_Record, SUIT_Reference,
//     system-property-claims, reasons
//   - draft-ietf-suit-mti-23: the algorithm profiles
//
// The processor that runs manifests lives in suit/processor. This package
// does no I/O.
//
// Raw bytes are kept for everything that is hashed: the manifest digest is
// over the encoded bstr item at envelope key 3 (head included), severed
// members are checked the same way, and nothing is re-encoded before hashing.
// The decoder rejects indefinite lengths, non-shortest heads, duplicate map
// keys, trailing bytes, wrong types and unknown manifest members, and bounds
// sizes and nesting by Limits.
package suit
