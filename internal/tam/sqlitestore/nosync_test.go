package sqlitestore

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/teep-go/teep/internal/tam"
)

var _ tam.NoSyncStore = (*Store)(nil)

// Every open gets a new epoch, and it is in the file before Open returns.
func TestEpochGrowsWithEveryOpen(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "tam.db")
	var last uint64
	for i := 0; i < 3; i++ {
		s, err := Open(ctx, path, Options{})
		if err != nil {
			t.Fatal(err)
		}
		if e := s.Epoch(); e <= last {
			t.Fatalf("open %d: epoch %d after %d", i, e, last)
		}
		last = s.Epoch()
		s.Close()
	}
}

// UpdateNoSync commits like Update (visible, rolled back on error) and
// leaves the writer connection syncing for the durable commits after it,
// also when both kinds run concurrently.
func TestUpdateNoSync(t *testing.T) {
	ctx := context.Background()
	s, err := Open(ctx, filepath.Join(t.TempDir(), "tam.db"), Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	exp := time.Now().Add(time.Hour)
	if err := s.UpdateNoSync(ctx, func(tx tam.Tx) error { return tx.UseToken(ctx, []byte("a"), exp) }); err != nil {
		t.Fatal(err)
	}
	boom := errors.New("boom")
	if err := s.UpdateNoSync(ctx, func(tx tam.Tx) error {
		if err := tx.UseToken(ctx, []byte("b"), exp); err != nil {
			return err
		}
		return boom
	}); !errors.Is(err, boom) {
		t.Fatalf("failing transaction: %v", err)
	}
	var wg sync.WaitGroup
	errs := make(chan error, 40)
	for i := 0; i < 20; i++ {
		wg.Add(2)
		tok := []byte{'c', byte(i)}
		go func() {
			defer wg.Done()
			errs <- s.UpdateNoSync(ctx, func(tx tam.Tx) error { return tx.UseToken(ctx, tok, exp) })
		}()
		go func() {
			defer wg.Done()
			errs <- s.Update(ctx, func(tx tam.Tx) error { return tx.UseToken(ctx, append([]byte{'d'}, tok...), exp) })
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	if err := s.Update(ctx, func(tx tam.Tx) error { return tx.UseToken(ctx, []byte("a"), exp) }); !errors.Is(err, tam.ErrTokenUsed) {
		t.Fatalf("token consumed without sync: %v, want ErrTokenUsed", err)
	}
	if err := s.Update(ctx, func(tx tam.Tx) error { return tx.UseToken(ctx, []byte("b"), exp) }); err != nil {
		t.Fatalf("token of the rolled-back transaction: %v", err)
	}
	var level int
	if err := s.writer.QueryRowContext(ctx, "PRAGMA synchronous").Scan(&level); err != nil || level != 2 {
		t.Fatalf("writer synchronous = %d (%v), want 2 (FULL)", level, err)
	}
}

// Checkpoint empties the WAL, and Close leaves none behind.
func TestCheckpointTruncatesWAL(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "tam.db")
	s, err := Open(ctx, path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	exp := time.Now().Add(time.Hour)
	for i := 0; i < 200; i++ {
		if err := s.Update(ctx, func(tx tam.Tx) error { return tx.UseToken(ctx, []byte{byte(i), byte(i >> 8)}, exp) }); err != nil {
			t.Fatal(err)
		}
	}
	walSize := func() int64 {
		fi, err := os.Stat(path + "-wal")
		if errors.Is(err, os.ErrNotExist) {
			return 0
		}
		if err != nil {
			t.Fatal(err)
		}
		return fi.Size()
	}
	if walSize() == 0 {
		t.Fatal("no WAL after 200 commits")
	}
	if err := s.Checkpoint(ctx); err != nil {
		t.Fatal(err)
	}
	if n := walSize(); n != 0 {
		t.Fatalf("WAL of %d bytes after a checkpoint", n)
	}
	if err := s.Update(ctx, func(tx tam.Tx) error { return tx.UseToken(ctx, []byte("after"), exp) }); err != nil {
		t.Fatal(err)
	}
	s.Close()
	if n := walSize(); n != 0 {
		t.Fatalf("WAL of %d bytes after Close", n)
	}
	s, err = Open(ctx, path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if err := s.Update(ctx, func(tx tam.Tx) error { return tx.UseToken(ctx, []byte("after"), exp) }); !errors.Is(err, tam.ErrTokenUsed) {
		t.Fatalf("token written before Close: %v, want ErrTokenUsed", err)
	}
}
