package teep

import (
	"errors"
	"fmt"

	"github.com/teep-go/teep/cosekey"
)

// Error classes carried by ProtocolError.Err; test with errors.Is.
var (
	ErrMalformed   = errors.New("malformed")                     // not well-formed CBOR, or not the CDDL shape
	ErrInvalid     = errors.New("invalid")                       // shape is right but a rule of the draft is broken
	ErrLimit       = errors.New("limit exceeded")                // larger or deeper than Limits allow
	ErrUnknownType = errors.New("unknown message type")          // TEEP-TYPE not assigned in the numbering
	ErrNumbering   = errors.New("numbering mismatch")            // e.g. extension labels taken from another numbering
	ErrNoCommon    = errors.New("nothing in common")             // negotiation found no common value
	ErrNotSigned   = errors.New("not a COSE_Sign1 or COSE_Sign") // Open on a bare message
)

// ProtocolError is a failure that maps to a TEEP err-code: the Code an Agent
// puts into its Error message (or a TAM into its Update), a human-readable
// Msg saying what and where, and the underlying cause.
type ProtocolError struct {
	Code ErrCode
	Msg  string
	Err  error
}

func (e *ProtocolError) Error() string {
	switch {
	case e.Err == nil:
		return "teep: " + e.Msg
	case isClass(e.Err):
		return "teep: " + e.Msg
	case e.Msg == "":
		return "teep: " + e.Err.Error()
	}
	return "teep: " + e.Msg + ": " + e.Err.Error()
}

func (e *ProtocolError) Unwrap() error { return e.Err }

func isClass(err error) bool {
	switch err {
	case ErrMalformed, ErrInvalid, ErrLimit, ErrUnknownType, ErrNumbering, ErrNoCommon, ErrNotSigned:
		return true
	}
	return false
}

func protoErr(code ErrCode, class error, format string, a ...any) *ProtocolError {
	return &ProtocolError{Code: code, Msg: fmt.Sprintf(format, a...), Err: class}
}

// CodeOf is the one place that maps a failure to a TEEP err-code:
//
//   - a *ProtocolError anywhere in the chain: its Code;
//   - cosekey.ErrUnsupportedAlg: ERR_UNSUPPORTED_CIPHER_SUITES;
//   - cosekey.ErrNoTrustedKey: ERR_BAD_CERTIFICATE (signer not in the trust store);
//   - other cosekey errors (malformed COSE, bad signature, unknown critical
//     header): ERR_PERMANENT_ERROR;
//   - nil: 0; anything else (a local failure not caused by the peer's
//     message): ERR_TEMPORARY_ERROR.
func CodeOf(err error) ErrCode {
	if err == nil {
		return 0
	}
	var pe *ProtocolError
	if errors.As(err, &pe) && pe.Code != 0 {
		return pe.Code
	}
	switch {
	case errors.Is(err, cosekey.ErrUnsupportedAlg):
		return ErrUnsupportedCipherSuites
	case errors.Is(err, cosekey.ErrNoTrustedKey):
		return ErrBadCertificate
	case errors.Is(err, cosekey.ErrMalformed), errors.Is(err, cosekey.ErrSignature),
		errors.Is(err, cosekey.ErrUnsupportedHeader), errors.Is(err, cosekey.ErrKeyMismatch):
		return ErrPermanentError
	case errors.Is(err, ErrMalformed), errors.Is(err, ErrInvalid), errors.Is(err, ErrLimit),
		errors.Is(err, ErrUnknownType), errors.Is(err, ErrNumbering), errors.Is(err, ErrNotSigned):
		return ErrPermanentError
	}
	return ErrTemporaryError
}
