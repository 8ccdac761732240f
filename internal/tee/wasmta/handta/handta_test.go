package handta

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"

	"github.com/tetratelabs/wazero"

	"github.com/teep-go/teep/internal/tee"
	"github.com/teep-go/teep/internal/tee/wasmta"
)

type mem struct {
	mu sync.Mutex
	m  map[string][]byte
}

func (s *mem) Get(k string) ([]byte, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	v, ok := s.m[k]
	if !ok {
		return nil, fmt.Errorf("%w: %s", tee.ErrNotFound, k)
	}
	return v, nil
}

func (s *mem) Put(k string, v []byte) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.m[k] = v
	return nil
}

func (s *mem) Delete(k string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.m, k)
	return nil
}

func runtime(t *testing.T) *wasmta.Runtime {
	r, err := wasmta.New(context.Background(), wasmta.Limits{}, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.Close(context.Background()) })
	return r
}

// TestCounter: the hand-assembled counter counts across invocations in
// its sealed storage, past one decimal digit, and keeps the count when
// replaced by another version (same storage, new code).
func TestCounter(t *testing.T) {
	r := runtime(t)
	ctx := context.Background()
	st := &mem{m: map[string][]byte{}}
	v1, v2 := Counter("1"), Counter("2")
	for _, code := range [][]byte{v1, v2} {
		if err := r.Compile(ctx, code); err != nil {
			t.Fatal(err)
		}
	}
	for i := 1; i <= 12; i++ {
		out, err := r.Invoke(ctx, v1, nil, st)
		if want := fmt.Sprintf("counter v1: %d", i); err != nil || string(out) != want {
			t.Fatalf("call %d: %q %v, want %q", i, out, err, want)
		}
	}
	if out, err := r.Invoke(ctx, v2, nil, st); err != nil || string(out) != "counter v2: 13" {
		t.Fatalf("v2: %q %v", out, err)
	}
	if v := st.m["count"]; len(v) != 8 || v[0] != 13 {
		t.Fatalf("stored %x", v)
	}
	// A value of the wrong size is not a counter: the TA fails.
	st.m["count"] = []byte("bad")
	if _, err := r.Invoke(ctx, v1, nil, st); !errors.Is(err, wasmta.ErrTrap) {
		t.Fatalf("bad stored value: %v", err)
	}
}

func TestEchoAndTrap(t *testing.T) {
	r := runtime(t)
	ctx := context.Background()
	st := &mem{m: map[string][]byte{}}
	if out, err := r.Invoke(ctx, Echo(), []byte("hello"), st); err != nil || string(out) != "hello" {
		t.Fatalf("echo: %q %v", out, err)
	}
	if out, err := r.Invoke(ctx, Echo(), nil, st); err != nil || len(out) != 0 {
		t.Fatalf("echo empty: %q %v", out, err)
	}
	if _, err := r.Invoke(ctx, Trap(), nil, st); !errors.Is(err, wasmta.ErrTrap) {
		t.Fatalf("trap: %v", err)
	}
}

func TestLEB(t *testing.T) {
	for _, c := range []struct {
		v    int64
		want string
	}{{0, "00"}, {63, "3f"}, {64, "c000"}, {-1, "7f"}, {-64, "40"}, {-65, "bf7f"}, {65536, "808004"}} {
		if got := fmt.Sprintf("%x", sleb(nil, c.v)); got != c.want {
			t.Errorf("sleb(%d) = %s, want %s", c.v, got, c.want)
		}
	}
	if got := fmt.Sprintf("%x", uleb(nil, 624485)); got != "e58e26" {
		t.Errorf("uleb(624485) = %s", got)
	}
}

// TestMemoryPages: every module declares MemoryPages of memory, as
// `teep bench` states in its memory row.
func TestMemoryPages(t *testing.T) {
	ctx := context.Background()
	rt := wazero.NewRuntime(ctx)
	defer rt.Close(ctx)
	for name, code := range map[string][]byte{"echo": Echo(), "trap": Trap(), "counter": Counter("1")} {
		m, err := rt.CompileModule(ctx, code)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		mem := m.ExportedMemories()["memory"]
		if mem == nil {
			t.Fatalf("%s: no exported memory", name)
		}
		if max, bounded := mem.Max(); mem.Min() != MemoryPages || bounded {
			t.Errorf("%s: memory of %d pages, max %d (%v)", name, mem.Min(), max, bounded)
		}
	}
}
