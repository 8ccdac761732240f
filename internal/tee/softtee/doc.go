// Package softtee is a software TEE: the tee.TEE interface implemented in
// ordinary process memory and files, for development, tests, CI and devices
// without a hardware TEE. It protects integrity and confidentiality of its
// state at rest, not against an attacker who controls the process.
//
// State lives in one directory per TEE:
//
//	root.key     32-byte device root key (mode 0600; refused if looser)
//	index        sealed: which file holds each object, its hash, and the
//	             named monotonic counters
//	counter      sealed: the generation of the newest committed index (the
//	             emulated hardware monotonic counter)
//	objects/     one sealed file per object version
//	lock         flock(2) lock held while the TEE is open
//
// Every blob is AES-256-GCM sealed under a key derived from the root key
// (HKDF-SHA256), with the TEE name, the blob's kind, its logical name and
// file name bound as additional data: bit flips, swapped or renamed files,
// a file from another TEE, and a file rolled back to an earlier sealed
// version are all detected (tee.ErrTampered, tee.ErrRollback) and never
// used. Rolling back the index and the counter together is not detectable
// in software; a hardware backend keeps the counter in RPMB, NV storage or
// fuses (docs/tee-backends.md).
//
// Transactions are atomic across crashes: new object versions are written
// to fresh files (staged), then the index is replaced with one rename (the
// commit point), then the counter advances; files no index refers to are
// removed on the next open. It implements the trusted-storage and
// rollback-protection requirements RFC 9397 §4.4 and draft-ietf-teep-protocol-26
// §10 (Security Considerations) place on the TEE, and the atomic install
// contract of the SUIT processor's component store.
package softtee
