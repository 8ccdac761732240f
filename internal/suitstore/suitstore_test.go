package suitstore

import (
	"context"
	"os"
	"path/filepath"
	"testing"

	"github.com/teep-go/teep/suit"
	"github.com/teep-go/teep/suit/processor"
	"github.com/teep-go/teep/suit/processor/storetest"
)

func open(t *testing.T, dir string) *Store {
	t.Helper()
	s, err := Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func TestConformance(t *testing.T) {
	storetest.Run(t, func(t *testing.T) processor.ComponentStore { return open(t, t.TempDir()) })
}

func TestPersistence(t *testing.T) {
	storetest.RunPersistent(t,
		func(t *testing.T) processor.ComponentStore { return open(t, t.TempDir()) },
		func(t *testing.T, old processor.ComponentStore) processor.ComponentStore {
			s := old.(*Store)
			dir := s.dir
			// Simulate a crash: drop the lock without aborting the open
			// transaction, so its staged objects stay on disk.
			s.mu.Lock()
			s.txn = nil
			s.mu.Unlock()
			s.unlock()
			s.unlock = nil
			return open(t, dir)
		})
}

// TestCrashBeforeRename: a crash after the new index was written but before
// the rename leaves index.json.tmp and new objects; Open discards both.
func TestCrashBeforeRename(t *testing.T) {
	dir := t.TempDir()
	s := open(t, dir)
	ctx := context.Background()
	id := suit.NewComponentID("c")
	txn, _ := s.Begin(ctx)
	w, _ := txn.Create(ctx, id)
	w.Write([]byte("old"))
	w.Close()
	if err := txn.Commit(ctx); err != nil {
		t.Fatal(err)
	}
	txn, _ = s.Begin(ctx)
	w, _ = txn.Create(ctx, id)
	w.Write([]byte("new"))
	w.Close()
	// Write what Commit would write, but stop before the rename.
	if err := os.WriteFile(filepath.Join(dir, "index.json.tmp"), []byte("{garbage"), 0o600); err != nil {
		t.Fatal(err)
	}
	s.txn = nil
	s.unlock()
	s.unlock = nil

	s2 := open(t, dir)
	rc, _, err := s2.Open(ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	b := make([]byte, 8)
	n, _ := rc.Read(b)
	rc.Close()
	if string(b[:n]) != "old" {
		t.Fatalf("after crash: %q", b[:n])
	}
	if _, err := os.Stat(filepath.Join(dir, "index.json.tmp")); !os.IsNotExist(err) {
		t.Error("index.json.tmp survived recovery")
	}
	entries, _ := os.ReadDir(filepath.Join(dir, "objects"))
	if len(entries) != 1 {
		t.Errorf("%d objects after recovery, want 1", len(entries))
	}
}

func TestLockedTwice(t *testing.T) {
	dir := t.TempDir()
	open(t, dir)
	if s, err := Open(dir); err == nil {
		s.Close()
		t.Fatal("second Open of the same directory succeeded")
	}
}

func TestCorruptIndex(t *testing.T) {
	for name, content := range map[string]string{
		"garbage":     "{",
		"unknown":     `{"version":1,"extra":1}`,
		"version":     `{"version":2}`,
		"object-name": `{"version":1,"components":[{"id":["00"],"object":"../../etc/passwd","size":1}]}`,
	} {
		t.Run(name, func(t *testing.T) {
			dir := t.TempDir()
			os.MkdirAll(filepath.Join(dir, "objects"), 0o700)
			os.WriteFile(filepath.Join(dir, "index.json"), []byte(content), 0o600)
			if s, err := Open(dir); err == nil {
				s.Close()
				t.Fatal("corrupt index accepted")
			}
		})
	}
}
