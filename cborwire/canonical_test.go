package cborwire

import (
	"math"
	"testing"
)

func TestHalfPrecision(t *testing.T) {
	// every half-precision value survives half -> float32 -> half
	for h := 0; h < 1<<16; h++ {
		f := halfToFloat32(uint16(h))
		if math.IsNaN(float64(f)) {
			continue
		}
		back, ok := float32ToHalf(f)
		if !ok || back != uint16(h) {
			t.Fatalf("half %04x -> %v -> %04x %v", h, f, back, ok)
		}
	}
	if _, ok := float32ToHalf(1.0 / 3); ok {
		t.Fatal("1/3 fits a half")
	}
}
