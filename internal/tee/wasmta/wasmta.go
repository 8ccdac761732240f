package wasmta

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/tetratelabs/wazero"
	"github.com/tetratelabs/wazero/imports/wasi_snapshot_preview1"
	"github.com/tetratelabs/wazero/sys"
)

// Magic is the first four bytes of every WebAssembly binary module.
var Magic = []byte("\x00asm")

// IsWasm reports whether b starts like a WebAssembly binary module.
func IsWasm(b []byte) bool { return bytes.HasPrefix(b, Magic) }

// Limits bound what one Trusted Application may use. Zero fields take
// the value in DefaultLimits.
type Limits struct {
	// MemoryPages caps a TA's linear memory, in 64 KiB pages.
	MemoryPages uint32
	// Timeout is the wall time one invocation may run before it is
	// stopped.
	Timeout time.Duration
	// MaxInput and MaxOutput bound the invocation's input and output.
	MaxInput  int
	MaxOutput int
	// MaxLog bounds what one invocation may log (further logging is
	// dropped, not an error).
	MaxLog int
	// MaxKey and MaxValue bound a sealed storage key and value.
	MaxKey   int
	MaxValue int
	// MaxWrites bounds the sealed storage puts and deletes of one
	// invocation (the caller may keep them until the TA succeeds).
	MaxWrites int
	// MaxConcurrent bounds invocations running at once across all TAs;
	// callers beyond it wait (or give up when their context ends).
	MaxConcurrent int
	// MaxCode bounds the size of a TA's WebAssembly module.
	MaxCode int
	// MaxCached bounds how many compiled modules are kept.
	MaxCached int
}

// DefaultLimits are the limits used where a field is zero.
var DefaultLimits = Limits{
	MemoryPages:   1024, // 64 MiB
	Timeout:       5 * time.Second,
	MaxInput:      1 << 20,
	MaxOutput:     1 << 20,
	MaxLog:        16 << 10,
	MaxKey:        256,
	MaxValue:      1 << 20,
	MaxWrites:     256,
	MaxConcurrent: 4,
	MaxCode:       64 << 20,
	MaxCached:     16,
}

func (l Limits) withDefaults() Limits {
	d := DefaultLimits
	if l.MemoryPages == 0 {
		l.MemoryPages = d.MemoryPages
	}
	if l.Timeout == 0 {
		l.Timeout = d.Timeout
	}
	if l.MaxInput == 0 {
		l.MaxInput = d.MaxInput
	}
	if l.MaxOutput == 0 {
		l.MaxOutput = d.MaxOutput
	}
	if l.MaxLog == 0 {
		l.MaxLog = d.MaxLog
	}
	if l.MaxKey == 0 {
		l.MaxKey = d.MaxKey
	}
	if l.MaxValue == 0 {
		l.MaxValue = d.MaxValue
	}
	if l.MaxWrites == 0 {
		l.MaxWrites = d.MaxWrites
	}
	if l.MaxConcurrent == 0 {
		l.MaxConcurrent = d.MaxConcurrent
	}
	if l.MaxCode == 0 {
		l.MaxCode = d.MaxCode
	}
	if l.MaxCached == 0 {
		l.MaxCached = d.MaxCached
	}
	return l
}

// Errors of an invocation, for errors.Is.
var (
	// ErrTimeout: the TA ran past Limits.Timeout (or the caller's
	// context ended) and was stopped.
	ErrTimeout = errors.New("wasmta: trusted application stopped at its time limit")
	// ErrTrap: the TA trapped, exited non-zero, or broke a limit.
	ErrTrap = errors.New("wasmta: trusted application failed")
	// ErrInvalid: the code is not a usable WebAssembly module.
	ErrInvalid = errors.New("wasmta: not a valid trusted application")
	// ErrInputTooLarge: the input exceeds Limits.MaxInput.
	ErrInputTooLarge = errors.New("wasmta: input too large")
)

// Sealed is a TA's own sealed storage namespace. Keys are the TA's; the
// caller maps them into a namespace no other TA can name. Get returns an
// error wrapping tee.ErrNotFound for an absent key.
type Sealed interface {
	Get(key string) ([]byte, error)
	Put(key string, value []byte) error
	Delete(key string) error
}

// Runtime runs Trusted Applications. It is safe for concurrent use.
type Runtime struct {
	lim Limits
	log *slog.Logger
	rt  wazero.Runtime
	sem chan struct{}

	mu    sync.Mutex
	cache map[[32]byte]*cached
	tick  uint64
}

type cached struct {
	mod  wazero.CompiledModule
	used uint64
}

// New returns a Runtime with the given limits; log receives the TAs' log
// lines (nil discards them).
func New(ctx context.Context, lim Limits, log *slog.Logger) (*Runtime, error) {
	return newCachedRuntime(ctx, lim, log, nil)
}

// newCachedRuntime is New with a compilation cache shared between runtimes
// (nil: none): tests use it so that each big test TA is compiled once per
// test binary rather than once per runtime.
func newCachedRuntime(ctx context.Context, lim Limits, log *slog.Logger, cc wazero.CompilationCache) (*Runtime, error) {
	lim = lim.withDefaults()
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	cfg := wazero.NewRuntimeConfig().
		WithCloseOnContextDone(true).
		WithMemoryLimitPages(lim.MemoryPages)
	if cc != nil {
		cfg = cfg.WithCompilationCache(cc)
	}
	rt := wazero.NewRuntimeWithConfig(ctx, cfg)
	r := &Runtime{lim: lim, log: log, rt: rt, sem: make(chan struct{}, lim.MaxConcurrent), cache: map[[32]byte]*cached{}}
	if _, err := wasi_snapshot_preview1.Instantiate(ctx, rt); err != nil {
		rt.Close(ctx)
		return nil, fmt.Errorf("wasmta: wasi: %w", err)
	}
	if err := r.hostModule(ctx); err != nil {
		rt.Close(ctx)
		return nil, fmt.Errorf("wasmta: host module: %w", err)
	}
	return r, nil
}

// Limits returns the limits in force.
func (r *Runtime) Limits() Limits { return r.lim }

// Close releases the runtime and every compiled module.
func (r *Runtime) Close(ctx context.Context) error { return r.rt.Close(ctx) }

// Digest names code in the compiled-module cache.
func Digest(code []byte) [32]byte { return sha256.Sum256(code) }

// Forget drops code's compiled module from the cache (a TA removed or
// replaced).
func (r *Runtime) Forget(ctx context.Context, digest [32]byte) {
	r.mu.Lock()
	c := r.cache[digest]
	delete(r.cache, digest)
	r.mu.Unlock()
	if c != nil {
		c.mod.Close(ctx)
	}
}

func (r *Runtime) compiled(ctx context.Context, code []byte) (wazero.CompiledModule, error) {
	return r.compiledDigest(ctx, Digest(code), func() ([]byte, error) { return code, nil })
}

// compiledDigest returns the compiled module named digest, calling load
// for the code only on a cache miss (a caller that knows a component's
// digest need not read its image for a warm call).
func (r *Runtime) compiledDigest(ctx context.Context, d [32]byte, load func() ([]byte, error)) (wazero.CompiledModule, error) {
	r.mu.Lock()
	r.tick++
	if c, ok := r.cache[d]; ok {
		c.used = r.tick
		r.mu.Unlock()
		return c.mod, nil
	}
	r.mu.Unlock()
	code, err := load()
	if err != nil {
		return nil, err
	}
	if len(code) > r.lim.MaxCode {
		return nil, fmt.Errorf("%w: %d bytes of code, limit %d", ErrInvalid, len(code), r.lim.MaxCode)
	}
	if !IsWasm(code) {
		return nil, fmt.Errorf("%w: no WebAssembly magic", ErrInvalid)
	}
	if Digest(code) != d {
		return nil, fmt.Errorf("%w: code does not have the digest it was named by", ErrInvalid)
	}
	mod, err := r.rt.CompileModule(ctx, code)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrInvalid, err)
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if c, ok := r.cache[d]; ok { // compiled meanwhile by another caller
		mod.Close(ctx)
		return c.mod, nil
	}
	for len(r.cache) >= r.lim.MaxCached {
		var old [32]byte
		first := true
		for k, c := range r.cache {
			if first || c.used < r.cache[old].used {
				old, first = k, false
			}
		}
		// An instance being run keeps working: wazero closes a compiled
		// module's code only when nothing uses it.
		r.cache[old].mod.Close(ctx)
		delete(r.cache, old)
	}
	r.cache[d] = &cached{mod: mod, used: r.tick}
	return mod, nil
}

// Cached reports how many compiled modules the cache holds (at most
// Limits.MaxCached).
func (r *Runtime) Cached() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.cache)
}

// IsCached reports whether the module with this digest is compiled and
// cached.
func (r *Runtime) IsCached(digest [32]byte) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	_, ok := r.cache[digest]
	return ok
}

// Compile checks that code is a TA this runtime can run (valid module,
// imports only what the host provides) and caches it.
func (r *Runtime) Compile(ctx context.Context, code []byte) error {
	mod, err := r.compiled(ctx, code)
	if err != nil {
		return err
	}
	for _, f := range mod.ImportedFunctions() {
		m, _, _ := f.Import()
		if m != hostModule && m != wasi_snapshot_preview1.ModuleName {
			return fmt.Errorf("%w: imports module %q", ErrInvalid, m)
		}
	}
	return nil
}

// Invoke runs code once with input and returns what it wrote as output.
// The TA sees st as its sealed storage. A TA that traps, exits non-zero,
// loops past its time limit or exceeds its memory fails this invocation
// only; whatever it wrote to st before failing is the caller's to discard
// (softtee stages writes and commits them only on success).
func (r *Runtime) Invoke(ctx context.Context, code, input []byte, st Sealed) ([]byte, error) {
	return r.InvokeDigest(ctx, Digest(code), func() ([]byte, error) { return code, nil }, input, st)
}

// InvokeDigest is Invoke for the code whose SHA-256 digest is digest:
// load is called for the code only when its compiled module is not
// cached, and code that does not match digest is refused.
func (r *Runtime) InvokeDigest(ctx context.Context, digest [32]byte, load func() ([]byte, error), input []byte, st Sealed) ([]byte, error) {
	if len(input) > r.lim.MaxInput {
		return nil, fmt.Errorf("%w: %d bytes, limit %d", ErrInputTooLarge, len(input), r.lim.MaxInput)
	}
	mod, err := r.compiledDigest(ctx, digest, load)
	if err != nil {
		return nil, err
	}
	select {
	case r.sem <- struct{}{}:
	case <-ctx.Done():
		return nil, fmt.Errorf("wasmta: waiting for an invocation slot: %w", ctx.Err())
	}
	defer func() { <-r.sem }()

	ctx, cancel := context.WithTimeout(ctx, r.lim.Timeout)
	defer cancel()
	inv := &invocation{lim: r.lim, input: input, st: st}
	logw := &limitedLog{max: r.lim.MaxLog}
	cfg := wazero.NewModuleConfig().
		WithName("").
		WithArgs("ta").
		WithStdout(logw).
		WithStderr(logw).
		WithRandSource(rand.Reader).
		WithSysWalltime().
		WithSysNanotime().
		WithSysNanosleep()
	m, err := r.rt.InstantiateModule(context.WithValue(ctx, invKey{}, inv), mod, cfg)
	if m != nil {
		m.Close(context.Background())
	}
	logw.flush(r.log, digest)
	for _, l := range inv.logs {
		r.log.Info("trusted application", "log", l)
	}
	if inv.fault != nil {
		return nil, fmt.Errorf("%w: %v", ErrTrap, inv.fault)
	}
	if err != nil {
		var ee *sys.ExitError
		if ctx.Err() != nil || (errors.As(err, &ee) && (ee.ExitCode() == sys.ExitCodeDeadlineExceeded || ee.ExitCode() == sys.ExitCodeContextCanceled)) {
			return nil, fmt.Errorf("%w (%s): %v", ErrTimeout, r.lim.Timeout, err)
		}
		return nil, fmt.Errorf("%w: %v", ErrTrap, err)
	}
	return inv.out.Bytes(), nil
}

// limitedLog collects a TA's stdout and stderr up to a bound.
type limitedLog struct {
	mu  sync.Mutex
	buf bytes.Buffer
	max int
}

func (l *limitedLog) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if room := l.max - l.buf.Len(); room > 0 {
		l.buf.Write(p[:min(len(p), room)])
	}
	return len(p), nil // dropping past the bound is not the TA's failure
}

func (l *limitedLog) flush(log *slog.Logger, d [32]byte) {
	if l.buf.Len() == 0 {
		return
	}
	for line := range bytes.Lines(l.buf.Bytes()) {
		log.Info("trusted application", "code", fmt.Sprintf("%x", d[:8]), "stdout", string(bytes.TrimRight(line, "\n")))
	}
}
