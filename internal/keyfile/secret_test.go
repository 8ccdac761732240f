package keyfile

import (
	"bytes"
	"errors"
	"strings"
	"testing"

	"github.com/fxamacker/cbor/v2"
)

func TestParseSecret(t *testing.T) {
	hexDigits := []byte("0123456789abcdef0123456789abcdef") // 32 bytes of hex-digit characters
	coseKey, _ := cbor.Marshal(map[int64]any{1: 4, -1: []byte("0123456789abcdef")})
	wrongKty, _ := cbor.Marshal(map[int64]any{1: 2, -1: []byte("k")})
	cases := []struct {
		name    string
		in      []byte
		want    []byte
		wantErr string
	}{
		{"hex prefix", []byte("hex:00112233\n"), []byte{0, 0x11, 0x22, 0x33}, ""},
		{"raw prefix keeps hex-digit bytes", append([]byte("raw:"), hexDigits...), hexDigits, ""},
		{"raw binary", []byte{0x01, 0xfe, 0x80, 0x7f}, []byte{0x01, 0xfe, 0x80, 0x7f}, ""},
		{"COSE_Key symmetric", coseKey, []byte("0123456789abcdef"), ""},
		{"bare hex digits are ambiguous", hexDigits, nil, "ambiguous"},
		{"hex text with newline is ambiguous", []byte("00112233\n"), nil, "ambiguous"},
		{"bad hex after prefix", []byte("hex:zz"), nil, "not hex"},
		{"COSE_Key of another type", wrongKty, nil, "kty"},
		{"empty", nil, nil, "empty"},
		{"empty after prefix", []byte("raw:"), nil, "empty"},
		{"too large", bytes.Repeat([]byte{0xff}, 4096), nil, "limit"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got, err := ParseSecret(c.in)
			if c.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), c.wantErr) {
					t.Fatalf("err = %v, want %q", err, c.wantErr)
				}
				return
			}
			if err != nil || !bytes.Equal(got, c.want) {
				t.Fatalf("got %x, %v; want %x", got, err, c.want)
			}
		})
	}
	if _, err := ParseSecret(hexDigits); !errors.Is(err, ErrAmbiguousSecret) {
		t.Fatalf("err = %v, want ErrAmbiguousSecret", err)
	}
}

func FuzzParseSecret(f *testing.F) {
	f.Add([]byte("hex:0011"))
	f.Add([]byte("raw:abc"))
	f.Add([]byte{0xa2, 0x01, 0x04, 0x20, 0x41, 0x00})
	f.Add([]byte("00ff"))
	f.Fuzz(func(t *testing.T, in []byte) {
		k, err := ParseSecret(in)
		if err == nil && (len(k) == 0 || len(k) > MaxSecretSize) {
			t.Fatalf("accepted a key of %d bytes", len(k))
		}
	})
}
