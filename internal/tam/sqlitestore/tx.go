package sqlitestore

import (
	"context"
	"database/sql"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"time"

	"github.com/teep-go/teep/internal/tam"
	"github.com/teep-go/teep/suit"
	sqlite3 "modernc.org/sqlite/lib"
)

// tx implements every aggregate interface of tam.Tx; the methods below are
// grouped in the same order.
var (
	_ tam.Tx                = (*tx)(nil)
	_ tam.ComponentTx       = (*tx)(nil)
	_ tam.PolicyTx          = (*tx)(nil)
	_ tam.TrustedKeyTx      = (*tx)(nil)
	_ tam.DeviceTx          = (*tx)(nil)
	_ tam.InstalledTx       = (*tx)(nil)
	_ tam.FailureTx         = (*tx)(nil)
	_ tam.ReportTx          = (*tx)(nil)
	_ tam.SessionTx         = (*tx)(nil)
	_ tam.PersonalizationTx = (*tx)(nil)

	_ tam.CatalogGenerationTx = (*tx)(nil)
	_ tam.DeviceSeenTx        = (*tx)(nil)
	_ tam.DeviceSessionTx     = (*tx)(nil)
)

type tx struct {
	tx       *sql.Tx
	readOnly bool
	stmts    *stmtCache
	noCancel bool // a batch's statements ignore their caller's cancellation (committer)
}

// ctx is the context a statement runs with.
func (t *tx) ctx(ctx context.Context) context.Context {
	if t.noCancel {
		return context.WithoutCancel(ctx)
	}
	return ctx
}

// stmt returns q's prepared statement bound to this transaction, or nil
// when it is not prepared yet.
func (t *tx) stmt(ctx context.Context, q string) *sql.Stmt {
	if s := t.stmts.get(q); s != nil {
		return t.tx.StmtContext(ctx, s)
	}
	return nil
}

func (t *tx) exec(ctx context.Context, q string, args ...any) (sql.Result, error) {
	ctx = t.ctx(ctx)
	if t.readOnly {
		return nil, tam.ErrStoreReadOnly
	}
	var r sql.Result
	var err error
	if s := t.stmt(ctx, q); s != nil {
		r, err = s.ExecContext(ctx, args...)
	} else {
		r, err = t.tx.ExecContext(ctx, q, args...)
	}
	return r, mapErr(err)
}

func (t *tx) query(ctx context.Context, q string, args ...any) (*sql.Rows, error) {
	ctx = t.ctx(ctx)
	var r *sql.Rows
	var err error
	if s := t.stmt(ctx, q); s != nil {
		r, err = s.QueryContext(ctx, args...)
	} else {
		r, err = t.tx.QueryContext(ctx, q, args...)
	}
	return r, mapErr(err)
}

func (t *tx) queryRow(ctx context.Context, q string, args ...any) *sql.Row {
	ctx = t.ctx(ctx)
	if s := t.stmt(ctx, q); s != nil {
		return s.QueryRowContext(ctx, args...)
	}
	return t.tx.QueryRowContext(ctx, q, args...)
}

// scanner is a *sql.Row or *sql.Rows.
type scanner interface{ Scan(...any) error }

// queryAll runs q and scans every row with scan.
func queryAll[T any](ctx context.Context, t *tx, scan func(scanner) (T, error), q string, args ...any) ([]T, error) {
	rows, err := t.query(ctx, q, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []T
	for rows.Next() {
		v, err := scan(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, v)
	}
	return out, rows.Err()
}

// ts encodes a time as Unix nanoseconds, 0 for the zero time.
func ts(t time.Time) int64 {
	if t.IsZero() {
		return 0
	}
	return t.UnixNano()
}

func fromTS(n int64) time.Time {
	if n == 0 {
		return time.Time{}
	}
	return time.Unix(0, n).UTC()
}

// seq checks that a sequence number fits SQLite's signed 64-bit integers.
func seq(n uint64) (int64, error) {
	if n > math.MaxInt64 {
		return 0, fmt.Errorf("sqlitestore: sequence number %d exceeds %d", n, int64(math.MaxInt64))
	}
	return int64(n), nil
}

func boolInt(b bool) int {
	if b {
		return 1
	}
	return 0
}

func jsonText(v any) (string, error) {
	b, err := json.Marshal(v)
	if err != nil {
		return "", fmt.Errorf("sqlitestore: encode: %w", err)
	}
	return string(b), nil
}

func fromJSON(s string, v any) error {
	if err := json.Unmarshal([]byte(s), v); err != nil {
		return fmt.Errorf("sqlitestore: corrupt row: %w", err)
	}
	return nil
}

func hexList(bs [][]byte) []string {
	out := make([]string, len(bs))
	for i, b := range bs {
		out[i] = hex.EncodeToString(b)
	}
	return out
}

func unhexList(ss []string) ([][]byte, error) {
	out := make([][]byte, len(ss))
	for i, s := range ss {
		b, err := hex.DecodeString(s)
		if err != nil {
			return nil, fmt.Errorf("sqlitestore: corrupt row: %w", err)
		}
		out[i] = b
	}
	return out, nil
}

func nonNil(b []byte) []byte {
	if b == nil {
		return []byte{}
	}
	return b
}

func notFound(err error, what string) error {
	if errors.Is(err, sql.ErrNoRows) {
		return fmt.Errorf("%s: %w", what, tam.ErrNotFound)
	}
	return err
}

func affected(r sql.Result, what string) error {
	n, err := r.RowsAffected()
	if err != nil {
		return err
	}
	if n == 0 {
		return fmt.Errorf("%s: %w", what, tam.ErrNotFound)
	}
	return nil
}

// ---- components

func (t *tx) AddComponentVersion(ctx context.Context, v tam.ComponentVersion, envelope []byte) error {
	s, err := seq(v.Sequence)
	if err != nil {
		return err
	}
	var latest sql.NullInt64
	if err := t.queryRow(ctx, `SELECT MAX(sequence) FROM component_versions WHERE component_id = ?`, idCol(v.ComponentID)).Scan(&latest); err != nil {
		return mapErr(err)
	}
	if latest.Valid && s <= latest.Int64 {
		return fmt.Errorf("component %s: sequence %d, stored %d: %w", tam.IDName(v.ComponentID), v.Sequence, latest.Int64, tam.ErrSequence)
	}
	created := ts(v.CreatedAt)
	if _, err := t.exec(ctx, `INSERT INTO components (id, created_at, updated_at) VALUES (?, ?, ?)
		ON CONFLICT (id) DO UPDATE SET updated_at = excluded.updated_at`, idCol(v.ComponentID), created, created); err != nil {
		return err
	}
	pids, err := idsCol(v.PayloadIDs)
	if err != nil {
		return err
	}
	pdig, err := jsonText(hexList(v.PayloadDigests))
	if err != nil {
		return err
	}
	deps, err := idsCol(v.Dependencies)
	if err != nil {
		return err
	}
	_, err = t.exec(ctx, `INSERT INTO component_versions
		(component_id, sequence, digest, payload_ids, payload_digests, dependencies, signer_kid, size, envelope, created_at)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
		idCol(v.ComponentID), s, nonNil(v.Digest), pids, pdig, deps, nonNil(v.SignerKID), v.Size, nonNil(envelope), created)
	return err
}

// Component ids are stored as the hex of their CBOR encoding (tam.IDHex),
// lists of them as JSON lists of such hex: the columns earlier releases
// wrote, so existing databases read unchanged.
func idCol(id suit.ComponentID) string {
	if id == nil {
		return ""
	}
	return tam.IDHex(id)
}

func idFromCol(s string) (suit.ComponentID, error) {
	if s == "" {
		return nil, nil
	}
	raw, err := hex.DecodeString(s)
	if err != nil {
		return nil, fmt.Errorf("sqlitestore: corrupt component id %q: %w", s, err)
	}
	id, err := suit.DecodeComponentID(raw)
	if err != nil {
		return nil, fmt.Errorf("sqlitestore: corrupt component id %q: %w", s, err)
	}
	return id, nil
}

func idsCol(ids []suit.ComponentID) (string, error) {
	out := make([]string, len(ids))
	for i, id := range ids {
		out[i] = idCol(id)
	}
	return jsonText(out)
}

func idsFromCol(s string) ([]suit.ComponentID, error) {
	var hexes []string
	if err := fromJSON(s, &hexes); err != nil {
		return nil, err
	}
	var out []suit.ComponentID
	for _, h := range hexes {
		id, err := idFromCol(h)
		if err != nil {
			return nil, err
		}
		out = append(out, id)
	}
	return out, nil
}

const componentSelect = `SELECT c.id, COALESCE(MAX(v.sequence), 0), COUNT(v.sequence), c.created_at, c.updated_at
	FROM components c LEFT JOIN component_versions v ON v.component_id = c.id`

func scanComponent(sc scanner) (tam.Component, error) {
	var c tam.Component
	var id string
	var latest, created, updated int64
	if err := sc.Scan(&id, &latest, &c.Versions, &created, &updated); err != nil {
		return c, err
	}
	c.Latest, c.CreatedAt, c.UpdatedAt = uint64(latest), fromTS(created), fromTS(updated)
	var err error
	c.ID, err = idFromCol(id)
	return c, err
}

func (t *tx) Component(ctx context.Context, id suit.ComponentID) (tam.Component, error) {
	c, err := scanComponent(t.queryRow(ctx, componentSelect+` WHERE c.id = ? GROUP BY c.id`, idCol(id)))
	return c, notFound(err, "component "+tam.IDName(id))
}

func (t *tx) Components(ctx context.Context) ([]tam.Component, error) {
	return queryAll(ctx, t, scanComponent, componentSelect+` GROUP BY c.id ORDER BY c.id`)
}

const versionSelect = `SELECT component_id, sequence, digest, payload_ids, payload_digests, dependencies, signer_kid, size, created_at FROM component_versions`

func scanVersion(sc scanner) (tam.ComponentVersion, error) {
	var v tam.ComponentVersion
	var id, pids, pdig, deps string
	var s, created int64
	if err := sc.Scan(&id, &s, &v.Digest, &pids, &pdig, &deps, &v.SignerKID, &v.Size, &created); err != nil {
		return v, err
	}
	v.Sequence, v.CreatedAt = uint64(s), fromTS(created)
	var err error
	if v.ComponentID, err = idFromCol(id); err != nil {
		return v, err
	}
	if v.PayloadIDs, err = idsFromCol(pids); err != nil {
		return v, err
	}
	var dig []string
	if err := fromJSON(pdig, &dig); err != nil {
		return v, err
	}
	if v.PayloadDigests, err = unhexList(dig); err != nil {
		return v, err
	}
	v.Dependencies, err = idsFromCol(deps)
	return v, err
}

func (t *tx) ComponentVersions(ctx context.Context, id suit.ComponentID) ([]tam.ComponentVersion, error) {
	out, err := queryAll(ctx, t, scanVersion, versionSelect+` WHERE component_id = ? ORDER BY sequence`, idCol(id))
	if err == nil && len(out) == 0 {
		err = fmt.Errorf("component %s: %w", id, tam.ErrNotFound)
	}
	return out, err
}

func (t *tx) AllVersions(ctx context.Context) ([]tam.ComponentVersion, error) {
	return queryAll(ctx, t, scanVersion, versionSelect+` ORDER BY component_id, sequence`)
}

func (t *tx) ComponentVersion(ctx context.Context, id suit.ComponentID, sequence uint64) (tam.ComponentVersion, error) {
	s, err := seq(sequence)
	if err != nil {
		return tam.ComponentVersion{}, err
	}
	v, err := scanVersion(t.queryRow(ctx, versionSelect+` WHERE component_id = ? AND sequence = ?`, idCol(id), s))
	return v, notFound(err, fmt.Sprintf("component %s version %d", id, sequence))
}

func (t *tx) Envelope(ctx context.Context, id suit.ComponentID, sequence uint64) ([]byte, error) {
	s, err := seq(sequence)
	if err != nil {
		return nil, err
	}
	var env []byte
	err = t.queryRow(ctx, `SELECT envelope FROM component_versions WHERE component_id = ? AND sequence = ?`, idCol(id), s).Scan(&env)
	return env, notFound(err, fmt.Sprintf("component %s version %d", id, sequence))
}

// CatalogGeneration reads the counter the triggers of migration 0004 bump
// with every catalog change.
func (t *tx) CatalogGeneration(ctx context.Context) (uint64, error) {
	var g int64
	if err := t.queryRow(ctx, `SELECT generation FROM catalog_generation WHERE id = 1`).Scan(&g); err != nil {
		return 0, fmt.Errorf("catalog generation: %w", mapErr(err))
	}
	return uint64(g), nil
}

func (t *tx) DeleteComponent(ctx context.Context, id suit.ComponentID) error {
	r, err := t.exec(ctx, `DELETE FROM components WHERE id = ?`, idCol(id))
	if err != nil {
		return err
	}
	return affected(r, "component "+idCol(id))
}

// ---- policies

func (t *tx) PutPolicy(ctx context.Context, p tam.Policy) (tam.Policy, error) {
	_, err := t.exec(ctx, `INSERT INTO policies (component_id, mode, scope, value, created_at) VALUES (?, ?, ?, ?, ?)
		ON CONFLICT (component_id, scope, value) DO UPDATE SET mode = excluded.mode`,
		idCol(p.Component), string(p.Mode), string(p.Scope), p.Value, ts(p.CreatedAt))
	if err != nil {
		if isConstraint(err, sqlite3.SQLITE_CONSTRAINT_FOREIGNKEY) {
			return p, fmt.Errorf("component %s: %w", p.Component, tam.ErrNotFound)
		}
		return p, err
	}
	row := t.queryRow(ctx, `SELECT id, component_id, mode, scope, value, created_at FROM policies
		WHERE component_id = ? AND scope = ? AND value = ?`, idCol(p.Component), string(p.Scope), p.Value)
	return scanPolicy(row)
}

func scanPolicy(sc scanner) (tam.Policy, error) {
	var p tam.Policy
	var comp, mode, scope string
	var created int64
	if err := sc.Scan(&p.ID, &comp, &mode, &scope, &p.Value, &created); err != nil {
		return p, err
	}
	p.Mode, p.Scope, p.CreatedAt = tam.PolicyMode(mode), tam.ScopeKind(scope), fromTS(created)
	var err error
	p.Component, err = idFromCol(comp)
	return p, err
}

func (t *tx) DeletePolicies(ctx context.Context, f tam.PolicyFilter) (int, error) {
	q := `DELETE FROM policies WHERE 1 = 1`
	var args []any
	if f.ID != 0 {
		q += ` AND id = ?`
		args = append(args, f.ID)
	}
	if f.Component != nil {
		q += ` AND component_id = ?`
		args = append(args, idCol(f.Component))
	}
	if f.Scope != "" {
		q += ` AND scope = ?`
		args = append(args, string(f.Scope))
	}
	if f.Value != "" {
		q += ` AND value = ?`
		args = append(args, f.Value)
	}
	r, err := t.exec(ctx, q, args...)
	if err != nil {
		return 0, err
	}
	n, err := r.RowsAffected()
	return int(n), err
}

func (t *tx) Policies(ctx context.Context) ([]tam.Policy, error) {
	return queryAll(ctx, t, scanPolicy, `SELECT id, component_id, mode, scope, value, created_at FROM policies ORDER BY id`)
}

// ---- trusted keys

func (t *tx) PutTrustedKey(ctx context.Context, k tam.TrustedKey) error {
	_, err := t.exec(ctx, `INSERT INTO trusted_keys (role, kid, key, comment, created_at) VALUES (?, ?, ?, ?, ?)
		ON CONFLICT (role, kid) DO UPDATE SET key = excluded.key, comment = excluded.comment`,
		string(k.Role), nonNil(k.KID), nonNil(k.Key), k.Comment, ts(k.CreatedAt))
	return err
}

func (t *tx) DeleteTrustedKey(ctx context.Context, role tam.KeyRole, kid []byte) error {
	r, err := t.exec(ctx, `DELETE FROM trusted_keys WHERE role = ? AND kid = ?`, string(role), nonNil(kid))
	if err != nil {
		return err
	}
	return affected(r, fmt.Sprintf("%s key %x", role, kid))
}

func (t *tx) TrustedKeys(ctx context.Context, role tam.KeyRole) ([]tam.TrustedKey, error) {
	return queryAll(ctx, t, scanTrustedKey, `SELECT role, kid, key, comment, created_at FROM trusted_keys WHERE role = ? ORDER BY kid`, string(role))
}

func scanTrustedKey(sc scanner) (tam.TrustedKey, error) {
	var k tam.TrustedKey
	var r string
	var created int64
	if err := sc.Scan(&r, &k.KID, &k.Key, &k.Comment, &created); err != nil {
		return k, err
	}
	k.Role, k.CreatedAt = tam.KeyRole(r), fromTS(created)
	return k, nil
}

// ---- devices

func (t *tx) PutDevice(ctx context.Context, d tam.Device) error {
	if len(d.KID) == 0 {
		return errors.New("sqlitestore: device without kid")
	}
	labels := d.Labels
	if labels == nil {
		labels = []string{}
	}
	lj, err := jsonText(labels)
	if err != nil {
		return err
	}
	tl := map[string][]string{}
	for tenant, ls := range d.TenantLabels {
		if len(ls) > 0 && tenant != tam.DefaultTenant {
			tl[tenant] = ls
		}
	}
	tlj, err := jsonText(tl)
	if err != nil {
		return err
	}
	_, err = t.exec(ctx, `INSERT INTO devices (kid, key, alg, labels, tenant_labels, ueid, oemid, hwmodel, hwversion, preregistered,
		attestation, attested_at, attestation_reason, needs_attestation, status, last_error, last_error_code, numbering, created_at, last_seen)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
		ON CONFLICT (kid) DO UPDATE SET key = excluded.key, alg = excluded.alg, labels = excluded.labels, tenant_labels = excluded.tenant_labels,
		ueid = excluded.ueid, oemid = excluded.oemid, hwmodel = excluded.hwmodel, hwversion = excluded.hwversion, preregistered = excluded.preregistered,
		attestation = excluded.attestation, attested_at = excluded.attested_at, attestation_reason = excluded.attestation_reason,
		needs_attestation = excluded.needs_attestation, status = excluded.status, last_error = excluded.last_error,
		last_error_code = excluded.last_error_code, numbering = excluded.numbering, created_at = excluded.created_at, last_seen = excluded.last_seen`,
		d.KID, nonNil(d.Key), d.Alg, lj, tlj, nonNil(d.UEID), nonNil(d.OEMID), nonNil(d.HWModel), d.HWVersion, boolInt(d.Preregistered),
		string(d.Attestation), ts(d.AttestedAt), d.AttestationReason, boolInt(d.NeedsAttestation), string(d.Status), d.LastError,
		d.LastErrorCode, d.Numbering, ts(d.CreatedAt), ts(d.LastSeen))
	return err
}

func (t *tx) TouchDevice(ctx context.Context, d tam.Device) (bool, error) {
	r, err := t.exec(ctx, `UPDATE devices SET last_seen = ? WHERE kid = ? AND alg = ? AND numbering = ? AND status = ?
		AND last_error = ? AND last_error_code = ? AND attestation <> ''`,
		ts(d.LastSeen), nonNil(d.KID), d.Alg, d.Numbering, string(d.Status), d.LastError, d.LastErrorCode)
	if err != nil {
		return false, err
	}
	n, err := r.RowsAffected()
	return n > 0, err
}

func (t *tx) RecordSession(ctx context.Context, d tam.Device) (bool, error) {
	r, err := t.exec(ctx, `UPDATE devices SET last_seen = ?, status = ?, last_error = ?,
		last_error_code = CASE WHEN ? THEN last_error_code ELSE ? END
		WHERE kid = ? AND alg = ? AND numbering = ? AND attestation <> ''`,
		ts(d.LastSeen), string(d.Status), d.LastError, d.Status == tam.StatusFailed, d.LastErrorCode, nonNil(d.KID), d.Alg, d.Numbering)
	if err != nil {
		return false, err
	}
	n, err := r.RowsAffected()
	return n > 0, err
}

func (t *tx) RecordSuccess(ctx context.Context, kid []byte, seen time.Time) error {
	r, err := t.exec(ctx, `UPDATE devices SET last_seen = ?,
		last_error_code = CASE WHEN status IN (?, ?) THEN 0 ELSE last_error_code END,
		status = CASE WHEN status IN (?, ?) THEN ? ELSE status END WHERE kid = ?`,
		ts(seen), string(tam.StatusPending), string(tam.StatusRetry), string(tam.StatusPending), string(tam.StatusRetry), string(tam.StatusOK), nonNil(kid))
	if err != nil {
		return err
	}
	return affected(r, fmt.Sprintf("device %x", kid))
}

const deviceSelect = `SELECT kid, key, alg, labels, tenant_labels, ueid, oemid, hwmodel, hwversion, preregistered, attestation, attested_at,
	attestation_reason, needs_attestation, status, last_error, last_error_code, numbering, created_at, last_seen FROM devices`

func scanDevice(sc scanner) (tam.Device, error) {
	var d tam.Device
	var labels, tenantLabels, att, status string
	var prereg, needs int
	var attestedAt, created, seen int64
	if err := sc.Scan(&d.KID, &d.Key, &d.Alg, &labels, &tenantLabels, &d.UEID, &d.OEMID, &d.HWModel, &d.HWVersion, &prereg, &att, &attestedAt,
		&d.AttestationReason, &needs, &status, &d.LastError, &d.LastErrorCode, &d.Numbering, &created, &seen); err != nil {
		return d, err
	}
	if err := fromJSON(labels, &d.Labels); err != nil {
		return d, err
	}
	if err := fromJSON(tenantLabels, &d.TenantLabels); err != nil {
		return d, err
	}
	if len(d.TenantLabels) == 0 {
		d.TenantLabels = nil
	}
	d.Preregistered, d.NeedsAttestation = prereg != 0, needs != 0
	d.Attestation, d.Status = tam.AttestationStatus(att), tam.DeviceStatus(status)
	d.AttestedAt, d.CreatedAt, d.LastSeen = fromTS(attestedAt), fromTS(created), fromTS(seen)
	return d, nil
}

func (t *tx) Device(ctx context.Context, kid []byte) (tam.Device, error) {
	d, err := scanDevice(t.queryRow(ctx, deviceSelect+` WHERE kid = ?`, nonNil(kid)))
	return d, notFound(err, fmt.Sprintf("device %x", kid))
}

func (t *tx) Devices(ctx context.Context) ([]tam.Device, error) {
	return queryAll(ctx, t, scanDevice, deviceSelect+` ORDER BY kid`)
}

func (t *tx) DeleteDevice(ctx context.Context, kid []byte) error {
	r, err := t.exec(ctx, `DELETE FROM devices WHERE kid = ?`, nonNil(kid))
	if err != nil {
		return err
	}
	return affected(r, fmt.Sprintf("device %x", kid))
}

// deviceErr maps a foreign-key failure on a per-device row to ErrNotFound.
func deviceErr(err error, kid []byte) error {
	if isConstraint(err, sqlite3.SQLITE_CONSTRAINT_FOREIGNKEY) {
		return fmt.Errorf("device %x: %w", kid, tam.ErrNotFound)
	}
	return err
}

func (t *tx) Installed(ctx context.Context, kid []byte) ([]tam.Installed, error) {
	return queryAll(ctx, t, scanInstalled, `SELECT component_id, sequence, managed, requested, updated_at FROM installed
		WHERE device_kid = ? ORDER BY component_id`, nonNil(kid))
}

func scanInstalled(sc scanner) (tam.Installed, error) {
	var in tam.Installed
	var id string
	var s, updated int64
	var managed, requested int
	if err := sc.Scan(&id, &s, &managed, &requested, &updated); err != nil {
		return in, err
	}
	in.Sequence, in.Managed, in.Requested, in.UpdatedAt = uint64(s), managed != 0, requested != 0, fromTS(updated)
	var err error
	in.ComponentID, err = idFromCol(id)
	return in, err
}

func (t *tx) PutInstalled(ctx context.Context, kid []byte, in tam.Installed) error {
	s, err := seq(in.Sequence)
	if err != nil {
		return err
	}
	_, err = t.exec(ctx, `INSERT INTO installed (device_kid, component_id, sequence, managed, requested, updated_at) VALUES (?, ?, ?, ?, ?, ?)
		ON CONFLICT (device_kid, component_id) DO UPDATE SET sequence = excluded.sequence, managed = excluded.managed,
		requested = excluded.requested, updated_at = excluded.updated_at`,
		nonNil(kid), idCol(in.ComponentID), s, boolInt(in.Managed), boolInt(in.Requested), ts(in.UpdatedAt))
	return deviceErr(err, kid)
}

func (t *tx) DeleteInstalled(ctx context.Context, kid []byte, id suit.ComponentID) error {
	r, err := t.exec(ctx, `DELETE FROM installed WHERE device_kid = ? AND component_id = ?`, nonNil(kid), idCol(id))
	if err != nil {
		return err
	}
	return affected(r, fmt.Sprintf("device %x component %s", kid, id))
}

// ---- failures

func (t *tx) PutFailure(ctx context.Context, f tam.InstallFailure) error {
	s, err := seq(f.Sequence)
	if err != nil {
		return err
	}
	_, err = t.exec(ctx, `INSERT INTO install_failures (device_kid, component_id, sequence, attempts, last_error, last_at) VALUES (?, ?, ?, ?, ?, ?)
		ON CONFLICT (device_kid, component_id, sequence) DO UPDATE SET attempts = excluded.attempts,
		last_error = excluded.last_error, last_at = excluded.last_at`,
		nonNil(f.DeviceKID), idCol(f.ComponentID), s, f.Attempts, f.LastError, ts(f.LastAt))
	return deviceErr(err, f.DeviceKID)
}

func (t *tx) Failures(ctx context.Context, kid []byte) ([]tam.InstallFailure, error) {
	return queryAll(ctx, t, scanFailure, `SELECT device_kid, component_id, sequence, attempts, last_error, last_at FROM install_failures
		WHERE device_kid = ? ORDER BY component_id, sequence`, nonNil(kid))
}

func scanFailure(sc scanner) (tam.InstallFailure, error) {
	var f tam.InstallFailure
	var id string
	var s, at int64
	if err := sc.Scan(&f.DeviceKID, &id, &s, &f.Attempts, &f.LastError, &at); err != nil {
		return f, err
	}
	f.Sequence, f.LastAt = uint64(s), fromTS(at)
	var err error
	f.ComponentID, err = idFromCol(id)
	return f, err
}

func (t *tx) ClearFailures(ctx context.Context, kid []byte) error {
	_, err := t.exec(ctx, `DELETE FROM install_failures WHERE device_kid = ?`, nonNil(kid))
	return err
}

// ---- reports

func (t *tx) AddReport(ctx context.Context, r tam.Report, keep int) (int64, error) {
	reports := r.SUITReports
	if reports == nil {
		reports = [][]byte{}
	}
	rj, err := jsonText(hexList(reports))
	if err != nil {
		return 0, err
	}
	res, err := t.exec(ctx, `INSERT INTO reports (device_kid, at, kind, err_code, message, suit_reports) VALUES (?, ?, ?, ?, ?, ?)`,
		nonNil(r.DeviceKID), ts(r.At), r.Kind, r.ErrCode, r.Message, rj)
	if err != nil {
		return 0, deviceErr(err, r.DeviceKID)
	}
	id, err := res.LastInsertId()
	if err != nil {
		return 0, err
	}
	if keep > 0 {
		if _, err := t.exec(ctx, `DELETE FROM reports WHERE device_kid = ? AND id NOT IN
			(SELECT id FROM reports WHERE device_kid = ? ORDER BY id DESC LIMIT ?)`, nonNil(r.DeviceKID), nonNil(r.DeviceKID), keep); err != nil {
			return 0, err
		}
	}
	return id, nil
}

func (t *tx) Reports(ctx context.Context, kid []byte, limit int) ([]tam.Report, error) {
	if limit <= 0 {
		limit = -1
	}
	return queryAll(ctx, t, scanReport, `SELECT id, device_kid, at, kind, err_code, message, suit_reports FROM reports
		WHERE device_kid = ? ORDER BY id DESC LIMIT ?`, nonNil(kid), limit)
}

func scanReport(sc scanner) (tam.Report, error) {
	var r tam.Report
	var at int64
	var rj string
	if err := sc.Scan(&r.ID, &r.DeviceKID, &at, &r.Kind, &r.ErrCode, &r.Message, &rj); err != nil {
		return r, err
	}
	r.At = fromTS(at)
	var hs []string
	if err := fromJSON(rj, &hs); err != nil {
		return r, err
	}
	var err error
	r.SUITReports, err = unhexList(hs)
	return r, err
}

// ---- sessions

type sentJSON struct {
	ComponentID     string `json:"component_id"` // idCol
	Sequence        uint64 `json:"sequence"`
	Requested       bool   `json:"requested,omitempty"`
	Personalization bool   `json:"personalization,omitempty"`
}

func (t *tx) PutPending(ctx context.Context, p tam.PendingUpdate, maxPerDevice int) error {
	if len(p.Token) == 0 {
		return errors.New("sqlitestore: pending update without token")
	}
	install := make([]sentJSON, len(p.Install))
	for i, m := range p.Install {
		install[i] = sentJSON{ComponentID: idCol(m.ComponentID), Sequence: m.Sequence, Requested: m.Requested, Personalization: m.Personalization}
	}
	ij, err := jsonText(install)
	if err != nil {
		return err
	}
	rj, err := idsCol(p.Remove)
	if err != nil {
		return err
	}
	_, err = t.exec(ctx, `INSERT INTO pending_updates (token, device_kid, numbering, install, remove, created_at, expires_at)
		VALUES (?, ?, ?, ?, ?, ?, ?)`, p.Token, nonNil(p.DeviceKID), p.Numbering, ij, rj, ts(p.CreatedAt), ts(p.ExpiresAt))
	if err != nil {
		if isConstraint(err, sqlite3.SQLITE_CONSTRAINT_PRIMARYKEY) {
			return fmt.Errorf("pending update token %x: %w", p.Token, tam.ErrExists)
		}
		return deviceErr(err, p.DeviceKID)
	}
	if maxPerDevice > 0 {
		_, err = t.exec(ctx, `DELETE FROM pending_updates WHERE device_kid = ? AND token NOT IN
			(SELECT token FROM pending_updates WHERE device_kid = ? ORDER BY created_at DESC, rowid DESC LIMIT ?)`,
			nonNil(p.DeviceKID), nonNil(p.DeviceKID), maxPerDevice)
	}
	return err
}

const pendingSelect = `SELECT token, device_kid, numbering, install, remove, created_at, expires_at FROM pending_updates`

func scanPending(sc scanner) (tam.PendingUpdate, error) {
	var p tam.PendingUpdate
	var ij, rj string
	var created, expires int64
	if err := sc.Scan(&p.Token, &p.DeviceKID, &p.Numbering, &ij, &rj, &created, &expires); err != nil {
		return p, err
	}
	var install []sentJSON
	if err := fromJSON(ij, &install); err != nil {
		return p, err
	}
	for _, m := range install {
		id, err := idFromCol(m.ComponentID)
		if err != nil {
			return p, err
		}
		p.Install = append(p.Install, tam.SentManifest{ComponentID: id, Sequence: m.Sequence, Requested: m.Requested, Personalization: m.Personalization})
	}
	p.CreatedAt, p.ExpiresAt = fromTS(created), fromTS(expires)
	var err error
	p.Remove, err = idsFromCol(rj)
	return p, err
}

func (t *tx) Pending(ctx context.Context, token []byte) (tam.PendingUpdate, error) {
	p, err := scanPending(t.queryRow(ctx, pendingSelect+` WHERE token = ?`, nonNil(token)))
	return p, notFound(err, "pending update")
}

func (t *tx) DeletePending(ctx context.Context, token []byte) error {
	r, err := t.exec(ctx, `DELETE FROM pending_updates WHERE token = ?`, nonNil(token))
	if err != nil {
		return err
	}
	return affected(r, "pending update")
}

func (t *tx) PendingFor(ctx context.Context, kid []byte) ([]tam.PendingUpdate, error) {
	return queryAll(ctx, t, scanPending, pendingSelect+` WHERE device_kid = ? ORDER BY created_at, rowid`, nonNil(kid))
}

func (t *tx) UseToken(ctx context.Context, token []byte, expires time.Time) error {
	_, err := t.exec(ctx, `INSERT INTO used_tokens (token, expires_at) VALUES (?, ?)`, nonNil(token), ts(expires))
	if isConstraint(err, sqlite3.SQLITE_CONSTRAINT_PRIMARYKEY) {
		return tam.ErrTokenUsed
	}
	return err
}

func (t *tx) PurgeExpired(ctx context.Context, now time.Time) (int, error) {
	n := 0
	for _, q := range []string{`DELETE FROM pending_updates WHERE expires_at <= ?`, `DELETE FROM used_tokens WHERE expires_at <= ?`} {
		r, err := t.exec(ctx, q, ts(now))
		if err != nil {
			return n, err
		}
		k, err := r.RowsAffected()
		if err != nil {
			return n, err
		}
		n += int(k)
	}
	return n, nil
}

// ---- personalization

func tenantOr(t string) string {
	if t == "" {
		return tam.DefaultTenant
	}
	return t
}

func (t *tx) PutPersonalization(ctx context.Context, p tam.Personalization) error {
	s, err := seq(p.Sequence)
	if err != nil {
		return err
	}
	deps, err := idsCol(p.DependsOn)
	if err != nil {
		return err
	}
	tenant := tenantOr(p.Tenant)
	_, err = t.exec(ctx, `INSERT INTO personalization (device_kid, tenant_id, name, component_id, payload_id, sequence, envelope, digest, depends_on, size, created_at)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
		ON CONFLICT (device_kid, tenant_id, name) DO UPDATE SET component_id = excluded.component_id, payload_id = excluded.payload_id, sequence = excluded.sequence,
		envelope = excluded.envelope, digest = excluded.digest, depends_on = excluded.depends_on, size = excluded.size,
		created_at = excluded.created_at`,
		nonNil(p.DeviceKID), tenant, p.Name, idCol(p.ComponentID), idCol(p.PayloadID), s, nonNil(p.Envelope), nonNil(p.Digest), deps, p.Size, ts(p.CreatedAt))
	if isConstraint(err, sqlite3.SQLITE_CONSTRAINT_FOREIGNKEY) {
		return fmt.Errorf("device %x or tenant %q: %w", p.DeviceKID, tenant, tam.ErrNotFound)
	}
	return err
}

const personalizationSelect = `SELECT device_kid, tenant_id, name, component_id, payload_id, sequence, envelope, digest, depends_on, size, created_at FROM personalization`

func scanPersonalization(sc scanner) (tam.Personalization, error) {
	var p tam.Personalization
	var id, pid, deps string
	var s, created int64
	if err := sc.Scan(&p.DeviceKID, &p.Tenant, &p.Name, &id, &pid, &s, &p.Envelope, &p.Digest, &deps, &p.Size, &created); err != nil {
		return p, err
	}
	p.Sequence, p.CreatedAt = uint64(s), fromTS(created)
	var err error
	if p.ComponentID, err = idFromCol(id); err != nil {
		return p, err
	}
	if p.PayloadID, err = idFromCol(pid); err != nil {
		return p, err
	}
	p.DependsOn, err = idsFromCol(deps)
	return p, err
}

func (t *tx) Personalization(ctx context.Context, kid []byte, tenant, name string) (tam.Personalization, error) {
	p, err := scanPersonalization(t.queryRow(ctx, personalizationSelect+` WHERE device_kid = ? AND tenant_id = ? AND name = ?`, nonNil(kid), tenantOr(tenant), name))
	return p, notFound(err, fmt.Sprintf("personalization %q of device %x", name, kid))
}

func (t *tx) Personalizations(ctx context.Context, kid []byte) ([]tam.Personalization, error) {
	return queryAll(ctx, t, scanPersonalization, personalizationSelect+` WHERE device_kid = ? ORDER BY tenant_id, name`, nonNil(kid))
}

func (t *tx) DeletePersonalization(ctx context.Context, kid []byte, tenant, name string) error {
	r, err := t.exec(ctx, `DELETE FROM personalization WHERE device_kid = ? AND tenant_id = ? AND name = ?`, nonNil(kid), tenantOr(tenant), name)
	if err != nil {
		return err
	}
	return affected(r, fmt.Sprintf("personalization %q of device %x", name, kid))
}
