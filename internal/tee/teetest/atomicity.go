package teetest

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/teep-go/teep/internal/tee"
)

// seed writes the state every atomicity test starts from.
func seed(t *testing.T, h *harness) {
	t.Helper()
	Put(t, h.st(), "at/a", "a1", "at/b", "b1")
	if err := tee.Update(ctx, h.st(), func(tx tee.Tx) error { return tx.SetCounter("at/c", 3) }); err != nil {
		t.Fatal(err)
	}
}

// unchanged checks the seeded state, on the open TEE and after reopening.
func unchanged(t *testing.T, h *harness) {
	t.Helper()
	for i := 0; i < 2; i++ {
		st := h.st()
		MustGet(t, st, "at/a", "a1")
		MustGet(t, st, "at/b", "b1")
		mustBeGone(t, st, "at/new")
		mustBeGone(t, st, "at/stream")
		if got := st.Counter("at/c"); got != 3 {
			t.Fatalf("counter = %d, want 3", got)
		}
		if got := st.List("at/"); len(got) != 2 {
			t.Fatalf("List = %q, want the two seeded objects", got)
		}
		h.open(t)
	}
	// The store still works after the interruption.
	Put(t, h.st(), "at/a", "a2")
	MustGet(t, h.st(), "at/a", "a2")
}

// everything writes, deletes, streams and counts: every kind of change a
// transaction can make.
func everything(tx tee.Tx) error {
	if err := tx.Put("at/a", []byte("a2")); err != nil {
		return err
	}
	if err := tx.Put("at/new", []byte("n")); err != nil {
		return err
	}
	if err := tx.Delete("at/b"); err != nil {
		return err
	}
	w, err := tx.Create("at/stream")
	if err != nil {
		return err
	}
	if _, err := w.Write(make([]byte, 200<<10)); err != nil {
		w.Close()
		return err
	}
	if err := w.Close(); err != nil {
		return err
	}
	return tx.SetCounter("at/c", 9)
}

func testFailedCommit(t *testing.T, h *harness) {
	seed(t, h)
	fault := errors.New("teetest: injected fault")
	h.b.FailNextCommit(fault)
	if err := tee.Update(ctx, h.st(), everything); !errors.Is(err, fault) {
		t.Fatalf("Update with a failing commit: %v; want the injected fault", err)
	}
	unchanged(t, h)
}

func testErrorInTransaction(t *testing.T, h *harness) {
	seed(t, h)
	stop := errors.New("teetest: stop")
	err := tee.Update(ctx, h.st(), func(tx tee.Tx) error {
		if err := everything(tx); err != nil {
			return err
		}
		return stop
	})
	if !errors.Is(err, stop) {
		t.Fatalf("Update = %v", err)
	}
	unchanged(t, h)
}

func testPanicInTransaction(t *testing.T, h *harness) {
	seed(t, h)
	func() {
		defer func() {
			if recover() == nil {
				t.Fatal("no panic")
			}
		}()
		tee.Update(ctx, h.st(), func(tx tee.Tx) error {
			if err := everything(tx); err != nil {
				return err
			}
			panic("teetest: panic inside a transaction")
		})
	}()
	// The panicking transaction must have ended: a new one starts. The
	// deadline only turns a hang into a failure.
	c, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	txn, err := h.st().Begin(c)
	if err != nil {
		t.Fatalf("Begin after a panicking transaction: %v", err)
	}
	txn.Abort()
	unchanged(t, h)
}

func testAbortedTransaction(t *testing.T, h *harness) {
	seed(t, h)
	txn, err := h.st().Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if err := everything(txn); err != nil {
		t.Fatal(err)
	}
	if err := txn.Abort(); err != nil {
		t.Fatalf("Abort: %v", err)
	}
	if err := txn.Abort(); err != nil {
		t.Fatalf("second Abort: %v", err)
	}
	unchanged(t, h)
}

func testUnclosedWriter(t *testing.T, h *harness) {
	seed(t, h)
	err := tee.Update(ctx, h.st(), func(tx tee.Tx) error {
		w, err := tx.Create("at/stream")
		if err != nil {
			return err
		}
		_, err = w.Write([]byte("half an object"))
		return err // never closed: discarded
	})
	if err != nil {
		t.Fatalf("Update: %v", err)
	}
	unchanged(t, h)
}

func testIsolation(t *testing.T, h *harness) {
	seed(t, h)
	txn, err := h.st().Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer txn.Abort()
	if err := everything(txn); err != nil {
		t.Fatal(err)
	}
	// The transaction reads its own writes ...
	if got, err := txn.Get("at/a"); err != nil || string(got) != "a2" {
		t.Fatalf("Tx.Get(at/a) = %q, %v; want its own write", got, err)
	}
	if _, err := txn.Get("at/b"); !errors.Is(err, tee.ErrNotFound) {
		t.Fatalf("Tx.Get(at/b) after its own Delete: %v", err)
	}
	if got := txn.Counter("at/c"); got != 9 {
		t.Fatalf("Tx.Counter = %d, want 9", got)
	}
	// ... and nobody else sees them before Commit.
	st := h.st()
	MustGet(t, st, "at/a", "a1")
	MustGet(t, st, "at/b", "b1")
	mustBeGone(t, st, "at/new")
	if got := st.Counter("at/c"); got != 3 {
		t.Fatalf("Counter before Commit = %d", got)
	}
	if err := txn.Commit(); err != nil {
		t.Fatalf("Commit: %v", err)
	}
	for i := 0; i < 2; i++ {
		st := h.st()
		MustGet(t, st, "at/a", "a2")
		MustGet(t, st, "at/new", "n")
		mustBeGone(t, st, "at/b")
		if got := st.Counter("at/c"); got != 9 {
			t.Fatalf("Counter after Commit = %d", got)
		}
		h.open(t)
	}
}
