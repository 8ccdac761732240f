package bench

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/teep-go/teep/internal/tee/wasmta"
	"github.com/teep-go/teep/internal/tee/wasmta/handta"
)

// TestWasmMemory: the memory row is in bytes, not time, and both a held
// instance and the baseline are found to take at least the linear memory
// they hold.
func TestWasmMemory(t *testing.T) {
	r, err := wasmMemory(context.Background(), true)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("%+v", r)
	linear := float64(handta.MemoryPages * 64 << 10)
	if r.NsPerOp != 0 || r.BaseNs != 0 || r.Bytes < linear || r.BaseBytes < linear ||
		r.Ratio != r.Bytes/r.BaseBytes || !strings.HasSuffix(r.PerOp, " KiB") || r.Extra != "64 KiB linear memory" {
		t.Fatalf("row %+v", r)
	}
}

// TestHeldMemoryErrors: a call that fails, or ends without reaching its
// storage, fails the measurement instead of hanging it.
func TestHeldMemoryErrors(t *testing.T) {
	boom := errors.New("boom")
	if _, err := heldMemory(8, func(st wasmta.Sealed) error { return boom }); !errors.Is(err, boom) {
		t.Fatalf("failing call: %v", err)
	}
	if _, err := heldMemory(8, func(st wasmta.Sealed) error { return nil }); err == nil {
		t.Fatal("a call that never parks was measured")
	}
	// Parked, then failing once released: still reported.
	if _, err := heldMemory(8, func(st wasmta.Sealed) error { st.Get("k"); return boom }); !errors.Is(err, boom) {
		t.Fatalf("failing after release: %v", err)
	}
}
