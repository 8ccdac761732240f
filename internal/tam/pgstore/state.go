package pgstore

import (
	"context"
	"errors"
	"fmt"

	"github.com/jackc/pgx/v5"
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
	// CollectRows gives nil for no rows, as queryAll does.
	return st, nil
}
