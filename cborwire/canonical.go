package cborwire

import (
	"bytes"
	"math"
	"sort"
)

// AppendCanonical appends the one well-formed CBOR item at r.Off (which must
// be all that is left) in RFC 8949 §4.2.1 core deterministic form: preferred
// heads, shortest exact floats, map entries sorted by their encoded keys.
func (r *Reader) AppendCanonical(b []byte) ([]byte, error) {
	b, err := r.canonical(b)
	if err != nil {
		return nil, err
	}
	if !r.Done() {
		return nil, r.Errorf(r.Off, Malformed, "trailing bytes after the data item")
	}
	return b, nil
}

func (r *Reader) canonical(b []byte) ([]byte, error) {
	start := r.Off
	major, ai, arg, err := r.Head()
	if err != nil {
		return nil, err
	}
	switch major {
	case MajorUint, MajorNint:
		return AppendHead(b, major, arg), nil
	case MajorBytes, MajorText:
		if arg > uint64(len(r.Data)-r.Off) {
			return nil, r.Errorf(start, Malformed, "string runs past the end")
		}
		b = AppendHead(b, major, arg)
		b = append(b, r.Data[r.Off:r.Off+int(arg)]...)
		r.Off += int(arg)
		return b, nil
	case MajorTag:
		return r.canonical(AppendHead(b, MajorTag, arg))
	case MajorArray:
		b = AppendHead(b, MajorArray, arg)
		for i := uint64(0); i < arg; i++ {
			if b, err = r.canonical(b); err != nil {
				return nil, err
			}
		}
		return b, nil
	case MajorMap:
		type entry struct{ k, kv []byte }
		entries := make([]entry, 0, min(arg, uint64(len(r.Data))))
		for i := uint64(0); i < arg; i++ {
			k, err := r.canonical(nil)
			if err != nil {
				return nil, err
			}
			kv, err := r.canonical(k)
			if err != nil {
				return nil, err
			}
			entries = append(entries, entry{k: kv[:len(k)], kv: kv})
		}
		sort.Slice(entries, func(i, j int) bool { return bytes.Compare(entries[i].k, entries[j].k) < 0 })
		b = AppendHead(b, MajorMap, arg)
		for _, e := range entries {
			b = append(b, e.kv...)
		}
		return b, nil
	}
	// major 7
	switch ai {
	case 25:
		return appendFloat(b, float64(halfToFloat32(uint16(arg)))), nil
	case 26:
		return appendFloat(b, float64(math.Float32frombits(uint32(arg)))), nil
	case 27:
		return appendFloat(b, math.Float64frombits(arg)), nil
	}
	if ai == 24 {
		return append(b, 0xf8, byte(arg)), nil
	}
	return append(b, 0xe0|ai), nil
}

// appendFloat writes f in the shortest of half, single, double precision that
// represents it exactly (NaN as the canonical half-precision 0xf97e00).
func appendFloat(b []byte, f float64) []byte {
	if math.IsNaN(f) {
		return append(b, 0xf9, 0x7e, 0x00)
	}
	if f32 := float32(f); float64(f32) == f {
		if h, ok := float32ToHalf(f32); ok {
			return append(b, 0xf9, byte(h>>8), byte(h))
		}
		bits := math.Float32bits(f32)
		return append(b, 0xfa, byte(bits>>24), byte(bits>>16), byte(bits>>8), byte(bits))
	}
	bits := math.Float64bits(f)
	return append(b, 0xfb, byte(bits>>56), byte(bits>>48), byte(bits>>40), byte(bits>>32),
		byte(bits>>24), byte(bits>>16), byte(bits>>8), byte(bits))
}

func halfToFloat32(h uint16) float32 {
	sign := uint32(h>>15) << 31
	exp := int(h>>10) & 0x1f
	mant := uint32(h & 0x3ff)
	switch {
	case exp == 0x1f:
		return math.Float32frombits(sign | 0x7f800000 | mant<<13)
	case exp == 0:
		// subnormal: mant * 2^-24
		f := float32(mant) / (1 << 24)
		if sign != 0 {
			f = -f
		}
		return f
	}
	return math.Float32frombits(sign | uint32(exp-15+127)<<23 | mant<<13)
}

// float32ToHalf converts f exactly, or reports false when half precision
// cannot hold it.
func float32ToHalf(f float32) (uint16, bool) {
	bits := math.Float32bits(f)
	sign := uint16(bits>>16) & 0x8000
	exp := int(bits>>23) & 0xff
	mant := bits & 0x7fffff
	switch {
	case exp == 0xff: // Inf (NaN handled by the caller)
		return sign | 0x7c00, mant == 0
	case exp == 0 && mant == 0:
		return sign, true
	}
	e := exp - 127
	switch {
	case e >= -14 && e <= 15:
		if mant&0x1fff != 0 {
			return 0, false
		}
		return sign | uint16(e+15)<<10 | uint16(mant>>13), true
	case e >= -24 && e < -14:
		// subnormal half: value = m * 2^-24 with m < 1024
		full := mant | 0x800000 // 24-bit significand, value = full * 2^(e-23)
		shift := uint(-e - 1)   // to scale 2^(e-23) to 2^-24: shift right by (-24)-(e-23) = -e-1
		if full&(1<<shift-1) != 0 {
			return 0, false
		}
		return sign | uint16(full>>shift), true
	}
	return 0, false
}
