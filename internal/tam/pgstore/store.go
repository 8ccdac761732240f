package pgstore

import (
	"context"
	"crypto/rand"
	"embed"
	"encoding/binary"
	"errors"
	"fmt"
	"io/fs"
	"path"
	"sort"
	"strings"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/teep-go/teep/internal/tam"
)

//go:embed migrations/*.sql
var migrationFS embed.FS

// Options tune the store; the zero value is the default.
type Options struct {
	// MaxConns bounds the connection pool; default DefaultMaxConns. Each
	// replica holds up to this many connections to the server.
	MaxConns int32
	// LockTimeout bounds how long a statement waits for a row lock held by
	// another transaction (another session of the same device, on any
	// replica); default DefaultLockTimeout.
	LockTimeout time.Duration
}

// Defaults for Options.
const (
	DefaultMaxConns    = 16
	DefaultLockTimeout = 10 * time.Second
)

// migrationLockKey names the advisory lock replicas take while migrating,
// so that two replicas starting at once do not both apply a migration.
const migrationLockKey = "teep-tam-migrate:"

// Store is a tam.Store on a PostgreSQL database, shared by any number of
// TAM replicas.
type Store struct {
	pool *pgxpool.Pool
	// epoch is the token epoch (tam.NoSyncStore) as the newest connection
	// read it: every connection reads it before it serves a transaction,
	// so a transaction never runs under an epoch older than this one.
	epoch atomic.Uint64
}

var (
	_ tam.Store       = (*Store)(nil)
	_ tam.NoSyncStore = (*Store)(nil)
)

// IsDSN reports whether s names a PostgreSQL database (a postgres:// or
// postgresql:// URL), the form `teep tam serve --db` accepts.
func IsDSN(s string) bool {
	return strings.HasPrefix(s, "postgres://") || strings.HasPrefix(s, "postgresql://")
}

// Open connects to the database at dsn (a libpq URL or key=value string;
// search_path in it selects the schema) and brings its schema up to date.
// It refuses a database whose schema is newer than this binary.
func Open(ctx context.Context, dsn string, o Options) (*Store, error) {
	if o.MaxConns <= 0 {
		o.MaxConns = DefaultMaxConns
	}
	if o.LockTimeout <= 0 {
		o.LockTimeout = DefaultLockTimeout
	}
	cfg, err := pgxpool.ParseConfig(dsn)
	if err != nil {
		// The parser's message may quote the DSN, password included.
		return nil, errors.New("pgstore: cannot parse the database DSN")
	}
	cfg.MaxConns = o.MaxConns
	// Each connection prepares a statement on first use and keeps it.
	cfg.ConnConfig.DefaultQueryExecMode = pgx.QueryExecModeCacheStatement
	cfg.ConnConfig.RuntimeParams["lock_timeout"] = fmt.Sprint(o.LockTimeout.Milliseconds())
	cfg.ConnConfig.RuntimeParams["application_name"] = "teep-tam"
	s := &Store{}
	migrated := atomic.Bool{}
	cfg.AfterConnect = func(ctx context.Context, c *pgx.Conn) error {
		if !migrated.Load() {
			return nil // the table does not exist yet; Open reads it after migrating
		}
		return s.readEpoch(ctx, c)
	}
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("pgstore: %w", err)
	}
	s.pool = pool
	if err := s.migrate(ctx); err != nil {
		pool.Close()
		return nil, err
	}
	migrated.Store(true)
	err = pool.AcquireFunc(ctx, func(c *pgxpool.Conn) error { return s.readEpoch(ctx, c.Conn()) })
	if err != nil {
		pool.Close()
		return nil, err
	}
	return s, nil
}

// readEpoch reads the token epoch, choosing one first when the table is
// empty: a new database, or one whose crash recovery emptied the unlogged
// tables (used_tokens with them). Replicas racing to choose agree on the
// first one committed.
func (s *Store) readEpoch(ctx context.Context, c *pgx.Conn) error {
	var b [8]byte
	if _, err := rand.Read(b[:]); err != nil {
		return fmt.Errorf("pgstore: token epoch: %w", err)
	}
	if _, err := c.Exec(ctx, `INSERT INTO token_epoch (id, epoch) VALUES (1, $1) ON CONFLICT (id) DO NOTHING`,
		int64(binary.BigEndian.Uint64(b[:]))); err != nil {
		return fmt.Errorf("pgstore: token epoch: %w", mapErr(err))
	}
	var e int64
	if err := c.QueryRow(ctx, `SELECT epoch FROM token_epoch WHERE id = 1`).Scan(&e); err != nil {
		return fmt.Errorf("pgstore: token epoch: %w", mapErr(err))
	}
	s.epoch.Store(uint64(e))
	return nil
}

// Epoch is the token epoch (tam.NoSyncStore): the same for every replica
// on the database, changed only when a database crash lost the unlogged
// tables (migration 0004).
func (s *Store) Epoch() uint64 { return s.epoch.Load() }

// Close closes every connection of the pool.
func (s *Store) Close() error {
	s.pool.Close()
	return nil
}

// Update runs fn in one READ COMMITTED transaction in which every read of a
// device locks its row (doc.go explains why that suffices).
func (s *Store) Update(ctx context.Context, fn func(tam.Tx) error) error {
	return s.run(ctx, pgx.TxOptions{IsoLevel: pgx.ReadCommitted, AccessMode: pgx.ReadWrite}, false, fn)
}

// View runs fn in one REPEATABLE READ, read-only transaction: a consistent
// snapshot, as in SQLite's WAL mode.
func (s *Store) View(ctx context.Context, fn func(tam.Tx) error) error {
	return s.run(ctx, pgx.TxOptions{IsoLevel: pgx.RepeatableRead, AccessMode: pgx.ReadOnly}, true, fn)
}

// UpdateNoSync is Update whose commit does not wait for the WAL to reach
// stable storage (synchronous_commit off, for this transaction only): a
// server crash may lose the newest such commits, never a durable one (a
// durable commit flushes the WAL before it) and never part of one. The
// engine uses it only for changes whose loss costs a retry
// (docs/operations.md, "Durability"); the tokens those commits consume
// are minted under the epoch the crash replaces.
func (s *Store) UpdateNoSync(ctx context.Context, fn func(tam.Tx) error) error {
	return s.run(ctx, pgx.TxOptions{BeginQuery: "BEGIN ISOLATION LEVEL READ COMMITTED READ WRITE; SET LOCAL synchronous_commit TO OFF"}, false, fn)
}

func (s *Store) run(ctx context.Context, opts pgx.TxOptions, readOnly bool, fn func(tam.Tx) error) (err error) {
	pgTx, err := s.pool.BeginTx(ctx, opts)
	if err != nil {
		return fmt.Errorf("pgstore: begin: %w", mapErr(err))
	}
	// Rollback after Commit is a no-op; it runs on every path, including
	// a panic in fn, so that the connection returns to the pool clean.
	defer pgTx.Rollback(context.WithoutCancel(ctx))
	t := &tx{tx: pgTx, readOnly: readOnly}
	if err := fn(t); err != nil {
		return err
	}
	if readOnly {
		return nil
	}
	if err := pgTx.Commit(ctx); err != nil {
		return fmt.Errorf("pgstore: commit: %w", mapErr(err))
	}
	return nil
}

// Ping checks that the database answers, for health checks.
func (s *Store) Ping(ctx context.Context) error {
	if err := s.pool.Ping(ctx); err != nil {
		return fmt.Errorf("pgstore: ping: %w", err)
	}
	return nil
}

// SchemaVersion is the number of migrations applied.
func (s *Store) SchemaVersion(ctx context.Context) (int, error) {
	var v int
	err := s.pool.QueryRow(ctx, `SELECT COALESCE(MAX(version), 0) FROM schema_migrations`).Scan(&v)
	return v, mapErr(err)
}

func migrations() ([]string, error) {
	names, err := fs.Glob(migrationFS, "migrations/*.sql")
	if err != nil {
		return nil, err
	}
	sort.Strings(names)
	return names, nil
}

// migrate applies the embedded migrations the database has not seen, each
// in its own transaction, under an advisory lock held on one connection, and
// refuses a database from a newer release or with a different history.
func (s *Store) migrate(ctx context.Context) error {
	names, err := migrations()
	if err != nil {
		return err
	}
	conn, err := s.pool.Acquire(ctx)
	if err != nil {
		return fmt.Errorf("pgstore: connect: %w", err)
	}
	defer conn.Release()
	var schema *string
	if err := conn.QueryRow(ctx, `SELECT current_schema()`).Scan(&schema); err != nil {
		return fmt.Errorf("pgstore: current schema: %w", err)
	}
	if schema == nil {
		return errors.New("pgstore: no schema to create tables in: the search_path names no existing schema")
	}
	if _, err := conn.Exec(ctx, `SELECT pg_advisory_lock(hashtext($1))`, migrationLockKey+*schema); err != nil {
		return fmt.Errorf("pgstore: migration lock: %w", err)
	}
	defer conn.Exec(context.WithoutCancel(ctx), `SELECT pg_advisory_unlock(hashtext($1))`, migrationLockKey+*schema)

	if _, err := conn.Exec(ctx, `CREATE TABLE IF NOT EXISTS schema_migrations (
		version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at BIGINT NOT NULL)`); err != nil {
		return fmt.Errorf("pgstore: create schema_migrations: %w", err)
	}
	rows, err := conn.Query(ctx, `SELECT version, name FROM schema_migrations ORDER BY version`)
	if err != nil {
		return fmt.Errorf("pgstore: read schema version: %w", err)
	}
	applied, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (string, error) {
		var v int
		var n string
		err := r.Scan(&v, &n)
		return n, err
	})
	if err != nil {
		return fmt.Errorf("pgstore: read schema version: %w", err)
	}
	if len(applied) > len(names) {
		return fmt.Errorf("pgstore: database schema version %d is newer than this binary supports (%d)", len(applied), len(names))
	}
	for i, n := range applied {
		if want := path.Base(names[i]); n != want {
			return fmt.Errorf("pgstore: database migration %d is %q, this binary's is %q: not a database of this program's history", i+1, n, want)
		}
	}
	for i := len(applied); i < len(names); i++ {
		body, err := migrationFS.ReadFile(names[i])
		if err != nil {
			return err
		}
		name := path.Base(names[i])
		err = pgx.BeginFunc(ctx, conn, func(t pgx.Tx) error {
			// No arguments: the simple protocol, which runs a script.
			if _, err := t.Exec(ctx, string(body)); err != nil {
				return err
			}
			_, err := t.Exec(ctx, `INSERT INTO schema_migrations (version, name, applied_at) VALUES ($1, $2, $3)`,
				i+1, name, time.Now().UnixNano())
			return err
		})
		if err != nil {
			return fmt.Errorf("pgstore: migration %s: %w", name, err)
		}
	}
	return nil
}

// PostgreSQL error codes the store maps (Appendix A of its manual).
const (
	codeUniqueViolation      = "23505"
	codeForeignKeyViolation  = "23503"
	codeSerializationFailure = "40001"
	codeDeadlockDetected     = "40P01"
	codeLockNotAvailable     = "55P03"
)

// ErrConflict reports a transaction that lost to a concurrent one
// (deadlock, lock timeout); nothing of it was kept and the caller may
// retry.
// It wraps tam.ErrStoreBusy, which the engine answers as unavailable.
var ErrConflict = fmt.Errorf("pgstore: transaction conflict: %w", tam.ErrStoreBusy)

// mapErr names the transient failures; other errors pass through.
func mapErr(err error) error {
	var pe *pgconn.PgError
	if errors.As(err, &pe) {
		switch pe.Code {
		case codeSerializationFailure, codeDeadlockDetected, codeLockNotAvailable:
			return fmt.Errorf("%w: %w", ErrConflict, err)
		}
	}
	return err
}

func isCode(err error, code string) bool {
	var pe *pgconn.PgError
	return errors.As(err, &pe) && pe.Code == code
}
