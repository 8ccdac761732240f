package storetest

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"io"
	"reflect"
	"testing"

	"github.com/teep-go/teep/suit"
	"github.com/teep-go/teep/suit/processor"
)

// Run runs the conformance suite; newStore must return an empty store.
func Run(t *testing.T, newStore func(t *testing.T) processor.ComponentStore) {
	for _, tc := range []struct {
		name string
		fn   func(*testing.T, processor.ComponentStore)
	}{
		{"Empty", testEmpty},
		{"CommitMakesVisible", testCommit},
		{"ReadYourWrites", testReadYourWrites},
		{"AbortDiscards", testAbort},
		{"ReplaceIsAtomic", testReplace},
		{"RemoveMissing", testRemoveMissing},
		{"UnclosedWriterDiscarded", testUnclosed},
		{"ManifestRoundTrip", testManifests},
		{"Streaming", testStreaming},
		{"FinishedTxnRefuses", testFinished},
	} {
		t.Run(tc.name, func(t *testing.T) { tc.fn(t, newStore(t)) })
	}
	// Optional capability: checked only for stores that have it.
	t.Run("SequenceKeeper", func(t *testing.T) {
		if s := newStore(t); implementsKeeper(s) {
			testSequenceKeeper(t, s)
		}
	})
}

// RunPersistent checks that committed state survives reopening and that a
// transaction abandoned without Commit (a crash) leaves nothing behind.
// reopen closes the given store if needed and opens the same storage again.
func RunPersistent(t *testing.T, newStore func(t *testing.T) processor.ComponentStore,
	reopen func(t *testing.T, s processor.ComponentStore) processor.ComponentStore) {
	ctx := context.Background()
	s := newStore(t)
	a, b := id("a"), id("b")
	txn := begin(t, s)
	put(t, txn, a, []byte("committed"))
	mustNil(t, txn.PutManifest(ctx, record("m", a)))
	mustNil(t, txn.Commit(ctx))

	// An abandoned transaction: staged writes, no commit, no abort.
	txn = begin(t, s)
	put(t, txn, a, []byte("never committed"))
	put(t, txn, b, []byte("never committed"))
	mustNil(t, txn.DeleteManifest(ctx, suit.NewComponentID("m")))

	s = reopen(t, s)
	if got := read(t, s, a); string(got) != "committed" {
		t.Errorf("after reopen %s = %q", a, got)
	}
	if _, _, err := s.Open(ctx, b); !errors.Is(err, processor.ErrNotFound) {
		t.Errorf("abandoned write visible after reopen: %v", err)
	}
	if _, err := s.Manifest(ctx, suit.NewComponentID("m")); err != nil {
		t.Errorf("abandoned delete applied: %v", err)
	}
	// The store is usable again.
	txn = begin(t, s)
	put(t, txn, b, []byte("b"))
	mustNil(t, txn.Commit(ctx))
	if got := read(t, s, b); string(got) != "b" {
		t.Errorf("after recovery %s = %q", b, got)
	}
}

func id(s string) suit.ComponentID {
	return suit.ComponentID{[]byte("storetest"), []byte(s), {0x00, 0xff}}
}

func record(name string, comps ...suit.ComponentID) *processor.ManifestRecord {
	d := sha256.Sum256([]byte(name))
	return &processor.ManifestRecord{
		ID: suit.NewComponentID(name), SequenceNumber: 42, Digest: suit.Digest{Alg: suit.AlgSHA256, Bytes: d[:]},
		Envelope: []byte{0xa2, 0x02, 0x40, 0x03, 0x40}, Root: true,
		Dependents:   []suit.ComponentID{suit.NewComponentID("dependent", name)},
		Dependencies: []suit.ComponentID{suit.NewComponentID("dependency", name)},
		Components:   comps,
	}
}

func mustNil(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

func begin(t *testing.T, s processor.ComponentStore) processor.Txn {
	t.Helper()
	txn, err := s.Begin(context.Background())
	mustNil(t, err)
	return txn
}

func put(t *testing.T, txn processor.Txn, cid suit.ComponentID, data []byte) {
	t.Helper()
	w, err := txn.Create(context.Background(), cid)
	mustNil(t, err)
	if _, err := w.Write(data); err != nil {
		t.Fatal(err)
	}
	mustNil(t, w.Close())
}

func readFrom(t *testing.T, open func(context.Context, suit.ComponentID) (io.ReadCloser, int64, error), cid suit.ComponentID) []byte {
	t.Helper()
	rc, n, err := open(context.Background(), cid)
	if err != nil {
		t.Fatalf("open %s: %v", cid, err)
	}
	defer rc.Close()
	b, err := io.ReadAll(rc)
	mustNil(t, err)
	if int64(len(b)) != n {
		t.Errorf("open %s: announced size %d, read %d", cid, n, len(b))
	}
	return b
}

func read(t *testing.T, s processor.ComponentStore, cid suit.ComponentID) []byte {
	return readFrom(t, s.Open, cid)
}

func testEmpty(t *testing.T, s processor.ComponentStore) {
	ctx := context.Background()
	if _, _, err := s.Open(ctx, id("x")); !errors.Is(err, processor.ErrNotFound) {
		t.Errorf("Open on empty store: %v", err)
	}
	if _, err := s.Manifest(ctx, suit.NewComponentID("x")); !errors.Is(err, processor.ErrNotFound) {
		t.Errorf("Manifest on empty store: %v", err)
	}
	if c, err := s.Components(ctx); err != nil || len(c) != 0 {
		t.Errorf("Components: %v %v", c, err)
	}
	if m, err := s.Manifests(ctx); err != nil || len(m) != 0 {
		t.Errorf("Manifests: %v %v", m, err)
	}
}

func testCommit(t *testing.T, s processor.ComponentStore) {
	ctx := context.Background()
	txn := begin(t, s)
	put(t, txn, id("a"), []byte("alpha"))
	mustNil(t, txn.PutManifest(ctx, record("m", id("a"))))
	if _, _, err := s.Open(ctx, id("a")); !errors.Is(err, processor.ErrNotFound) {
		t.Errorf("staged write visible outside the transaction: %v", err)
	}
	if _, err := s.Manifest(ctx, suit.NewComponentID("m")); !errors.Is(err, processor.ErrNotFound) {
		t.Errorf("staged manifest visible outside the transaction: %v", err)
	}
	mustNil(t, txn.Commit(ctx))
	if got := read(t, s, id("a")); string(got) != "alpha" {
		t.Errorf("after commit: %q", got)
	}
	comps, err := s.Components(ctx)
	mustNil(t, err)
	if len(comps) != 1 || !comps[0].ID.Equal(id("a")) || comps[0].Size != 5 {
		t.Errorf("Components: %+v", comps)
	}
}

func testReadYourWrites(t *testing.T, s processor.ComponentStore) {
	ctx := context.Background()
	txn := begin(t, s)
	put(t, txn, id("a"), []byte("one"))
	mustNil(t, txn.Commit(ctx))

	txn = begin(t, s)
	defer txn.Abort()
	if got := readFrom(t, txn.Open, id("a")); string(got) != "one" {
		t.Errorf("txn sees committed: %q", got)
	}
	put(t, txn, id("a"), []byte("two"))
	put(t, txn, id("a"), []byte("three")) // a second Create replaces the staged content
	if got := readFrom(t, txn.Open, id("a")); string(got) != "three" {
		t.Errorf("txn sees its write: %q", got)
	}
	put(t, txn, id("b"), []byte("bee"))
	mustNil(t, txn.Remove(ctx, id("b")))
	if _, _, err := txn.Open(ctx, id("b")); !errors.Is(err, processor.ErrNotFound) {
		t.Errorf("txn sees its removal: %v", err)
	}
	mustNil(t, txn.Remove(ctx, id("a")))
	if _, _, err := txn.Open(ctx, id("a")); !errors.Is(err, processor.ErrNotFound) {
		t.Errorf("txn sees removal of a committed component: %v", err)
	}
	put(t, txn, id("a"), []byte("four")) // re-create after removal
	if got := readFrom(t, txn.Open, id("a")); string(got) != "four" {
		t.Errorf("re-created: %q", got)
	}
	if got := read(t, s, id("a")); string(got) != "one" {
		t.Errorf("outside the txn: %q", got)
	}
}

func testAbort(t *testing.T, s processor.ComponentStore) {
	ctx := context.Background()
	txn := begin(t, s)
	put(t, txn, id("a"), []byte("keep"))
	mustNil(t, txn.PutManifest(ctx, record("m", id("a"))))
	mustNil(t, txn.Commit(ctx))
	mustNil(t, txn.Abort()) // no-op after commit

	txn = begin(t, s)
	put(t, txn, id("a"), []byte("drop"))
	put(t, txn, id("c"), []byte("drop"))
	mustNil(t, txn.DeleteManifest(ctx, suit.NewComponentID("m")))
	mustNil(t, txn.PutManifest(ctx, record("n")))
	mustNil(t, txn.Abort())
	mustNil(t, txn.Abort()) // twice is a no-op

	if got := read(t, s, id("a")); string(got) != "keep" {
		t.Errorf("after abort: %q", got)
	}
	if _, _, err := s.Open(ctx, id("c")); !errors.Is(err, processor.ErrNotFound) {
		t.Errorf("aborted create visible: %v", err)
	}
	if _, err := s.Manifest(ctx, suit.NewComponentID("m")); err != nil {
		t.Errorf("aborted delete applied: %v", err)
	}
	if _, err := s.Manifest(ctx, suit.NewComponentID("n")); !errors.Is(err, processor.ErrNotFound) {
		t.Errorf("aborted put applied: %v", err)
	}
	// A new transaction can start after an abort.
	txn = begin(t, s)
	mustNil(t, txn.Abort())
}

func testReplace(t *testing.T, s processor.ComponentStore) {
	ctx := context.Background()
	txn := begin(t, s)
	put(t, txn, id("a"), []byte("old"))
	put(t, txn, id("b"), []byte("old-b"))
	mustNil(t, txn.Commit(ctx))

	txn = begin(t, s)
	put(t, txn, id("a"), []byte("new"))
	mustNil(t, txn.Remove(ctx, id("b")))
	if got := read(t, s, id("a")); string(got) != "old" {
		t.Errorf("before commit: %q", got)
	}
	mustNil(t, txn.Commit(ctx))
	if got := read(t, s, id("a")); string(got) != "new" {
		t.Errorf("after commit: %q", got)
	}
	if _, _, err := s.Open(ctx, id("b")); !errors.Is(err, processor.ErrNotFound) {
		t.Errorf("removed component still there: %v", err)
	}
}

func testRemoveMissing(t *testing.T, s processor.ComponentStore) {
	txn := begin(t, s)
	defer txn.Abort()
	if err := txn.Remove(context.Background(), id("none")); !errors.Is(err, processor.ErrNotFound) {
		t.Errorf("Remove of a missing component: %v", err)
	}
}

func testUnclosed(t *testing.T, s processor.ComponentStore) {
	ctx := context.Background()
	txn := begin(t, s)
	w, err := txn.Create(ctx, id("half"))
	mustNil(t, err)
	if _, err := w.Write([]byte("partial")); err != nil {
		t.Fatal(err)
	}
	put(t, txn, id("whole"), []byte("whole"))
	mustNil(t, txn.Commit(ctx))
	if _, _, err := s.Open(ctx, id("half")); !errors.Is(err, processor.ErrNotFound) {
		t.Errorf("unclosed writer committed: %v", err)
	}
	if got := read(t, s, id("whole")); string(got) != "whole" {
		t.Errorf("closed writer: %q", got)
	}
}

func testManifests(t *testing.T, s processor.ComponentStore) {
	ctx := context.Background()
	want := record("m", id("a"), id("b"))
	other := record("other")
	other.Root, other.Dependents, other.Components = false, nil, nil
	txn := begin(t, s)
	mustNil(t, txn.PutManifest(ctx, want))
	mustNil(t, txn.PutManifest(ctx, other))
	mustNil(t, txn.Commit(ctx))
	got, err := s.Manifest(ctx, want.ID)
	mustNil(t, err)
	if !reflect.DeepEqual(normalize(got), normalize(want)) {
		t.Errorf("round trip:\n got %+v\nwant %+v", got, want)
	}
	got.Components[0][0][0] = 'X' // the store must hand out copies
	again, _ := s.Manifest(ctx, want.ID)
	if !again.Components[0].Equal(want.Components[0]) {
		t.Error("store returned a record aliasing its state")
	}
	all, err := s.Manifests(ctx)
	mustNil(t, err)
	if len(all) != 2 {
		t.Fatalf("Manifests: %d records", len(all))
	}
	// Replace and delete.
	want.SequenceNumber = 43
	txn = begin(t, s)
	mustNil(t, txn.PutManifest(ctx, want))
	mustNil(t, txn.DeleteManifest(ctx, other.ID))
	mustNil(t, txn.Commit(ctx))
	got, err = s.Manifest(ctx, want.ID)
	mustNil(t, err)
	if got.SequenceNumber != 43 {
		t.Errorf("replaced record has sequence %d", got.SequenceNumber)
	}
	if _, err := s.Manifest(ctx, other.ID); !errors.Is(err, processor.ErrNotFound) {
		t.Errorf("deleted record: %v", err)
	}
}

// normalize maps empty slices to nil so stores may return either.
func normalize(r *processor.ManifestRecord) *processor.ManifestRecord {
	c := r.Clone()
	for _, p := range []*[]suit.ComponentID{&c.Dependents, &c.Dependencies, &c.Components} {
		if len(*p) == 0 {
			*p = nil
		}
	}
	return c
}

func testStreaming(t *testing.T, s processor.ComponentStore) {
	ctx := context.Background()
	const size = 8 << 20
	chunk := bytes.Repeat([]byte("0123456789abcdef"), 4096)
	txn := begin(t, s)
	w, err := txn.Create(ctx, id("big"))
	mustNil(t, err)
	h := sha256.New()
	for n := 0; n < size; n += len(chunk) {
		chunk[0] = byte(n >> 16)
		h.Write(chunk)
		if _, err := w.Write(chunk); err != nil {
			t.Fatal(err)
		}
	}
	mustNil(t, w.Close())
	mustNil(t, txn.Commit(ctx))
	rc, n, err := s.Open(ctx, id("big"))
	mustNil(t, err)
	defer rc.Close()
	h2 := sha256.New()
	m, err := io.Copy(h2, rc)
	mustNil(t, err)
	if n != size || m != size || !bytes.Equal(h.Sum(nil), h2.Sum(nil)) {
		t.Errorf("streamed component: size %d/%d, digest mismatch %v", n, m, !bytes.Equal(h.Sum(nil), h2.Sum(nil)))
	}
}

func testFinished(t *testing.T, s processor.ComponentStore) {
	ctx := context.Background()
	txn := begin(t, s)
	mustNil(t, txn.Commit(ctx))
	if _, err := txn.Create(ctx, id("late")); err == nil {
		t.Error("Create after Commit succeeded")
	}
	if err := txn.Commit(ctx); err == nil {
		t.Error("second Commit succeeded")
	}
	if _, _, err := s.Open(ctx, id("late")); !errors.Is(err, processor.ErrNotFound) {
		t.Errorf("late write visible: %v", err)
	}
}

// testSequenceKeeper checks stores that implement processor.SequenceKeeper:
// the highest committed sequence number survives the record's deletion and
// aborted transactions do not change it.
func testSequenceKeeper(t *testing.T, s processor.ComponentStore) {
	k := s.(processor.SequenceKeeper)
	ctx := context.Background()
	rec := record("seq")
	if got := k.HighestSequence(rec.ID); got != 0 {
		t.Fatalf("empty store: %d", got)
	}
	txn := begin(t, s)
	mustNil(t, txn.PutManifest(ctx, rec))
	mustNil(t, txn.Commit(ctx))
	txn = begin(t, s)
	rec.SequenceNumber = 99
	mustNil(t, txn.PutManifest(ctx, rec))
	mustNil(t, txn.Abort())
	if got := k.HighestSequence(rec.ID); got != 42 {
		t.Fatalf("after abort: %d, want 42", got)
	}
	txn = begin(t, s)
	mustNil(t, txn.DeleteManifest(ctx, rec.ID))
	mustNil(t, txn.Commit(ctx))
	if got := k.HighestSequence(rec.ID); got != 42 {
		t.Fatalf("after delete: %d, want 42", got)
	}
}

func implementsKeeper(s processor.ComponentStore) bool {
	_, ok := s.(processor.SequenceKeeper)
	return ok
}
