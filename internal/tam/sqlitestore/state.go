package sqlitestore

import (
	"cmp"
	"context"
	"database/sql"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/teep-go/teep/internal/tam"
)

var _ tam.DeviceStateStore = (*Store)(nil)

// deviceStateColumns is the width of deviceStateQuery's rows after the
// kind: the widest part, the device row.
const deviceStateColumns = 20

// Row kinds of deviceStateQuery, its first column.
const (
	stateDevice = iota
	stateGeneration
	stateInstalled
	statePersonalization
	stateFailure
)

// deviceStateQuery reads a tam.DeviceState as one compound SELECT: one
// statement is one snapshot in SQLite, so it needs no BEGIN and no end of
// a read transaction, and it is stepped once rather than as five
// statements. Each part is padded with NULLs to the device row's width;
// SQLite columns are typed per value, so the parts need not agree. It has
// no ORDER BY: over a compound SELECT that costs a temporary B-tree per
// part (EXPLAIN QUERY PLAN), so DeviceState sorts the few rows of each
// part into the order of its Tx method instead (sortKeyed).
var deviceStateQuery = `SELECT 0, kid, key, alg, labels, tenant_labels, ueid, oemid, hwmodel, hwversion, preregistered, attestation, attested_at,
	attestation_reason, needs_attestation, status, last_error, last_error_code, numbering, created_at, last_seen FROM devices WHERE kid = ?1
UNION ALL SELECT 1, generation` + nulls(19) + ` FROM catalog_generation WHERE id = 1
UNION ALL SELECT 2, component_id, sequence, managed, requested, updated_at` + nulls(15) + ` FROM installed WHERE device_kid = ?1
UNION ALL SELECT 3, device_kid, tenant_id, name, component_id, payload_id, sequence, envelope, digest, depends_on, size, created_at` + nulls(9) + `
	FROM personalization WHERE device_kid = ?1
UNION ALL SELECT 4, device_kid, component_id, sequence, attempts, last_error, last_at` + nulls(14) + ` FROM install_failures WHERE device_kid = ?1`

func nulls(n int) string {
	s := ""
	for range n {
		s += ", NULL"
	}
	return s
}

// DeviceState reads the device's row and session state in one statement
// (tam.DeviceStateStore).
func (s *Store) DeviceState(ctx context.Context, kid []byte) (st tam.DeviceState, err error) {
	var rows *sql.Rows
	if stmt := s.readStmts.get(deviceStateQuery); stmt != nil {
		rows, err = stmt.QueryContext(ctx, nonNil(kid))
	} else {
		defer s.readStmts.flush(context.WithoutCancel(ctx))
		rows, err = s.reader.QueryContext(ctx, deviceStateQuery, nonNil(kid))
	}
	if err != nil {
		return st, fmt.Errorf("sqlitestore: device state: %w", mapErr(err))
	}
	defer rows.Close()
	var kind int
	vals := make([]any, deviceStateColumns)
	dest := make([]any, 1+deviceStateColumns)
	dest[0] = &kind
	for i := range vals {
		dest[1+i] = &vals[i]
	}
	found, gen := false, false
	var installed []keyed[tam.Installed]
	var personalizations []keyed[tam.Personalization]
	var failures []keyed[tam.InstallFailure]
	for rows.Next() {
		if err := rows.Scan(dest...); err != nil {
			return st, fmt.Errorf("sqlitestore: device state: %w", err)
		}
		sc := valueScanner(vals)
		switch kind {
		case stateDevice:
			st.Device, err = scanDevice(sc)
			found = true
		case stateGeneration:
			var g int64
			err = sc.Scan(&g)
			st.CatalogGeneration, gen = uint64(g), true
		case stateInstalled:
			// ORDER BY component_id, as Tx.Installed.
			var in tam.Installed
			in, err = scanInstalled(sc)
			installed = append(installed, keyed[tam.Installed]{vals[0], nil, in})
		case statePersonalization:
			// ORDER BY tenant_id, name, as Tx.Personalizations.
			var p tam.Personalization
			p, err = scanPersonalization(sc)
			personalizations = append(personalizations, keyed[tam.Personalization]{vals[1], vals[2], p})
		case stateFailure:
			// ORDER BY component_id, sequence, as Tx.Failures.
			var f tam.InstallFailure
			f, err = scanFailure(sc)
			failures = append(failures, keyed[tam.InstallFailure]{vals[1], vals[2], f})
		default:
			err = fmt.Errorf("row kind %d", kind)
		}
		if err != nil {
			return st, fmt.Errorf("sqlitestore: device state: %w", err)
		}
	}
	if err := rows.Err(); err != nil {
		return st, fmt.Errorf("sqlitestore: device state: %w", mapErr(err))
	}
	if !found {
		return tam.DeviceState{}, fmt.Errorf("device %x: %w", kid, tam.ErrNotFound)
	}
	if !gen {
		return tam.DeviceState{}, fmt.Errorf("sqlitestore: device state: no catalog generation row")
	}
	st.Installed, st.Personalizations, st.Failures = sortKeyed(installed), sortKeyed(personalizations), sortKeyed(failures)
	return st, nil
}

// keyed is a row of deviceStateQuery with the stored values of the
// columns its Tx method orders by (TEXT as string, INTEGER as int64; nil
// when a part orders by one column).
type keyed[T any] struct {
	k1, k2 any
	v      T
}

// sortKeyed orders rows as SQLite's ORDER BY k1, k2 does for these
// columns (BINARY collation: byte order of the text, which Go's string
// comparison is) and returns the values; nil for no rows, as the Tx
// methods return.
func sortKeyed[T any](rows []keyed[T]) []T {
	if len(rows) == 0 {
		return nil
	}
	slices.SortStableFunc(rows, func(a, b keyed[T]) int {
		if c := compareStored(a.k1, b.k1); c != 0 {
			return c
		}
		return compareStored(a.k2, b.k2)
	})
	out := make([]T, len(rows))
	for i, r := range rows {
		out[i] = r.v
	}
	return out
}

// compareStored compares two stored values of one column: both TEXT
// (string), both INTEGER (int64) or both absent.
func compareStored(a, b any) int {
	switch x := a.(type) {
	case string:
		y, _ := b.(string)
		return strings.Compare(x, y)
	case int64:
		y, _ := b.(int64)
		return cmp.Compare(x, y)
	}
	return 0
}

// valueScanner scans the values of one row that database/sql already
// converted into any (int64, string, []byte or nil; []byte copied), into
// the destination types the scan functions use.
type valueScanner []any

func (v valueScanner) Scan(dest ...any) error {
	if len(dest) > len(v) {
		return fmt.Errorf("%d destinations for %d columns", len(dest), len(v))
	}
	for i, d := range dest {
		var ok bool
		switch d := d.(type) {
		case *[]byte:
			switch x := v[i].(type) {
			case []byte:
				*d, ok = x, true
			case nil:
				*d, ok = nil, true
			}
		case *string:
			switch x := v[i].(type) {
			case string:
				*d, ok = x, true
			case []byte:
				*d, ok = string(x), true
			}
		case *int64:
			var x int64
			if x, ok = v[i].(int64); ok {
				*d = x
			}
		case *int:
			var x int64
			if x, ok = v[i].(int64); ok {
				*d = int(x)
			}
		}
		if !ok {
			return fmt.Errorf("column %d: cannot scan %T into %T", i+1, v[i], d)
		}
	}
	return nil
}

var _ tam.SteadyRoundStore = (*Store)(nil)

// errRowChanged rolls back a steady round whose device row changed.
var errRowChanged = errors.New("device row changed")

// SteadyRound commits a steady round as one member of a no-sync batch of
// the committer (tam.SteadyRoundStore).
func (s *Store) SteadyRound(ctx context.Context, token []byte, expires time.Time, epoch uint64, d tam.Device) (bool, error) {
	if epoch != s.epoch {
		return false, fmt.Errorf("%w: minted under an earlier token epoch", tam.ErrTokenUsed)
	}
	err := s.commits.submit(ctx, func(t tam.Tx) error {
		if err := t.UseToken(ctx, token, expires); err != nil {
			return err
		}
		done, err := t.(*tx).TouchDevice(ctx, d)
		if err == nil && !done {
			err = errRowChanged
		}
		return err
	}, false)
	if errors.Is(err, errRowChanged) {
		return false, nil
	}
	return err == nil, err
}

var _ tam.PendingKeyStore = (*Store)(nil)

const pendingWithKeyQuery = `SELECT p.token, p.device_kid, p.numbering, p.install, p.remove, p.created_at, p.expires_at, d.key
	FROM pending_updates p JOIN devices d ON d.kid = p.device_kid WHERE p.token = ?`

// PendingWithKey reads a pending Update and its device's key in one
// statement (tam.PendingKeyStore).
func (s *Store) PendingWithKey(ctx context.Context, token []byte) (tam.PendingUpdate, []byte, error) {
	var key []byte
	var row *sql.Row
	if stmt := s.readStmts.get(pendingWithKeyQuery); stmt != nil {
		row = stmt.QueryRowContext(ctx, nonNil(token))
	} else {
		defer s.readStmts.flush(context.WithoutCancel(ctx))
		row = s.reader.QueryRowContext(ctx, pendingWithKeyQuery, nonNil(token))
	}
	p, err := scanPending(withExtra{row, []any{&key}})
	if err != nil {
		return tam.PendingUpdate{}, nil, notFound(mapErr(err), "pending update")
	}
	return p, key, nil
}

// withExtra scans the columns a scan function expects, then extra ones.
type withExtra struct {
	sc    scanner
	extra []any
}

func (w withExtra) Scan(dest ...any) error { return w.sc.Scan(append(dest, w.extra...)...) }
