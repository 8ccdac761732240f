package wasmta

import (
	"context"
	"testing"
)

// FuzzCompile: arbitrary bytes offered as a TA's code are refused with an
// error, never a panic.
func FuzzCompile(f *testing.F) {
	f.Add([]byte("\x00asm\x01\x00\x00\x00"))
	f.Add([]byte("\x00asm\x01\x00\x00\x00\x05\x03\x01\x00\x01"))
	f.Add([]byte("\x00asm\x01\x00\x00\x00\x02\x0b\x01\x04teep\x03bad\x00\x00"))
	r, err := New(context.Background(), Limits{MaxCached: 2}, nil)
	if err != nil {
		f.Fatal(err)
	}
	defer r.Close(context.Background())
	f.Fuzz(func(t *testing.T, code []byte) {
		if err := r.Compile(context.Background(), code); err == nil {
			// A module that compiles also instantiates or fails cleanly.
			r.Invoke(context.Background(), code, nil, newMem())
		}
	})
}
