package bench

import (
	"bytes"
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/teep-go/teep/internal/tee/wasmta"
	"github.com/teep-go/teep/internal/tee/wasmta/handta"
)

type nopSealed struct{}

func (nopSealed) Get(string) ([]byte, error) { return nil, nil }
func (nopSealed) Put(string, []byte) error   { return nil }
func (nopSealed) Delete(string) error        { return nil }

// echoGo is the baseline: the echo TA's work as a direct Go call.
//
//go:noinline
func echoGo(in []byte) []byte { return bytes.Clone(in) }

// wasmInvoke: invocations of a trivial TA (the hand-assembled echo),
// cold (compile, instantiate, call), warm (compiled module cached) and
// from concurrent callers, each against a direct Go call of the same work;
// then the memory a TA instance takes (wasmMemory).
func wasmInvoke(ctx context.Context, quick bool) ([]Row, error) {
	r, err := wasmta.New(ctx, wasmta.Limits{}, nil)
	if err != nil {
		return nil, err
	}
	defer r.Close(ctx)
	code, in := handta.Echo(), []byte("ping")
	d := 300 * time.Millisecond
	if quick {
		d = 30 * time.Millisecond
	}
	goNs, err := perOp(func() error {
		if out := echoGo(in); len(out) != len(in) {
			return fmt.Errorf("echo baseline: %d bytes out of %d", len(out), len(in))
		}
		return nil
	}, d)
	if err != nil {
		return nil, err
	}
	call := func() error {
		out, err := r.Invoke(ctx, code, in, nopSealed{})
		if err == nil && !bytes.Equal(out, in) {
			err = fmt.Errorf("bench: echo TA answered %q", out)
		}
		return err
	}
	coldNs, err := perOp(func() error { r.Forget(ctx, wasmta.Digest(code)); return call() }, d)
	if err != nil {
		return nil, err
	}
	warmNs, err := perOp(call, d)
	if err != nil {
		return nil, err
	}
	workers := r.Limits().MaxConcurrent
	n := 200
	if quick {
		n = 20
	}
	t0 := time.Now()
	var wg sync.WaitGroup
	errs := make(chan error, workers)
	for w := 0; w < workers; w++ {
		wg.Go(func() {
			for i := 0; i < n; i++ {
				if err := call(); err != nil {
					errs <- err
					return
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	if err := <-errs; err != nil {
		return nil, err
	}
	parNs := float64(time.Since(t0)) / float64(n*workers)
	mem, err := wasmMemory(ctx, quick)
	if err != nil {
		return nil, err
	}
	base := "direct Go call " + dur(goNs)
	return []Row{
		newRow("TA invoke, cold (compile + instantiate + call)", coldNs, "", base, goNs),
		newRow("TA invoke, warm (compiled module cached)", warmNs, "", base, goNs),
		newRow(fmt.Sprintf("TA invoke, %d callers at once", workers), parNs, fmt.Sprintf("%.0f calls/s", 1e9/parNs), base, goNs),
		mem,
	}, nil
}
