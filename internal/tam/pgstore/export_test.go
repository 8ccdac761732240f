package pgstore

import (
	"context"
	"fmt"

	"github.com/teep-go/teep/internal/tam"
)

// SimulateCrash does to the database of stores (the replicas sharing it)
// what crash recovery does as far as session state goes: the unlogged
// tables (used_tokens, token_epoch) come back empty and every connection
// of every replica is gone. (The shared test server cannot be crashed for
// real.)
func SimulateCrash(ctx context.Context, stores ...*Store) error {
	if _, err := stores[0].pool.Exec(ctx, `TRUNCATE used_tokens, token_epoch`); err != nil {
		return fmt.Errorf("simulate crash: %w", err)
	}
	for _, s := range stores {
		s.pool.Reset()
	}
	return nil
}

// Setting runs SHOW name inside a transaction of kind noSync or durable.
func Setting(ctx context.Context, s *Store, noSync bool, name string) (string, error) {
	var v string
	run := s.Update
	if noSync {
		run = s.UpdateNoSync
	}
	err := run(ctx, func(t tam.Tx) error { return t.(*tx).tx.QueryRow(ctx, "SHOW "+name).Scan(&v) })
	return v, err
}
