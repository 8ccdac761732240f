package cborwire

import (
	"bytes"
	"encoding/hex"
	"math"
	"testing"

	"github.com/fxamacker/cbor/v2"
)

// The RFC 8949 Appendix A examples for the shapes we write.
func TestAppendixA(t *testing.T) {
	tests := []struct {
		got  []byte
		want string
	}{
		{AppendUint(nil, 0), "00"},
		{AppendUint(nil, 23), "17"},
		{AppendUint(nil, 24), "1818"},
		{AppendUint(nil, 1000), "1903e8"},
		{AppendUint(nil, 1000000), "1a000f4240"},
		{AppendUint(nil, 1000000000000), "1b000000e8d4a51000"},
		{AppendUint(nil, math.MaxUint64), "1bffffffffffffffff"},
		{AppendInt(nil, -1), "20"},
		{AppendInt(nil, -1000), "3903e7"},
		{AppendInt(nil, math.MinInt64), "3b7fffffffffffffff"},
		{AppendBytes(nil, []byte{1, 2, 3, 4}), "4401020304"},
		{AppendText(nil, "IETF"), "6449455446"},
		{AppendText(nil, "\u00fc"), "62c3bc"},
		{AppendBool(nil, false), "f4"},
		{AppendBool(nil, true), "f5"},
		{AppendNull(nil), "f6"},
		{AppendTag(nil, 1), "c1"},
		{append(AppendArrayHead(nil, 3), 1, 2, 3), "83010203"},
		{AppendMap(nil, []MapEntry{{AppendInt(nil, 3), AppendUint(nil, 4)}, {AppendInt(nil, 1), AppendUint(nil, 2)}}), "a201020304"},
	}
	for i, tt := range tests {
		if got := hex.EncodeToString(tt.got); got != tt.want {
			t.Errorf("%d: %s, want %s", i, got, tt.want)
		}
	}
}

// AppendMap's order is the one fxamacker/cbor produces for core
// deterministic encoding.
func TestMapOrderMatchesCoreDeterministic(t *testing.T) {
	em, err := cbor.CoreDetEncOptions().EncMode()
	if err != nil {
		t.Fatal(err)
	}
	m := map[any]any{int64(-1): 1, int64(10): 2, int64(100): 3, "a": 4, int64(-300): 5, int64(0): 6}
	want, err := em.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	var entries []MapEntry
	for k, v := range m {
		var key []byte
		switch k := k.(type) {
		case int64:
			key = AppendInt(nil, k)
		case string:
			key = AppendText(nil, k)
		}
		entries = append(entries, MapEntry{key, AppendUint(nil, uint64(v.(int)))})
	}
	if got := AppendMap(nil, entries); !bytes.Equal(got, want) {
		t.Errorf("got %x, want %x", got, want)
	}
}
