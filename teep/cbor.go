package teep

// A small strict CBOR (RFC 8949) reader for the fixed TEEP shapes (the writer
// is internal/cborenc, shared with the suit and eat codecs).
// Walking the bytes ourselves keeps the option order (needed to reproduce the
// Appendix D vectors), lets every error name the byte offset, and costs no
// reflection. Rules enforced everywhere: definite lengths only, well-formed
// heads, valid UTF-8 text, no duplicate map keys, bounded nesting and sizes.

import (
	"bytes"
	"fmt"
	"math"
	"sort"
	"unicode/utf8"

	"github.com/teep-go/teep/internal/cborenc"
)

type reader struct {
	data []byte
	off  int
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

func (r *reader) done() bool { return r.off >= len(r.data) }

// peek returns the major type of the next item without consuming it.
func (r *reader) peek() (byte, error) {
	if r.off >= len(r.data) {
		return 0, r.fail(r.off, ErrMalformed, "unexpected end of input")
	}
	return r.data[r.off] >> 5, nil
}

// head reads an item head. For major types 2-5 it rejects indefinite lengths;
// for major 7 it returns the additional info in ai.
func (r *reader) head() (major byte, ai byte, arg uint64, err error) {
	start := r.off
	if r.off >= len(r.data) {
		return 0, 0, 0, r.fail(start, ErrMalformed, "unexpected end of input")
	}
	b := r.data[r.off]
	r.off++
	major, ai = b>>5, b&0x1f
	switch {
	case ai < 24:
		arg = uint64(ai)
	case ai <= 27:
		n := 1 << (ai - 24)
		if len(r.data)-r.off < n {
			return 0, 0, 0, r.fail(start, ErrMalformed, "truncated %s head", cborenc.MajorName(major))
		}
		for _, c := range r.data[r.off : r.off+n] {
			arg = arg<<8 | uint64(c)
		}
		r.off += n
		if major == cborenc.MajorSimple && ai == 24 && arg < 32 {
			return 0, 0, 0, r.fail(start, ErrMalformed, "simple value %d in two-byte form", arg)
		}
	case ai == 31:
		if major == cborenc.MajorSimple {
			return 0, 0, 0, r.fail(start, ErrMalformed, "unexpected break")
		}
		if major >= cborenc.MajorBytes && major <= cborenc.MajorMap {
			return 0, 0, 0, r.fail(start, ErrMalformed, "indefinite-length %s", cborenc.MajorName(major))
		}
		return 0, 0, 0, r.fail(start, ErrMalformed, "reserved additional information 31 for %s", cborenc.MajorName(major))
	default:
		return 0, 0, 0, r.fail(start, ErrMalformed, "reserved additional information %d", ai)
	}
	return major, ai, arg, nil
}

func (r *reader) expect(want byte) (uint64, error) {
	start := r.off
	major, _, arg, err := r.head()
	if err != nil {
		return 0, err
	}
	if major != want {
		r.off = start
		return 0, r.fail(start, ErrMalformed, "want %s, got %s", cborenc.MajorName(want), cborenc.MajorName(major))
	}
	return arg, nil
}

func (r *reader) uint() (uint64, error) { return r.expect(cborenc.MajorUint) }

func (r *reader) uint32() (uint32, error) {
	start := r.off
	v, err := r.uint()
	if err != nil {
		return 0, err
	}
	if v > math.MaxUint32 {
		return 0, r.fail(start, ErrMalformed, "%d does not fit uint .size 4", v)
	}
	return uint32(v), nil
}

func (r *reader) int() (int64, error) {
	start := r.off
	major, _, arg, err := r.head()
	if err != nil {
		return 0, err
	}
	switch major {
	case cborenc.MajorUint:
		if arg > math.MaxInt64 {
			return 0, r.fail(start, ErrMalformed, "integer %d out of range", arg)
		}
		return int64(arg), nil
	case cborenc.MajorNint:
		if arg > math.MaxInt64 {
			return 0, r.fail(start, ErrMalformed, "integer -1-%d out of range", arg)
		}
		return -1 - int64(arg), nil
	}
	r.off = start
	return 0, r.fail(start, ErrMalformed, "want integer, got %s", cborenc.MajorName(major))
}

// bytes reads a byte string of at most max bytes. The result aliases the
// reader's buffer (Decode works on its own copy of the input).
func (r *reader) bytes(max int, what string) ([]byte, error) {
	start := r.off
	n, err := r.expect(cborenc.MajorBytes)
	if err != nil {
		return nil, err
	}
	if n > uint64(len(r.data)-r.off) {
		return nil, r.fail(start, ErrMalformed, "byte string of %d bytes runs past the end", n)
	}
	if n > uint64(max) {
		return nil, r.fail(start, ErrLimit, "%s of %d bytes exceeds the limit of %d", what, n, max)
	}
	b := r.data[r.off : r.off+int(n) : r.off+int(n)]
	r.off += int(n)
	return b, nil
}

func (r *reader) text(max int, what string) (string, error) {
	start := r.off
	n, err := r.expect(cborenc.MajorText)
	if err != nil {
		return "", err
	}
	if n > uint64(len(r.data)-r.off) {
		return "", r.fail(start, ErrMalformed, "text string of %d bytes runs past the end", n)
	}
	if n > uint64(max) {
		return "", r.fail(start, ErrLimit, "%s of %d bytes exceeds the limit of %d", what, n, max)
	}
	b := r.data[r.off : r.off+int(n)]
	if !utf8.Valid(b) {
		return "", r.fail(start, ErrMalformed, "text string is not valid UTF-8")
	}
	r.off += int(n)
	return string(b), nil
}

func (r *reader) bool() (bool, error) {
	if r.off < len(r.data) {
		switch r.data[r.off] {
		case 0xf4:
			r.off++
			return false, nil
		case 0xf5:
			r.off++
			return true, nil
		}
	}
	m, err := r.peek()
	if err != nil {
		return false, err
	}
	return false, r.fail(r.off, ErrMalformed, "want bool, got %s", cborenc.MajorName(m))
}

// array reads an array head with at most max elements.
func (r *reader) array(max int, what string) (int, error) {
	start := r.off
	n, err := r.expect(cborenc.MajorArray)
	if err != nil {
		return 0, err
	}
	if n > uint64(len(r.data)-r.off) {
		return 0, r.fail(start, ErrMalformed, "array of %d elements runs past the end", n)
	}
	if n > uint64(max) {
		return 0, r.fail(start, ErrLimit, "%s has %d elements, limit %d", what, n, max)
	}
	return int(n), nil
}

func (r *reader) mapHead(max int, what string) (int, error) {
	start := r.off
	n, err := r.expect(cborenc.MajorMap)
	if err != nil {
		return 0, err
	}
	if n > uint64(len(r.data)-r.off)/2 {
		return 0, r.fail(start, ErrMalformed, "map of %d pairs runs past the end", n)
	}
	if n > uint64(max) {
		return 0, r.fail(start, ErrLimit, "%s has %d entries, limit %d", what, n, max)
	}
	return int(n), nil
}

// skip consumes one complete data item of any kind, checking it as strictly
// as the known parts (well-formed, definite, UTF-8, unique map keys) with at
// most depth levels of nesting and maxItems elements per container, and
// returns its encoding.
func (r *reader) skip(depth, maxItems int) ([]byte, error) {
	start := r.off
	if err := r.skipItem(depth, maxItems); err != nil {
		return nil, err
	}
	return r.data[start:r.off:r.off], nil
}

func (r *reader) skipItem(depth, maxItems int) error {
	start := r.off
	major, _, arg, err := r.head()
	if err != nil {
		return err
	}
	switch major {
	case cborenc.MajorUint, cborenc.MajorNint:
		return nil
	case cborenc.MajorBytes, cborenc.MajorText:
		if arg > uint64(len(r.data)-r.off) {
			return r.fail(start, ErrMalformed, "%s of %d bytes runs past the end", cborenc.MajorName(major), arg)
		}
		if major == cborenc.MajorText && !utf8.Valid(r.data[r.off:r.off+int(arg)]) {
			return r.fail(start, ErrMalformed, "text string is not valid UTF-8")
		}
		r.off += int(arg)
		return nil
	case cborenc.MajorSimple:
		return nil
	}
	if depth <= 0 {
		return r.fail(start, ErrLimit, "nesting deeper than the limit")
	}
	switch major {
	case cborenc.MajorTag:
		return r.skipItem(depth-1, maxItems)
	case cborenc.MajorArray:
		if arg > uint64(len(r.data)-r.off) {
			return r.fail(start, ErrMalformed, "array of %d elements runs past the end", arg)
		}
		if arg > uint64(maxItems) {
			return r.fail(start, ErrLimit, "array of %d elements exceeds the limit of %d", arg, maxItems)
		}
		for i := uint64(0); i < arg; i++ {
			if err := r.skipItem(depth-1, maxItems); err != nil {
				return err
			}
		}
		return nil
	}
	// map
	if arg > uint64(len(r.data)-r.off)/2 {
		return r.fail(start, ErrMalformed, "map of %d pairs runs past the end", arg)
	}
	if arg > uint64(maxItems) {
		return r.fail(start, ErrLimit, "map of %d pairs exceeds the limit of %d", arg, maxItems)
	}
	// Duplicate keys: compare in place for small maps (no allocation), via
	// a set of normalised keys for large ones.
	var small [16][2]int
	keys := small[:0]
	var seen map[string]struct{}
	if arg > uint64(len(small)) {
		seen = make(map[string]struct{}, arg)
	}
	for i := uint64(0); i < arg; i++ {
		kstart := r.off
		if err := r.skipItem(depth-1, maxItems); err != nil {
			return err
		}
		key := r.data[kstart:r.off]
		dup := false
		if seen != nil {
			id := keyIdentity(key)
			_, dup = seen[id]
			seen[id] = struct{}{}
		} else {
			for _, k := range keys {
				if sameKey(r.data[k[0]:k[1]], key) {
					dup = true
					break
				}
			}
			keys = append(keys, [2]int{kstart, r.off})
		}
		if dup {
			return r.fail(kstart, ErrMalformed, "duplicate map key %x", key)
		}
		if err := r.skipItem(depth-1, maxItems); err != nil {
			return err
		}
	}
	return nil
}

// sameKey reports whether two encoded map keys are the same value, also
// when one uses a longer head than needed.
func sameKey(a, b []byte) bool {
	if bytes.Equal(a, b) {
		return true
	}
	ra, rb := reader{data: a}, reader{data: b}
	ma, _, va, ea := ra.head()
	mb, _, vb, eb := rb.head()
	if ea != nil || eb != nil || ma != mb || va != vb {
		return false
	}
	switch ma {
	case cborenc.MajorUint, cborenc.MajorNint:
		return true
	case cborenc.MajorBytes, cborenc.MajorText:
		return bytes.Equal(a[ra.off:], b[rb.off:])
	}
	return false
}

// keyIdentity normalises the encoding of a map key so that duplicates are
// found even when one copy uses a longer head than needed: integers become
// their preferred encoding, strings their preferred head plus content.
func keyIdentity(enc []byte) string {
	r := reader{data: enc}
	major, _, arg, err := r.head()
	if err != nil {
		return string(enc)
	}
	switch major {
	case cborenc.MajorUint, cborenc.MajorNint:
		return string(cborenc.AppendHead(nil, major, arg))
	case cborenc.MajorBytes, cborenc.MajorText:
		return string(cborenc.AppendHead(nil, major, arg)) + string(enc[r.off:])
	}
	return string(enc)
}

// wellFormed checks that b is exactly one strict CBOR item.
func wellFormed(b []byte, depth, maxItems int) error {
	r := reader{data: b}
	if err := r.skipItem(depth, maxItems); err != nil {
		return err
	}
	if !r.done() {
		return r.fail(r.off, ErrMalformed, "%d trailing bytes after the data item", len(b)-r.off)
	}
	return nil
}

// ---- writer ----

// appendCanonical appends item (one well-formed CBOR item) in RFC 8949 §4.2.1
// core deterministic form: preferred heads, shortest exact floats, map
// entries sorted by their encoded keys.
func appendCanonical(b, item []byte) ([]byte, error) {
	r := reader{data: item}
	b, err := r.canonical(b)
	if err != nil {
		return nil, err
	}
	if !r.done() {
		return nil, r.fail(r.off, ErrMalformed, "trailing bytes after the data item")
	}
	return b, nil
}

func (r *reader) canonical(b []byte) ([]byte, error) {
	start := r.off
	major, ai, arg, err := r.head()
	if err != nil {
		return nil, err
	}
	switch major {
	case cborenc.MajorUint, cborenc.MajorNint:
		return cborenc.AppendHead(b, major, arg), nil
	case cborenc.MajorBytes, cborenc.MajorText:
		if arg > uint64(len(r.data)-r.off) {
			return nil, r.fail(start, ErrMalformed, "string runs past the end")
		}
		b = cborenc.AppendHead(b, major, arg)
		b = append(b, r.data[r.off:r.off+int(arg)]...)
		r.off += int(arg)
		return b, nil
	case cborenc.MajorTag:
		return r.canonical(cborenc.AppendHead(b, cborenc.MajorTag, arg))
	case cborenc.MajorArray:
		b = cborenc.AppendHead(b, cborenc.MajorArray, arg)
		for i := uint64(0); i < arg; i++ {
			if b, err = r.canonical(b); err != nil {
				return nil, err
			}
		}
		return b, nil
	case cborenc.MajorMap:
		type entry struct{ k, kv []byte }
		entries := make([]entry, 0, min(arg, uint64(len(r.data))))
		for i := uint64(0); i < arg; i++ {
			k, err := r.canonical(nil)
			if err != nil {
				return nil, err
			}
			kv, err := r.canonical(k)
			if err != nil {
				return nil, err
			}
			entries = append(entries, entry{k: kv[:len(k)], kv: kv})
		}
		sort.Slice(entries, func(i, j int) bool { return bytes.Compare(entries[i].k, entries[j].k) < 0 })
		b = cborenc.AppendHead(b, cborenc.MajorMap, arg)
		for _, e := range entries {
			b = append(b, e.kv...)
		}
		return b, nil
	}
	// major 7
	switch ai {
	case 25:
		return appendFloat(b, float64(halfToFloat32(uint16(arg)))), nil
	case 26:
		return appendFloat(b, float64(math.Float32frombits(uint32(arg)))), nil
	case 27:
		return appendFloat(b, math.Float64frombits(arg)), nil
	}
	if ai == 24 {
		return append(b, 0xf8, byte(arg)), nil
	}
	return append(b, 0xe0|ai), nil
}

// appendFloat writes f in the shortest of half, single, double precision that
// represents it exactly (NaN as the canonical half-precision 0xf97e00).
func appendFloat(b []byte, f float64) []byte {
	if math.IsNaN(f) {
		return append(b, 0xf9, 0x7e, 0x00)
	}
	if f32 := float32(f); float64(f32) == f {
		if h, ok := float32ToHalf(f32); ok {
			return append(b, 0xf9, byte(h>>8), byte(h))
		}
		bits := math.Float32bits(f32)
		return append(b, 0xfa, byte(bits>>24), byte(bits>>16), byte(bits>>8), byte(bits))
	}
	bits := math.Float64bits(f)
	return append(b, 0xfb, byte(bits>>56), byte(bits>>48), byte(bits>>40), byte(bits>>32),
		byte(bits>>24), byte(bits>>16), byte(bits>>8), byte(bits))
}

func halfToFloat32(h uint16) float32 {
	sign := uint32(h>>15) << 31
	exp := int(h>>10) & 0x1f
	mant := uint32(h & 0x3ff)
	switch {
	case exp == 0x1f:
		return math.Float32frombits(sign | 0x7f800000 | mant<<13)
	case exp == 0:
		// subnormal: mant * 2^-24
		f := float32(mant) / (1 << 24)
		if sign != 0 {
			f = -f
		}
		return f
	}
	return math.Float32frombits(sign | uint32(exp-15+127)<<23 | mant<<13)
}

// float32ToHalf converts f exactly, or reports false when half precision
// cannot hold it.
func float32ToHalf(f float32) (uint16, bool) {
	bits := math.Float32bits(f)
	sign := uint16(bits>>16) & 0x8000
	exp := int(bits>>23) & 0xff
	mant := bits & 0x7fffff
	switch {
	case exp == 0xff: // Inf (NaN handled by the caller)
		return sign | 0x7c00, mant == 0
	case exp == 0 && mant == 0:
		return sign, true
	}
	e := exp - 127
	switch {
	case e >= -14 && e <= 15:
		if mant&0x1fff != 0 {
			return 0, false
		}
		return sign | uint16(e+15)<<10 | uint16(mant>>13), true
	case e >= -24 && e < -14:
		// subnormal half: value = m * 2^-24 with m < 1024
		full := mant | 0x800000 // 24-bit significand, value = full * 2^(e-23)
		shift := uint(-e - 1)   // to scale 2^(e-23) to 2^-24: shift right by (-24)-(e-23) = -e-1
		if full&(1<<shift-1) != 0 {
			return 0, false
		}
		return sign | uint16(full>>shift), true
	}
	return 0, false
}
