//go:build wasip1

// Command counter is an example Trusted Application (docs/trusted-apps.md):
// each invocation adds one to a counter kept in the TA's sealed storage and
// prints it. The counter survives updates of the TA and goes when the TA is
// removed. Build: GOOS=wasip1 GOARCH=wasm go build -o counter.wasm .
package main

import (
	"encoding/binary"
	"fmt"
	"unsafe"
)

//go:wasmimport teep sealed_get
func sealedGet(kp unsafe.Pointer, kn uint32, vp unsafe.Pointer, vcap uint32) int32

//go:wasmimport teep sealed_put
func sealedPut(kp unsafe.Pointer, kn uint32, vp unsafe.Pointer, vn uint32) int32

//go:wasmimport teep output_write
func outputWrite(p unsafe.Pointer, n uint32) int32

// version is set at build time (-ldflags=-X main.version=2) so that an
// update is visible in the output.
var version = "1"

func main() {
	key := []byte("count")
	var buf [8]byte
	var n uint64
	switch r := sealedGet(unsafe.Pointer(&key[0]), uint32(len(key)), unsafe.Pointer(&buf[0]), 8); {
	case r == 8:
		n = binary.BigEndian.Uint64(buf[:])
	case r == -1: // first run
	default:
		panic(fmt.Sprintf("counter: sealed_get returned %d", r))
	}
	n++
	binary.BigEndian.PutUint64(buf[:], n)
	if sealedPut(unsafe.Pointer(&key[0]), uint32(len(key)), unsafe.Pointer(&buf[0]), 8) != 0 {
		panic("counter: sealed_put failed")
	}
	out := []byte(fmt.Sprintf("counter v%s: %d", version, n))
	outputWrite(unsafe.Pointer(&out[0]), uint32(len(out)))
}
