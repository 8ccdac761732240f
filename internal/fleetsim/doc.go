// Package fleetsim is the fleet simulator behind `teep bench fleet`: many
// simulated devices, each with its own Agent key, run TEEP policy-check
// rounds (draft-ietf-teep-protocol-26 §4; HTTP binding per
// draft-ietf-teep-otrp-over-http-15 §5) with bounded concurrency against a
// TAM in this process (SQLite in a temporary directory, or PostgreSQL), and
// report throughput and latency against the signature floor measured in the
// same run: the rate the public-key operations of one round allow on this
// machine. Over plain HTTP it also measures the transport floor: the CPU
// that net/http alone spends on one round's POSTs (a bare loopback server
// replaying a recorded round), so that what the TAM itself costs shows
// apart from what the signatures and the transport cannot avoid.
//
// Devices of the light model do the protocol work only (verify, sign,
// encode, decode with package teep; verify each SUIT manifest's signature)
// and keep what they installed in memory: the run measures the TAM. They
// are pre-registered, or (scenario attest) make first contact with Evidence
// (RFC 9711 EAT, the TEEP profile) signed with their own attestation key,
// which the TAM's in-process Verifier appraises. Devices of the full model
// are the device runtime (internal/device): a software TEE each
// (internal/tee/softtee, sealed storage on disk), its Agent with the SUIT
// processor, and the Broker; they measure the whole system.
//
// Options.TAM drives a running TAM instead (`teep tam serve`; TEEP over
// HTTP or over CoAP, docs/coap-binding.md), on a loopback address, with
// devices pre-registered through its admin API or attesting with a key its
// Verifier endorses. Options.Rate drives rounds open loop, HalfPeak at
// half the closed-loop peak; Active, HistoryRounds measure a large fleet
// and a long history (tam.Engine.AddAgents, tam.Engine.FillHistory).
package fleetsim
