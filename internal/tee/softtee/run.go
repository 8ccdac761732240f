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
	locks map[string]*sync.Mutex // one per component: its invocations are serialized
}

func (t *TEE) runtime(ctx context.Context) (*wasmta.Runtime, error) {
	t.run.once.Do(func() {
		t.run.rt, t.run.err = wasmta.New(context.WithoutCancel(ctx), t.taLimits, t.taLog)
	})
	return t.run.rt, t.run.err
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

	code, err := t.readComponent(obj, id, int64(rt.Limits().MaxCode))
	if err != nil {
		return nil, err
	}
	if err := runnable(id, code); err != nil {
		return nil, err
	}
	st := &stagedSealed{base: t.st, ns: taNamespace(obj), w: map[string][]byte{}, del: map[string]bool{}}
	out, err := rt.Invoke(ctx, code, input, st)
	if err != nil {
		return nil, fmt.Errorf("softtee: invoke %s: %w", id, err)
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
