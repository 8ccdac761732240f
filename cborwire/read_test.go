package cborwire

import (
	"bytes"
	"encoding/hex"
	"errors"
	"strings"
	"testing"
)

func unhex(t testing.TB, s string) []byte {
	t.Helper()
	b, err := hex.DecodeString(strings.ReplaceAll(s, " ", ""))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

var strict = Rules{Preferred: true, MaxDepth: 4, MaxItems: 8}

func TestWellFormed(t *testing.T) {
	for _, c := range []struct {
		name, in string
		rules    Rules
		class    Class
		msg      string
	}{
		{"uint", "1818", strict, 0, ""},
		{"map", "a2 01 61 61 02 80", strict, 0, ""},
		{"tag", "c1 1a 514b67b0", strict, 0, ""},
		{"float16", "f9 3c00", strict, 0, ""},
		{"long head allowed", "18 01", Rules{MaxDepth: 4, MaxItems: 8}, 0, ""},
		{"empty", "", strict, Malformed, "unexpected end of data"},
		{"trailing", "01 01", strict, Malformed, "1 trailing bytes"},
		{"long head", "18 01", strict, Malformed, "shortest form"},
		{"indefinite", "9f ff", strict, Malformed, "indefinite-length array"},
		{"break", "ff", strict, Malformed, "unexpected break"},
		{"reserved", "1c", strict, Malformed, "reserved additional information 28"},
		{"simple two-byte", "f8 10", strict, Malformed, "two-byte form"},
		{"truncated head", "19 01", strict, Malformed, "truncated"},
		{"string past end", "43 0102", strict, Malformed, "byte string of 3 bytes runs past the end"},
		{"bad utf-8", "61 ff", strict, Malformed, "UTF-8"},
		{"forged count", "9b ffffffffffffffff 00", strict, Malformed, "runs past the end"},
		{"duplicate key", "a2 01 00 01 00", strict, Malformed, "duplicate map key 01"},
		{"duplicate long key", "a2 01 00 1801 00", Rules{MaxDepth: 4, MaxItems: 8}, Malformed, "duplicate map key 1801"},
		{"duplicate key later", "a2 01 00 01 00", Rules{MaxDepth: 4, MaxItems: 8, KeysCheckedLater: true}, 0, ""},
		{"too deep", "81 81 81 81 80", strict, Limit, "nesting deeper than 4 levels"},
		{"deep enough", "81 81 81 81 00", strict, 0, ""},
		{"too many", "89 00 00 00 00 00 00 00 00 00", strict, Limit, "array of 9 elements exceeds the limit of 8"},
		{"too many total", "83 00 00 00", Rules{MaxDepth: 4, MaxItems: 8, MaxTotal: 3}, Limit, "more than 3 data items"},
	} {
		r := Reader{Data: unhex(t, c.in), Base: 10}
		err := r.WellFormed(&c.rules)
		if c.class == 0 {
			if err != nil {
				t.Errorf("%s: %v", c.name, err)
			}
			continue
		}
		var e *Error
		if !errors.As(err, &e) || e.Class != c.class || !strings.Contains(e.Msg, c.msg) || e.Off < 10 {
			t.Errorf("%s: got %v, want class %d containing %q at an offset from 10", c.name, err, c.class, c.msg)
		}
	}
}

func TestTyped(t *testing.T) {
	hook := errors.New("hooked")
	r := Reader{Data: unhex(t, "83 3863 43 010203 f5"), Preferred: true,
		Fail: func(off int, class Class, msg string) error { return hook }}
	if n, err := r.Array("list", 3); n != 3 || err != nil {
		t.Fatalf("array: %d %v", n, err)
	}
	if v, err := r.Int("i"); v != -100 || err != nil {
		t.Fatalf("int: %d %v", v, err)
	}
	if _, err := r.Bytes("b", 2); err != hook {
		t.Fatalf("limit not reported through the hook: %v", err)
	}
	if b, err := r.Bytes("b", 3); !bytes.Equal(b, []byte{1, 2, 3}) || err != nil {
		t.Fatalf("bytes: %x %v", b, err)
	}
	if _, err := r.Text("t", -1); err != hook {
		t.Fatalf("type mismatch not reported: %v", err)
	}
	if v, err := r.Bool("b"); !v || err != nil || !r.Done() {
		t.Fatalf("bool: %v %v", v, err)
	}
	r = Reader{Data: unhex(t, "1bffffffffffffffff")}
	if _, err := r.Int("big"); err == nil || !strings.Contains(err.Error(), "big: integer out of range") || r.Off != 0 {
		t.Fatalf("int range: %v at %d", err, r.Off)
	}
}

func TestAppendCanonical(t *testing.T) {
	for _, c := range []struct{ in, want string }{
		{"a2 02 00 01 00", "a2 01 00 02 00"},
		{"1900 01", "01"},
		{"fb 3ff0000000000000", "f9 3c00"},
		{"fa 7fc00000", "f9 7e00"},
	} {
		r := Reader{Data: unhex(t, c.in)}
		got, err := r.AppendCanonical(nil)
		if err != nil || !bytes.Equal(got, unhex(t, c.want)) {
			t.Errorf("%s: got %x %v, want %s", c.in, got, err, c.want)
		}
	}
}

// FuzzWellFormed checks that the reader never panics, that what it accepts
// re-encodes canonically to an item it accepts again, and that a strict walk
// accepts nothing the loose one refuses.
func FuzzWellFormed(f *testing.F) {
	for _, s := range []string{"a2 01 61 61 02 80", "c1 1a 514b67b0", "9f ff", "a2 01 00 1801 00", "f9 3c00"} {
		f.Add(unhex(f, s))
	}
	loose := Rules{MaxDepth: 8, MaxItems: 64}
	f.Fuzz(func(t *testing.T, data []byte) {
		r := Reader{Data: data}
		errLoose := r.WellFormed(&loose)
		r = Reader{Data: data}
		errStrict := r.WellFormed(&Rules{Preferred: true, MaxDepth: 8, MaxItems: 64})
		if errStrict == nil && errLoose != nil {
			t.Fatalf("strict accepts what loose refuses: %v", errLoose)
		}
		if errLoose != nil {
			return
		}
		r = Reader{Data: data}
		canon, err := r.AppendCanonical(nil)
		if err != nil {
			t.Fatalf("canonical of a well-formed item: %v", err)
		}
		r = Reader{Data: canon}
		if err := r.WellFormed(&Rules{Preferred: true, MaxDepth: 8, MaxItems: 64}); err != nil {
			t.Fatalf("canonical form %x refused: %v", canon, err)
		}
	})
}
