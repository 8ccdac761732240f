package sqlitestore

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/teep-go/teep/internal/tam"
)

// Concurrent write transactions share SQLite transactions (group commit),
// yet each keeps its own outcome: a failing or panicking caller's changes
// are rolled back alone, the others' commit, and a caller whose context
// ended before its turn changes nothing.
func TestGroupCommitKeepsEachCallersOutcome(t *testing.T) {
	ctx := context.Background()
	s, err := Open(ctx, filepath.Join(t.TempDir(), "tam.db"), Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	exp := time.Now().Add(time.Hour)
	boom := errors.New("boom")
	const n = 200
	var wg sync.WaitGroup
	errs := make([]error, n)
	panics := make([]any, n)
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer func() { panics[i] = recover() }()
			tok := fmt.Appendf(nil, "tok-%03d", i)
			fn := func(tx tam.Tx) error {
				if err := tx.UseToken(ctx, tok, exp); err != nil {
					return err
				}
				switch i % 4 {
				case 1:
					return boom
				case 2:
					panic(fmt.Sprint("panic ", i))
				}
				return nil
			}
			if i%2 == 0 {
				errs[i] = s.Update(ctx, fn)
			} else {
				errs[i] = s.UpdateNoSync(ctx, fn)
			}
		}()
	}
	wg.Wait()
	for i := range n {
		tok := fmt.Appendf(nil, "tok-%03d", i)
		again := s.Update(ctx, func(tx tam.Tx) error { return tx.UseToken(ctx, tok, exp) })
		switch i % 4 {
		case 0, 3:
			if errs[i] != nil || panics[i] != nil {
				t.Fatalf("caller %d: %v, panic %v", i, errs[i], panics[i])
			}
			if !errors.Is(again, tam.ErrTokenUsed) {
				t.Fatalf("caller %d committed, yet its token is unused: %v", i, again)
			}
		case 1:
			if !errors.Is(errs[i], boom) {
				t.Fatalf("caller %d: %v, want boom", i, errs[i])
			}
			if again != nil {
				t.Fatalf("caller %d failed, yet its token was kept: %v", i, again)
			}
		case 2:
			if panics[i] != fmt.Sprint("panic ", i) {
				t.Fatalf("caller %d: panic %v, error %v", i, panics[i], errs[i])
			}
			if again != nil {
				t.Fatalf("caller %d panicked, yet its token was kept: %v", i, again)
			}
		}
	}

	canceled, cancel := context.WithCancel(ctx)
	cancel()
	ran := false
	if err := s.Update(canceled, func(tx tam.Tx) error { ran = true; return nil }); !errors.Is(err, context.Canceled) || ran {
		t.Fatalf("canceled caller: %v, ran %v", err, ran)
	}

	// After a run of no-sync commits the writer connection is FULL again
	// for the durable one that follows.
	if err := s.UpdateNoSync(ctx, func(tx tam.Tx) error { return tx.UseToken(ctx, []byte("ns"), exp) }); err != nil {
		t.Fatal(err)
	}
	var level int
	if err := s.Update(ctx, func(t tam.Tx) error {
		return t.(*tx).tx.QueryRowContext(ctx, "PRAGMA synchronous").Scan(&level)
	}); err != nil || level != 2 {
		t.Fatalf("durable commit ran with synchronous = %d (%v), want 2 (FULL)", level, err)
	}

	s.Close()
	if err := s.Update(ctx, func(tam.Tx) error { return nil }); !errors.Is(err, errClosed) {
		t.Fatalf("Update after Close: %v", err)
	}
}
