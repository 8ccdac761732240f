package suit

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"math"
	"sort"
	"unicode/utf8"

	"github.com/teep-go/teep/cborwire"
)

// This file holds the strict CBOR (RFC 8949) reader used by every SUIT
// structure (the writer is internal/cborenc). A hand-written reader keeps byte
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

// readHead decodes the head at b[off:].
func readHead(b []byte, off int) (cborHead, error) {
	if off >= len(b) {
		return cborHead{}, syntaxErr(off, "unexpected end of data")
	}
	ib := b[off]
	h := cborHead{major: ib >> 5}
	ai := ib & 0x1f
	switch {
	case ai < 24:
		h.arg, h.len = uint64(ai), 1
	case ai <= 27:
		n := 1 << (ai - 24)
		if off+1+n > len(b) {
			return cborHead{}, syntaxErr(off, "truncated head")
		}
		p := b[off+1 : off+1+n]
		switch n {
		case 1:
			h.arg = uint64(p[0])
		case 2:
			h.arg = uint64(binary.BigEndian.Uint16(p))
		case 4:
			h.arg = uint64(binary.BigEndian.Uint32(p))
		default:
			h.arg = binary.BigEndian.Uint64(p)
		}
		h.len = 1 + n
		if h.major == cborwire.MajorSimple {
			if n == 1 && h.arg < 32 {
				return cborHead{}, syntaxErr(off, "simple value %d in two-byte form", h.arg)
			}
			// half/single/double floats: any value is minimal enough for us
		} else if minimalLen(h.arg) != n {
			return cborHead{}, syntaxErr(off, "non-shortest head (%d-byte argument %d)", n, h.arg)
		}
	case ai == 31:
		return cborHead{}, syntaxErr(off, "indefinite length not allowed")
	default:
		return cborHead{}, syntaxErr(off, "reserved additional information %d", ai)
	}
	return h, nil
}

// minimalLen is the number of argument bytes the shortest head for v uses.
func minimalLen(v uint64) int {
	switch {
	case v < 24:
		return 0
	case v <= math.MaxUint8:
		return 1
	case v <= math.MaxUint16:
		return 2
	case v <= math.MaxUint32:
		return 4
	}
	return 8
}

// wellFormed checks that b holds exactly one well-formed CBOR item under the
// strictness rules and limits, and returns nil or a *DecodeError.
func wellFormed(b []byte, lim *Limits) error {
	end, err := checkItem(b, 0, 0, lim)
	if err != nil {
		return err
	}
	if end != len(b) {
		return syntaxErr(end, "%d trailing bytes after the item", len(b)-end)
	}
	return nil
}

// checkItem validates the item at off and returns the offset after it.
func checkItem(b []byte, off, depth int, lim *Limits) (int, error) {
	if depth > lim.MaxDepth {
		return 0, limitErr(off, "nesting deeper than %d", lim.MaxDepth)
	}
	h, err := readHead(b, off)
	if err != nil {
		return 0, err
	}
	p := off + h.len
	switch h.major {
	case cborwire.MajorUint, cborwire.MajorNint, cborwire.MajorSimple:
		return p, nil
	case cborwire.MajorBytes, cborwire.MajorText:
		if h.arg > uint64(len(b)-p) {
			return 0, syntaxErr(off, "string of %d bytes runs past the end", h.arg)
		}
		end := p + int(h.arg)
		if h.major == cborwire.MajorText && !utf8.Valid(b[p:end]) {
			return 0, syntaxErr(off, "text string is not valid UTF-8")
		}
		return end, nil
	case cborwire.MajorArray:
		if h.arg > uint64(lim.MaxItems) {
			return 0, limitErr(off, "array of %d elements (limit %d)", h.arg, lim.MaxItems)
		}
		for i := uint64(0); i < h.arg; i++ {
			if p, err = checkItem(b, p, depth+1, lim); err != nil {
				return 0, err
			}
		}
		return p, nil
	case cborwire.MajorMap:
		if h.arg > uint64(lim.MaxItems) {
			return 0, limitErr(off, "map of %d pairs (limit %d)", h.arg, lim.MaxItems)
		}
		keys := make([][]byte, 0, h.arg)
		for i := uint64(0); i < h.arg; i++ {
			ks := p
			if p, err = checkItem(b, p, depth+1, lim); err != nil {
				return 0, err
			}
			keys = append(keys, b[ks:p])
			if p, err = checkItem(b, p, depth+1, lim); err != nil {
				return 0, err
			}
		}
		if len(keys) > 1 {
			// With shortest-form heads equal keys have equal bytes.
			sorted := make([][]byte, len(keys))
			copy(sorted, keys)
			sort.Slice(sorted, func(i, j int) bool { return bytes.Compare(sorted[i], sorted[j]) < 0 })
			for i := 1; i < len(sorted); i++ {
				if bytes.Equal(sorted[i-1], sorted[i]) {
					return 0, syntaxErr(off, "duplicate map key %x", sorted[i])
				}
			}
		}
		return p, nil
	default: // tag
		return checkItem(b, p, depth+1, lim)
	}
}

// cur walks one well-formed item (checked by wellFormed before) and decodes
// typed values with errors that name what was expected and where. base is
// the offset of b inside the outermost input, for error messages.
type cur struct {
	b    []byte
	off  int
	what string // context for errors, e.g. "manifest"
}

func newCur(b []byte, what string) *cur { return &cur{b: b, what: what} }

func (c *cur) errf(off int, format string, a ...any) error {
	return &DecodeError{Where: c.what, Offset: off, Msg: fmt.Sprintf(format, a...), Err: ErrMalformed}
}

func (c *cur) peek() (cborHead, error) { return readHead(c.b, c.off) }

// skip steps over one item and returns its raw bytes.
func (c *cur) skip() ([]byte, error) {
	start := c.off
	end, err := skipItem(c.b, c.off)
	if err != nil {
		return nil, err
	}
	c.off = end
	return c.b[start:end], nil
}

// skipItem returns the end of the (already validated) item at off.
func skipItem(b []byte, off int) (int, error) {
	h, err := readHead(b, off)
	if err != nil {
		return 0, err
	}
	p := off + h.len
	switch h.major {
	case cborwire.MajorBytes, cborwire.MajorText:
		if h.arg > uint64(len(b)-p) {
			return 0, syntaxErr(off, "string runs past the end")
		}
		return p + int(h.arg), nil
	case cborwire.MajorArray, cborwire.MajorMap:
		n := h.arg
		if h.major == cborwire.MajorMap {
			n *= 2
		}
		if n > uint64(len(b)) { // each item takes at least one byte
			return 0, syntaxErr(off, "container count %d exceeds input", h.arg)
		}
		for i := uint64(0); i < n; i++ {
			if p, err = skipItem(b, p); err != nil {
				return 0, err
			}
		}
		return p, nil
	case cborwire.MajorTag:
		return skipItem(b, p)
	}
	return p, nil
}

func (c *cur) head(want byte, name string) (cborHead, error) {
	h, err := readHead(c.b, c.off)
	if err != nil {
		return h, err
	}
	if h.major != want {
		return h, c.errf(c.off, "%s: want %s, got %s", name, cborwire.MajorName(want), cborwire.MajorName(h.major))
	}
	c.off += h.len
	return h, nil
}

func (c *cur) uint(name string) (uint64, error) {
	h, err := c.head(cborwire.MajorUint, name)
	return h.arg, err
}

// int reads an integer that must fit int64.
func (c *cur) int(name string) (int64, error) {
	start := c.off
	h, err := readHead(c.b, c.off)
	if err != nil {
		return 0, err
	}
	switch h.major {
	case cborwire.MajorUint:
		if h.arg > math.MaxInt64 {
			return 0, c.errf(start, "%s: integer %d out of range", name, h.arg)
		}
		c.off += h.len
		return int64(h.arg), nil
	case cborwire.MajorNint:
		if h.arg > math.MaxInt64 {
			return 0, c.errf(start, "%s: integer -1-%d out of range", name, h.arg)
		}
		c.off += h.len
		return -1 - int64(h.arg), nil
	}
	return 0, c.errf(start, "%s: want integer, got %s", name, cborwire.MajorName(h.major))
}

func (c *cur) bytes(name string) ([]byte, error) {
	h, err := c.head(cborwire.MajorBytes, name)
	if err != nil {
		return nil, err
	}
	v := c.b[c.off : c.off+int(h.arg)]
	c.off += int(h.arg)
	return v, nil
}

// wrapped reads a bstr and returns both the whole encoded item (head
// included: the digest input) and its content.
func (c *cur) wrapped(name string) (item, content []byte, err error) {
	start := c.off
	content, err = c.bytes(name)
	if err != nil {
		return nil, nil, err
	}
	return c.b[start:c.off], content, nil
}

func (c *cur) text(name string) (string, error) {
	h, err := c.head(cborwire.MajorText, name)
	if err != nil {
		return "", err
	}
	v := string(c.b[c.off : c.off+int(h.arg)])
	c.off += int(h.arg)
	return v, nil
}

func (c *cur) array(name string) (int, error) {
	h, err := c.head(cborwire.MajorArray, name)
	return int(h.arg), err
}

func (c *cur) mapLen(name string) (int, error) {
	h, err := c.head(cborwire.MajorMap, name)
	return int(h.arg), err
}

func (c *cur) bool(name string) (bool, error) {
	start := c.off
	h, err := readHead(c.b, c.off)
	if err != nil {
		return false, err
	}
	if h.major == cborwire.MajorSimple && (h.arg == simpleTrue || h.arg == simpleFalse) && h.len == 1 {
		c.off++
		return h.arg == simpleTrue, nil
	}
	return false, c.errf(start, "%s: want bool, got %s", name, cborwire.MajorName(h.major))
}

// isNull reports whether the next item is null, consuming it if so.
func (c *cur) isNull() bool {
	if c.off < len(c.b) && c.b[c.off] == 0xf6 {
		c.off++
		return true
	}
	return false
}

func (c *cur) isTrue() bool {
	if c.off < len(c.b) && c.b[c.off] == 0xf5 {
		c.off++
		return true
	}
	return false
}

// tag consumes a tag head if present and returns its number.
func (c *cur) tag() (uint64, bool) {
	h, err := readHead(c.b, c.off)
	if err != nil || h.major != cborwire.MajorTag {
		return 0, false
	}
	c.off += h.len
	return h.arg, true
}

// end reports an error if bytes remain.
func (c *cur) end() error {
	if c.off != len(c.b) {
		return c.errf(c.off, "%d trailing bytes", len(c.b)-c.off)
	}
	return nil
}

func syntaxErr(off int, format string, a ...any) error {
	return &DecodeError{Offset: off, Msg: fmt.Sprintf(format, a...), Err: ErrMalformed}
}

func limitErr(off int, format string, a ...any) error {
	return &DecodeError{Offset: off, Msg: fmt.Sprintf(format, a...), Err: ErrLimit}
}

// intKey encodes an integer map key.
func intKey(k int64) []byte { return cborwire.AppendInt(nil, k) }
