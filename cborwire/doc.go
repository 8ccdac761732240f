// Package cborwire is the low-level CBOR (RFC 8949) layer shared by the teep,
// suit and eat codecs: an append-style writer producing preferred
// serialization with maps in core deterministic key order (§4.2.1), and one
// strict reader.
//
// The codecs build and walk their fixed shapes byte by byte: the exact bytes
// matter (SUIT digests and COSE signatures cover them), and doing it directly
// costs no reflection.
//
// The reader enforces definite lengths, well-formed heads, valid UTF-8 text,
// unique map keys and bounded nesting and sizes (Rules); with
// Rules.Preferred it also requires shortest-form heads. Every failure goes
// through Reader.Fail with the byte offset (plus Reader.Base, the offset of
// the data inside the outermost input) and a Class, so each codec reports it
// in its own error type and path terms.
package cborwire
