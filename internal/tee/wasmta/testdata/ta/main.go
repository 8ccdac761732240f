// Command ta is the test Trusted Application of package wasmta: its input
// names what it does, so one module exercises every host call and limit.
package main

import (
	"strings"
	"unsafe"
)

//go:wasmimport teep input_size
func inputSize() uint32

//go:wasmimport teep input_read
func inputRead(p unsafe.Pointer, n uint32) uint32

//go:wasmimport teep output_write
func outputWrite(p unsafe.Pointer, n uint32) int32

//go:wasmimport teep log
func logLine(p unsafe.Pointer, n uint32)

//go:wasmimport teep sealed_get
func sealedGet(kp unsafe.Pointer, kn uint32, vp unsafe.Pointer, vcap uint32) int32

//go:wasmimport teep sealed_put
func sealedPut(kp unsafe.Pointer, kn uint32, vp unsafe.Pointer, vn uint32) int32

//go:wasmimport teep sealed_delete
func sealedDelete(kp unsafe.Pointer, kn uint32) int32

//go:wasmimport teep random
func random(p unsafe.Pointer, n uint32) int32

//go:wasmimport teep time_now
func timeNow() int64

func ptr(b []byte) unsafe.Pointer {
	if len(b) == 0 {
		return nil
	}
	return unsafe.Pointer(&b[0])
}

func out(s string) { b := []byte(s); outputWrite(ptr(b), uint32(len(b))) }

func get(k string) (string, bool) {
	kb := []byte(k)
	buf := make([]byte, 64)
	n := sealedGet(ptr(kb), uint32(len(kb)), ptr(buf), uint32(len(buf)))
	if n < 0 {
		return "", false
	}
	if int(n) > len(buf) {
		buf = make([]byte, n)
		n = sealedGet(ptr(kb), uint32(len(kb)), ptr(buf), uint32(len(buf)))
	}
	return string(buf[:n]), true
}

var sink [][]byte

func main() {
	in := make([]byte, inputSize())
	inputRead(ptr(in), uint32(len(in)))
	cmd, arg, _ := strings.Cut(string(in), " ")
	switch cmd {
	case "echo":
		out(arg)
	case "log":
		b := []byte(arg)
		logLine(ptr(b), uint32(len(b)))
		println("stderr:", arg)
	case "put":
		k, v, _ := strings.Cut(arg, "=")
		kb, vb := []byte(k), []byte(v)
		if sealedPut(ptr(kb), uint32(len(kb)), ptr(vb), uint32(len(vb))) != 0 {
			panic("put failed")
		}
		out("ok")
	case "putfail":
		k, v, _ := strings.Cut(arg, "=")
		kb, vb := []byte(k), []byte(v)
		sealedPut(ptr(kb), uint32(len(kb)), ptr(vb), uint32(len(vb)))
		panic("failing after a put")
	case "get":
		v, ok := get(arg)
		if !ok {
			out("<none>")
			return
		}
		out(v)
	case "del":
		kb := []byte(arg)
		sealedDelete(ptr(kb), uint32(len(kb)))
		out("ok")
	case "random":
		b := make([]byte, 16)
		random(ptr(b), 16)
		outputWrite(ptr(b), 16)
	case "time":
		if timeNow() <= 0 {
			panic("no time")
		}
		out("ok")
	case "loop":
		for {
		}
	case "alloc":
		for {
			sink = append(sink, make([]byte, 1<<20))
		}
	case "trap":
		var p *int
		println(*p)
	case "big":
		b := make([]byte, 2<<20)
		outputWrite(ptr(b), uint32(len(b)))
		out("ignored the status")
	}
}
