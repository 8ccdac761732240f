package eat

import (
	"bytes"
	"encoding/binary"
	"math"
	"time"

	"github.com/teep-go/teep/cborwire"
)

// The claims codec reads with the strict reader of cborwire (shared with the
// teep and suit codecs), so every error names the claim and byte offset, and
// the decoder enforces the TEEP profile's encoding rules (definite lengths,
// preferred serialization) that general-purpose decoders accept.

// failAt is the reader hook: every failure is a *DecodeError.
func failAt(off int, _ cborwire.Class, msg string) error {
	return &DecodeError{Offset: off, Msg: msg}
}

// wellFormed checks that b holds exactly one CBOR data item encoded the way
// the TEEP EAT profile requires: definite lengths only, shortest-form heads
// (preferred serialization), valid UTF-8 text, no reserved values, and within
// the nesting and item limits. Map key uniqueness is checked where maps are
// decoded, naming the claim. base is added to offsets in errors.
func wellFormed(b []byte, lim *Limits, base int) error {
	r := newReader(b, base)
	return r.WellFormed(&cborwire.Rules{Preferred: true, MaxDepth: lim.MaxDepth, MaxItems: -1, MaxTotal: lim.MaxItems, KeysCheckedLater: true})
}

// readHead decodes one CBOR head: its major type, argument and length.
func readHead(b []byte) (major byte, arg uint64, n int, err error) {
	r := newReader(b, 0)
	major, _, arg, err = r.Head()
	return major, arg, r.Off, err
}

// reader walks input already checked by wellFormed, so it only has to check
// types, not framing.
type reader struct{ cborwire.Reader }

func newReader(b []byte, base int) reader {
	return reader{cborwire.Reader{Data: b, Base: base, Preferred: true, Fail: failAt}}
}

func (r *reader) errf(off int, format string, a ...any) error {
	return r.Errorf(off, cborwire.Malformed, format, a...)
}

func (r *reader) peekMajor() byte { return r.Data[r.Off] >> 5 }

// expect reads a head and fails unless it has the given major type.
func (r *reader) expect(want byte, what string) (uint64, error) { return r.Expect(want, what) }

// skipped bounds nothing: the input was checked by wellFormed.
var skipped = cborwire.Rules{Preferred: true, MaxDepth: math.MaxInt, MaxItems: -1, KeysCheckedLater: true}

// raw returns the encoding of the next item and skips it.
func (r *reader) raw() []byte {
	b, _ := r.Skip(&skipped)
	return b
}

func (r *reader) bytes(what string, minLen, maxLen int) ([]byte, error) {
	start := r.Off
	v, err := r.Bytes(what, -1)
	if err != nil {
		return nil, err
	}
	if len(v) < minLen || len(v) > maxLen {
		r.Off = start
		return nil, r.errf(start, "%s: %d bytes, want %d..%d", what, len(v), minLen, maxLen)
	}
	return bytes.Clone(v), nil
}

func (r *reader) text(what string, maxLen int) (string, error) {
	start := r.Off
	n, err := r.expect(cborwire.MajorText, what)
	if err != nil {
		return "", err
	}
	if int(n) > maxLen {
		return "", r.errf(start, "%s: %d bytes of text, limit %d", what, n, maxLen)
	}
	v := string(r.Data[r.Off : r.Off+int(n)])
	r.Off += int(n)
	return v, nil
}

func (r *reader) uint(what string) (uint64, error) { return r.Uint(what) }

// int reads a signed integer that fits int64.
func (r *reader) int(what string) (int64, error) { return r.Int(what) }

func (r *reader) bool(what string) (bool, error) { return r.Bool(what) }

func (r *reader) array(what string, minLen, maxLen int) (int, error) {
	start := r.Off
	n, err := r.Array(what, -1)
	if err != nil {
		return 0, err
	}
	if n < minLen || n > maxLen {
		r.Off = start
		return 0, r.errf(start, "%s: %d elements, want %d..%d", what, n, minLen, maxLen)
	}
	return n, nil
}

func (r *reader) mapHead(what string, maxLen int) (int, error) {
	start := r.Off
	n, err := r.Map(what, -1)
	if err != nil {
		return 0, err
	}
	if n > maxLen {
		r.Off = start
		return 0, r.errf(start, "%s: %d entries, limit %d", what, n, maxLen)
	}
	return n, nil
}

// numericDate reads a CWT NumericDate (RFC 8392 §2): an integer or a
// floating-point number of seconds since the epoch, untagged.
func (r *reader) numericDate(what string) (time.Time, error) {
	start := r.Off
	c := r.Data[r.Off]
	switch c >> 5 {
	case cborwire.MajorUint, cborwire.MajorNint:
		v, err := r.int(what)
		if err != nil {
			return time.Time{}, err
		}
		if v > maxNumericDate || v < -maxNumericDate {
			r.Off = start
			return time.Time{}, r.errf(start, "%s: NumericDate %d out of range", what, v)
		}
		return time.Unix(v, 0).UTC(), nil
	case cborwire.MajorSimple:
		var f float64
		switch c {
		case 0xf9:
			f = float16(binary.BigEndian.Uint16(r.Data[r.Off+1:]))
			r.Off += 3
		case 0xfa:
			f = float64(math.Float32frombits(binary.BigEndian.Uint32(r.Data[r.Off+1:])))
			r.Off += 5
		case 0xfb:
			f = math.Float64frombits(binary.BigEndian.Uint64(r.Data[r.Off+1:]))
			r.Off += 9
		default:
			return time.Time{}, r.errf(start, "%s: want a NumericDate (integer or float)", what)
		}
		if math.IsNaN(f) || f > maxNumericDate || f < -maxNumericDate {
			r.Off = start
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
