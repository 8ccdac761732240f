// Package teep implements the messages of the Trusted Execution Environment
// Provisioning protocol, draft-ietf-teep-protocol-26: their Go model, a strict
// CBOR codec in both numberings, the COSE signing envelope and the mapping of
// failures to TEEP err-codes. It does no I/O.
//
// Sections implemented:
//
//   - §4 message format: the teep-message framework, options maps, the five
//     message types (§4.2 QueryRequest, §4.3 QueryResponse with
//     system-property-claims and requested-tc-info, §4.4 Update, §4.5 Success,
//     §4.6 Error) and the §4.6.1 error codes.
//   - §4.1.1 / §4.1.2 creating and validating a message: [Sign], [SignMulti]
//     (COSE_Sign for the initial QueryRequest), [Open] (verify, then decode).
//   - §5.1 / §6.1 the per-message rules that can be checked without state,
//     in the Validate methods (sizes of token, challenge, err-msg, err-lang,
//     msg; err-code never 0; the capability list an "unsupported" Error
//     must carry; challenge and freshness mechanisms only with the
//     attestation bit; have-binary needs a sequence number).
//   - §8.2 cipher suites and §8.3 SUIT COSE profiles, with the negotiation
//     helpers [SelectCipherSuite], [SelectVersion], [SelectFreshness],
//     [SelectSUITCOSEProfile] and [ErrorFor].
//   - §9 freshness mechanism values, §11 IANA registries (message types,
//     data-item-requested bits, error codes, CBOR labels).
//   - Appendix C CDDL, both the -26 numbering ([Draft26], the default and
//     the IANA values) and the numbering of drafts -18 to -25 ([Legacy]:
//     success 5, error 6, labels from 5 up shifted by one,
//     ERR_MANIFEST_PROCESSING_FAILED 17). A message is never encoded in a
//     mix of the two.
//   - Appendix D examples are the test vectors (testdata/teep).
//
// Decoding is strict: definite lengths only, no duplicate map keys, no
// trailing bytes, valid UTF-8, exact array lengths, known labels only where
// the CDDL allows them, and every size bounded by [Limits]. Unknown option
// labels are kept in Extensions (the draft asks receivers to ignore them) and
// written back on encoding. Encoding is RFC 8949 §4.2.1 core deterministic
// unless EncodeOptions.PreserveOrder asks to reproduce a decoded message's
// key order.
//
// Errors are *ProtocolError values; [CodeOf] is the single mapping from any
// decode, verification or negotiation failure to the err-code to answer
// with.
package teep
