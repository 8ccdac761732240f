package pgstore

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/teep-go/teep/internal/tam"
)

var _ tam.DeviceStateStore = (*Store)(nil)

// deviceStateQuery reads a tam.DeviceState as one statement: one snapshot
// without BEGIN and COMMIT around it. The installed components,
// personalizations and failures come as one array of rows each, in the
// order of its Tx method (an ARRAY of an ordered subquery keeps its order;
// the primary keys give that order without a sort). The server spends
// about what five queries in a read-only transaction cost it; this side
// decodes one row instead of seven results (docs/performance.md, "Third
// pass").
var deviceStateQuery = `SELECT ` + prefixed("d.", deviceColumns) + `,
	(SELECT generation FROM catalog_generation WHERE id = 1),
	ARRAY(SELECT ROW(component_id, sequence, managed, requested, updated_at)
		FROM installed WHERE device_kid = d.kid ORDER BY component_id),
	ARRAY(SELECT ROW(tenant_id, name, component_id, payload_id, sequence, envelope, digest, depends_on, size, created_at)
		FROM personalization WHERE device_kid = d.kid ORDER BY tenant_id, name),
	ARRAY(SELECT ROW(component_id, sequence, attempts, last_error, last_at)
		FROM install_failures WHERE device_kid = d.kid ORDER BY component_id, sequence)
	FROM devices d WHERE d.kid = $1`

// DeviceState reads the device's row and session state with one statement
// (tam.DeviceStateStore, deviceStateQuery).
func (s *Store) DeviceState(ctx context.Context, kid []byte) (tam.DeviceState, error) {
	var (
		gen       *int64
		installed []partRow[installedRow, *installedRow]
		personal  []partRow[personalizationRow, *personalizationRow]
		failures  []partRow[failureRow, *failureRow]
	)
	d, err := scanDevice(withExtra{s.pool.QueryRow(ctx, deviceStateQuery, nonNil(kid)), []any{&gen, &installed, &personal, &failures}})
	if err != nil {
		return tam.DeviceState{}, notFound(mapErr(err), fmt.Sprintf("device %x", kid))
	}
	if gen == nil {
		return tam.DeviceState{}, errors.New("pgstore: device state: no catalog generation row")
	}
	// Empty, not nil, lists: what pgx.CollectRows, and so each Tx method,
	// returns for no rows.
	st := tam.DeviceState{Device: d, CatalogGeneration: uint64(*gen), Installed: make([]tam.Installed, len(installed)),
		Personalizations: make([]tam.Personalization, len(personal)), Failures: make([]tam.InstallFailure, len(failures))}
	for i := range installed {
		if st.Installed[i], err = scanInstalled(&installed[i]); err != nil {
			return tam.DeviceState{}, fmt.Errorf("pgstore: device state: %w", err)
		}
	}
	for i := range personal {
		if st.Personalizations[i], err = scanPersonalization(withKID{d.KID, &personal[i]}); err != nil {
			return tam.DeviceState{}, fmt.Errorf("pgstore: device state: %w", err)
		}
	}
	for i := range failures {
		if st.Failures[i], err = scanFailure(withKID{d.KID, &failures[i]}); err != nil {
			return tam.DeviceState{}, fmt.Errorf("pgstore: device state: %w", err)
		}
	}
	return st, nil
}

// The rows of each part of deviceStateQuery, one field per column of its
// ROW(...), in order (fields); partRow scans them.
type (
	installedRow struct {
		id                 string
		seq                int64
		managed, requested bool
		updated            int64
	}
	personalizationRow struct {
		tenant, name, id, payloadID string
		seq                         int64
		envelope, digest            []byte
		dependsOn                   []string
		size, created               int64
	}
	failureRow struct {
		id            string
		seq, attempts int64
		lastError     string
		at            int64
	}
)

func (r *installedRow) fields() []any {
	return []any{&r.id, &r.seq, &r.managed, &r.requested, &r.updated}
}

func (r *personalizationRow) fields() []any {
	return []any{&r.tenant, &r.name, &r.id, &r.payloadID, &r.seq, &r.envelope, &r.digest, &r.dependsOn, &r.size, &r.created}
}

func (r *failureRow) fields() []any {
	return []any{&r.id, &r.seq, &r.attempts, &r.lastError, &r.at}
}

// partRow is one row of a part as pgx scans it: a composite
// (pgtype.CompositeIndexScanner: ScanIndex names the field of a column)
// and, afterwards, a pgx.Row that hands its fields to the scan function of
// its Tx method.
type partRow[R any, P interface {
	*R
	fields() []any
}] struct{ r R }

func (p *partRow[R, P]) ScanNull() error        { return errNullRow }
func (p *partRow[R, P]) ScanIndex(i int) any    { return field(P(&p.r).fields(), i) }
func (p *partRow[R, P]) Scan(dest ...any) error { return copyFields(dest, P(&p.r).fields()) }

var errNullRow = errors.New("pgstore: device state: a NULL row")

// field is fields[i], or nil (pgx then skips the column) past the end;
// copyFields refuses such a row.
func field(fields []any, i int) any {
	if i >= len(fields) {
		return nil
	}
	return fields[i]
}

// copyFields stores each *src[i] in dest[i], pointers to the same type
// (or *int for *int64).
func copyFields(dest, src []any) error {
	if len(dest) != len(src) {
		return fmt.Errorf("%d destinations for %d fields", len(dest), len(src))
	}
	for i, d := range dest {
		ok := false
		switch d := d.(type) {
		case *string:
			ok = copyField(d, src[i])
		case *int64:
			ok = copyField(d, src[i])
		case *int:
			var n int64
			if ok = copyField(&n, src[i]); ok {
				*d = int(n)
			}
		case *bool:
			ok = copyField(d, src[i])
		case *[]byte:
			ok = copyField(d, src[i])
		case *[]string:
			ok = copyField(d, src[i])
		}
		if !ok {
			return fmt.Errorf("field %d: cannot scan %T into %T", i+1, src[i], d)
		}
	}
	return nil
}

// copyField stores *src in dest when src is a *T.
func copyField[T any](dest *T, src any) bool {
	v, ok := src.(*T)
	if ok {
		*dest = *v
	}
	return ok
}

// withKID scans a part's row that leaves out the device kid, which the
// scan functions expect first.
type withKID struct {
	kid []byte
	row pgx.Row
}

func (w withKID) Scan(dest ...any) error {
	if len(dest) == 0 {
		return errors.New("no destinations")
	}
	k, ok := dest[0].(*[]byte)
	if !ok {
		return fmt.Errorf("cannot scan the kid into %T", dest[0])
	}
	*k = w.kid
	return w.row.Scan(dest[1:]...)
}

var _ tam.SteadyRoundStore = (*Store)(nil)

// sqlStateDeviceChanged is what steady_round raises when the device row
// no longer matches (migration 0005).
const sqlStateDeviceChanged = "TE001"

// SteadyRound commits a steady round with one call of steady_round
// (migration 0005): one statement, one round trip, no WAL flush waited for
// (tam.SteadyRoundStore).
func (s *Store) SteadyRound(ctx context.Context, token []byte, expires time.Time, epoch uint64, d tam.Device) (bool, error) {
	var r int
	err := s.pool.QueryRow(ctx, `SELECT steady_round($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)`,
		nonNil(token), ts(expires), int64(epoch), nonNil(d.KID), ts(d.LastSeen), d.Alg, d.Numbering, string(d.Status), d.LastError, int64(d.LastErrorCode)).Scan(&r)
	var pe *pgconn.PgError
	switch {
	case errors.As(err, &pe) && pe.Code == sqlStateDeviceChanged:
		return false, nil
	case err != nil:
		return false, fmt.Errorf("pgstore: steady round: %w", mapErr(err))
	case r == 1:
		return true, nil
	case r == 2:
		return false, tam.ErrTokenUsed
	case r == 3:
		return false, fmt.Errorf("%w: minted under an earlier token epoch", tam.ErrTokenUsed)
	}
	return false, fmt.Errorf("pgstore: steady round: result %d", r)
}

var _ tam.PendingKeyStore = (*Store)(nil)

// PendingWithKey reads a pending Update and its device's key in one
// statement (tam.PendingKeyStore).
func (s *Store) PendingWithKey(ctx context.Context, token []byte) (tam.PendingUpdate, []byte, error) {
	var key []byte
	row := s.pool.QueryRow(ctx, `SELECT p.token, p.device_kid, p.numbering, p.install, p.remove, p.created_at, p.expires_at, d.key
		FROM pending_updates p JOIN devices d ON d.kid = p.device_kid WHERE p.token = $1`, nonNil(token))
	p, err := scanPending(withExtra{row, []any{&key}})
	if err != nil {
		return tam.PendingUpdate{}, nil, notFound(mapErr(err), "pending update")
	}
	return p, key, nil
}

// withExtra scans the columns a scan function expects, then extra ones.
type withExtra struct {
	row   pgx.Row
	extra []any
}

func (w withExtra) Scan(dest ...any) error { return w.row.Scan(append(dest, w.extra...)...) }
