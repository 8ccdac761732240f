// Package device is the device runtime: a state directory holding software
// TEEs (internal/tee/softtee), one TEEP Agent per TEE (internal/agent, the
// Agent of draft-ietf-teep-protocol-26 §4 and §6, with the SUIT installer of
// its Appendix E layout), and the TEEP Broker that relays their messages to
// a TAM (internal/broker, the client side of draft-ietf-teep-otrp-over-http-15
// §5). It plays the device roles of RFC 9397 §4: the TEEP Broker and the
// TEEP Agents behind it, with the Broker/Agent API of RFC 9397 §6.2.1 served
// on a local socket to applications (RequestTA, UnrequestTA) and, for an
// Agent in another process, to a Broker.
//
// `teep device ...`, `teep demo`, `teep bench` and the end-to-end tests open
// devices through Open; the Options carry every setting, including the
// hooks tests use.
//
// State directory (mode 0700):
//
//	device.json                 rich-OS configuration: TAM URL, TEE list, numbering, TAM CA, Verifier
//	broker.sock                 the local API while the daemon runs
//	tee/NAME/                   one software TEE's sealed state (trust anchors, keys, components)
//	tee/NAME/agent-key.pem      its public Agent key, readable while the daemon holds the TEE
//	tee/NAME/attestation-key.pem its public attestation key
package device
