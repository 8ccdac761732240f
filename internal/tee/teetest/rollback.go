package teetest

import (
	"errors"
	"testing"

	"github.com/teep-go/teep/internal/tee"
)

func testRollbackReplay(t *testing.T, h *harness) {
	Put(t, h.st(), "rb/a", "v1")
	restore := h.b.Snapshot(t)
	Put(t, h.st(), "rb/a", "v2", "rb/b", "new")
	h.close()
	restore(t)
	tt, err := h.reopen()
	if err != nil {
		if !errors.Is(err, tee.ErrRollback) && !errors.Is(err, tee.ErrTampered) {
			t.Fatalf("reopen on replayed state: %v; want tee.ErrRollback", err)
		}
		return
	}
	got, err := tt.Storage().Get("rb/a")
	if !errors.Is(err, tee.ErrRollback) {
		t.Fatalf("replayed state accepted: Get = %q, %v; want tee.ErrRollback", got, err)
	}
}

func testCounterMonotonic(t *testing.T, h *harness) {
	set := func(v uint64) error {
		return tee.Update(ctx, h.st(), func(tx tee.Tx) error { return tx.SetCounter("rb/c", v) })
	}
	if got := h.st().Counter("rb/c"); got != 0 {
		t.Fatalf("fresh counter = %d", got)
	}
	if err := set(5); err != nil {
		t.Fatal(err)
	}
	if err := set(5); err != nil {
		t.Fatalf("setting the same value: %v", err)
	}
	if err := set(4); !errors.Is(err, tee.ErrCounterBackwards) {
		t.Fatalf("SetCounter(4) after 5: %v; want tee.ErrCounterBackwards", err)
	}
	tt := h.open(t)
	if got := tt.Storage().Counter("rb/c"); got != 5 {
		t.Fatalf("counter after reopen = %d, want 5", got)
	}
}
