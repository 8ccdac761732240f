package cborwire

import (
	"bytes"
	"fmt"
	"math"
	"unicode/utf8"
)

// Class says what kind of rule an input broke.
type Class uint8

const (
	// Malformed input is not CBOR, or not the strict subset the codecs accept.
	Malformed Class = iota + 1
	// Limit input is well-formed but exceeds a configured limit.
	Limit
)

// Error is the failure a Reader reports when it has no Fail hook.
type Error struct {
	Off   int
	Class Class
	Msg   string
}

func (e *Error) Error() string { return fmt.Sprintf("%s (at byte %d)", e.Msg, e.Off) }

// Rules bound a checked walk (Reader.Skip, WellFormed).
type Rules struct {
	// Preferred rejects heads longer than needed (preferred serialization).
	Preferred bool
	// MaxDepth bounds the nesting of arrays, maps and tags.
	MaxDepth int
	// MaxItems bounds the elements of one array or the pairs of one map.
	MaxItems int
	// MaxTotal, when positive, bounds the data items of the whole walk.
	MaxTotal int
	// KeysCheckedLater leaves map-key uniqueness to the caller, which checks
	// it where it decodes the map and names the key in its own terms.
	KeysCheckedLater bool
}

// Reader reads strict CBOR from Data starting at Off.
type Reader struct {
	Data []byte
	Off  int
	// Base is added to offsets in errors: the offset of Data inside the
	// outermost input.
	Base int
	// Preferred rejects heads longer than needed.
	Preferred bool
	// Fail, when set, turns a failure at offset off (Base included) into the
	// codec's error type.
	Fail func(off int, class Class, msg string) error
}

// Errorf reports a failure at offset off of Data through the Fail hook.
func (r *Reader) Errorf(off int, class Class, format string, a ...any) error {
	msg := fmt.Sprintf(format, a...)
	if r.Fail != nil {
		return r.Fail(r.Base+off, class, msg)
	}
	return &Error{Off: r.Base + off, Class: class, Msg: msg}
}

// Done reports whether all data has been read.
func (r *Reader) Done() bool { return r.Off >= len(r.Data) }

// Peek returns the major type of the next item without consuming it.
func (r *Reader) Peek() (byte, error) {
	if r.Off >= len(r.Data) {
		return 0, r.Errorf(r.Off, Malformed, "unexpected end of data")
	}
	return r.Data[r.Off] >> 5, nil
}

// Head reads an item head: its major type, additional information and
// argument (a value, length, count, tag number or float bits). It rejects
// indefinite lengths, reserved values, two-byte simple values below 32 and,
// if r.Preferred, heads longer than needed (floats of any width excepted).
func (r *Reader) Head() (major, ai byte, arg uint64, err error) {
	// Fast path: most heads carry their argument in the first byte.
	if r.Off < len(r.Data) && r.Data[r.Off]&0x1f < 24 {
		b := r.Data[r.Off]
		r.Off++
		return b >> 5, b & 0x1f, uint64(b & 0x1f), nil
	}
	return r.head()
}

func (r *Reader) head() (major, ai byte, arg uint64, err error) {
	start := r.Off
	if r.Off >= len(r.Data) {
		return 0, 0, 0, r.Errorf(start, Malformed, "unexpected end of data")
	}
	b := r.Data[r.Off]
	major, ai = b>>5, b&0x1f
	switch {
	case ai < 24:
		arg = uint64(ai)
	case ai <= 27:
		n := 1 << (ai - 24)
		if len(r.Data)-r.Off-1 < n {
			return 0, 0, 0, r.Errorf(start, Malformed, "truncated %s head", MajorName(major))
		}
		for _, c := range r.Data[r.Off+1 : r.Off+1+n] {
			arg = arg<<8 | uint64(c)
		}
		if major == MajorSimple {
			if ai == 24 && arg < 32 {
				return 0, 0, 0, r.Errorf(start, Malformed, "simple value %d in two-byte form", arg)
			}
		} else if r.Preferred && argLen(arg) != n {
			return 0, 0, 0, r.Errorf(start, Malformed, "%s head not in shortest form (preferred serialization required)", MajorName(major))
		}
		r.Off += n
	case ai == 31:
		if major == MajorSimple {
			return 0, 0, 0, r.Errorf(start, Malformed, "unexpected break")
		}
		if major >= MajorBytes && major <= MajorMap {
			return 0, 0, 0, r.Errorf(start, Malformed, "indefinite-length %s (definite lengths only)", MajorName(major))
		}
		return 0, 0, 0, r.Errorf(start, Malformed, "reserved additional information 31 for %s", MajorName(major))
	default:
		return 0, 0, 0, r.Errorf(start, Malformed, "reserved additional information %d", ai)
	}
	r.Off++
	return major, ai, arg, nil
}

// argLen is the number of argument bytes the shortest head for v uses.
func argLen(v uint64) int {
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

func prefix(what string) string {
	if what == "" {
		return ""
	}
	return what + ": "
}

// Expect reads a head of major type want and returns its argument. On a
// mismatch it consumes nothing. what names the item in errors ("" for none).
func (r *Reader) Expect(want byte, what string) (uint64, error) {
	if r.Off < len(r.Data) && r.Data[r.Off] < 24|want<<5 && r.Data[r.Off] >= want<<5 {
		b := r.Data[r.Off]
		r.Off++
		return uint64(b & 0x1f), nil
	}
	return r.expect(want, what)
}

func (r *Reader) expect(want byte, what string) (uint64, error) {
	start := r.Off
	major, _, arg, err := r.Head()
	if err != nil {
		return 0, err
	}
	if major != want {
		r.Off = start
		return 0, r.Errorf(start, Malformed, "%swant %s, got %s", prefix(what), MajorName(want), MajorName(major))
	}
	return arg, nil
}

// Uint reads an unsigned integer.
func (r *Reader) Uint(what string) (uint64, error) { return r.Expect(MajorUint, what) }

// Int reads an integer that fits int64.
func (r *Reader) Int(what string) (int64, error) {
	start := r.Off
	major, _, arg, err := r.Head()
	if err != nil {
		return 0, err
	}
	switch major {
	case MajorUint, MajorNint:
		if arg > math.MaxInt64 {
			r.Off = start
			return 0, r.Errorf(start, Malformed, "%sinteger out of range (64-bit signed)", prefix(what))
		}
		if major == MajorUint {
			return int64(arg), nil
		}
		return -1 - int64(arg), nil
	}
	r.Off = start
	return 0, r.Errorf(start, Malformed, "%swant integer, got %s", prefix(what), MajorName(major))
}

// content reads the head of a string of major type major and returns its
// content, which aliases Data.
func (r *Reader) content(major byte, what string, max int) ([]byte, error) {
	start := r.Off
	n, err := r.Expect(major, what)
	if err != nil {
		return nil, err
	}
	if n > uint64(len(r.Data)-r.Off) {
		r.Off = start
		return nil, r.Errorf(start, Malformed, "%s%s of %d bytes runs past the end", prefix(what), MajorName(major), n)
	}
	if max >= 0 && n > uint64(max) {
		r.Off = start
		return nil, r.Errorf(start, Limit, "%s of %d bytes exceeds the limit of %d", orItem(what), n, max)
	}
	b := r.Data[r.Off : r.Off+int(n) : r.Off+int(n)]
	if major == MajorText && !utf8.Valid(b) {
		r.Off = start
		return nil, r.Errorf(start, Malformed, "%stext string is not valid UTF-8", prefix(what))
	}
	r.Off += int(n)
	return b, nil
}

func orItem(what string) string {
	if what == "" {
		return "item"
	}
	return what
}

// Bytes reads a byte string of at most max bytes (no bound if max < 0).
// The result aliases Data.
func (r *Reader) Bytes(what string, max int) ([]byte, error) {
	return r.content(MajorBytes, what, max)
}

// Text reads a UTF-8 text string of at most max bytes (no bound if max < 0).
func (r *Reader) Text(what string, max int) (string, error) {
	b, err := r.content(MajorText, what, max)
	return string(b), err
}

// Bool reads true or false.
func (r *Reader) Bool(what string) (bool, error) {
	if r.Off < len(r.Data) {
		switch r.Data[r.Off] {
		case 0xf4:
			r.Off++
			return false, nil
		case 0xf5:
			r.Off++
			return true, nil
		}
	}
	m, err := r.Peek()
	if err != nil {
		return false, err
	}
	return false, r.Errorf(r.Off, Malformed, "%swant bool, got %s", prefix(what), MajorName(m))
}

// Array reads an array head with at most max elements.
func (r *Reader) Array(what string, max int) (int, error) {
	return r.container(MajorArray, what, max)
}

// Map reads a map head with at most max pairs.
func (r *Reader) Map(what string, max int) (int, error) {
	return r.container(MajorMap, what, max)
}

func (r *Reader) container(major byte, what string, max int) (int, error) {
	start := r.Off
	n, err := r.Expect(major, what)
	if err != nil {
		return 0, err
	}
	if err := r.count(start, major, n, max); err != nil {
		r.Off = start
		return 0, err
	}
	return int(n), nil
}

// count checks the element count n of a container whose head is at start.
// Every element takes at least one byte; checking that first keeps a forged
// count from driving a long loop.
func (r *Reader) count(start int, major byte, n uint64, max int) error {
	left := uint64(len(r.Data) - r.Off)
	if major == MajorMap {
		left /= 2
	}
	if n > left {
		if major == MajorMap {
			return r.Errorf(start, Malformed, "map of %d pairs runs past the end", n)
		}
		return r.Errorf(start, Malformed, "array of %d elements runs past the end", n)
	}
	if max >= 0 && n > uint64(max) {
		if major == MajorMap {
			return r.Errorf(start, Limit, "map of %d pairs exceeds the limit of %d", n, max)
		}
		return r.Errorf(start, Limit, "array of %d elements exceeds the limit of %d", n, max)
	}
	return nil
}

// Skip consumes one complete data item of any kind, checking it under
// rules, and returns its encoding (aliasing Data).
func (r *Reader) Skip(rules *Rules) ([]byte, error) {
	start := r.Off
	pref := r.Preferred
	r.Preferred = rules.Preferred
	w := walk{r: r, rules: rules}
	err := w.item(0)
	r.Preferred = pref
	if err != nil {
		r.Off = start
		return nil, err
	}
	return r.Data[start:r.Off:r.Off], nil
}

// WellFormed checks that data is exactly one data item under rules.
func (r *Reader) WellFormed(rules *Rules) error {
	if _, err := r.Skip(rules); err != nil {
		return err
	}
	if !r.Done() {
		return r.Errorf(r.Off, Malformed, "%d trailing bytes after the data item", len(r.Data)-r.Off)
	}
	return nil
}

type walk struct {
	r     *Reader
	rules *Rules
	items int
}

func (w *walk) item(depth int) error {
	r := w.r
	start := r.Off
	w.items++
	if w.rules.MaxTotal > 0 && w.items > w.rules.MaxTotal {
		return r.Errorf(start, Limit, "more than %d data items", w.rules.MaxTotal)
	}
	major, _, arg, err := r.Head()
	if err != nil {
		return err
	}
	switch major {
	case MajorUint, MajorNint, MajorSimple:
		return nil
	case MajorBytes, MajorText:
		if arg > uint64(len(r.Data)-r.Off) {
			return r.Errorf(start, Malformed, "%s of %d bytes runs past the end", MajorName(major), arg)
		}
		if major == MajorText && !utf8.Valid(r.Data[r.Off:r.Off+int(arg)]) {
			return r.Errorf(start, Malformed, "text string is not valid UTF-8")
		}
		r.Off += int(arg)
		return nil
	}
	if depth >= w.rules.MaxDepth {
		return r.Errorf(start, Limit, "nesting deeper than %d levels", w.rules.MaxDepth)
	}
	switch major {
	case MajorTag:
		return w.item(depth + 1)
	case MajorArray:
		if err := r.count(start, major, arg, w.rules.MaxItems); err != nil {
			return err
		}
		for i := uint64(0); i < arg; i++ {
			if err := w.item(depth + 1); err != nil {
				return err
			}
		}
		return nil
	}
	if err := r.count(start, major, arg, w.rules.MaxItems); err != nil {
		return err
	}
	return w.mapBody(depth, arg)
}

func (w *walk) mapBody(depth int, n uint64) error {
	r := w.r
	// Duplicate keys: compare in place for small maps (no allocation), via
	// a set of normalised keys for large ones.
	var small [16][2]int
	keys := small[:0]
	var seen map[string]struct{}
	check := !w.rules.KeysCheckedLater
	if check && n > uint64(len(small)) {
		seen = make(map[string]struct{}, n)
	}
	for i := uint64(0); i < n; i++ {
		kstart := r.Off
		if err := w.item(depth + 1); err != nil {
			return err
		}
		if check {
			key := r.Data[kstart:r.Off]
			dup := false
			if seen != nil {
				id := KeyIdentity(key)
				_, dup = seen[id]
				seen[id] = struct{}{}
			} else {
				for _, k := range keys {
					if SameKey(r.Data[k[0]:k[1]], key) {
						dup = true
						break
					}
				}
				keys = append(keys, [2]int{kstart, r.Off})
			}
			if dup {
				return r.Errorf(kstart, Malformed, "duplicate map key %x", key)
			}
		}
		if err := w.item(depth + 1); err != nil {
			return err
		}
	}
	return nil
}

// SameKey reports whether two encoded map keys are the same value, also
// when one uses a longer head than needed.
func SameKey(a, b []byte) bool {
	if bytes.Equal(a, b) {
		return true
	}
	ra, rb := Reader{Data: a}, Reader{Data: b}
	ma, _, va, ea := ra.Head()
	mb, _, vb, eb := rb.Head()
	if ea != nil || eb != nil || ma != mb || va != vb {
		return false
	}
	switch ma {
	case MajorUint, MajorNint:
		return true
	case MajorBytes, MajorText:
		return bytes.Equal(a[ra.Off:], b[rb.Off:])
	}
	return false
}

// KeyIdentity normalises the encoding of a map key so that duplicates are
// found even when one copy uses a longer head than needed: integers become
// their preferred encoding, strings their preferred head plus content.
func KeyIdentity(enc []byte) string {
	r := Reader{Data: enc}
	major, _, arg, err := r.Head()
	if err != nil {
		return string(enc)
	}
	switch major {
	case MajorUint, MajorNint:
		return string(AppendHead(nil, major, arg))
	case MajorBytes, MajorText:
		return string(AppendHead(nil, major, arg)) + string(enc[r.Off:])
	}
	return string(enc)
}
