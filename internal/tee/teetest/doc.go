// Package teetest is the conformance suite every tee.TEE backend runs:
//
//	teetest.Run(t, func(t *testing.T) *teetest.Backend { ... })
//
// It checks the promises of tee.TEE that a backend keeps (RFC 9397 §4, §5;
// draft-ietf-teep-protocol-26 §7, §10): sealed state altered at rest is
// rejected (tee.ErrTampered), an older sealed state replayed is rejected
// (tee.ErrRollback), an interrupted transaction leaves the previous state,
// objects of any size stream in bounded memory, and private keys never leave
// the TEE — neither through the types of the interface nor in any value it
// returns. The backend supplies the attacks it alone knows how to make
// (altering its state at rest, replaying a copy, failing a commit midway)
// as hooks in Backend. docs/tee-backends.md says how a hardware backend uses
// it.
package teetest
