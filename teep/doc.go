// Package teep implements the messages of the Trusted Execution Environment
// Provisioning protocol, draft-ietf-teep-protocol-26: their Go model, a strict
// CBOR codec in both numberings, the COSE signing envelope and the mapping of
// failures to TEEP err-codes. It does no I/O and keeps no state; the TAM and
// the Agent build their protocol logic on it.
//
// What it implements, by section of draft-ietf-teep-protocol-26:
//
//   - §4 (Detailed Messages Specification): the teep-message framework
//     (type, options map, positional items) and the five messages —
//     QueryRequest (§4.2), QueryResponse with system-property-claims and
//     requested-tc-info (§4.3), Update (§4.4), Success (§4.5), Error with the
//     err-code values (§4.6) — as [QueryRequest], [QueryResponse], [Update],
//     [Success], [Error].
//   - §4.1 (Creating and Validating TEEP Messages): [Sign] (COSE_Sign1),
//     [SignMulti] (COSE_Sign, the initial QueryRequest signed with every
//     offered algorithm) and [Open] (well-formed, COSE_Sign1 or COSE_Sign,
//     critical headers understood, signature verified against trusted keys,
//     then the payload decoded and validated).
//   - The per-message MUST rules that need no session state, in the
//     Validate methods: CDDL sizes of token, challenge, msg, err-msg,
//     err-lang; err-code never 0; the capability list an "unsupported" Error
//     carries; challenge and supported-freshness-mechanisms only with the
//     attestation bit; have-binary only with a sequence number.
//   - §6 (mapping of parameters to CBOR labels) in both numberings: [Draft26]
//     (the -26 / IANA values, the default) and [Legacy] (drafts -18 to -25:
//     success 5, error 6, labels from selected-version up shifted by one,
//     ERR_MANIFEST_PROCESSING_FAILED 17). One message is never encoded in a
//     mix of the two.
//   - §8 (cipher suites and SUIT COSE profiles) with the negotiation helpers
//     [SelectCipherSuite], [SelectVersion], [SelectFreshness],
//     [SelectSUITCOSEProfile] and [ErrorFor]; §9 freshness mechanism values.
//   - The IANA registries the draft creates (message types, data-item-requested
//     bits, error codes, CBOR labels, freshness mechanisms).
//   - Appendix C (CDDL) is what the decoder enforces; the Appendix D examples
//     are the test vectors (testdata/teep), reproduced byte for byte.
//
// Decoding is strict: definite lengths only, no duplicate map keys, no
// trailing bytes, valid UTF-8, exact array lengths, known labels only where
// the CDDL allows them, and every size bounded by [Limits]. Unknown option
// labels are kept in Extensions (the draft asks receivers to ignore them) and
// written back on encoding. Encoding is RFC 8949 §4.2.1 core deterministic
// unless EncodeOptions.PreserveOrder asks to reproduce a decoded message's
// key order (the Appendix D maps are not sorted).
//
// Errors are *ProtocolError values; [CodeOf] is the single mapping from any
// decode, verification or negotiation failure to the err-code to answer
// with.
package teep
