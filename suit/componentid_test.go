package suit

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"
)

func TestParseComponentID(t *testing.T) {
	long := strings.Repeat("a", MaxComponentIDSegmentSize)
	for _, c := range []struct {
		in   string
		want ComponentID
	}{
		{"TEEP-Device/SecureFS/app/ta", NewComponentID("TEEP-Device", "SecureFS", "app", "ta")},
		{"TEEP-Device/hex:8d82/ta", ComponentID{[]byte("TEEP-Device"), {0x8d, 0x82}, []byte("ta")}},
		{"hex:8D82", ComponentID{{0x8d, 0x82}}},
		{"hex:", ComponentID{{}}},
		{"a/hex:/b", ComponentID{[]byte("a"), {}, []byte("b")}},
		{"hex:6865783a78", ComponentID{[]byte("hex:x")}},
		{"v1.2_x~y+z=w:q@r", NewComponentID("v1.2_x~y+z=w:q@r")},
		{"5445,,8D", ComponentID{{0x54, 0x45}, {}, {0x8d}}},
		{"5445,", ComponentID{{0x54, 0x45}, {}}},
		{`["5445","","8d"]`, ComponentID{{0x54, 0x45}, {}, {0x8d}}},
		{"[]", ComponentID{}},
		{` [ "5445" , "" , "8D" ] `, ComponentID{{0x54, 0x45}, {}, {0x8d}}},
		{long, NewComponentID(long)},
		{strings.Repeat("x/", MaxComponentIDSegments-1) + "x", NewComponentID(strings.Split(strings.Repeat("x/", MaxComponentIDSegments-1)+"x", "/")...)},
	} {
		got, err := ParseComponentID(c.in)
		if err != nil || !got.Equal(c.want) {
			t.Errorf("ParseComponentID(%q) = %v, %v; want %v", c.in, got, err, c.want)
		}
	}
	for _, bad := range []string{
		"", "/", "a/", "/a", "a//b", "a b", "é", "a\x00", "it's", "hex:zz", "hex:123", "a,b", "hex:00,01", "5445,8d/00", `[1]`, `["zz"]`, "[", `"a"`,
		long + "a",
		strings.Repeat("x/", MaxComponentIDSegments) + "x",
		`["` + strings.Repeat("00", MaxComponentIDSegmentSize+1) + `"]`,
		// four segments at the size limit exceed the encoded size limit
		strings.Repeat(long+"/", 3) + long,
		strings.Repeat("a", MaxComponentIDTextSize+1),
	} {
		if id, err := ParseComponentID(bad); err == nil {
			t.Errorf("ParseComponentID(%.40q) = %v, want an error", bad, id)
		} else if !errors.Is(err, ErrComponentID) {
			t.Errorf("ParseComponentID(%.40q): %v does not wrap ErrComponentID", bad, err)
		}
	}
}

func TestComponentIDText(t *testing.T) {
	for _, c := range []struct {
		id   ComponentID
		want string
	}{
		{NewComponentID("TEEP-Device", "SecureFS", "app", "ta"), "TEEP-Device/SecureFS/app/ta"},
		{ComponentID{{0x8d, 0x82}, {}, []byte("a/b"), []byte("hex:1"), []byte("x y"), []byte("a,b")}, "hex:8d82/hex:/hex:612f62/hex:6865783a31/hex:782079/hex:612c62"},
		{ComponentID{}, "[]"},
	} {
		if got := c.id.String(); got != c.want {
			t.Errorf("String = %q, want %q", got, c.want)
		}
		back, err := ParseComponentID(c.want)
		if err != nil || !back.Equal(c.id) {
			t.Errorf("ParseComponentID(String()) = %v, %v", back, err)
		}
		j, err := json.Marshal(struct{ ID ComponentID }{c.id})
		if err != nil || string(j) != `{"ID":"`+c.want+`"}` {
			t.Errorf("MarshalJSON = %s, %v", j, err)
		}
		var v struct{ ID ComponentID }
		if err := json.Unmarshal(j, &v); err != nil || !v.ID.Equal(c.id) {
			t.Errorf("UnmarshalJSON(%s) = %v, %v", j, v.ID, err)
		}
	}
	var v struct{ ID ComponentID }
	if err := json.Unmarshal([]byte(`{"ID":["5445"]}`), &v); err != nil || !v.ID.Equal(NewComponentID("TE")) {
		t.Errorf("UnmarshalJSON(list) = %v, %v", v.ID, err)
	}
	if err := json.Unmarshal([]byte(`{"ID":null}`), &v); err != nil || !v.ID.Equal(NewComponentID("TE")) {
		t.Errorf("UnmarshalJSON(null) = %v, %v", v.ID, err)
	}
	for _, bad := range []string{`{"ID":""}`, `{"ID":"a b"}`, `{"ID":1}`, `{"ID":["zz"]}`, `{"ID":{}}`} {
		if err := json.Unmarshal([]byte(bad), &v); err == nil {
			t.Errorf("UnmarshalJSON(%s) accepted", bad)
		}
	}
}

func TestComponentIDCheck(t *testing.T) {
	seg := make([]byte, MaxComponentIDSegmentSize)
	for _, c := range []struct {
		id ComponentID
		ok bool
	}{
		{nil, true},
		{ComponentID{{}}, true},
		{ComponentID{seg, seg, seg}, true},
		{ComponentID{seg, seg, seg, seg}, false},
		{ComponentID{append(seg, 0)}, false},
		{make(ComponentID, MaxComponentIDSegments), true},
		{make(ComponentID, MaxComponentIDSegments+1), false},
	} {
		if err := c.id.Check(); (err == nil) != c.ok {
			t.Errorf("Check(%d segments) = %v", len(c.id), err)
		}
		if err := c.id.Check(); err == nil && c.id.encodedSize() != len(c.id.Marshal()) {
			t.Errorf("encodedSize %d, encoding %d bytes", c.id.encodedSize(), len(c.id.Marshal()))
		}
		// The CBOR decoder applies the same limits.
		if _, err := DecodeComponentID(c.id.Marshal()); (err == nil) != c.ok {
			t.Errorf("DecodeComponentID(%d segments) = %v", len(c.id), err)
		}
	}
}

func FuzzParseComponentID(f *testing.F) {
	for _, s := range []string{"TEEP-Device/SecureFS/app/ta", "a/hex:8d82/hex:", `["5445",""]`, "5445,8d", "hex:zz", "a//b", "[", ""} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		id, err := ParseComponentID(s)
		if err != nil {
			return
		}
		if err := id.Check(); err != nil {
			t.Fatalf("accepted %q beyond the limits: %v", s, err)
		}
		back, err := ParseComponentID(id.String())
		if err != nil || !back.Equal(id) {
			t.Fatalf("%q: String %q parses to %v, %v", s, id.String(), back, err)
		}
		if back.String() != id.String() {
			t.Fatalf("String is not canonical: %q then %q", id.String(), back.String())
		}
		dec, err := DecodeComponentID(id.Marshal())
		if err != nil || !dec.Equal(id) {
			t.Fatalf("CBOR round trip of %v: %v", id, err)
		}
	})
}
