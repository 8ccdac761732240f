package sqlitestore

import (
	"context"
	"database/sql"
	"embed"
	"errors"
	"fmt"
	"io/fs"
	"math"
	"net/url"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/teep-go/teep/internal/tam"
	sqlite "modernc.org/sqlite"
	sqlite3 "modernc.org/sqlite/lib"
)

//go:embed migrations/*.sql
var migrationFS embed.FS

// Options tune the store; the zero value is the default.
type Options struct {
	BusyTimeout time.Duration // how long a statement waits for a lock; default DefaultBusyTimeout
	MaxReaders  int           // concurrent read transactions; default DefaultMaxReaders
}

// Defaults for Options.
const (
	DefaultBusyTimeout = 10 * time.Second
	DefaultMaxReaders  = 8
)

// Store is a tam.Store on one SQLite database file.
type Store struct {
	path       string
	writer     *sql.DB // one connection: writers are serialised here, not by SQLITE_BUSY
	reader     *sql.DB // query_only connections for View
	writeStmts *stmtCache
	readStmts  *stmtCache
	commits    *committer // every write transaction after Open
	epoch      uint64
}

// stmtCache keeps prepared statements per database handle, so SQLite
// parses each statement once. A statement is never prepared inside a
// transaction (with one writer connection that would wait for itself): a
// miss runs unprepared and is prepared after the transaction ends.
type stmtCache struct {
	db      *sql.DB
	mu      sync.Mutex
	m       map[string]*sql.Stmt
	pending map[string]bool
}

func newStmtCache(db *sql.DB) *stmtCache {
	return &stmtCache{db: db, m: map[string]*sql.Stmt{}, pending: map[string]bool{}}
}

// get returns the prepared statement for q, or nil (and notes q) on a miss.
func (c *stmtCache) get(q string) *sql.Stmt {
	c.mu.Lock()
	defer c.mu.Unlock()
	s, ok := c.m[q]
	if !ok {
		c.pending[q] = true
	}
	return s
}

// flush prepares the statements noted since the last call (without
// holding the lock while it waits for a connection); failures are left for
// the next miss.
func (c *stmtCache) flush(ctx context.Context) {
	c.mu.Lock()
	var qs []string
	for q := range c.pending {
		qs = append(qs, q)
		delete(c.pending, q)
	}
	c.mu.Unlock()
	for _, q := range qs {
		s, err := c.db.PrepareContext(ctx, q)
		if err != nil {
			continue
		}
		c.mu.Lock()
		if _, dup := c.m[q]; dup {
			s.Close()
		} else {
			c.m[q] = s
		}
		c.mu.Unlock()
	}
}

func (c *stmtCache) close() {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, s := range c.m {
		s.Close()
	}
	c.m = map[string]*sql.Stmt{}
}

var _ tam.Store = (*Store)(nil)

// Open opens (creating with mode 0600 if needed) the database at path and
// brings its schema up to date. The database runs in WAL mode with
// synchronous=FULL, so a committed transaction survives a crash or power
// loss.
func Open(ctx context.Context, path string, o Options) (*Store, error) {
	if o.BusyTimeout <= 0 {
		o.BusyTimeout = DefaultBusyTimeout
	}
	if o.MaxReaders <= 0 {
		o.MaxReaders = DefaultMaxReaders
	}
	abs, err := filepath.Abs(path)
	if err != nil {
		return nil, fmt.Errorf("sqlitestore: %w", err)
	}
	f, err := os.OpenFile(abs, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("sqlitestore: open %s: %w", abs, err)
	}
	f.Close()

	pragmas := []string{
		"busy_timeout(" + strconv.FormatInt(o.BusyTimeout.Milliseconds(), 10) + ")",
		"foreign_keys(1)",
		"journal_mode(WAL)",
		"synchronous(FULL)",
	}
	dsn := func(extra ...string) string {
		q := url.Values{}
		for _, p := range append(pragmas, extra...) {
			q.Add("_pragma", p)
		}
		return "file:" + abs + "?" + q.Encode()
	}
	writer, err := sql.Open("sqlite", dsn()+"&_txlock=immediate")
	if err != nil {
		return nil, fmt.Errorf("sqlitestore: %w", err)
	}
	writer.SetMaxOpenConns(1)
	writer.SetMaxIdleConns(1)
	writer.SetConnMaxLifetime(0)
	s := &Store{path: abs, writer: writer, writeStmts: newStmtCache(writer)}
	if err := s.migrate(ctx); err != nil {
		writer.Close()
		return nil, err
	}
	if s.epoch, err = bumpEpoch(ctx, writer); err != nil {
		writer.Close()
		return nil, err
	}
	reader, err := sql.Open("sqlite", dsn("query_only(1)"))
	if err != nil {
		writer.Close()
		return nil, fmt.Errorf("sqlitestore: %w", err)
	}
	reader.SetMaxOpenConns(o.MaxReaders)
	reader.SetMaxIdleConns(o.MaxReaders)
	s.reader, s.readStmts = reader, newStmtCache(reader)
	s.commits = newCommitter(s)
	return s, nil
}

// bumpEpoch counts this open in the database header (user_version, which
// the schema does not use) and commits it durably before anything is
// served, so no two opens of a database share an epoch (tam.NoSyncStore).
func bumpEpoch(ctx context.Context, db *sql.DB) (uint64, error) {
	var v int64
	if err := db.QueryRowContext(ctx, "PRAGMA user_version").Scan(&v); err != nil {
		return 0, fmt.Errorf("sqlitestore: read epoch: %w", err)
	}
	if v < 0 || v >= math.MaxInt32 {
		// A signed 32-bit field: 2^31 opens are out of reach; a value out
		// of range was written by something else.
		return 0, fmt.Errorf("sqlitestore: epoch (user_version) %d out of range", v)
	}
	v++
	if _, err := db.ExecContext(ctx, "PRAGMA user_version = "+strconv.FormatInt(v, 10)); err != nil {
		return 0, fmt.Errorf("sqlitestore: write epoch: %w", err)
	}
	return uint64(v), nil
}

// Epoch is the number of this open of the database, made durable before
// Open returned: never the same for two opens (tam.NoSyncStore).
func (s *Store) Epoch() uint64 { return s.epoch }

// Path is the database file.
func (s *Store) Path() string { return s.path }

// Checkpoint copies the WAL into the database file and truncates it to
// zero bytes (wal_checkpoint(TRUNCATE)), so the WAL does not keep the size
// of its busiest moment. It waits for running writers (busy_timeout); a
// reader holding an old snapshot makes it do less, which it reports.
func (s *Store) Checkpoint(ctx context.Context) error {
	var busy, logFrames, done int
	if err := s.writer.QueryRowContext(ctx, "PRAGMA wal_checkpoint(TRUNCATE)").Scan(&busy, &logFrames, &done); err != nil {
		return fmt.Errorf("sqlitestore: checkpoint: %w", mapErr(err))
	}
	if busy != 0 {
		return fmt.Errorf("sqlitestore: checkpoint: %d of %d WAL frames copied: %w", done, logFrames, tam.ErrStoreBusy)
	}
	return nil
}

// Close checkpoints and truncates the WAL, then closes the database.
func (s *Store) Close() error {
	s.commits.close()
	// Best effort: a failure leaves the WAL for the next open to replay.
	s.commits.restoreFull()
	s.Checkpoint(context.Background())
	s.writeStmts.close()
	if s.readStmts != nil {
		s.readStmts.close()
	}
	err := s.writer.Close()
	if s.reader != nil {
		if e := s.reader.Close(); err == nil {
			err = e
		}
	}
	return err
}

// Update runs fn in one write transaction (BEGIN IMMEDIATE), committed
// durably before it returns. Concurrent calls may share one SQLite
// transaction, each in a savepoint of its own (group commit, committer).
func (s *Store) Update(ctx context.Context, fn func(tam.Tx) error) error {
	return s.commits.submit(ctx, fn, true)
}

// View runs fn in one read transaction, a consistent snapshot in WAL mode.
func (s *Store) View(ctx context.Context, fn func(tam.Tx) error) error {
	return run(ctx, s.reader, s.readStmts, true, fn)
}

// UpdateNoSync is Update, except that the commit does not wait for stable
// storage (synchronous=NORMAL while the writer connection runs only such
// commits): a power cut may lose the newest such commits, never a durable
// one and never out of order (the WAL is replayed up to its last complete
// commit, and the next durable commit syncs every frame before it). The
// engine uses it only for changes whose loss costs a retry
// (docs/operations.md, "Durability").
func (s *Store) UpdateNoSync(ctx context.Context, fn func(tam.Tx) error) error {
	return s.commits.submit(ctx, fn, false)
}

func run(ctx context.Context, db *sql.DB, stmts *stmtCache, readOnly bool, fn func(tam.Tx) error) error {
	defer stmts.flush(context.WithoutCancel(ctx))
	return runTx(ctx, func() (*sql.Tx, error) { return db.BeginTx(ctx, nil) }, stmts, readOnly, fn)
}

func runTx(ctx context.Context, begin func() (*sql.Tx, error), stmts *stmtCache, readOnly bool, fn func(tam.Tx) error) (err error) {
	sqlTx, err := begin()
	if err != nil {
		return fmt.Errorf("sqlitestore: begin: %w", mapErr(err))
	}
	defer func() {
		if p := recover(); p != nil {
			sqlTx.Rollback()
			panic(p)
		}
	}()
	t := &tx{tx: sqlTx, readOnly: readOnly, stmts: stmts}
	if err := fn(t); err != nil {
		if rbErr := sqlTx.Rollback(); rbErr != nil && !errors.Is(rbErr, sql.ErrTxDone) {
			return errors.Join(err, fmt.Errorf("sqlitestore: rollback: %w", rbErr))
		}
		return err
	}
	if readOnly {
		return mapErr(sqlTx.Rollback())
	}
	if err := sqlTx.Commit(); err != nil {
		return fmt.Errorf("sqlitestore: commit: %w", mapErr(err))
	}
	return nil
}

// migrate applies the embedded migrations the database has not seen, each in
// its own transaction, and refuses a database from a newer release.
func (s *Store) migrate(ctx context.Context) error {
	names, err := fs.Glob(migrationFS, "migrations/*.sql")
	if err != nil {
		return err
	}
	sort.Strings(names)
	if _, err := s.writer.ExecContext(ctx, `CREATE TABLE IF NOT EXISTS schema_migrations (
		version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at INTEGER NOT NULL)`); err != nil {
		return fmt.Errorf("sqlitestore: create schema_migrations: %w", err)
	}
	var current int
	if err := s.writer.QueryRowContext(ctx, `SELECT COALESCE(MAX(version), 0) FROM schema_migrations`).Scan(&current); err != nil {
		return fmt.Errorf("sqlitestore: read schema version: %w", err)
	}
	if current > len(names) {
		return fmt.Errorf("sqlitestore: database schema version %d is newer than this binary supports (%d)", current, len(names))
	}
	for i := current; i < len(names); i++ {
		body, err := migrationFS.ReadFile(names[i])
		if err != nil {
			return err
		}
		sqlTx, err := s.writer.BeginTx(ctx, nil)
		if err != nil {
			return fmt.Errorf("sqlitestore: migration %s: %w", names[i], err)
		}
		if _, err := sqlTx.ExecContext(ctx, string(body)); err != nil {
			sqlTx.Rollback()
			return fmt.Errorf("sqlitestore: migration %s: %w", names[i], err)
		}
		if _, err := sqlTx.ExecContext(ctx, `INSERT INTO schema_migrations (version, name, applied_at) VALUES (?, ?, ?)`,
			i+1, filepath.Base(names[i]), time.Now().UnixNano()); err != nil {
			sqlTx.Rollback()
			return fmt.Errorf("sqlitestore: migration %s: %w", names[i], err)
		}
		if err := sqlTx.Commit(); err != nil {
			return fmt.Errorf("sqlitestore: migration %s: %w", names[i], err)
		}
	}
	return nil
}

// SchemaVersion is the number of migrations applied.
func (s *Store) SchemaVersion(ctx context.Context) (int, error) {
	var v int
	err := s.reader.QueryRowContext(ctx, `SELECT COALESCE(MAX(version), 0) FROM schema_migrations`).Scan(&v)
	return v, err
}

// Ping checks that the database answers, for health checks.
func (s *Store) Ping(ctx context.Context) error {
	var one int
	if err := s.reader.QueryRowContext(ctx, `SELECT 1`).Scan(&one); err != nil {
		return fmt.Errorf("sqlitestore: ping: %w", err)
	}
	return nil
}

// Dump renders every row of every table as text in a stable order, so tests
// can show that a rejected message left the database as it was.
func (s *Store) Dump(ctx context.Context) (string, error) {
	rows, err := s.reader.QueryContext(ctx, `SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' ORDER BY name`)
	if err != nil {
		return "", err
	}
	var tables []string
	for rows.Next() {
		var n string
		if err := rows.Scan(&n); err != nil {
			rows.Close()
			return "", err
		}
		tables = append(tables, n)
	}
	rows.Close()
	var b strings.Builder
	for _, t := range tables {
		fmt.Fprintf(&b, "== %s\n", t)
		rs, err := s.reader.QueryContext(ctx, `SELECT * FROM "`+t+`"`)
		if err != nil {
			return "", err
		}
		cols, _ := rs.Columns()
		var lines []string
		for rs.Next() {
			vals := make([]any, len(cols))
			ptrs := make([]any, len(cols))
			for i := range vals {
				ptrs[i] = &vals[i]
			}
			if err := rs.Scan(ptrs...); err != nil {
				rs.Close()
				return "", err
			}
			parts := make([]string, len(cols))
			for i, v := range vals {
				switch x := v.(type) {
				case []byte:
					parts[i] = fmt.Sprintf("%s=%x", cols[i], x)
				default:
					parts[i] = fmt.Sprintf("%s=%v", cols[i], x)
				}
			}
			lines = append(lines, strings.Join(parts, " "))
		}
		err = rs.Err()
		rs.Close()
		if err != nil {
			return "", err
		}
		sort.Strings(lines)
		for _, l := range lines {
			b.WriteString(l)
			b.WriteByte('\n')
		}
	}
	return b.String(), nil
}

// mapErr turns SQLite constraint and busy errors into clearer ones.
func mapErr(err error) error {
	if err == nil {
		return nil
	}
	var se *sqlite.Error
	if errors.As(err, &se) {
		switch se.Code() & 0xff {
		case sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED:
			return fmt.Errorf("database is busy: %w", err)
		}
	}
	return err
}

func isConstraint(err error, ext int) bool {
	var se *sqlite.Error
	return errors.As(err, &se) && se.Code() == ext
}
