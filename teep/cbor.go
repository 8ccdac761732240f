package teep

// The TEEP codec walks its fixed shapes with the strict reader of cborwire
// (shared with the suit and eat codecs). Walking the bytes ourselves keeps the
// option order (needed to reproduce the Appendix D vectors), lets every error
// name the byte offset, and costs no reflection. Rules enforced everywhere:
// definite lengths only, well-formed heads, valid UTF-8 text, no duplicate
// map keys, bounded nesting and sizes. Heads longer than needed are accepted
// (the protocol does not require preferred serialization); duplicate keys
// are found across such encodings.

import (
	"fmt"
	"math"

	"github.com/teep-go/teep/cborwire"
)

// reader adapts cborwire.Reader to the TEEP codec: errors become *cborErr
// carrying a TEEP sentinel, limits are named in TEEP terms.
type reader struct{ cborwire.Reader }

func newReader(b []byte) reader {
	return reader{cborwire.Reader{Data: b, Fail: failHook}}
}

func failHook(off int, class cborwire.Class, msg string) error {
	c := ErrMalformed
	if class == cborwire.Limit {
		c = ErrLimit
	}
	return &cborErr{off: off, msg: msg, class: c}
}

// cborErr is a decoding error at a byte offset; the decoder adds the path.
type cborErr struct {
	off   int
	msg   string
	class error
}

func (e *cborErr) Error() string { return fmt.Sprintf("%s (at byte %d)", e.msg, e.off) }
func (e *cborErr) Unwrap() error { return e.class }

func (r *reader) fail(off int, class error, format string, a ...any) error {
	return &cborErr{off: off, msg: fmt.Sprintf(format, a...), class: class}
}

func (r *reader) done() bool            { return r.Done() }
func (r *reader) peek() (byte, error)   { return r.Peek() }
func (r *reader) uint() (uint64, error) { return r.Uint("") }
func (r *reader) int() (int64, error)   { return r.Int("") }
func (r *reader) bool() (bool, error)   { return r.Bool("") }

func (r *reader) uint32() (uint32, error) {
	start := r.Off
	v, err := r.uint()
	if err != nil {
		return 0, err
	}
	if v > math.MaxUint32 {
		return 0, r.fail(start, ErrMalformed, "%d does not fit uint .size 4", v)
	}
	return uint32(v), nil
}

// bytes reads a byte string of at most max bytes. The result aliases the
// reader's buffer (Decode works on its own copy of the input).
func (r *reader) bytes(max int, what string) ([]byte, error) {
	start := r.Off
	b, err := r.Bytes("", -1)
	if err == nil && len(b) > max {
		r.Off = start
		return nil, r.fail(start, ErrLimit, "%s of %d bytes exceeds the limit of %d", what, len(b), max)
	}
	return b, err
}

func (r *reader) text(max int, what string) (string, error) {
	start := r.Off
	s, err := r.Text("", -1)
	if err == nil && len(s) > max {
		r.Off = start
		return "", r.fail(start, ErrLimit, "%s of %d bytes exceeds the limit of %d", what, len(s), max)
	}
	return s, err
}

// array reads an array head with at most max elements.
func (r *reader) array(max int, what string) (int, error) {
	start := r.Off
	n, err := r.Array("", -1)
	if err == nil && n > max {
		r.Off = start
		return 0, r.fail(start, ErrLimit, "%s has %d elements, limit %d", what, n, max)
	}
	return n, err
}

func (r *reader) mapHead(max int, what string) (int, error) {
	start := r.Off
	n, err := r.Map("", -1)
	if err == nil && n > max {
		r.Off = start
		return 0, r.fail(start, ErrLimit, "%s has %d entries, limit %d", what, n, max)
	}
	return n, err
}

// skip consumes one complete data item of any kind, checking it as strictly
// as the known parts with at most depth levels of nesting and maxItems
// elements per container, and returns its encoding.
func (r *reader) skip(depth, maxItems int) ([]byte, error) {
	return r.Skip(&cborwire.Rules{MaxDepth: depth, MaxItems: maxItems})
}

// wellFormed checks that b is exactly one strict CBOR item.
func wellFormed(b []byte, depth, maxItems int) error {
	r := newReader(b)
	return r.WellFormed(&cborwire.Rules{MaxDepth: depth, MaxItems: maxItems})
}

// appendCanonical appends item (one well-formed CBOR item) in RFC 8949 §4.2.1
// core deterministic form.
func appendCanonical(b, item []byte) ([]byte, error) {
	r := newReader(item)
	return r.AppendCanonical(b)
}
