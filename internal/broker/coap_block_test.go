package broker

import (
	"errors"
	"testing"

	"github.com/plgd-dev/go-coap/v3/net/blockwise"
)

func TestAcceptBlock2(t *testing.T) {
	enc := func(szx blockwise.SZX, num int64, more bool) uint32 {
		v, err := blockwise.EncodeBlockOption(szx, num, more)
		if err != nil {
			t.Fatal(err)
		}
		return v
	}
	full := make([]byte, 1024)
	for _, c := range []struct {
		name    string
		opt     uint32
		have    int64
		chunk   []byte
		maxBody int64
		ok      bool
	}{
		{"first block", enc(blockwise.SZX1024, 0, true), 0, full, 4096, true},
		{"last block, short", enc(blockwise.SZX1024, 2, false), 2048, full[:10], 4096, true},
		{"smaller size later (RFC 7959 §2.5)", enc(blockwise.SZX512, 4, true), 2048, full[:512], 4096, true},
		{"not the next block", enc(blockwise.SZX1024, 3, true), 2048, full, 8192, false},
		{"offset not a multiple of the size", enc(blockwise.SZX1024, 1, true), 1000, full, 8192, false},
		{"short non-final block", enc(blockwise.SZX1024, 0, true), 0, full[:1000], 8192, false},
		{"block longer than its size", enc(blockwise.SZX512, 0, false), 0, full, 8192, false},
		{"BERT over UDP", enc(blockwise.SZXBERT, 0, true), 0, full, 8192, false},
		{"past the body limit", enc(blockwise.SZX1024, 1, false), 1024, full, 1500, false},
		{"option value over 3 bytes", 1 << 24, 0, full, 8192, false},
	} {
		_, _, err := acceptBlock2(c.opt, c.have, c.chunk, c.maxBody)
		if (err == nil) != c.ok {
			t.Errorf("%s: %v", c.name, err)
		}
		if err != nil && !errors.Is(err, ErrBadResponse) {
			t.Errorf("%s: %v is not ErrBadResponse", c.name, err)
		}
	}
}

// FuzzAcceptBlock2: any option value, offset and payload is accepted or
// refused without a panic, and an accepted block keeps the invariants the
// reassembly relies on.
func FuzzAcceptBlock2(f *testing.F) {
	f.Add(uint32(0x0e), int64(0), make([]byte, 1024), int64(4096))
	f.Add(uint32(0x26), int64(2048), []byte("tail"), int64(4096))
	f.Add(uint32(0xffffff), int64(-1), []byte{}, int64(0))
	f.Fuzz(func(t *testing.T, opt uint32, have int64, chunk []byte, maxBody int64) {
		szx, more, err := acceptBlock2(opt, have, chunk, maxBody)
		if err != nil {
			return
		}
		size := szx.Size()
		n := int64(len(chunk))
		if szx == blockwise.SZXBERT || have < 0 || have%size != 0 || n > size || (more && n != size) || have+n > maxBody {
			t.Fatalf("accepted opt %#x at %d with %d bytes (limit %d): szx %d more %v", opt, have, n, maxBody, szx, more)
		}
	})
}
