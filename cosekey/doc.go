// Package cosekey holds the COSE key and signature helpers shared by the TEEP,
// SUIT and EAT packages: key generation, the RFC 9679 COSE Key Thumbprint used
// as kid, conversion between COSE_Key (RFC 9052 §7), PEM (PKCS#8, SEC1, SPKI)
// and JWK (RFC 7517), and COSE_Sign1 / COSE_Sign creation and verification
// (RFC 9052 §4) through github.com/veraison/go-cose.
//
// Algorithms (RFC 9053, RFC 9864):
//
//	ESP256  -9   ECDSA P-256 + SHA-256 (fully specified; what we sign with)
//	Ed25519 -19  EdDSA on Ed25519      (fully specified; what we sign with)
//	ES256   -7   accepted on input, same math as ESP256
//	EdDSA   -8   accepted on input (polymorphic id, Ed25519 only)
//
// go-cose v1.3.0 predates RFC 9864, so -9 and -19 are thin wrappers of its
// ES256 and EdDSA signers and verifiers that report the fully specified id.
//
// Signing goes through [Signer], which accepts any crypto.Signer, so an HSM or
// KMS key can be used without changes here. The package does no I/O; reading
// and writing key files lives in the command and internal packages.
package cosekey
