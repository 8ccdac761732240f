package sqlitestore

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"errors"
	"fmt"
	"runtime"
	"sync"
	"sync/atomic"

	"github.com/teep-go/teep/internal/tam"
)

// MaxBatch bounds how many callers' write transactions one SQLite
// transaction carries (group commit).
const MaxBatch = 64

// errClosed refuses a write after Close.
var errClosed = errors.New("sqlitestore: store is closed")

// A SQLite database has one writer at a time, and most of a small write
// transaction's cost is its commit: BEGIN, the WAL append of every page
// it touched and, when durable, the fsync. The committer therefore runs
// the write transactions that callers submit while another commits as one
// SQLite transaction (group commit): each caller's fn runs inside its own
// SAVEPOINT, so a failing fn rolls back only its own changes, and nobody
// is told of success before the one COMMIT that makes everyone's changes
// visible. A batch commits durably (synchronous=FULL) when any of its
// callers asked for it; one of only UpdateNoSync callers does not wait
// for stable storage. Each caller's semantics are those of a transaction
// of its own: its changes commit all together or not at all.
type committer struct {
	s    *Store
	mu   sync.Mutex
	q    []*writeReq
	wake chan struct{} // one pending wake-up
	stop chan struct{}
	done chan struct{}

	closed bool
	// The writer connection's synchronous level as this committer last
	// set it, so a run of no-sync batches switches it once, not twice a
	// batch. conn identifies the driver connection it was set on.
	conn   any
	noSync bool
}

// A writeReq moves queued → running (the committer claimed it) or
// queued → abandoned (its caller's context ended first); once running,
// the caller waits for the outcome, so an fn never commits after its
// caller was told it failed.
const (
	reqQueued int32 = iota
	reqRunning
	reqAbandoned
)

type writeReq struct {
	ctx     context.Context
	fn      func(tam.Tx) error
	durable bool
	state   atomic.Int32
	result  chan writeResult // buffered: the committer never blocks on it
}

type writeResult struct {
	err      error
	panicked bool
	panicVal any
}

func newCommitter(s *Store) *committer {
	c := &committer{s: s, wake: make(chan struct{}, 1), stop: make(chan struct{}), done: make(chan struct{})}
	go c.loop()
	return c
}

// submit runs fn in a write transaction and returns its outcome.
func (c *committer) submit(ctx context.Context, fn func(tam.Tx) error, durable bool) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("sqlitestore: begin: %w", err)
	}
	r := &writeReq{ctx: ctx, fn: fn, durable: durable, result: make(chan writeResult, 1)}
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return errClosed
	}
	c.q = append(c.q, r)
	c.mu.Unlock()
	select {
	case c.wake <- struct{}{}:
	default:
	}
	var res writeResult
	select {
	case res = <-r.result:
	case <-ctx.Done():
		if r.state.CompareAndSwap(reqQueued, reqAbandoned) {
			return fmt.Errorf("sqlitestore: begin: %w", ctx.Err())
		}
		res = <-r.result // claimed already: it is about to finish
	}
	if res.panicked {
		panic(res.panicVal)
	}
	return res.err
}

func (c *committer) loop() {
	defer close(c.done)
	for {
		select {
		case <-c.wake:
		case <-c.stop:
			c.mu.Lock()
			rest := c.q
			c.q = nil
			c.mu.Unlock()
			for _, r := range rest {
				r.result <- writeResult{err: errClosed}
			}
			return
		}
		for {
			// Under load the sessions that are running are a moment from
			// their own commit: yielding once lets them join this batch.
			runtime.Gosched()
			c.mu.Lock()
			n := min(len(c.q), MaxBatch)
			batch := c.q[:n:n]
			c.q = c.q[n:]
			c.mu.Unlock()
			if n == 0 {
				break
			}
			c.commit(batch)
		}
	}
}

// close stops the committer after the batch it is running; what is
// still queued fails with errClosed.
func (c *committer) close() {
	c.mu.Lock()
	already := c.closed
	c.closed = true
	c.mu.Unlock()
	if !already {
		close(c.stop)
	}
	<-c.done
}

// commit runs one batch as one transaction and delivers every outcome.
func (c *committer) commit(batch []*writeReq) {
	run := batch[:0:0]
	durable := false
	for _, r := range batch {
		if r.state.CompareAndSwap(reqQueued, reqRunning) {
			run = append(run, r)
			durable = durable || r.durable
		}
	}
	if len(run) == 0 {
		return
	}
	results := make([]writeResult, len(run))
	if err := c.runBatch(run, results, durable); err != nil {
		// Nothing committed: every caller learns the batch's error, or
		// its own when its fn failed first.
		for i := range results {
			if results[i].err == nil && !results[i].panicked {
				results[i].err = err
			}
		}
	}
	c.s.writeStmts.flush(context.Background())
	for i, r := range run {
		r.result <- results[i]
	}
}

// runBatch runs the callers' fns in one transaction; it returns an error
// when the transaction as a whole did not commit.
func (c *committer) runBatch(run []*writeReq, results []writeResult, durable bool) (err error) {
	// The transaction outlives any one caller: statements run without the
	// callers' cancellation (tx.noCancel), since an interrupted write
	// would roll back every caller's changes, and each caller's context is
	// checked before its fn starts.
	bg := context.Background()
	conn, err := c.s.writer.Conn(bg)
	if err != nil {
		return fmt.Errorf("sqlitestore: begin: %w", mapErr(err))
	}
	defer conn.Close()
	if err := c.setSync(conn, !durable); err != nil {
		return err
	}
	sqlTx, err := conn.BeginTx(bg, nil)
	if err != nil {
		return fmt.Errorf("sqlitestore: begin: %w", mapErr(err))
	}
	t := &tx{tx: sqlTx, stmts: c.s.writeStmts, noCancel: true}
	alone := len(run) == 1
	committed := 0
	for i, r := range run {
		if err := r.ctx.Err(); err != nil {
			results[i].err = fmt.Errorf("sqlitestore: begin: %w", err)
			continue
		}
		if !alone {
			if _, err := sqlTx.ExecContext(bg, "SAVEPOINT caller"); err != nil {
				sqlTx.Rollback()
				return fmt.Errorf("sqlitestore: savepoint: %w", mapErr(err))
			}
		}
		results[i] = callFn(r.fn, t)
		if results[i].err == nil && !results[i].panicked {
			if !alone {
				if _, err := sqlTx.ExecContext(bg, "RELEASE caller"); err != nil {
					sqlTx.Rollback()
					return fmt.Errorf("sqlitestore: release savepoint: %w", mapErr(err))
				}
			}
			committed++
			continue
		}
		if alone {
			if rbErr := sqlTx.Rollback(); rbErr != nil && !errors.Is(rbErr, sql.ErrTxDone) && !results[i].panicked {
				results[i].err = errors.Join(results[i].err, fmt.Errorf("sqlitestore: rollback: %w", rbErr))
			}
			return nil
		}
		// A failed statement that SQLite answers by rolling back the whole
		// transaction (I/O error, disk full) leaves no savepoint to go back
		// to: then the batch fails as a whole.
		if _, err := sqlTx.ExecContext(bg, "ROLLBACK TO caller"); err != nil {
			sqlTx.Rollback()
			return fmt.Errorf("sqlitestore: roll back to savepoint: %w", mapErr(err))
		}
		if _, err := sqlTx.ExecContext(bg, "RELEASE caller"); err != nil {
			sqlTx.Rollback()
			return fmt.Errorf("sqlitestore: release savepoint: %w", mapErr(err))
		}
	}
	if committed == 0 {
		if err := sqlTx.Rollback(); err != nil && !errors.Is(err, sql.ErrTxDone) {
			return fmt.Errorf("sqlitestore: rollback: %w", mapErr(err))
		}
		return nil
	}
	if err := sqlTx.Commit(); err != nil {
		return fmt.Errorf("sqlitestore: commit: %w", mapErr(err))
	}
	return nil
}

// callFn runs fn, turning a panic into a result its caller re-raises.
func callFn(fn func(tam.Tx) error, t *tx) (res writeResult) {
	defer func() {
		if p := recover(); p != nil {
			res = writeResult{panicked: true, panicVal: p}
		}
	}()
	return writeResult{err: fn(t)}
}

// setSync puts the writer connection in synchronous=NORMAL for a batch
// that need not wait for stable storage, FULL otherwise. SQLite refuses
// the change inside a transaction, hence before BEGIN.
func (c *committer) setSync(conn *sql.Conn, noSync bool) error {
	var id any
	conn.Raw(func(dc any) error { id = dc; return nil })
	if id == c.conn && noSync == c.noSync {
		return nil
	}
	level := "FULL"
	if noSync {
		level = "NORMAL"
	}
	if _, err := conn.ExecContext(context.Background(), "PRAGMA synchronous = "+level); err != nil {
		// Never leave a connection whose level is unknown: drop it, the
		// pool opens a new one (FULL from the DSN).
		conn.Raw(func(any) error { return driver.ErrBadConn })
		c.conn = nil
		return fmt.Errorf("sqlitestore: set synchronous: %w", mapErr(err))
	}
	c.conn, c.noSync = id, noSync
	return nil
}

// restoreFull restores FULL on the writer connection when the committer left
// it at NORMAL, so that nothing else on it (Checkpoint, Close) runs
// without sync.
func (c *committer) restoreFull() error {
	if c.conn == nil || !c.noSync {
		return nil
	}
	conn, err := c.s.writer.Conn(context.Background())
	if err != nil {
		return err
	}
	defer conn.Close()
	return c.setSync(conn, false)
}
