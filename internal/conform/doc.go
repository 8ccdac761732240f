// Package conform is a black-box conformance kit for TEEP implementations:
// it runs a catalogue of named checks against a TAM it did not start, over
// HTTP or CoAP (docs/coap-binding.md: RFC 7252, RFC 7959 block-wise
// transfer, RFC 8323 over TCP and TLS), and reports pass, fail, skipped
// (with the reason) or not applicable (a check of the other transport).
//
// Each check cites the section it tests: draft-ietf-teep-protocol-26 (§4.1
// message creation and tokens, §4.1.2 validation, §4.2 QueryRequest, §4.3
// QueryResponse, §4.4 Update, §4.5 Success, §8 cipher suites) and
// draft-ietf-teep-otrp-over-http-15 (§4 use of HTTP, §6 TAM behaviour).
// A check is required when the drafts say MUST, and advisory when they say
// SHOULD; Report.OK looks at required checks only.
//
// The kit talks only to the URL it is given. Every check that can fail has
// a test proving it fails against a deliberately broken TAM.
package conform
