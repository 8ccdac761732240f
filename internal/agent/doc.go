// Package agent is the TEEP Agent: the protocol engine inside a TEE that
// answers a TAM (draft-ietf-teep-protocol-26) and installs Trusted
// Components with the SUIT processor. It is transport-agnostic; the Broker
// (internal/broker) carries its messages over HTTP.
//
// Sections implemented:
//
//   - RFC 9397 §6.2.1 and draft-26 §6.1: the conceptual API the Broker
//     calls — RequestTA, UnrequestTA, RequestPolicyCheck (one TAM per call,
//     a round ending when the TAMs have nothing more to do),
//     ProcessTeepMessage, ProcessError.
//   - draft-26 §4.1.2: validation of every TAM message against the TEE's
//     trusted TAM keys; invalid input answered with a signed Error
//     (ERR_BAD_CERTIFICATE for an untrusted signer, ERR_PERMANENT_ERROR
//     otherwise, codes mapped by teep.CodeOf).
//   - §4.2 / §6.2 QueryRequest: version, cipher-suite and freshness
//     negotiation (Errors 4, 5, 3 carrying the Agent's lists), Evidence with
//     eat_nonce = challenge (background-check) or token (passport, or an
//     Attestation Result from a configured Verifier), tc-list (component
//     id, SHA-256 image digest, size), requested-tc-list and
//     unneeded-manifest-list kept sealed in the TEE.
//   - §4.4 / §6.3 Update: unneeded manifests unlinked first, then each
//     manifest through the SUIT processor (atomic per manifest, every one
//     tried), Success or Error ERR_MANIFEST_PROCESSING_FAILED with a SUIT
//     Report per manifest whose nonce is the token; a TAM-side err-code is
//     recorded, not answered.
//   - §8.2: the Agent signs with COSE_Sign1 and its key's algorithm (ESP256
//     or Ed25519; the -7/-8 ids older TAMs offer are accepted), in either
//     numbering (draft-26 or drafts -18…-25).
//
// Trust anchors (TAM keys, TC signer keys) live in the TEE's sealed storage
// (AddTrustAnchor, TrustAnchors). SUIT is the Installer that runs the
// processor on tee.ComponentStore.
//
// Several TAMs (RFC 9397 §4.2): each named trust scope holds one TAM's
// keys and the TC signers it is trusted for (AddScopedTrustAnchor). The
// TAM key that verifies an Update selects the scope; its manifests are
// verified against that scope's signers only, and the scope that installs
// a manifest is recorded sealed beside it (Owner). Updating, overwriting or
// removing another scope's manifest is a manifest processing failure
// (ERR_MANIFEST_PROCESSING_FAILED, §4.6.1), and the rest of the Update
// still runs.
package agent
