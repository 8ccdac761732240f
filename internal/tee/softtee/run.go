package softtee

import (
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"strings"
	"sync"

	"github.com/teep-go/teep/internal/tee"
	"github.com/teep-go/teep/internal/tee/wasmta"
	"github.com/teep-go/teep/suit"
)

var _ tee.Runner = (*TEE)(nil)

// taNamespace is the prefix of the sealed objects of the TA whose image
// is the component object compObj.
func taNamespace(compObj string) string {
	return taPrefix + strings.TrimPrefix(compObj, tee.ComponentPrefix) + "/"
}

// runner is the TEE's Trusted Application runtime, made on first use.
type runner struct {
	once sync.Once
	rt   *wasmta.Runtime
	err  error

	mu    sync.Mutex
	live  *wasmta.Runtime        // rt once made, read under mu
	locks map[string]*sync.Mutex // one per component: its invocations are serialized
	// digests name each component's compiled module in the runtime's
	// cache, so a warm invocation reads no image; gens count the changes
	// of a component, so a digest read before a change is not kept.
	digests map[string][32]byte
	gens    map[string]uint64
}

func (t *TEE) runtime(ctx context.Context) (*wasmta.Runtime, error) {
	t.run.once.Do(func() {
		t.run.rt, t.run.err = wasmta.New(context.WithoutCancel(ctx), t.taLimits, t.taLog)
		t.run.mu.Lock()
		t.run.live = t.run.rt
		t.run.mu.Unlock()
	})
	return t.run.rt, t.run.err
}

// digest returns the digest of obj's code, if known, and obj's change
// generation.
func (r *runner) digest(obj string) ([32]byte, bool, uint64) {
	r.mu.Lock()
	defer r.mu.Unlock()
	d, ok := r.digests[obj]
	return d, ok, r.gens[obj]
}

// remember keeps obj's digest unless obj changed since gen was read.
func (r *runner) remember(obj string, d [32]byte, gen uint64) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.gens[obj] != gen {
		return
	}
	if r.digests == nil {
		r.digests = map[string][32]byte{}
	}
	r.digests[obj] = d
}

// changed is called once a transaction that wrote or deleted component
// obj has committed: its compiled module is dropped from the cache, so an
// updated or removed TA's code is not kept (or run) any longer.
func (r *runner) changed(ctx context.Context, obj string) {
	r.mu.Lock()
	if r.gens == nil {
		r.gens = map[string]uint64{}
	}
	r.gens[obj]++
	d, ok := r.digests[obj]
	delete(r.digests, obj)
	rt := r.live
	r.mu.Unlock()
	if ok && rt != nil {
		rt.Forget(ctx, d)
	}
}

func (t *TEE) componentLock(obj string) *sync.Mutex {
	t.run.mu.Lock()
	defer t.run.mu.Unlock()
	if t.run.locks == nil {
		t.run.locks = map[string]*sync.Mutex{}
	}
	l := t.run.locks[obj]
	if l == nil {
		l = &sync.Mutex{}
		t.run.locks[obj] = l
	}
	return l
}

// Invoke implements tee.Runner: it runs an installed WebAssembly Trusted
// Application (docs/trusted-apps.md). The TA's sealed storage writes are
// staged and committed in one transaction when it succeeds; a TA that
// fails leaves its storage as it was. Invocations of one component run
// one at a time, so read-modify-write state (a counter) is never lost.
func (t *TEE) Invoke(ctx context.Context, id suit.ComponentID, input []byte) ([]byte, error) {
	rt, err := t.runtime(ctx)
	if err != nil {
		return nil, err
	}
	obj := tee.ComponentObject(id)
	lock := t.componentLock(obj)
	lock.Lock()
	defer lock.Unlock()

	st := &stagedSealed{base: t.st, ns: taNamespace(obj), w: map[string][]byte{}, del: map[string]bool{}}
	out, err := t.invokeCode(ctx, rt, obj, id, input, st)
	if err != nil {
		return nil, err
	}
	if len(st.w) == 0 && len(st.del) == 0 {
		return out, nil
	}
	err = tee.Update(ctx, t.st, func(tx tee.Tx) error {
		// A component removed while its TA ran gets no state back.
		r, _, err := tx.Open(obj)
		if err != nil {
			return fmt.Errorf("%w: component %s was removed during the invocation", tee.ErrNotFound, id)
		}
		r.Close()
		for k, v := range st.w {
			if err := tx.Put(st.name(k), v); err != nil {
				return err
			}
		}
		for k := range st.del {
			if err := tx.Delete(st.name(k)); err != nil && !isNotFound(err) {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("softtee: invoke %s: saving its sealed storage: %w", id, err)
	}
	return out, nil
}

// errChanged: the component changed between reading its digest and
// loading its code.
var errChanged = errors.New("softtee: component changed during the call")

// invokeCode runs component obj's code: by its remembered digest when its
// compiled module is cached (no image read), else read from the store.
func (t *TEE) invokeCode(ctx context.Context, rt *wasmta.Runtime, obj string, id suit.ComponentID, input []byte, st wasmta.Sealed) ([]byte, error) {
	read := func() ([]byte, error) {
		code, err := t.readComponent(obj, id, int64(rt.Limits().MaxCode))
		if err != nil {
			return nil, err
		}
		return code, runnable(id, code)
	}
	for attempt := 0; ; attempt++ {
		d, known, gen := t.run.digest(obj)
		load := func() ([]byte, error) {
			code, err := read()
			if err == nil && wasmta.Digest(code) != d {
				err = errChanged
			}
			return code, err
		}
		if !known {
			// First call since the TEE opened or the component changed.
			code, err := read()
			if err != nil {
				return nil, err
			}
			d = wasmta.Digest(code)
			load = func() ([]byte, error) { return code, nil }
		}
		out, err := rt.InvokeDigest(ctx, d, load, input, st)
		switch {
		case errors.Is(err, errChanged) && attempt == 0:
			continue
		case errors.Is(err, tee.ErrNotFound) || errors.Is(err, tee.ErrNotRunnable):
			return nil, err
		case err == nil || errors.Is(err, wasmta.ErrTrap) || errors.Is(err, wasmta.ErrTimeout):
			t.run.remember(obj, d, gen) // compiled: the next call needs no read
		}
		if err != nil {
			return nil, fmt.Errorf("softtee: invoke %s: %w", id, err)
		}
		return out, nil
	}
}

func (t *TEE) readComponent(obj string, id suit.ComponentID, max int64) ([]byte, error) {
	r, n, err := t.st.Open(obj)
	if err != nil {
		if isNotFound(err) {
			return nil, fmt.Errorf("%w: component %s is not installed", tee.ErrNotFound, id)
		}
		return nil, err
	}
	defer r.Close()
	if n > max {
		return nil, fmt.Errorf("%w: component %s is %d bytes, over the TA code limit of %d", tee.ErrNotRunnable, id, n, max)
	}
	code := make([]byte, n)
	if _, err := io.ReadFull(r, code); err != nil {
		return nil, fmt.Errorf("softtee: reading component %s: %w", id, err)
	}
	return code, nil
}

// runnable: a component runs when its image is a WebAssembly module
// (docs/trusted-apps.md says why the image, not the manifest, decides).
func runnable(id suit.ComponentID, code []byte) error {
	if !wasmta.IsWasm(code) {
		return fmt.Errorf("%w: component %s is not a WebAssembly module", tee.ErrNotRunnable, id)
	}
	return nil
}

// stagedSealed is a TA's namespace during one invocation: reads see the
// committed state under the TA's own writes, which are kept aside until
// the invocation succeeds.
type stagedSealed struct {
	base *store
	ns   string
	w    map[string][]byte
	del  map[string]bool
}

// name maps a TA key into its namespace; hex keeps any key one path
// element, so no key reaches out of the namespace.
func (s *stagedSealed) name(k string) string { return s.ns + hex.EncodeToString([]byte(k)) }

func (s *stagedSealed) Get(k string) ([]byte, error) {
	if v, ok := s.w[k]; ok {
		return v, nil
	}
	if s.del[k] {
		return nil, fmt.Errorf("%w: %s", tee.ErrNotFound, k)
	}
	return s.base.Get(s.name(k))
}

func (s *stagedSealed) Put(k string, v []byte) error {
	delete(s.del, k)
	s.w[k] = v
	return nil
}

func (s *stagedSealed) Delete(k string) error {
	delete(s.w, k)
	s.del[k] = true
	return nil
}

func isNotFound(err error) bool { return errors.Is(err, tee.ErrNotFound) }
