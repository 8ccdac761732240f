package tam

import (
	"errors"
	"fmt"
)

// Kind classifies why the engine refused a TEEP message. A transport maps a
// Kind to its own status codes in one place (teephttp.statusFor).
type Kind int

const (
	// KindBadMessage: the input is not a well-formed, validly signed TEEP
	// message this TAM expects (malformed CBOR, bad signature, wrong
	// message type, SUIT report nonce mismatch). draft-ietf-teep-protocol-26
	// §4.1.2: a TAM drops such messages.
	KindBadMessage Kind = iota + 1
	// KindUnauthorized: well-formed, but the Agent is not trusted: unknown
	// key and no (or failed) attestation evidence.
	KindUnauthorized
	// KindReplay: the token is unknown, expired, already used, or bound to
	// another device.
	KindReplay
	// KindUnavailable: the TAM cannot take the message now (overload,
	// shutdown); the peer may retry.
	KindUnavailable
	// KindInternal: the TAM failed (storage, signing); not the peer's fault.
	KindInternal
)

func (k Kind) String() string {
	switch k {
	case KindBadMessage:
		return "bad-message"
	case KindUnauthorized:
		return "unauthorized"
	case KindReplay:
		return "replay"
	case KindUnavailable:
		return "unavailable"
	case KindInternal:
		return "internal"
	}
	return fmt.Sprintf("Kind(%d)", int(k))
}

// Error is a refusal from the engine. Reason is short and safe to send to
// the peer (no internal detail); Err carries the cause for logs.
type Error struct {
	Kind   Kind
	Reason string
	Err    error
}

func (e *Error) Error() string {
	if e.Err == nil {
		return "tam: " + e.Reason
	}
	return "tam: " + e.Reason + ": " + e.Err.Error()
}

func (e *Error) Unwrap() error { return e.Err }

func reject(k Kind, reason string, err error) *Error {
	return &Error{Kind: k, Reason: reason, Err: err}
}

// KindOf returns the Kind of an engine error; KindInternal for any other
// non-nil error, 0 for nil.
func KindOf(err error) Kind {
	if err == nil {
		return 0
	}
	var e *Error
	if errors.As(err, &e) {
		return e.Kind
	}
	return KindInternal
}

// Errors of the management operations (admin API). ErrNotFound, ErrExists
// and ErrSequence from store.go apply as well.
var (
	ErrInvalid         = errors.New("tam: invalid request")
	ErrUntrustedSigner = errors.New("tam: envelope is not signed by a trusted TC signer")
	ErrUnsupportedKey  = errors.New("tam: operation impossible with this device's key")
	// ErrForbidden: the caller's tenant may not do this at all (a change
	// to something every tenant shares: a new device, deleting or resetting
	// one, the Verifier keys).
	ErrForbidden = errors.New("tam: not permitted for this tenant")
)

func invalidf(format string, a ...any) error {
	return fmt.Errorf("%w: %s", ErrInvalid, fmt.Sprintf(format, a...))
}
