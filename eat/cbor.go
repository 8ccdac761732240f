package eat

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"math"
	"time"
	"unicode/utf8"

	"github.com/teep-go/teep/cborwire"
)

// This file holds the small CBOR reader the claims codec is built on (the
// writer is internal/cborenc). A hand-written reader lets every error name the claim and byte offset,
// and lets the decoder enforce the TEEP profile's encoding rules (definite
// lengths, preferred serialization) that general-purpose decoders accept.

// wellFormed checks that b holds exactly one CBOR data item encoded the way
// the TEEP EAT profile requires: definite lengths only, shortest-form heads
// (preferred serialization), valid UTF-8 text, no reserved values, and within
// the nesting and item limits. Map key uniqueness is checked where maps are
// decoded. base is added to offsets in errors.
func wellFormed(b []byte, lim *Limits, base int) error {
	w := walker{b: b, lim: lim, base: base}
	if err := w.item(0); err != nil {
		return err
	}
	if w.off != len(b) {
		return w.errf(w.off, "%d trailing bytes after the data item", len(b)-w.off)
	}
	return nil
}

type walker struct {
	b     []byte
	off   int
	items int
	lim   *Limits
	base  int
}

func (w *walker) errf(off int, format string, a ...any) error {
	return &DecodeError{Offset: w.base + off, Msg: fmt.Sprintf(format, a...)}
}

func (w *walker) item(depth int) error {
	if depth > w.lim.MaxDepth {
		return w.errf(w.off, "nesting deeper than %d levels", w.lim.MaxDepth)
	}
	w.items++
	if w.items > w.lim.MaxItems {
		return w.errf(w.off, "more than %d data items", w.lim.MaxItems)
	}
	start := w.off
	major, arg, n, err := readHead(w.b[w.off:])
	if err != nil {
		return w.errf(start, "%v", err)
	}
	w.off += n
	switch major {
	case cborwire.MajorBytes, cborwire.MajorText:
		if arg > uint64(len(w.b)-w.off) {
			return w.errf(start, "%s of %d bytes runs past the end of the input", cborwire.MajorName(major), arg)
		}
		s := w.b[w.off : w.off+int(arg)]
		if major == cborwire.MajorText && !utf8.Valid(s) {
			return w.errf(start, "text string is not valid UTF-8")
		}
		w.off += int(arg)
	case cborwire.MajorArray, cborwire.MajorMap:
		count := arg
		if major == cborwire.MajorMap {
			if count > math.MaxUint64/2 {
				return w.errf(start, "map too large")
			}
			count *= 2
		}
		// Every element takes at least one byte; checking that first keeps a
		// forged length from driving a long loop.
		if count > uint64(len(w.b)-w.off) {
			return w.errf(start, "%s of %d elements runs past the end of the input", cborwire.MajorName(major), arg)
		}
		for i := uint64(0); i < count; i++ {
			if err := w.item(depth + 1); err != nil {
				return err
			}
		}
	case cborwire.MajorTag:
		return w.item(depth + 1)
	case cborwire.MajorSimple:
		// Floats of any width are accepted: preferred float width is not
		// enforced because no profile claim is a float.
		if w.b[start]&0x1f == 24 && arg < 32 {
			return w.errf(start, "simple value %d in two-byte form (RFC 8949 §3.3)", arg)
		}
	}
	return nil
}

// readHead decodes one CBOR head. It rejects indefinite lengths, reserved
// additional-information values and heads that are longer than needed.
func readHead(b []byte) (major byte, arg uint64, n int, err error) {
	if len(b) == 0 {
		return 0, 0, 0, fmt.Errorf("unexpected end of input")
	}
	major, ai := b[0]>>5, b[0]&0x1f
	switch {
	case ai < 24:
		return major, uint64(ai), 1, nil
	case ai == 24:
		if len(b) < 2 {
			return 0, 0, 0, fmt.Errorf("unexpected end of input in a head")
		}
		arg = uint64(b[1])
		if arg < 24 && major != cborwire.MajorSimple {
			return 0, 0, 0, fmt.Errorf("%s head not in shortest form (preferred serialization required)", cborwire.MajorName(major))
		}
		return major, arg, 2, nil
	case ai == 25:
		if len(b) < 3 {
			return 0, 0, 0, fmt.Errorf("unexpected end of input in a head")
		}
		arg = uint64(binary.BigEndian.Uint16(b[1:]))
		if arg <= math.MaxUint8 && major != cborwire.MajorSimple {
			return 0, 0, 0, fmt.Errorf("%s head not in shortest form (preferred serialization required)", cborwire.MajorName(major))
		}
		return major, arg, 3, nil
	case ai == 26:
		if len(b) < 5 {
			return 0, 0, 0, fmt.Errorf("unexpected end of input in a head")
		}
		arg = uint64(binary.BigEndian.Uint32(b[1:]))
		if arg <= math.MaxUint16 && major != cborwire.MajorSimple {
			return 0, 0, 0, fmt.Errorf("%s head not in shortest form (preferred serialization required)", cborwire.MajorName(major))
		}
		return major, arg, 5, nil
	case ai == 27:
		if len(b) < 9 {
			return 0, 0, 0, fmt.Errorf("unexpected end of input in a head")
		}
		arg = binary.BigEndian.Uint64(b[1:])
		if arg <= math.MaxUint32 && major != cborwire.MajorSimple {
			return 0, 0, 0, fmt.Errorf("%s head not in shortest form (preferred serialization required)", cborwire.MajorName(major))
		}
		return major, arg, 9, nil
	case ai == 31:
		return 0, 0, 0, fmt.Errorf("indefinite-length %s (the TEEP EAT profile allows definite lengths only)", cborwire.MajorName(major))
	}
	return 0, 0, 0, fmt.Errorf("reserved additional information %d", ai)
}

// reader walks input already checked by wellFormed, so it only has to check
// types, not framing.
type reader struct {
	b    []byte
	off  int
	base int
}

func (r *reader) errf(off int, format string, a ...any) error {
	return &DecodeError{Offset: r.base + off, Msg: fmt.Sprintf(format, a...)}
}

func (r *reader) peekMajor() byte { return r.b[r.off] >> 5 }

func (r *reader) head() (major byte, arg uint64) {
	major, arg, n, _ := readHead(r.b[r.off:])
	r.off += n
	return major, arg
}

// expect reads a head and fails unless it has the given major type.
func (r *reader) expect(want byte, what string) (uint64, error) {
	start := r.off
	major, arg := r.head()
	if major != want {
		r.off = start
		return 0, r.errf(start, "%s: want %s, got %s", what, cborwire.MajorName(want), cborwire.MajorName(major))
	}
	return arg, nil
}

// raw returns the encoding of the next item and skips it.
func (r *reader) raw() []byte {
	start := r.off
	r.skip()
	return r.b[start:r.off]
}

func (r *reader) skip() {
	major, arg := r.head()
	switch major {
	case cborwire.MajorBytes, cborwire.MajorText:
		r.off += int(arg)
	case cborwire.MajorArray:
		for i := uint64(0); i < arg; i++ {
			r.skip()
		}
	case cborwire.MajorMap:
		for i := uint64(0); i < 2*arg; i++ {
			r.skip()
		}
	case cborwire.MajorTag:
		r.skip()
	}
}

func (r *reader) bytes(what string, minLen, maxLen int) ([]byte, error) {
	start := r.off
	n, err := r.expect(cborwire.MajorBytes, what)
	if err != nil {
		return nil, err
	}
	if int(n) < minLen || int(n) > maxLen {
		return nil, r.errf(start, "%s: %d bytes, want %d..%d", what, n, minLen, maxLen)
	}
	v := bytes.Clone(r.b[r.off : r.off+int(n)])
	r.off += int(n)
	return v, nil
}

func (r *reader) text(what string, maxLen int) (string, error) {
	start := r.off
	n, err := r.expect(cborwire.MajorText, what)
	if err != nil {
		return "", err
	}
	if int(n) > maxLen {
		return "", r.errf(start, "%s: %d bytes of text, limit %d", what, n, maxLen)
	}
	v := string(r.b[r.off : r.off+int(n)])
	r.off += int(n)
	return v, nil
}

func (r *reader) uint(what string) (uint64, error) {
	return r.expect(cborwire.MajorUint, what)
}

// int reads a signed integer that fits int64.
func (r *reader) int(what string) (int64, error) {
	start := r.off
	major, arg := r.head()
	switch {
	case major == cborwire.MajorUint && arg <= math.MaxInt64:
		return int64(arg), nil
	case major == cborwire.MajorNint && arg <= math.MaxInt64:
		return -1 - int64(arg), nil
	case major == cborwire.MajorUint || major == cborwire.MajorNint:
		r.off = start
		return 0, r.errf(start, "%s: integer out of the 64-bit signed range", what)
	}
	r.off = start
	return 0, r.errf(start, "%s: want an integer, got %s", what, cborwire.MajorName(major))
}

func (r *reader) bool(what string) (bool, error) {
	start := r.off
	if r.b[r.off] == 0xf4 || r.b[r.off] == 0xf5 {
		r.off++
		return r.b[start] == 0xf5, nil
	}
	return false, r.errf(start, "%s: want true or false, got %s", what, cborwire.MajorName(r.peekMajor()))
}

func (r *reader) array(what string, minLen, maxLen int) (int, error) {
	start := r.off
	n, err := r.expect(cborwire.MajorArray, what)
	if err != nil {
		return 0, err
	}
	if n < uint64(minLen) || n > uint64(maxLen) {
		return 0, r.errf(start, "%s: %d elements, want %d..%d", what, n, minLen, maxLen)
	}
	return int(n), nil
}

func (r *reader) mapHead(what string, maxLen int) (int, error) {
	start := r.off
	n, err := r.expect(cborwire.MajorMap, what)
	if err != nil {
		return 0, err
	}
	if n > uint64(maxLen) {
		return 0, r.errf(start, "%s: %d entries, limit %d", what, n, maxLen)
	}
	return int(n), nil
}

// numericDate reads a CWT NumericDate (RFC 8392 §2): an integer or a
// floating-point number of seconds since the epoch, untagged.
func (r *reader) numericDate(what string) (time.Time, error) {
	start := r.off
	c := r.b[r.off]
	switch c >> 5 {
	case cborwire.MajorUint, cborwire.MajorNint:
		v, err := r.int(what)
		if err != nil {
			return time.Time{}, err
		}
		if v > maxNumericDate || v < -maxNumericDate {
			r.off = start
			return time.Time{}, r.errf(start, "%s: NumericDate %d out of range", what, v)
		}
		return time.Unix(v, 0).UTC(), nil
	case cborwire.MajorSimple:
		var f float64
		switch c {
		case 0xf9:
			f = float16(binary.BigEndian.Uint16(r.b[r.off+1:]))
			r.off += 3
		case 0xfa:
			f = float64(math.Float32frombits(binary.BigEndian.Uint32(r.b[r.off+1:])))
			r.off += 5
		case 0xfb:
			f = math.Float64frombits(binary.BigEndian.Uint64(r.b[r.off+1:]))
			r.off += 9
		default:
			return time.Time{}, r.errf(start, "%s: want a NumericDate (integer or float)", what)
		}
		if math.IsNaN(f) || f > maxNumericDate || f < -maxNumericDate {
			r.off = start
			return time.Time{}, r.errf(start, "%s: NumericDate %v out of range", what, f)
		}
		return floatDate(f), nil
	}
	return time.Time{}, r.errf(start, "%s: want a NumericDate (integer or float), got %s", what, cborwire.MajorName(c>>5))
}

// floatDate turns a fractional NumericDate into a time that re-encodes to
// the same float64 (appendNumericDate), so decode → encode → decode is
// stable: nanoseconds finer than the float can hold are normalised away, and
// a value with no such fixed point within a few steps keeps whole seconds.
func floatDate(f float64) time.Time {
	toTime := func(f float64) time.Time {
		sec := math.Floor(f)
		ns := math.Round((f - sec) * 1e9)
		return time.Unix(int64(sec), int64(ns)).UTC()
	}
	t := toTime(f)
	for i := 0; i < 4; i++ {
		next := toTime(dateFloat(t))
		if next.Equal(t) {
			return t
		}
		t = next
	}
	return time.Unix(int64(math.Floor(f)), 0).UTC()
}

// dateFloat is the float64 NumericDate of t.
func dateFloat(t time.Time) float64 {
	return float64(t.Unix()) + float64(t.Nanosecond())/1e9
}

// maxNumericDate bounds dates to about ±292 billion years' worth of seconds
// that time.Time can hold; anything larger is an attack or a bug.
const maxNumericDate = 1 << 40

func float16(h uint16) float64 {
	sign := 1.0
	if h&0x8000 != 0 {
		sign = -1
	}
	exp := int(h>>10) & 0x1f
	mant := float64(h & 0x3ff)
	switch exp {
	case 0:
		return sign * math.Ldexp(mant, -24)
	case 31:
		if mant == 0 {
			return math.Inf(int(sign))
		}
		return math.NaN()
	}
	return sign * math.Ldexp(mant+1024, exp-25)
}

// Writer side: append-style helpers producing preferred serialization.

// appendNumericDate writes whole seconds as an integer, and a time with a
// fraction of a second as a float64 (RFC 8392 §2 allows both).
func appendNumericDate(b []byte, t time.Time) []byte {
	if t.Nanosecond() == 0 {
		return cborwire.AppendInt(b, t.Unix())
	}
	return binary.BigEndian.AppendUint64(append(b, 0xfb), math.Float64bits(dateFloat(t)))
}
