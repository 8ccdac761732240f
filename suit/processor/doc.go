// Package processor runs SUIT manifests on a device: the TEEP Agent's
// engine. It implements the procedures of draft-ietf-suit-manifest-37 §8.4.6
// (Update: dependency-resolution, payload-fetch, candidate-verification,
// install, validate; Invocation: validate, load, invoke) with the
// dependency, unlink and uninstall rules of draft-ietf-suit-trust-domains-12
// §6-§7, payload decryption per draft-ietf-suit-firmware-encryption, and a
// SUIT_Report (draft-ietf-suit-report-19) for every run.
//
// It works against two small interfaces owned here: ComponentStore (where
// components and manifest records live, with atomic transactions) and
// Fetcher (streaming retrieval by URI). MemStore and MemFetcher are
// in-memory implementations; internal/suitstore is a directory-backed store
// and internal/fetch an HTTP(S) fetcher; storetest checks any store against
// the ComponentStore contract.
//
// Order of checks for an envelope: strict decoding, manifest digest,
// authentication against Config.Trust / Config.MACKeys, rollback (sequence
// number per manifest-component-id), authorisation, then the commands. Every
// change is staged in one store transaction and committed only when the
// whole procedure, dependencies included, has succeeded; a failed run
// changes nothing.
//
// Choices where the drafts leave room (see docs/suit.md):
//   - dependency slots follow the component list (union index space, as in
//     every published example); parameters are keyed by component id and
//     shared by the manifest tree, so a dependent can hand content and
//     encryption-info to its dependency;
//   - process-dependency authenticates a dependency that no
//     dependency-integrity checked before (the TEEP personalization example
//     relies on it);
//   - an equal sequence number is accepted only for the identical manifest;
//   - reference counts are the manifest records that link a component or
//     depend on a manifest; a component linked by another manifest is never
//     overwritten, and when the last reference goes the component goes.
package processor
