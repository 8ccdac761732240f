package sqlitestore

import (
	"context"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/teep-go/teep/internal/tam"
	"github.com/teep-go/teep/internal/tam/storetest"
)

func TestConformance(t *testing.T) {
	storetest.Run(t, func(t *testing.T) tam.Store {
		s, err := Open(context.Background(), filepath.Join(t.TempDir(), "tam.db"), Options{})
		if err != nil {
			t.Fatal(err)
		}
		return s
	})
}

func TestFileModeAndReopen(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "tam.db")
	s, err := Open(ctx, path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o600 {
		t.Fatalf("database mode %v, want 0600", fi.Mode().Perm())
	}
	kid := []byte("0123456789abcdef0123456789abcdef")
	if err := s.Update(ctx, func(tx tam.Tx) error {
		return tx.PutDevice(ctx, tam.Device{KID: kid, Status: tam.StatusOK})
	}); err != nil {
		t.Fatal(err)
	}
	names, _ := fs.Glob(migrationFS, "migrations/*.sql")
	v, err := s.SchemaVersion(ctx)
	if err != nil || v != len(names) {
		t.Fatalf("schema version %d, %v", v, err)
	}
	s.Close()

	// Reopening applies no migration twice and keeps the data.
	s, err = Open(ctx, path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if err := s.View(ctx, func(tx tam.Tx) error { _, err := tx.Device(ctx, kid); return err }); err != nil {
		t.Fatalf("device lost across reopen: %v", err)
	}
	dump, err := s.Dump(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(dump, "== devices\nkid=") || !strings.Contains(dump, "== schema_migrations\n") {
		t.Fatalf("dump lacks tables:\n%s", dump)
	}
}

func TestNewerSchemaRefused(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "tam.db")
	s, err := Open(ctx, path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.writer.ExecContext(ctx, `INSERT INTO schema_migrations (version, name, applied_at) VALUES (99, 'future.sql', 0)`); err != nil {
		t.Fatal(err)
	}
	s.Close()
	if _, err := Open(ctx, path, Options{}); err == nil || !strings.Contains(err.Error(), "newer than this binary") {
		t.Fatalf("opening a newer schema: %v", err)
	}
}

func TestOpenBadPath(t *testing.T) {
	if _, err := Open(context.Background(), filepath.Join(t.TempDir(), "missing-dir", "tam.db"), Options{}); err == nil {
		t.Fatal("opening a database in a missing directory succeeded")
	}
}

// BenchmarkSteadyRound is the store's share of a steady round
// (storetest.BenchmarkSteadyRound).
func BenchmarkSteadyRound(b *testing.B) {
	s, err := Open(context.Background(), filepath.Join(b.TempDir(), "tam.db"), Options{})
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	storetest.BenchmarkSteadyRound(b, s)
}
