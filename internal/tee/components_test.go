package tee_test

import (
	"context"
	"errors"
	"io"
	"reflect"
	"testing"

	"github.com/teep-go/teep/internal/tee"
	"github.com/teep-go/teep/internal/tee/softtee"
	"github.com/teep-go/teep/suit"
	"github.com/teep-go/teep/suit/processor"
	"github.com/teep-go/teep/suit/processor/storetest"
)

func newStore(t *testing.T) (*tee.ComponentStore, *softtee.TEE, string) {
	t.Helper()
	dir := t.TempDir()
	tt, err := softtee.Open(dir, softtee.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { tt.Close() })
	return tee.NewComponentStore(tt.Storage()), tt, dir
}

func record(id suit.ComponentID, seq uint64) *processor.ManifestRecord {
	return &processor.ManifestRecord{
		ID: id, SequenceNumber: seq, Digest: suit.Digest{Alg: -16, Bytes: []byte{1, 2, 3}},
		Envelope: []byte{0xa0}, Root: true, Dependents: []suit.ComponentID{},
		Components: []suit.ComponentID{suit.NewComponentID("TEEP-Device", "app")},
	}
}

func write(t *testing.T, txn processor.Txn, id suit.ComponentID, data string) {
	t.Helper()
	w, err := txn.Create(context.Background(), id)
	if err != nil {
		t.Fatal(err)
	}
	io.WriteString(w, data)
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
}

func read(t *testing.T, open func(context.Context, suit.ComponentID) (io.ReadCloser, int64, error), id suit.ComponentID) (string, error) {
	t.Helper()
	r, n, err := open(context.Background(), id)
	if err != nil {
		return "", err
	}
	defer r.Close()
	b, err := io.ReadAll(r)
	if int64(len(b)) != n {
		t.Fatalf("size %d, read %d", n, len(b))
	}
	return string(b), err
}

func TestComponentStoreRoundTrip(t *testing.T) {
	cs, tt, dir := newStore(t)
	ctx := context.Background()
	app := suit.NewComponentID("TEEP-Device", "app")
	man := suit.NewComponentID("TEEP-Device", "app", "suit")
	txn, err := cs.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	write(t, txn, app, "binary v1")
	if got, err := read(t, txn.Open, app); err != nil || got != "binary v1" {
		t.Fatalf("read-your-writes: %q %v", got, err)
	}
	if _, err := read(t, cs.Open, app); !errors.Is(err, processor.ErrNotFound) {
		t.Fatalf("uncommitted write visible: %v", err)
	}
	rec := record(man, 1)
	if err := txn.PutManifest(ctx, rec); err != nil {
		t.Fatal(err)
	}
	if err := txn.Commit(ctx); err != nil {
		t.Fatal(err)
	}
	tt.Close()
	tt2, err := softtee.Open(dir, softtee.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer tt2.Close()
	cs = tee.NewComponentStore(tt2.Storage())
	got, err := cs.Manifest(ctx, man)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got, rec) {
		t.Fatalf("record round trip:\n got %#v\nwant %#v", got, rec)
	}
	comps, err := cs.Components(ctx)
	if err != nil || len(comps) != 1 || !comps[0].ID.Equal(app) || comps[0].Size != 9 {
		t.Fatalf("Components = %+v, %v", comps, err)
	}
	all, err := cs.Manifests(ctx)
	if err != nil || len(all) != 1 {
		t.Fatalf("Manifests = %v, %v", all, err)
	}
	if cs.HighestSequence(man) != 1 {
		t.Fatal("sequence counter not set")
	}
}

func TestComponentStoreAbortAndNotFound(t *testing.T) {
	cs, _, _ := newStore(t)
	ctx := context.Background()
	id := suit.NewComponentID("x")
	txn, _ := cs.Begin(ctx)
	write(t, txn, id, "data")
	txn.Abort()
	txn.Abort()
	if _, err := read(t, cs.Open, id); !errors.Is(err, processor.ErrNotFound) {
		t.Fatalf("aborted write visible: %v", err)
	}
	if _, err := cs.Manifest(ctx, id); !errors.Is(err, processor.ErrNotFound) {
		t.Fatalf("missing manifest: %v", err)
	}
	txn, _ = cs.Begin(ctx)
	defer txn.Abort()
	if err := txn.Remove(ctx, id); !errors.Is(err, processor.ErrNotFound) {
		t.Fatalf("remove missing: %v", err)
	}
	if err := txn.DeleteManifest(ctx, id); !errors.Is(err, processor.ErrNotFound) {
		t.Fatalf("delete missing manifest: %v", err)
	}
}

// TestComponentStoreRefusesDowngradeAfterUninstall: the highest sequence
// number survives the manifest record.
func TestComponentStoreRefusesDowngradeAfterUninstall(t *testing.T) {
	cs, _, _ := newStore(t)
	ctx := context.Background()
	man := suit.NewComponentID("TEEP-Device", "app", "suit")
	for _, step := range []func(processor.Txn) error{
		func(x processor.Txn) error { return x.PutManifest(ctx, record(man, 5)) },
		func(x processor.Txn) error { return x.PutManifest(ctx, record(man, 5)) }, // same version again: fine
		func(x processor.Txn) error { return x.DeleteManifest(ctx, man) },
	} {
		txn, _ := cs.Begin(ctx)
		if err := step(txn); err != nil {
			t.Fatal(err)
		}
		if err := txn.Commit(ctx); err != nil {
			t.Fatal(err)
		}
	}
	txn, _ := cs.Begin(ctx)
	defer txn.Abort()
	if err := txn.PutManifest(ctx, record(man, 4)); !errors.Is(err, tee.ErrRollback) {
		t.Fatalf("downgrade after uninstall: %v", err)
	}
	if err := txn.PutManifest(ctx, record(man, 6)); err != nil {
		t.Fatalf("upgrade: %v", err)
	}
}

func TestComponentStoreConformance(t *testing.T) {
	storetest.Run(t, func(t *testing.T) processor.ComponentStore {
		cs, _, _ := newStore(t)
		return cs
	})
}

func TestComponentStorePersistentConformance(t *testing.T) {
	var (
		cur *softtee.TEE
		dir string
	)
	newStore := func(t *testing.T) processor.ComponentStore {
		var cs *tee.ComponentStore
		cs, cur, dir = newStore(t)
		return cs
	}
	reopen := func(t *testing.T, _ processor.ComponentStore) processor.ComponentStore {
		cur.Close() // like a crash: the open transaction is never finished
		tt, err := softtee.Open(dir, softtee.Options{})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { tt.Close() })
		cur = tt
		return tee.NewComponentStore(tt.Storage())
	}
	storetest.RunPersistent(t, newStore, reopen)
}
