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

// DeviceState reads the device's row and session state in one round trip
// (tam.DeviceStateStore): the five queries of a View travel as one
// pipelined batch between BEGIN and COMMIT of a read-only REPEATABLE READ
// transaction, so they share one snapshot, where a View costs a round
// trip for each and for its begin and end.
func (s *Store) DeviceState(ctx context.Context, kid []byte) (st tam.DeviceState, err error) {
	k := nonNil(kid)
	b := &pgx.Batch{}
	b.Queue(`BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY`)
	b.Queue(deviceSelect+` WHERE kid = $1`, k).QueryRow(func(r pgx.Row) error {
		st.Device, err = scanDevice(r)
		return notFound(mapErr(err), fmt.Sprintf("device %x", kid))
	})
	b.Queue(`SELECT generation FROM catalog_generation WHERE id = 1`).QueryRow(func(r pgx.Row) error {
		var g int64
		if err := r.Scan(&g); err != nil {
			return fmt.Errorf("catalog generation: %w", mapErr(err))
		}
		st.CatalogGeneration = uint64(g)
		return nil
	})
	b.Queue(`SELECT component_id, sequence, managed, requested, updated_at FROM installed
		WHERE device_kid = $1 ORDER BY component_id`, k).Query(func(rows pgx.Rows) (err error) {
		st.Installed, err = pgx.CollectRows(rows, func(r pgx.CollectableRow) (tam.Installed, error) { return scanInstalled(r) })
		return mapErr(err)
	})
	b.Queue(personalizationSelect+` WHERE device_kid = $1 ORDER BY tenant_id, name`, k).Query(func(rows pgx.Rows) (err error) {
		st.Personalizations, err = pgx.CollectRows(rows, func(r pgx.CollectableRow) (tam.Personalization, error) { return scanPersonalization(r) })
		return mapErr(err)
	})
	b.Queue(`SELECT device_kid, component_id, sequence, attempts, last_error, last_at FROM install_failures
		WHERE device_kid = $1 ORDER BY component_id, sequence`, k).Query(func(rows pgx.Rows) (err error) {
		st.Failures, err = pgx.CollectRows(rows, func(r pgx.CollectableRow) (tam.InstallFailure, error) { return scanFailure(r) })
		return mapErr(err)
	})
	b.Queue(`COMMIT`)
	if err := s.pool.SendBatch(ctx, b).Close(); err != nil {
		if errors.Is(err, tam.ErrNotFound) {
			return tam.DeviceState{}, err
		}
		return tam.DeviceState{}, fmt.Errorf("pgstore: device state: %w", mapErr(err))
	}
	// CollectRows gives an empty, non-nil list for no rows, as queryAll does.
	return st, nil
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
