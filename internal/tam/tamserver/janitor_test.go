package tamserver

import (
	"context"
	"net"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/teep-go/teep/internal/tam"
)

// The janitor deletes expired session state, counts it in
// teep_tam_purged_rows_total, and truncates the SQLite WAL.
func TestJanitorPurgesAndCheckpoints(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	dir := t.TempDir()
	s, err := Open(ctx, Options{DataDir: dir, PurgeInterval: 10 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	past := time.Now().Add(-time.Minute)
	for i := 0; i < 3; i++ {
		if err := s.Engine.Store().Update(ctx, func(tx tam.Tx) error { return tx.UseToken(ctx, []byte{'t', byte(i)}, past) }); err != nil {
			t.Fatal(err)
		}
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- s.Serve(ctx, ln, nil) }()
	// Wait (bounded) for the first purge to show in the metric.
	var purged float64
	for i := 0; i < 500 && purged < 3; i++ {
		time.Sleep(10 * time.Millisecond)
		mfs, err := s.Registry().Gather()
		if err != nil {
			t.Fatal(err)
		}
		for _, mf := range mfs {
			if mf.GetName() == "teep_tam_purged_rows_total" {
				purged = mf.GetMetric()[0].GetCounter().GetValue()
			}
		}
	}
	if purged != 3 {
		t.Fatalf("teep_tam_purged_rows_total = %v, want 3", purged)
	}
	var walSize int64 = -1
	for i := 0; i < 500 && walSize != 0; i++ {
		time.Sleep(10 * time.Millisecond)
		fi, err := os.Stat(filepath.Join(dir, FileDB+"-wal"))
		if err != nil {
			t.Fatal(err)
		}
		walSize = fi.Size()
	}
	if walSize != 0 {
		t.Fatalf("WAL of %d bytes after the janitor ran", walSize)
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}
