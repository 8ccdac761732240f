// Package tam is the Trusted Application Manager engine: transport-agnostic
// TEEP session handling (Engine.Handle), the policy model that decides what
// each device should have, token and challenge management, the device
// registry, and the management operations the admin API exposes. State lives
// behind the Store interface (sqlitestore implements it; storetest is the
// conformance suite every implementation runs).
//
// Specifications implemented:
//
//   - draft-ietf-teep-protocol-26 §4.1 (creating and validating messages; a
//     TAM drops invalid ones), §4.1.1 (tokens: CSPRNG, single use, expiry,
//     bounded outstanding state), §4.2 (QueryRequest: versions, both
//     mandatory cipher suites, the four SUIT COSE profiles, freshness
//     mechanisms, data-item-requested; COSE_Sign with one signature per
//     algorithm when the Agent's suite is unknown), §4.3 and §4.3.1
//     (QueryResponse processing: tc-list, requested-tc-list with
//     tc-manifest-sequence-number and have-binary, unneeded-manifest-list,
//     SUIT report nonces, Update with err-code), §4.4 (Update:
//     manifest-list, unneeded-manifest-list, err-code), §4.5 and §4.6 (Success
//     and Error, the reaction to each err-code), §5 (attestation: Evidence in
//     the background-check model with nonce = challenge, Attestation Results
//     in the passport model with nonce = token, cnf binding the Agent key),
//     §8 (cipher suites), both numberings (-26 and drafts 18-25);
//   - RFC 9397 §6.2.1 (ProcessConnect / ProcessTeepMessage);
//   - draft-ietf-suit-manifest, draft-ietf-suit-trust-domains (dependencies)
//     and draft-ietf-suit-firmware-encryption (personalization data
//     encrypted with ECDH-ES+A128KW) through the suit package.
//
// Design notes. QueryRequest tokens are self-authenticating (HMAC with a
// session key), so an unauthenticated empty POST costs no database write;
// a token is consumed by the first validly signed response. An Agent whose
// key is unknown is asked for attestation; it is registered only when its
// Evidence is appraised and binds (cnf) the key that signed its
// QueryResponse. Update tokens are random and stored with what was sent, so
// a Success can update the inventory atomically. Every state change is one
// store transaction; a refused message changes nothing.
package tam
