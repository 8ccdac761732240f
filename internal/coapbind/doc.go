// Package coapbind holds the wire-level pieces of TEEP over CoAP
// (docs/coap-binding.md) that both ends share: the Content-Formats, RFC 9290
// concise problem details, and Inspect, the one check of block-wise options
// and sizes (RFC 7959 §2.2-2.5, Size1/Size2 §4) applied to every message
// before the CoAP stack reassembles a body. The TAM side is
// internal/tam/teepcoap, the device side the CoAP client of internal/broker.
package coapbind
