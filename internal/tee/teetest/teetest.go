package teetest

import (
	"context"
	"errors"
	"testing"

	"github.com/teep-go/teep/internal/tee"
)

// Backend is one TEE under test, on fresh state of its own, and the hooks
// the suite attacks it with. Every field is required.
type Backend struct {
	// Open opens the TEE on this Backend's state, creating the state on
	// the first call. The suite closes each TEE it opens before it calls
	// Open again; an Open that detects tampering or rollback returns the
	// error (tee.ErrTampered, tee.ErrRollback).
	Open func() (tee.TEE, error)
	// Tamper alters, at rest, the sealed bytes of the committed object
	// name, as an attacker with access to where the backend keeps its
	// state (files, flash, host memory) would: a flipped bit in its
	// ciphertext or authentication tag. The TEE may be open.
	Tamper func(t *testing.T, name string)
	// Snapshot copies the state an attacker can copy and later put back;
	// restore puts the copy back while the TEE is closed. What lies out of
	// an attacker's reach (a hardware monotonic counter, RPMB, or the file
	// the software TEE uses in its place) is not copied: that is what makes
	// the replay detectable.
	Snapshot func(t *testing.T) (restore func(t *testing.T))
	// FailNextCommit arms a fault: the next Commit fails with err after it
	// has started writing and before its commit point, as a power cut or a
	// failing write would. The fault fires once.
	FailNextCommit func(err error)
	// Secrets returns the private key material of the open TEE (the Agent
	// key, the key-agreement keys, the attestation key), as raw scalars or
	// seeds of at least 16 bytes each. The suite only searches for them in
	// what the interface returns.
	Secrets func(t *testing.T, tt tee.TEE) [][]byte
	// StreamSize is the size of the object the streaming test writes; 0
	// means DefaultStreamSize. It must exceed the memory bound the test
	// checks (StreamSize/4) many times over the backend's chunk size.
	StreamSize int64
}

// DefaultStreamSize is the streaming test's object size: large enough that
// holding it in memory shows, small enough for a 2-core CI.
const DefaultStreamSize = 16 << 20

// NewBackend returns a Backend on fresh state.
type NewBackend func(t *testing.T) *Backend

// Run runs the whole suite, one subtest group per promise.
func Run(t *testing.T, newBackend NewBackend) {
	groups := []struct {
		name  string
		tests []test
	}{
		{"Tamper", []test{
			{"SmallObject", testTamperSmall},
			{"StreamedObject", testTamperStream},
		}},
		{"Rollback", []test{
			{"ReplayedState", testRollbackReplay},
			{"CounterMonotonic", testCounterMonotonic},
		}},
		{"Atomicity", []test{
			{"FailedCommit", testFailedCommit},
			{"ErrorInTransaction", testErrorInTransaction},
			{"PanicInTransaction", testPanicInTransaction},
			{"AbortedTransaction", testAbortedTransaction},
			{"UnclosedWriter", testUnclosedWriter},
			{"Isolation", testIsolation},
		}},
		{"Streaming", []test{{"LargeObject", testStreaming}}},
		{"Keys", []test{
			{"InterfaceTypes", testKeyTypes},
			{"ConcreteMethods", testKeyMethods},
			{"ReturnedValues", testKeyValues},
		}},
	}
	for _, g := range groups {
		t.Run(g.name, func(t *testing.T) {
			for _, tc := range g.tests {
				t.Run(tc.name, func(t *testing.T) {
					b := newBackend(t)
					checkBackend(t, b)
					h := &harness{b: b}
					t.Cleanup(h.close)
					h.open(t)
					tc.fn(t, h)
				})
			}
		})
	}
}

type test struct {
	name string
	fn   func(t *testing.T, h *harness)
}

func checkBackend(t *testing.T, b *Backend) {
	t.Helper()
	if b == nil || b.Open == nil || b.Tamper == nil || b.Snapshot == nil || b.FailNextCommit == nil || b.Secrets == nil {
		t.Fatal("teetest: Backend needs Open, Tamper, Snapshot, FailNextCommit and Secrets")
	}
}

// harness tracks the open TEE so each test can close and reopen it.
type harness struct {
	b  *Backend
	tt tee.TEE
}

var ctx = context.Background()

func (h *harness) open(t *testing.T) tee.TEE {
	t.Helper()
	tt, err := h.reopen()
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	return tt
}

// reopen closes the TEE if open and opens it again, returning Open's error.
func (h *harness) reopen() (tee.TEE, error) {
	h.close()
	tt, err := h.b.Open()
	if err != nil {
		return nil, err
	}
	h.tt = tt
	return tt, nil
}

func (h *harness) close() {
	if h.tt != nil {
		h.tt.Close()
		h.tt = nil
	}
}

func (h *harness) st() tee.Storage { return h.tt.Storage() }

// Put stores name/value pairs kv in one transaction, failing t on error.
func Put(t *testing.T, st tee.Storage, kv ...string) {
	t.Helper()
	err := tee.Update(ctx, st, func(tx tee.Tx) error {
		for i := 0; i < len(kv); i += 2 {
			if err := tx.Put(kv[i], []byte(kv[i+1])); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		t.Fatalf("Update: %v", err)
	}
}

// MustGet fails t unless name holds want.
func MustGet(t *testing.T, st tee.Storage, name, want string) {
	t.Helper()
	got, err := st.Get(name)
	if err != nil {
		t.Fatalf("Get(%q): %v", name, err)
	}
	if string(got) != want {
		t.Fatalf("Get(%q) = %q, want %q", name, got, want)
	}
}

func mustBeGone(t *testing.T, st tee.Storage, name string) {
	t.Helper()
	if got, err := st.Get(name); !errors.Is(err, tee.ErrNotFound) {
		t.Fatalf("Get(%q) = %q, %v; want tee.ErrNotFound", name, got, err)
	}
}
