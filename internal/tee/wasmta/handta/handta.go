package handta

import "fmt"

// Section ids and type codes of the binary format (§5.5, §5.3).
const (
	secType     = 1
	secImport   = 2
	secFunction = 3
	secMemory   = 5
	secExport   = 7
	secCode     = 10
	secData     = 11

	i32 = 0x7f
	i64 = 0x7e
)

// Instructions used below (§5.4).
const (
	opUnreachable = 0x00
	opLoop        = 0x03
	opIf          = 0x04
	opElse        = 0x05
	opEnd         = 0x0b
	opBrIf        = 0x0d
	opCall        = 0x10
	opDrop        = 0x1a
	opLocalGet    = 0x20
	opLocalSet    = 0x21
	opLocalTee    = 0x22
	opI64Load     = 0x29
	opI32Store8   = 0x3a
	opI64Store    = 0x37
	opI32Const    = 0x41
	opI64Const    = 0x42
	opI32Eqz      = 0x45
	opI32Eq       = 0x46
	opI32Ne       = 0x47
	opI64Eqz      = 0x50
	opI32Add      = 0x6a
	opI32Sub      = 0x6b
	opI64Add      = 0x7c
	opI64DivU     = 0x80
	opI64RemU     = 0x82
	opI32WrapI64  = 0xa7
	blockEmpty    = 0x40
)

func uleb(b []byte, v uint64) []byte {
	for {
		c := byte(v & 0x7f)
		v >>= 7
		if v != 0 {
			b = append(b, c|0x80)
			continue
		}
		return append(b, c)
	}
}

func sleb(b []byte, v int64) []byte {
	for {
		c := byte(v & 0x7f)
		v >>= 7
		if (v == 0 && c&0x40 == 0) || (v == -1 && c&0x40 != 0) {
			return append(b, c)
		}
		b = append(b, c|0x80)
	}
}

func name(b []byte, s string) []byte { return append(uleb(b, uint64(len(s))), s...) }

// vec encodes n items already encoded one after the other in items.
func vec(n int, items []byte) []byte { return append(uleb(nil, uint64(n)), items...) }

func section(b []byte, id byte, content []byte) []byte {
	return append(uleb(append(b, id), uint64(len(content))), content...)
}

// MemoryPages is the linear memory every module here declares and starts
// with, in 64 KiB pages (none grows it).
const MemoryPages = 1

// fn is a function type: params and results.
type fn struct{ params, results []byte }

// host is an import from module "teep" of type index typ.
type host struct {
	field string
	typ   int
}

// module is what a hand-assembled TA is made of: imports from the host,
// one exported _start (a command, docs/trusted-apps.md), one page of
// memory and its initial data.
type module struct {
	types   []fn
	imports []host
	start   int    // type of _start
	locals  []byte // one local of each listed type
	code    []byte // body of _start, without the final end
	data    []byte // at address 0
}

func (m module) encode() []byte {
	b := []byte("\x00asm\x01\x00\x00\x00")
	b = section(b, secType, vec(len(m.types), m.typeBytes()))
	var im []byte
	for _, h := range m.imports {
		im = name(im, "teep")
		im = name(im, h.field)
		im = uleb(append(im, 0x00), uint64(h.typ))
	}
	b = section(b, secImport, vec(len(m.imports), im))
	b = section(b, secFunction, vec(1, uleb(nil, uint64(m.start))))
	b = section(b, secMemory, vec(1, uleb([]byte{0x00}, MemoryPages))) // a minimum, no maximum
	var ex []byte
	ex = append(name(ex, "memory"), 0x02, 0x00)
	ex = uleb(append(name(ex, "_start"), 0x00), uint64(len(m.imports)))
	b = section(b, secExport, vec(2, ex))
	var locals []byte
	for _, l := range m.locals {
		locals = append(locals, 0x01, l)
	}
	body := append(append(vec(len(m.locals), locals), m.code...), opEnd)
	b = section(b, secCode, vec(1, append(uleb(nil, uint64(len(body))), body...)))
	if len(m.data) > 0 {
		d := []byte{0x00, opI32Const, 0x00, opEnd}
		d = append(uleb(d, uint64(len(m.data))), m.data...)
		b = section(b, secData, vec(1, d))
	}
	return b
}

func (m module) typeBytes() []byte {
	var t []byte
	for _, f := range m.types {
		t = append(t, 0x60)
		t = append(t, vec(len(f.params), f.params)...)
		t = append(t, vec(len(f.results), f.results)...)
	}
	return t
}

// asm appends instructions with their immediates encoded.
type asm []byte

func (a asm) op(ops ...byte) asm { return append(a, ops...) }
func (a asm) i32(v int32) asm    { return sleb(append(a, opI32Const), int64(v)) }
func (a asm) i64(v int64) asm    { return sleb(append(a, opI64Const), v) }
func (a asm) call(f int) asm     { return uleb(append(a, opCall), uint64(f)) }
func (a asm) get(l int) asm      { return uleb(append(a, opLocalGet), uint64(l)) }
func (a asm) set(l int) asm      { return uleb(append(a, opLocalSet), uint64(l)) }
func (a asm) tee(l int) asm      { return uleb(append(a, opLocalTee), uint64(l)) }

// mem is a load or store with its alignment (log2) and offset.
func (a asm) mem(op byte, align, offset uint64) asm { return uleb(uleb(append(a, op), align), offset) }

// Echo is a TA that writes its input (up to 64 KiB) back as its output:
// the least a TA can do, for measuring the cost of an invocation.
func Echo() []byte {
	var c asm
	// output_write(0, input_read(0, 65536))
	c = c.i32(0).i32(0).i32(65536).call(0).call(1).op(opDrop)
	return module{
		types:   []fn{{params: []byte{i32, i32}, results: []byte{i32}}, {}},
		imports: []host{{"input_read", 0}, {"output_write", 0}},
		start:   1,
		code:    c,
	}.encode()
}

// Trap is a TA that always fails (executes unreachable).
func Trap() []byte {
	return module{types: []fn{{}}, start: 0, code: asm{opUnreachable}}.encode()
}

// Counter is the counter TA of examples/ta/counter, assembled by hand:
// each invocation adds one to the 8-byte counter under the sealed storage
// key "count" (little-endian here) and outputs "counter v<version>: <n>".
// version distinguishes builds, so that an update shows.
func Counter(version string) []byte {
	const (
		keyAt    = 0  // "count"
		valueAt  = 8  // the counter, 8 bytes
		prefixAt = 16 // "counter vN: "
		digitEnd = 96 // decimal digits are written backwards from here
	)
	prefix := fmt.Sprintf("counter v%s: ", version)
	if len(prefix) > digitEnd-prefixAt-24 {
		panic("handta: counter version too long")
	}
	data := make([]byte, prefixAt, prefixAt+len(prefix))
	copy(data, "count")
	data = append(data, prefix...)
	// Locals: 0 r (i32), 1 n (i64), 2 p (i32).
	var c asm
	// r = sealed_get("count", &value, 8)
	c = c.i32(keyAt).i32(5).i32(valueAt).i32(8).call(0).set(0)
	// if r == 8 { n = value } else if r != -1 { trap }  (-1: first run, n = 0)
	c = c.get(0).i32(8).op(opI32Eq).op(opIf, blockEmpty)
	c = c.i32(0).mem(opI64Load, 3, valueAt).set(1)
	c = c.op(opElse).get(0).i32(-1).op(opI32Ne).op(opIf, blockEmpty, opUnreachable, opEnd)
	c = c.op(opEnd)
	// value = ++n; if sealed_put("count", &value, 8) != 0 { trap }
	c = c.i32(0).get(1).i64(1).op(opI64Add).tee(1).mem(opI64Store, 3, valueAt)
	c = c.i32(keyAt).i32(5).i32(valueAt).i32(8).call(1).op(opIf, blockEmpty, opUnreachable, opEnd)
	// output_write(prefix)
	c = c.i32(prefixAt).i32(int32(len(prefix))).call(2).op(opDrop)
	// p = digitEnd; do { p--; mem[p] = '0' + n%10; n /= 10 } while n != 0
	c = c.i32(digitEnd).set(2)
	c = c.op(opLoop, blockEmpty)
	c = c.get(2).i32(1).op(opI32Sub).tee(2)
	c = c.get(1).i64(10).op(opI64RemU, opI32WrapI64).i32('0').op(opI32Add).mem(opI32Store8, 0, 0)
	c = c.get(1).i64(10).op(opI64DivU).tee(1).op(opI64Eqz, opI32Eqz, opBrIf, 0)
	c = c.op(opEnd)
	// output_write(p, digitEnd - p)
	c = c.get(2).i32(digitEnd).get(2).op(opI32Sub).call(2).op(opDrop)
	get := fn{params: []byte{i32, i32, i32, i32}, results: []byte{i32}}
	return module{
		types:   []fn{get, {params: []byte{i32, i32}, results: []byte{i32}}, {}},
		imports: []host{{"sealed_get", 0}, {"sealed_put", 0}, {"output_write", 1}},
		start:   2,
		locals:  []byte{i32, i64, i32},
		code:    c,
		data:    data,
	}.encode()
}
