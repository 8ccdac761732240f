package pgstore

import (
	"context"
	"strings"
	"testing"

	"github.com/teep-go/teep/internal/tam"
	"github.com/teep-go/teep/internal/tam/pgstore/pgtest"
	"github.com/teep-go/teep/internal/tam/storetest"
)

func open(t *testing.T, dsn string) *Store {
	t.Helper()
	s, err := Open(context.Background(), dsn, Options{})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestConformance(t *testing.T) {
	storetest.Run(t, func(t *testing.T) tam.Store { return open(t, pgtest.DSN(t)) })
}

func TestReopenKeepsDataAndVersion(t *testing.T) {
	ctx := context.Background()
	dsn := pgtest.DSN(t)
	s := open(t, dsn)
	kid := []byte("0123456789abcdef0123456789abcdef")
	if err := s.Update(ctx, func(tx tam.Tx) error { return tx.PutDevice(ctx, tam.Device{KID: kid, Status: tam.StatusOK}) }); err != nil {
		t.Fatal(err)
	}
	names, err := migrations()
	if err != nil {
		t.Fatal(err)
	}
	if v, err := s.SchemaVersion(ctx); err != nil || v != len(names) {
		t.Fatalf("schema version %d, %v; want %d", v, err, len(names))
	}
	s.Close()
	s = open(t, dsn)
	defer s.Close()
	if err := s.View(ctx, func(tx tam.Tx) error { _, err := tx.Device(ctx, kid); return err }); err != nil {
		t.Fatalf("device lost across reopen: %v", err)
	}
	if v, err := s.SchemaVersion(ctx); err != nil || v != len(names) {
		t.Fatalf("schema version after reopen %d, %v", v, err)
	}
}

func TestNewerSchemaRefused(t *testing.T) {
	ctx := context.Background()
	dsn := pgtest.DSN(t)
	s := open(t, dsn)
	if _, err := s.pool.Exec(ctx, `INSERT INTO schema_migrations (version, name, applied_at) VALUES (99, 'future.sql', 0)`); err != nil {
		t.Fatal(err)
	}
	s.Close()
	if _, err := Open(ctx, dsn, Options{}); err == nil || !strings.Contains(err.Error(), "newer than this binary") {
		t.Fatalf("opening a newer schema: %v", err)
	}
}

func TestForeignHistoryRefused(t *testing.T) {
	ctx := context.Background()
	dsn := pgtest.DSN(t)
	s := open(t, dsn)
	if _, err := s.pool.Exec(ctx, `UPDATE schema_migrations SET name = 'other.sql' WHERE version = 1`); err != nil {
		t.Fatal(err)
	}
	s.Close()
	if _, err := Open(ctx, dsn, Options{}); err == nil || !strings.Contains(err.Error(), "other.sql") {
		t.Fatalf("opening a database of another history: %v", err)
	}
}

// Replicas starting at once migrate once, under the advisory lock.
func TestConcurrentOpenMigratesOnce(t *testing.T) {
	dsn := pgtest.DSN(t)
	const n = 4
	errs := make(chan error, n)
	stores := make(chan *Store, n)
	for i := 0; i < n; i++ {
		go func() {
			s, err := Open(context.Background(), dsn, Options{})
			errs <- err
			stores <- s
		}()
	}
	for i := 0; i < n; i++ {
		if err := <-errs; err != nil {
			t.Errorf("concurrent Open: %v", err)
		}
		if s := <-stores; s != nil {
			defer s.Close()
		}
	}
	if t.Failed() {
		return
	}
	s := open(t, dsn)
	defer s.Close()
	var rows int
	if err := s.pool.QueryRow(context.Background(), `SELECT COUNT(*) FROM schema_migrations`).Scan(&rows); err != nil {
		t.Fatal(err)
	}
	if names, _ := migrations(); rows != len(names) {
		t.Fatalf("%d migration rows, want %d", rows, len(names))
	}
}

func TestNoSchemaRefused(t *testing.T) {
	dsn := pgtest.DSN(t)
	dsn = strings.Replace(dsn, "search_path=teep_test_", "search_path=missing_", 1)
	if _, err := Open(context.Background(), dsn, Options{}); err == nil || !strings.Contains(err.Error(), "no schema") {
		t.Fatalf("opening with a search_path naming no schema: %v", err)
	}
}

func TestBadDSN(t *testing.T) {
	_, err := Open(context.Background(), "postgres://user:s3cret@[::1/x", Options{})
	if err == nil || strings.Contains(err.Error(), "s3cret") {
		t.Fatalf("bad DSN: %v", err)
	}
}

// BenchmarkSteadyRound is the store's share of a steady round
// (storetest.BenchmarkSteadyRound); the server's own CPU is not in it.
func BenchmarkSteadyRound(b *testing.B) {
	s, err := Open(context.Background(), pgtest.DSN(b), Options{})
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	storetest.BenchmarkSteadyRound(b, s)
}
