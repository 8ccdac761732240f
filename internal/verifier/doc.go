// Package verifier appraises TEEP attestation Evidence and issues and checks
// Attestation Results (RFC 9334 roles; draft-ietf-teep-protocol-26 §5 and
// §5.2 for the TEEP EAT profile and freshness).
//
// Background-check model: the TAM receives Evidence in a QueryResponse and
// calls Verifier.AppraiseEvidence with the challenge it sent and the Agent
// key that signed the QueryResponse.
//
// Passport model: the Agent posts Evidence (eat_nonce = the QueryRequest
// token) to the HTTP service (Server, `teep verifier serve`), which appraises
// it and returns a signed Attestation Result (IssueResult) that keeps the
// nonce and cnf. The Agent puts that result in its QueryResponse and the
// TAM calls VerifyResult with the token and the Agent key. Client is the
// Agent's (and a remote background-check TAM's) side of the service.
//
// The policy file (ParsePolicy, LoadPolicy) holds the endorsements (trusted
// attestation keys, optionally limited to an oemid / hwmodels) and the
// reference values; docs/attestation.md describes the format.
//
// Outcomes follow the AR4SI trust tiers: Affirming, Warning,
// Contraindicated, with a reason for every finding.
package verifier
