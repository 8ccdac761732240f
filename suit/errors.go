package suit

import (
	"errors"
	"fmt"
)

// Reason is a SUIT_Report_Reasons value (draft-ietf-suit-report).
type Reason int

// Report reasons, draft-ietf-suit-report §4.
const (
	ReasonOK                    Reason = 0
	ReasonCBORParse             Reason = 1
	ReasonCOSEUnsupported       Reason = 2
	ReasonAlgUnsupported        Reason = 3
	ReasonUnauthorised          Reason = 4
	ReasonCommandUnsupported    Reason = 5
	ReasonComponentUnsupported  Reason = 6
	ReasonComponentUnauthorised Reason = 7
	ReasonParameterUnsupported  Reason = 8
	ReasonSeveringUnsupported   Reason = 9
	ReasonConditionFailed       Reason = 10
	ReasonOperationFailed       Reason = 11
	ReasonInvokePending         Reason = 12
)

var reasonNames = map[Reason]string{
	ReasonOK:                    "ok",
	ReasonCBORParse:             "cbor-parse",
	ReasonCOSEUnsupported:       "cose-unsupported",
	ReasonAlgUnsupported:        "alg-unsupported",
	ReasonUnauthorised:          "unauthorised",
	ReasonCommandUnsupported:    "command-unsupported",
	ReasonComponentUnsupported:  "component-unsupported",
	ReasonComponentUnauthorised: "component-unauthorised",
	ReasonParameterUnsupported:  "parameter-unsupported",
	ReasonSeveringUnsupported:   "severing-unsupported",
	ReasonConditionFailed:       "condition-failed",
	ReasonOperationFailed:       "operation-failed",
	ReasonInvokePending:         "invoke-pending",
}

// String returns the draft's name, e.g. "condition-failed".
func (r Reason) String() string {
	if s, ok := reasonNames[r]; ok {
		return s
	}
	return fmt.Sprintf("reason(%d)", int(r))
}

// reasonError is a sentinel that carries the report reason it maps to, so
// errors map to SUIT_Report reasons in exactly one place (ReasonOf).
type reasonError struct {
	msg    string
	reason Reason
}

func (e *reasonError) Error() string { return e.msg }

// Sentinel errors. Every error returned by this package and by
// suit/processor wraps one of them; ReasonOf maps them to report reasons.
var (
	ErrMalformed             error = &reasonError{"suit: malformed input", ReasonCBORParse}
	ErrLimit                 error = &reasonError{"suit: size or depth limit exceeded", ReasonCBORParse}
	ErrCOSEUnsupported       error = &reasonError{"suit: unsupported COSE structure", ReasonCOSEUnsupported}
	ErrAlgUnsupported        error = &reasonError{"suit: unsupported algorithm", ReasonAlgUnsupported}
	ErrUnauthorised          error = &reasonError{"suit: not authentic", ReasonUnauthorised}
	ErrCommandUnsupported    error = &reasonError{"suit: unsupported command", ReasonCommandUnsupported}
	ErrComponentUnsupported  error = &reasonError{"suit: unsupported component", ReasonComponentUnsupported}
	ErrComponentUnauthorised error = &reasonError{"suit: component not authorised", ReasonComponentUnauthorised}
	ErrParameterUnsupported  error = &reasonError{"suit: unsupported parameter", ReasonParameterUnsupported}
	ErrSeveringUnsupported   error = &reasonError{"suit: severed element missing or mismatched", ReasonSeveringUnsupported}
	ErrConditionFailed       error = &reasonError{"suit: condition failed", ReasonConditionFailed}
	ErrOperationFailed       error = &reasonError{"suit: operation failed", ReasonOperationFailed}
	ErrInvokePending         error = &reasonError{"suit: invoke pending", ReasonInvokePending}
)

// ReasonOf maps an error to the SUIT_Report reason it stands for; nil maps
// to ReasonOK and errors from outside this package to operation-failed.
func ReasonOf(err error) Reason {
	if err == nil {
		return ReasonOK
	}
	var re *reasonError
	if errors.As(err, &re) {
		return re.reason
	}
	return ReasonOperationFailed
}

// DecodeError tells what failed to decode and where. Offset is relative to
// the start of the item named by Where.
type DecodeError struct {
	Where  string // e.g. "envelope", "manifest", "install sequence"
	Offset int
	Msg    string
	Err    error // ErrMalformed or ErrLimit (or another sentinel)
}

func (e *DecodeError) Error() string {
	where := e.Where
	if where == "" {
		where = "input"
	}
	return fmt.Sprintf("suit: %s at offset %d: %s", where, e.Offset, e.Msg)
}

func (e *DecodeError) Unwrap() error { return e.Err }

// in re-labels a decode error with the structure it occurred in.
func in(where string, err error) error {
	var de *DecodeError
	if errors.As(err, &de) && de.Where == "" {
		de.Where = where
	}
	return err
}

// errorf wraps a sentinel with detail.
func errorf(sentinel error, format string, a ...any) error {
	return fmt.Errorf("%w: %s", sentinel, fmt.Sprintf(format, a...))
}
