// Package eat implements Entity Attestation Tokens (RFC 9711) as CBOR Web
// Tokens (RFC 8392) signed with COSE_Sign1, with the claims of the TEEP EAT
// profile (draft-ietf-teep-protocol-26 §5 and Appendix D.2) as Go fields.
//
// What is where:
//
//	Claims, DecodeClaims, MarshalCBOR   the claims-set (RFC 9711 §4, RFC 8392 §3,
//	                                    cnf per RFC 8747 §3.1, ear.status per
//	                                    draft-ietf-rats-ear)
//	Sign, Parse, Token.Verify           the CWT: COSE_Sign1 (RFC 9052 §4.2), tag 18
//	                                    and CWT tag 61 optional on input
//	ProfileProblems, ProfileTEEP        conformance to the TEEP profile
//	MarshalJSON, UnmarshalJSON          claims keyed by their RFC 9711 JSON names,
//	                                    byte strings in hex (for tools, not a wire format)
//	SUITReference                       manifests entries naming SUIT manifests
//	                                    (draft-ietf-suit-report SUIT_Reference)
//
// The decoder is strict: definite lengths, preferred serialization, no
// duplicate keys, no trailing bytes, integer claim labels, every known claim
// type-checked, and every size bounded by Limits. Claims it does not model
// are kept verbatim in Claims.Unknown and written back. ParseOptions has one
// relaxation, LenientUnsafe, for the draft's own Appendix D.2 example and for
// libteep; what it lets through is listed in Claims.Deviations.
//
// Freshness and policy (nonce, iat window, reference values) are the
// verifier's job (internal/verifier); this package does no I/O and reads no
// clock.
package eat
