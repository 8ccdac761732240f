package wasmta

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"time"

	"github.com/tetratelabs/wazero/api"

	"github.com/teep-go/teep/internal/tee"
)

// hostModule is the import module name of the host ABI.
const hostModule = "teep"

// Status codes the host ABI returns (negative i32).
const (
	statusNotFound = -1 // sealed_get: no such key
	statusError    = -2 // storage failed or the key or value broke a limit
)

type invKey struct{}

// invocation is the per-call state host functions reach through the
// context the module was instantiated with.
type invocation struct {
	lim    Limits
	input  []byte
	out    bytes.Buffer
	st     Sealed
	logged int
	logs   []string
	writes int
	// fault is a limit the TA broke; it fails the invocation even if the
	// TA ignores the status code and exits 0.
	fault error
}

func inv(ctx context.Context) *invocation { return ctx.Value(invKey{}).(*invocation) }

// mem returns the TA's memory at [ptr, ptr+n); out of bounds traps the
// TA (wazero turns a host function's panic into a trap of the call).
func mem(m api.Module, ptr, n uint32) []byte {
	b, ok := m.Memory().Read(ptr, n)
	if !ok {
		panic(fmt.Errorf("wasmta: memory access out of bounds (%d+%d)", ptr, n))
	}
	return b
}

// write counts a put or delete against MaxWrites.
func (i *invocation) write() bool {
	i.writes++
	if i.writes > i.lim.MaxWrites {
		i.fault = fmt.Errorf("more than %d sealed storage writes", i.lim.MaxWrites)
		return false
	}
	return true
}

func (i *invocation) key(m api.Module, ptr, n uint32) (string, bool) {
	if n == 0 || int(n) > i.lim.MaxKey {
		return "", false
	}
	return string(mem(m, ptr, n)), true
}

func (r *Runtime) hostModule(ctx context.Context) error {
	b := r.rt.NewHostModuleBuilder(hostModule)
	b.NewFunctionBuilder().WithFunc(func(ctx context.Context) uint32 {
		return uint32(len(inv(ctx).input))
	}).Export("input_size")
	b.NewFunctionBuilder().WithFunc(func(ctx context.Context, m api.Module, ptr, n uint32) uint32 {
		in := inv(ctx).input
		n = min(n, uint32(len(in)))
		copy(mem(m, ptr, n), in[:n])
		return n
	}).Export("input_read")
	b.NewFunctionBuilder().WithFunc(func(ctx context.Context, m api.Module, ptr, n uint32) int32 {
		i := inv(ctx)
		if i.out.Len()+int(n) > i.lim.MaxOutput {
			i.fault = fmt.Errorf("output over its limit of %d bytes", i.lim.MaxOutput)
			return statusError
		}
		i.out.Write(mem(m, ptr, n))
		return 0
	}).Export("output_write")
	b.NewFunctionBuilder().WithFunc(func(ctx context.Context, m api.Module, ptr, n uint32) {
		i := inv(ctx)
		room := i.lim.MaxLog - i.logged
		if room <= 0 {
			return
		}
		n = min(n, uint32(room))
		i.logged += int(n)
		i.logs = append(i.logs, string(mem(m, ptr, n)))
	}).Export("log")
	b.NewFunctionBuilder().WithFunc(func(ctx context.Context, m api.Module, kp, kn, vp, vcap uint32) int32 {
		i := inv(ctx)
		k, ok := i.key(m, kp, kn)
		if !ok {
			return statusError
		}
		v, err := i.st.Get(k)
		if errors.Is(err, tee.ErrNotFound) {
			return statusNotFound
		}
		if err != nil || len(v) > i.lim.MaxValue {
			return statusError
		}
		if uint32(len(v)) <= vcap {
			copy(mem(m, vp, uint32(len(v))), v)
		}
		return int32(len(v))
	}).Export("sealed_get")
	b.NewFunctionBuilder().WithFunc(func(ctx context.Context, m api.Module, kp, kn, vp, vn uint32) int32 {
		i := inv(ctx)
		k, ok := i.key(m, kp, kn)
		if !ok || int(vn) > i.lim.MaxValue || !i.write() {
			return statusError
		}
		if err := i.st.Put(k, bytes.Clone(mem(m, vp, vn))); err != nil {
			return statusError
		}
		return 0
	}).Export("sealed_put")
	b.NewFunctionBuilder().WithFunc(func(ctx context.Context, m api.Module, kp, kn uint32) int32 {
		i := inv(ctx)
		k, ok := i.key(m, kp, kn)
		if !ok || !i.write() {
			return statusError
		}
		if err := i.st.Delete(k); err != nil && !errors.Is(err, tee.ErrNotFound) {
			return statusError
		}
		return 0
	}).Export("sealed_delete")
	b.NewFunctionBuilder().WithFunc(func(ctx context.Context, m api.Module, ptr, n uint32) int32 {
		if _, err := rand.Read(mem(m, ptr, n)); err != nil {
			return statusError
		}
		return 0
	}).Export("random")
	b.NewFunctionBuilder().WithFunc(func(context.Context) int64 {
		return time.Now().UnixNano()
	}).Export("time_now")
	_, err := b.Instantiate(ctx)
	return err
}
