package cborwire

import (
	"bytes"
	"encoding/binary"
	"math"
	"sort"
)

// Major types (RFC 8949 §3.1).
const (
	MajorUint   byte = 0
	MajorNint   byte = 1
	MajorBytes  byte = 2
	MajorText   byte = 3
	MajorArray  byte = 4
	MajorMap    byte = 5
	MajorTag    byte = 6
	MajorSimple byte = 7
)

// AppendHead appends the shortest head for major type major with argument
// arg (a value, a length, a count or a tag number).
func AppendHead(b []byte, major byte, arg uint64) []byte {
	m := major << 5
	switch {
	case arg < 24:
		return append(b, m|byte(arg))
	case arg <= math.MaxUint8:
		return append(b, m|24, byte(arg))
	case arg <= math.MaxUint16:
		return binary.BigEndian.AppendUint16(append(b, m|25), uint16(arg))
	case arg <= math.MaxUint32:
		return binary.BigEndian.AppendUint32(append(b, m|26), uint32(arg))
	}
	return binary.BigEndian.AppendUint64(append(b, m|27), arg)
}

// AppendUint appends an unsigned integer.
func AppendUint(b []byte, v uint64) []byte { return AppendHead(b, MajorUint, v) }

// AppendInt appends a signed integer (major type 0 or 1).
func AppendInt(b []byte, v int64) []byte {
	if v >= 0 {
		return AppendHead(b, MajorUint, uint64(v))
	}
	return AppendHead(b, MajorNint, uint64(-1-v))
}

// AppendBytes appends a byte string.
func AppendBytes(b, v []byte) []byte {
	return append(AppendHead(b, MajorBytes, uint64(len(v))), v...)
}

// AppendText appends a text string; v must be valid UTF-8.
func AppendText(b []byte, v string) []byte {
	return append(AppendHead(b, MajorText, uint64(len(v))), v...)
}

// AppendBool appends true or false.
func AppendBool(b []byte, v bool) []byte {
	if v {
		return append(b, 0xf5)
	}
	return append(b, 0xf4)
}

// AppendNull appends null.
func AppendNull(b []byte) []byte { return append(b, 0xf6) }

// AppendArrayHead appends the head of an array of n items.
func AppendArrayHead(b []byte, n int) []byte { return AppendHead(b, MajorArray, uint64(n)) }

// AppendTag appends the head of tag t; the tagged item follows.
func AppendTag(b []byte, t uint64) []byte { return AppendHead(b, MajorTag, t) }

// MapEntry is one encoded key and its encoded value.
type MapEntry struct{ Key, Val []byte }

// AppendMap appends entries as a map with keys in bytewise order of their
// encodings (core deterministic). It sorts entries in place.
func AppendMap(b []byte, entries []MapEntry) []byte {
	sort.Slice(entries, func(i, j int) bool { return bytes.Compare(entries[i].Key, entries[j].Key) < 0 })
	b = AppendHead(b, MajorMap, uint64(len(entries)))
	for _, e := range entries {
		b = append(append(b, e.Key...), e.Val...)
	}
	return b
}

var majorNames = [8]string{"unsigned integer", "negative integer", "byte string", "text string", "array", "map", "tag", "simple value or float"}

// MajorName names a major type for error messages.
func MajorName(major byte) string { return majorNames[major&7] }
