package wasmta

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tetratelabs/wazero"

	"github.com/teep-go/teep/internal/tee"
	"github.com/teep-go/teep/internal/tee/wasmta/tabuild"
)

func buildTA(t testing.TB, dir string) []byte { return tabuild.Build(t, dir) }

// testCache is shared by the tests' runtimes: compiling the Go test TA
// is most of their time (under -race, seconds per compilation), and
// what each test checks is running it, not compiling it again.
var testCache = wazero.NewCompilationCache()

type memSealed struct {
	mu sync.Mutex
	m  map[string][]byte
}

func newMem() *memSealed { return &memSealed{m: map[string][]byte{}} }

func (s *memSealed) Get(k string) ([]byte, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	v, ok := s.m[k]
	if !ok {
		return nil, fmt.Errorf("%w: %s", tee.ErrNotFound, k)
	}
	return v, nil
}

func (s *memSealed) Put(k string, v []byte) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.m[k] = v
	return nil
}

func (s *memSealed) Delete(k string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.m, k)
	return nil
}

type logBuf struct {
	mu sync.Mutex
	bytes.Buffer
}

func (l *logBuf) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.Buffer.Write(p)
}

func (l *logBuf) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.Buffer.String()
}

func newRuntime(t *testing.T, lim Limits) (*Runtime, *logBuf) {
	t.Helper()
	lb := &logBuf{}
	r, err := newCachedRuntime(context.Background(), lim, slog.New(slog.NewTextHandler(lb, nil)), testCache)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.Close(context.Background()) })
	return r, lb
}

func invoke(t *testing.T, r *Runtime, code []byte, st Sealed, in string) string {
	t.Helper()
	out, err := r.Invoke(context.Background(), code, []byte(in), st)
	if err != nil {
		t.Fatalf("invoke %q: %v", in, err)
	}
	return string(out)
}

func TestHostABI(t *testing.T) {
	code := buildTA(t, "testdata/ta")
	r, lb := newRuntime(t, Limits{})
	if err := r.Compile(context.Background(), code); err != nil {
		t.Fatal(err)
	}
	st := newMem()
	if got := invoke(t, r, code, st, "echo hello"); got != "hello" {
		t.Errorf("echo: %q", got)
	}
	if got := invoke(t, r, code, st, "get k"); got != "<none>" {
		t.Errorf("get before put: %q", got)
	}
	if got := invoke(t, r, code, st, "put k="+strings.Repeat("v", 100)); got != "ok" {
		t.Errorf("put: %q", got)
	}
	// 100 bytes is more than the TA's first buffer: it asks again.
	if got := invoke(t, r, code, st, "get k"); got != strings.Repeat("v", 100) {
		t.Errorf("get after put: %q", got)
	}
	invoke(t, r, code, st, "del k")
	if _, err := st.Get("k"); !errors.Is(err, tee.ErrNotFound) {
		t.Errorf("after del: %v", err)
	}
	a := invoke(t, r, code, st, "random")
	b := invoke(t, r, code, st, "random")
	if len(a) != 16 || a == b || a == string(make([]byte, 16)) {
		t.Errorf("random: %x %x", a, b)
	}
	if got := invoke(t, r, code, st, "time"); got != "ok" {
		t.Errorf("time: %q", got)
	}
	invoke(t, r, code, st, "log marker-1")
	if s := lb.String(); !strings.Contains(s, "log=marker-1") || !strings.Contains(s, "stderr: marker-1") {
		t.Errorf("log lines missing:\n%s", s)
	}
}

func TestFailuresAreContained(t *testing.T) {
	code := buildTA(t, "testdata/ta")
	// The looping TA has its own runtime with a short time limit; the
	// others a long one, so that a slow machine cannot turn a memory trap
	// into a timeout.
	short, _ := newRuntime(t, Limits{Timeout: time.Second})
	r, _ := newRuntime(t, Limits{Timeout: 5 * time.Minute, MemoryPages: 256, MaxOutput: 1 << 20})
	st := newMem()
	other := newMem()
	cases := []struct {
		r    *Runtime
		in   string
		want error
	}{
		{short, "loop", ErrTimeout},
		{r, "alloc", ErrTrap},
		{r, "trap", ErrTrap},
		{r, "big", ErrTrap},
	}
	var wg sync.WaitGroup
	for _, c := range cases {
		wg.Go(func() {
			_, err := c.r.Invoke(context.Background(), code, []byte(c.in), st)
			if !errors.Is(err, c.want) {
				t.Errorf("%s: got %v, want %v", c.in, err, c.want)
			}
		})
	}
	// While those fail, another TA's state works as usual.
	wg.Go(func() {
		if got, err := r.Invoke(context.Background(), code, []byte("put x=1"), other); err != nil || string(got) != "ok" {
			t.Errorf("other TA: %q %v", got, err)
		}
	})
	wg.Wait()
	if got := invoke(t, r, code, other, "get x"); got != "1" {
		t.Errorf("other TA after failures: %q", got)
	}
	if got := invoke(t, short, code, st, "echo still"); got != "still" {
		t.Errorf("same TA after failures: %q", got)
	}
}

func TestConcurrencyBound(t *testing.T) {
	code := buildTA(t, "testdata/ta")
	r, _ := newRuntime(t, Limits{Timeout: time.Second, MaxConcurrent: 1})
	ctx := context.Background()
	if err := r.Compile(ctx, code); err != nil {
		t.Fatal(err)
	}
	started := make(chan struct{})
	done := make(chan error, 1)
	go func() {
		close(started)
		_, err := r.Invoke(ctx, code, []byte("loop"), newMem())
		done <- err
	}()
	<-started
	// Wait until the looping TA holds the only slot, then a caller whose
	// context ends while waiting gets the context's error, not a run.
	for len(r.sem) == 0 {
		time.Sleep(time.Millisecond)
	}
	wctx, cancel := context.WithCancel(ctx)
	cancel()
	if _, err := r.Invoke(wctx, code, []byte("echo x"), newMem()); !errors.Is(err, context.Canceled) {
		t.Errorf("waiting caller: %v", err)
	}
	if err := <-done; !errors.Is(err, ErrTimeout) {
		t.Errorf("loop: %v", err)
	}
}

func TestNamespacesAreSeparate(t *testing.T) {
	code := buildTA(t, "testdata/ta")
	r, _ := newRuntime(t, Limits{})
	a, b := newMem(), newMem()
	invoke(t, r, code, a, "put secret=a")
	if got := invoke(t, r, code, b, "get secret"); got != "<none>" {
		t.Errorf("TA b read TA a's key: %q", got)
	}
}

func TestBadInput(t *testing.T) {
	r, _ := newRuntime(t, Limits{MaxInput: 8, MaxCode: 1 << 10})
	ctx := context.Background()
	if _, err := r.Invoke(ctx, []byte("not wasm"), nil, newMem()); !errors.Is(err, ErrInvalid) {
		t.Errorf("no magic: %v", err)
	}
	if _, err := r.Invoke(ctx, append([]byte("\x00asm\x01\x00\x00\x00"), 0xff, 0xff), nil, newMem()); !errors.Is(err, ErrInvalid) {
		t.Errorf("bad module: %v", err)
	}
	if _, err := r.Invoke(ctx, make([]byte, 2<<10), nil, newMem()); !errors.Is(err, ErrInvalid) {
		t.Errorf("over MaxCode: %v", err)
	}
	if _, err := r.Invoke(ctx, Magic, make([]byte, 9), newMem()); !errors.Is(err, ErrInputTooLarge) {
		t.Errorf("over MaxInput: %v", err)
	}
}
