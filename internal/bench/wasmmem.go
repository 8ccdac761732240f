package bench

import (
	"context"
	"errors"
	"fmt"
	"runtime"
	"sync"

	"github.com/teep-go/teep/internal/tee"
	"github.com/teep-go/teep/internal/tee/wasmta"
	"github.com/teep-go/teep/internal/tee/wasmta/handta"
)

// parked is sealed storage whose Get waits: a TA that reads its storage
// stays instantiated, inside its host call, until released. It then
// finds nothing, as on a first run.
type parked struct {
	arrived chan<- struct{}
	release <-chan struct{}
}

func (p parked) Get(k string) ([]byte, error) {
	p.arrived <- struct{}{}
	<-p.release
	return nil, fmt.Errorf("%w: %s", tee.ErrNotFound, k)
}
func (parked) Put(string, []byte) error { return nil }
func (parked) Delete(string) error      { return nil }

// memNow is the Go runtime's memory after a GC, so that only what is
// live counts.
func memNow() (m runtime.MemStats) {
	runtime.GC()
	runtime.ReadMemStats(&m)
	return m
}

// heldMemory starts n calls of call at once, each given storage that
// parks it at its first Get, and returns the growth, per call, of the
// heap and stacks in use (HeapInuse + StackInuse) while all n are parked.
// Not Sys, the memory obtained from the OS: that grows in steps, and not
// at all when earlier measurements left enough behind.
func heldMemory(n int, call func(wasmta.Sealed) error) (float64, error) {
	arrived := make(chan struct{}, n)
	release := make(chan struct{})
	errs := make(chan error, n)
	st := parked{arrived: arrived, release: release}
	before := memNow()
	for i := 0; i < n; i++ {
		go func() { errs <- call(st) }()
	}
	for got := 0; got < n; {
		select {
		case <-arrived:
			got++
		case err := <-errs:
			close(release)
			for i := 1; i < n; i++ {
				<-errs
			}
			if err == nil {
				err = errors.New("bench: a call ended before reaching its storage")
			}
			return 0, err
		}
	}
	held := memNow()
	close(release)
	var err error
	for i := 0; i < n; i++ {
		if e := <-errs; e != nil && err == nil {
			err = e
		}
	}
	if err != nil {
		return 0, err
	}
	inUse := func(m runtime.MemStats) float64 { return float64(m.HeapInuse + m.StackInuse) }
	return (inUse(held) - inUse(before)) / float64(n), nil
}

// wasmMemory: the memory one TA instance takes while it runs. n
// invocations of the hand-assembled counter are held at once inside their
// first host call (sealed_get), so n instances are live. The baseline is
// the same work done in Go: n goroutines, each holding as much memory as
// the TA's linear memory, held in the same call, measured alike.
func wasmMemory(ctx context.Context, quick bool) (Row, error) {
	n := 256
	if quick {
		n = 64
	}
	// Room for all n at once: the default would queue all but a few.
	r, err := wasmta.New(ctx, wasmta.Limits{MaxConcurrent: n}, nil)
	if err != nil {
		return Row{}, err
	}
	defer r.Close(ctx)
	code := handta.Counter("1")
	// Compiled once beforehand: the compiled module, shared by every
	// instance, is not what an instance costs.
	if err := r.Compile(ctx, code); err != nil {
		return Row{}, err
	}
	linear := handta.MemoryPages * 64 << 10
	// The baseline's memory is kept on the heap, as the TA's linear memory
	// is (a buffer only one call uses could live on its stack instead).
	var mu sync.Mutex
	var kept [][]byte
	base, err := heldMemory(n, func(st wasmta.Sealed) error {
		mu.Lock()
		kept = append(kept, make([]byte, linear))
		mu.Unlock()
		if _, err := st.Get("count"); !errors.Is(err, tee.ErrNotFound) {
			return fmt.Errorf("bench: parked storage answered %v", err)
		}
		return nil
	})
	kept = nil
	if err != nil {
		return Row{}, err
	}
	inUse, err := heldMemory(n, func(st wasmta.Sealed) error {
		out, err := r.Invoke(ctx, code, nil, st)
		if err == nil && string(out) != "counter v1: 1" {
			err = fmt.Errorf("bench: counter TA answered %q", out)
		}
		return err
	})
	if err != nil {
		return Row{}, err
	}
	if base <= 0 || inUse <= 0 {
		return Row{}, fmt.Errorf("bench: memory in use did not grow with %d held calls (%.0f B each, baseline %.0f B)", n, inUse, base)
	}
	return newMemRow(fmt.Sprintf("TA memory per instance (heap+stacks, %d held)", n), inUse,
		fmt.Sprintf("%d KiB linear memory", linear>>10), fmt.Sprintf("goroutine with %d KiB %s", linear>>10, kib(base)), base), nil
}

func newMemRow(name string, bytes float64, extra, baseline string, baseBytes float64) Row {
	return Row{Name: name, PerOp: kib(bytes), Extra: extra, Baseline: baseline, Ratio: bytes / baseBytes, Bytes: bytes, BaseBytes: baseBytes}
}

func kib(b float64) string { return fmt.Sprintf("%.1f KiB", b/1024) }
