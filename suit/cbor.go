package suit

import (
	"math"

	"github.com/teep-go/teep/cborwire"
)

// Every SUIT structure is read with the strict reader of cborwire (shared
// with the teep and eat codecs). Reading the bytes ourselves keeps byte
// offsets (SUIT_Record reports offsets into command sequences), keeps raw
// item bytes (every digest is over raw bytes) and enforces the project's
// strictness rules in one place:
//
//   - definite lengths only; reserved additional-information values rejected
//   - shortest-form heads only (RFC 8949 §4.2.1 preferred serialization)
//   - no duplicate map keys; text strings must be valid UTF-8
//   - nesting depth and element counts bounded by Limits
//   - no trailing bytes after the top-level item
//
// Map key order is not enforced on input: the digests cover the raw bytes,
// so accepting a non-canonical order cannot change what was signed.

const (
	simpleFalse = 20
	simpleTrue  = 21
	simpleNull  = 22
)

// cborHead is one decoded item head.
type cborHead struct {
	major byte
	arg   uint64 // value, length, count, tag number or simple value
	len   int    // bytes taken by the head itself
}

func classErr(class cborwire.Class) error {
	if class == cborwire.Limit {
		return ErrLimit
	}
	return ErrMalformed
}

// failAt is the reader hook for errors with no structure name.
func failAt(off int, class cborwire.Class, msg string) error {
	return &DecodeError{Offset: off, Msg: msg, Err: classErr(class)}
}

// readHead decodes the head at b[off:].
func readHead(b []byte, off int) (cborHead, error) {
	r := cborwire.Reader{Data: b, Off: off, Preferred: true, Fail: failAt}
	major, _, arg, err := r.Head()
	return cborHead{major: major, arg: arg, len: r.Off - off}, err
}

// wellFormed checks that b holds exactly one well-formed CBOR item under the
// strictness rules and limits, and returns nil or a *DecodeError.
func wellFormed(b []byte, lim *Limits) error {
	r := cborwire.Reader{Data: b, Preferred: true, Fail: failAt}
	return r.WellFormed(&cborwire.Rules{Preferred: true, MaxDepth: lim.MaxDepth, MaxItems: lim.MaxItems})
}

// walked skips items already checked by wellFormed.
var walked = cborwire.Rules{Preferred: true, MaxDepth: math.MaxInt, MaxItems: -1, KeysCheckedLater: true}

// cur walks one well-formed item (checked by wellFormed before) and decodes
// typed values with errors that name what was expected and where.
type cur struct {
	cborwire.Reader
	what string // context for errors, e.g. "manifest"
}

func newCur(b []byte, what string) *cur { return newCurAt(b, 0, what) }

func newCurAt(b []byte, off int, what string) *cur {
	c := &cur{what: what}
	c.Reader = cborwire.Reader{Data: b, Off: off, Preferred: true, Fail: c.fail}
	return c
}

func (c *cur) fail(off int, class cborwire.Class, msg string) error {
	return &DecodeError{Where: c.what, Offset: off, Msg: msg, Err: classErr(class)}
}

func (c *cur) errf(off int, format string, a ...any) error {
	return c.Errorf(off, cborwire.Malformed, format, a...)
}

func (c *cur) peek() (cborHead, error) { return readHead(c.Data, c.Off) }

// skip steps over one item and returns its raw bytes.
func (c *cur) skip() ([]byte, error) { return c.Skip(&walked) }

func (c *cur) uint(name string) (uint64, error) { return c.Uint(name) }

// int reads an integer that must fit int64.
func (c *cur) int(name string) (int64, error) { return c.Int(name) }

func (c *cur) bytes(name string) ([]byte, error) { return c.Bytes(name, -1) }

// wrapped reads a bstr and returns both the whole encoded item (head
// included: the digest input) and its content.
func (c *cur) wrapped(name string) (item, content []byte, err error) {
	start := c.Off
	content, err = c.bytes(name)
	if err != nil {
		return nil, nil, err
	}
	return c.Data[start:c.Off], content, nil
}

func (c *cur) text(name string) (string, error) { return c.Text(name, -1) }

func (c *cur) array(name string) (int, error) { return c.Array(name, -1) }

func (c *cur) mapLen(name string) (int, error) { return c.Map(name, -1) }

func (c *cur) bool(name string) (bool, error) { return c.Bool(name) }

// isNull reports whether the next item is null, consuming it if so.
func (c *cur) isNull() bool {
	if c.Off < len(c.Data) && c.Data[c.Off] == 0xf6 {
		c.Off++
		return true
	}
	return false
}

func (c *cur) isTrue() bool {
	if c.Off < len(c.Data) && c.Data[c.Off] == 0xf5 {
		c.Off++
		return true
	}
	return false
}

// tag consumes a tag head if present and returns its number.
func (c *cur) tag() (uint64, bool) {
	h, err := readHead(c.Data, c.Off)
	if err != nil || h.major != cborwire.MajorTag {
		return 0, false
	}
	c.Off += h.len
	return h.arg, true
}

// end reports an error if bytes remain.
func (c *cur) end() error {
	if c.Off != len(c.Data) {
		return c.errf(c.Off, "%d trailing bytes", len(c.Data)-c.Off)
	}
	return nil
}

func limitErr(off int, format string, a ...any) error {
	r := cborwire.Reader{Fail: failAt}
	return r.Errorf(off, cborwire.Limit, format, a...)
}

// intKey encodes an integer map key.
func intKey(k int64) []byte { return cborwire.AppendInt(nil, k) }
