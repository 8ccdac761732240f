package wasmta_test

import (
	"bytes"
	"context"
	"testing"

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

func benchRuntime(b *testing.B) *wasmta.Runtime {
	r, err := wasmta.New(context.Background(), wasmta.Limits{}, nil)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { r.Close(context.Background()) })
	return r
}

// BenchmarkInvokeWarm: instantiate and call, the module compiled.
func BenchmarkInvokeWarm(b *testing.B) {
	r, code, in := benchRuntime(b), handta.Echo(), []byte("ping")
	ctx := context.Background()
	for b.Loop() {
		if _, err := r.Invoke(ctx, code, in, nopSealed{}); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkInvokeCold: compile, instantiate and call.
func BenchmarkInvokeCold(b *testing.B) {
	r, code, in := benchRuntime(b), handta.Echo(), []byte("ping")
	ctx := context.Background()
	for b.Loop() {
		r.Forget(ctx, wasmta.Digest(code))
		if _, err := r.Invoke(ctx, code, in, nopSealed{}); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkInvokeParallel: warm calls from concurrent callers.
func BenchmarkInvokeParallel(b *testing.B) {
	r, code, in := benchRuntime(b), handta.Echo(), []byte("ping")
	ctx := context.Background()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if _, err := r.Invoke(ctx, code, in, nopSealed{}); err != nil {
				b.Error(err)
				return
			}
		}
	})
}

// BenchmarkDirectGoCall is the baseline of the rows above.
func BenchmarkDirectGoCall(b *testing.B) {
	in := []byte("ping")
	for b.Loop() {
		echoGo(in)
	}
}
