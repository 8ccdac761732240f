package softtee

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/teep-go/teep/internal/tee"
	"github.com/teep-go/teep/internal/tee/wasmta"
	"github.com/teep-go/teep/internal/tee/wasmta/tabuild"
	"github.com/teep-go/teep/suit"
)

// install writes image as component id the way the component store does
// (a SUIT install is tested end to end in internal/agent).
func install(t *testing.T, tt *TEE, id suit.ComponentID, image []byte) {
	t.Helper()
	err := tee.Update(context.Background(), tt.Storage(), func(tx tee.Tx) error {
		// An update deletes and rewrites the image in one transaction.
		if err := tx.Delete(tee.ComponentObject(id)); err != nil && !errors.Is(err, tee.ErrNotFound) {
			return err
		}
		return tx.Put(tee.ComponentObject(id), image)
	})
	if err != nil {
		t.Fatal(err)
	}
}

func remove(t *testing.T, tt *TEE, id suit.ComponentID) {
	t.Helper()
	err := tee.Update(context.Background(), tt.Storage(), func(tx tee.Tx) error {
		return tx.Delete(tee.ComponentObject(id))
	})
	if err != nil {
		t.Fatal(err)
	}
}

func call(t *testing.T, tt *TEE, id suit.ComponentID, in string) string {
	t.Helper()
	out, err := tt.Invoke(context.Background(), id, []byte(in))
	if err != nil {
		t.Fatalf("invoke %s %q: %v", id, in, err)
	}
	return string(out)
}

func TestInvokeTrustedApplications(t *testing.T) {
	code := tabuild.Build(t, "../wasmta/testdata/ta")
	dir := t.TempDir()
	tt := openTEE(t, dir, Options{TALimits: wasmta.Limits{MemoryPages: 256}})
	ctx := context.Background()
	a := suit.NewComponentID("ta", "a")
	b := suit.NewComponentID("ta", "b")
	data := suit.NewComponentID("data")

	if _, err := tt.Invoke(ctx, a, nil); !errors.Is(err, tee.ErrNotFound) {
		t.Errorf("unknown component: %v", err)
	}
	install(t, tt, data, []byte("just data"))
	if _, err := tt.Invoke(ctx, data, nil); !errors.Is(err, tee.ErrNotRunnable) {
		t.Errorf("data component: %v", err)
	}
	install(t, tt, a, code)
	install(t, tt, b, code)

	call(t, tt, a, "put secret=of-a")
	if got := call(t, tt, a, "get secret"); got != "of-a" {
		t.Errorf("a reads its own key: %q", got)
	}
	if got := call(t, tt, b, "get secret"); got != "<none>" {
		t.Errorf("b read a's key: %q", got)
	}
	// Rich-OS callers of the TEE's storage do not see TA state either.
	if names := tt.Storage().List(""); len(names) == 0 || strings.Contains(strings.Join(names, " "), taPrefix) {
		t.Errorf("caller storage lists %v", names)
	}
	for _, name := range tt.st.List(taPrefix) {
		if _, err := tt.Storage().Get(name); !errors.Is(err, tee.ErrNotFound) {
			t.Errorf("caller Get %s: %v", name, err)
		}
	}

	// A failing invocation keeps nothing it wrote.
	if _, err := tt.Invoke(ctx, a, []byte("putfail secret=lost")); !errors.Is(err, wasmta.ErrTrap) {
		t.Errorf("putfail: %v", err)
	}
	if got := call(t, tt, a, "get secret"); got != "of-a" {
		t.Errorf("after a failed invocation: %q", got)
	}

	// An update keeps the state; reopening keeps it too.
	install(t, tt, a, code)
	if got := call(t, tt, a, "get secret"); got != "of-a" {
		t.Errorf("after update: %q", got)
	}
	tt.Close()
	tt = openTEE(t, dir, Options{})
	if got := call(t, tt, a, "get secret"); got != "of-a" {
		t.Errorf("after reopen: %q", got)
	}

	// Removal takes the state with it; b keeps its own.
	call(t, tt, b, "put mine=b")
	remove(t, tt, a)
	if _, err := tt.Invoke(ctx, a, []byte("get secret")); !errors.Is(err, tee.ErrNotFound) {
		t.Errorf("removed component: %v", err)
	}
	ns := taNamespace(tee.ComponentObject(a))
	if left := tt.st.List(ns); len(left) != 0 {
		t.Errorf("state of removed a left: %v", left)
	}
	install(t, tt, a, code)
	if got := call(t, tt, a, "get secret"); got != "<none>" {
		t.Errorf("reinstalled a sees old state: %q", got)
	}
	if got := call(t, tt, b, "get mine"); got != "b" {
		t.Errorf("b after a's removal: %q", got)
	}
}
