package pgstore

import (
	"context"
	"fmt"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
)

// TraceStatements replaces s's pool by one with the same configuration
// (exec mode, runtime parameters, AfterConnect) plus tr as its tracer, so
// a test sees exactly the statements the store sends.
func TraceStatements(ctx context.Context, s *Store, tr pgx.QueryTracer) error {
	cfg := s.pool.Config()
	cfg.ConnConfig.Tracer = tr
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return fmt.Errorf("pgstore: traced pool: %w", err)
	}
	old := s.pool
	s.pool = pool
	old.Close()
	return nil
}
