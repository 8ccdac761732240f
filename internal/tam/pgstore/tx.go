package pgstore

import (
	"context"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/teep-go/teep/internal/tam"
	"github.com/teep-go/teep/suit"
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
	tx       pgx.Tx
	readOnly bool
	// locked holds the kids of the device rows this transaction has
	// locked (FOR UPDATE), so that each is locked with one statement.
	locked map[string]bool
}

func (t *tx) exec(ctx context.Context, q string, args ...any) (pgconn.CommandTag, error) {
	if t.readOnly {
		return pgconn.CommandTag{}, tam.ErrStoreReadOnly
	}
	tag, err := t.tx.Exec(ctx, q, args...)
	return tag, mapErr(err)
}

// queryAll runs q and scans every row with scan.
func queryAll[T any](ctx context.Context, t *tx, scan func(pgx.Row) (T, error), q string, args ...any) ([]T, error) {
	rows, err := t.tx.Query(ctx, q, args...)
	if err != nil {
		return nil, mapErr(err)
	}
	out, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (T, error) { return scan(r) })
	return out, mapErr(err)
}

// lockDevice locks the device's row until the transaction ends, or returns
// ErrNotFound. Every per-device write takes this lock first, so writers of
// one device's rows run one after the other on every replica, and a
// transaction holding it reads that device's rows as they stay until it
// commits: what SQLite's single writer gives for free.
func (t *tx) lockDevice(ctx context.Context, kid []byte) error {
	if t.readOnly {
		return tam.ErrStoreReadOnly
	}
	if t.locked[string(kid)] {
		return nil
	}
	var one int
	err := t.tx.QueryRow(ctx, `SELECT 1 FROM devices WHERE kid = $1 FOR UPDATE`, nonNil(kid)).Scan(&one)
	if err != nil {
		return notFound(mapErr(err), fmt.Sprintf("device %x", kid))
	}
	t.markLocked(kid)
	return nil
}

func (t *tx) markLocked(kid []byte) {
	if t.locked == nil {
		t.locked = map[string]bool{}
	}
	t.locked[string(kid)] = true
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

// seq checks that a sequence number fits PostgreSQL's BIGINT.
func seq(n uint64) (int64, error) {
	if n > math.MaxInt64 {
		return 0, fmt.Errorf("pgstore: sequence number %d exceeds %d", n, int64(math.MaxInt64))
	}
	return int64(n), nil
}

// Component ids are stored as the hex of their CBOR encoding (tam.IDHex),
// as the SQLite store does.
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
	if err == nil {
		var id suit.ComponentID
		if id, err = suit.DecodeComponentID(raw); err == nil {
			return id, nil
		}
	}
	return nil, fmt.Errorf("pgstore: corrupt component id %q: %w", s, err)
}

// ids converts component ids to a text[] argument; never NULL.
func ids(in []suit.ComponentID) []string {
	out := make([]string, len(in))
	for i, id := range in {
		out[i] = idCol(id)
	}
	return out
}

func fromIDs(in []string) ([]suit.ComponentID, error) {
	if len(in) == 0 {
		return nil, nil
	}
	out := make([]suit.ComponentID, len(in))
	for i, s := range in {
		id, err := idFromCol(s)
		if err != nil {
			return nil, err
		}
		out[i] = id
	}
	return out, nil
}

// byteList is a bytea[] argument; never NULL.
func byteList(bs [][]byte) [][]byte {
	out := make([][]byte, len(bs))
	for i, b := range bs {
		out[i] = nonNil(b)
	}
	return out
}

func strList(ss []string) []string {
	if ss == nil {
		return []string{}
	}
	return ss
}

func nonNil(b []byte) []byte {
	if b == nil {
		return []byte{}
	}
	return b
}

func notFound(err error, what string) error {
	if errors.Is(err, pgx.ErrNoRows) {
		return fmt.Errorf("%s: %w", what, tam.ErrNotFound)
	}
	return err
}

func affected(tag pgconn.CommandTag, what string) error {
	if tag.RowsAffected() == 0 {
		return fmt.Errorf("%s: %w", what, tam.ErrNotFound)
	}
	return nil
}

// deviceErr maps a foreign-key failure on a per-device row (the device was
// deleted by a transaction that committed after lockDevice looked) to
// ErrNotFound.
func deviceErr(err error, kid []byte) error {
	if isCode(err, codeForeignKeyViolation) {
		return fmt.Errorf("device %x: %w", kid, tam.ErrNotFound)
	}
	return err
}

// ---- components

// AddComponentVersion first upserts the component's row, which locks it:
// concurrent adds of one component (from two replicas' admin APIs) then
// check the sequence one after the other.
func (t *tx) AddComponentVersion(ctx context.Context, v tam.ComponentVersion, envelope []byte) error {
	s, err := seq(v.Sequence)
	if err != nil {
		return err
	}
	created := ts(v.CreatedAt)
	if _, err := t.exec(ctx, `INSERT INTO components (id, created_at, updated_at) VALUES ($1, $2, $2)
		ON CONFLICT (id) DO UPDATE SET updated_at = excluded.updated_at`, idCol(v.ComponentID), created); err != nil {
		return err
	}
	var latest *int64
	if err := t.tx.QueryRow(ctx, `SELECT MAX(sequence) FROM component_versions WHERE component_id = $1`, idCol(v.ComponentID)).Scan(&latest); err != nil {
		return mapErr(err)
	}
	if latest != nil && s <= *latest {
		return fmt.Errorf("component %s: sequence %d, stored %d: %w", tam.IDName(v.ComponentID), v.Sequence, *latest, tam.ErrSequence)
	}
	_, err = t.exec(ctx, `INSERT INTO component_versions
		(component_id, sequence, digest, payload_ids, payload_digests, dependencies, signer_kid, size, envelope, created_at)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)`,
		idCol(v.ComponentID), s, nonNil(v.Digest), ids(v.PayloadIDs), byteList(v.PayloadDigests), ids(v.Dependencies),
		nonNil(v.SignerKID), v.Size, nonNil(envelope), created)
	return err
}

const componentSelect = `SELECT c.id, COALESCE(MAX(v.sequence), 0), COUNT(v.sequence), c.created_at, c.updated_at
	FROM components c LEFT JOIN component_versions v ON v.component_id = c.id`

func scanComponent(sc pgx.Row) (tam.Component, error) {
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
	c, err := scanComponent(t.tx.QueryRow(ctx, componentSelect+` WHERE c.id = $1 GROUP BY c.id`, idCol(id)))
	return c, notFound(mapErr(err), "component "+tam.IDName(id))
}

func (t *tx) Components(ctx context.Context) ([]tam.Component, error) {
	return queryAll(ctx, t, scanComponent, componentSelect+` GROUP BY c.id ORDER BY c.id`)
}

const versionSelect = `SELECT component_id, sequence, digest, payload_ids, payload_digests, dependencies, signer_kid, size, created_at FROM component_versions`

func scanVersion(sc pgx.Row) (tam.ComponentVersion, error) {
	var v tam.ComponentVersion
	var id string
	var pids, deps []string
	var s, created int64
	if err := sc.Scan(&id, &s, &v.Digest, &pids, &v.PayloadDigests, &deps, &v.SignerKID, &v.Size, &created); err != nil {
		return v, err
	}
	v.Sequence, v.CreatedAt = uint64(s), fromTS(created)
	var err error
	if v.ComponentID, err = idFromCol(id); err != nil {
		return v, err
	}
	if v.PayloadIDs, err = fromIDs(pids); err != nil {
		return v, err
	}
	v.Dependencies, err = fromIDs(deps)
	return v, err
}

func (t *tx) ComponentVersions(ctx context.Context, id suit.ComponentID) ([]tam.ComponentVersion, error) {
	out, err := queryAll(ctx, t, scanVersion, versionSelect+` WHERE component_id = $1 ORDER BY sequence`, idCol(id))
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
	v, err := scanVersion(t.tx.QueryRow(ctx, versionSelect+` WHERE component_id = $1 AND sequence = $2`, idCol(id), s))
	return v, notFound(mapErr(err), fmt.Sprintf("component %s version %d", id, sequence))
}

func (t *tx) Envelope(ctx context.Context, id suit.ComponentID, sequence uint64) ([]byte, error) {
	s, err := seq(sequence)
	if err != nil {
		return nil, err
	}
	var env []byte
	err = t.tx.QueryRow(ctx, `SELECT envelope FROM component_versions WHERE component_id = $1 AND sequence = $2`, idCol(id), s).Scan(&env)
	return env, notFound(mapErr(err), fmt.Sprintf("component %s version %d", id, sequence))
}

// CatalogGeneration reads the counter the triggers of migration 0004 bump
// with every catalog change.
func (t *tx) CatalogGeneration(ctx context.Context) (uint64, error) {
	var g int64
	if err := t.tx.QueryRow(ctx, `SELECT generation FROM catalog_generation WHERE id = 1`).Scan(&g); err != nil {
		return 0, fmt.Errorf("catalog generation: %w", mapErr(err))
	}
	return uint64(g), nil
}

func (t *tx) DeleteComponent(ctx context.Context, id suit.ComponentID) error {
	tag, err := t.exec(ctx, `DELETE FROM components WHERE id = $1`, idCol(id))
	if err != nil {
		return err
	}
	return affected(tag, "component "+tam.IDName(id))
}

// ---- policies

// PutPolicy checks for the component with a share lock (so a concurrent
// DeleteComponent waits, or is waited for) rather than by a failing insert,
// which would abort the whole transaction.
func (t *tx) PutPolicy(ctx context.Context, p tam.Policy) (tam.Policy, error) {
	if t.readOnly {
		return p, tam.ErrStoreReadOnly
	}
	var one int
	if err := t.tx.QueryRow(ctx, `SELECT 1 FROM components WHERE id = $1 FOR KEY SHARE`, idCol(p.Component)).Scan(&one); err != nil {
		return p, notFound(mapErr(err), "component "+tam.IDName(p.Component))
	}
	row := t.tx.QueryRow(ctx, `INSERT INTO policies (component_id, mode, scope, value, created_at) VALUES ($1, $2, $3, $4, $5)
		ON CONFLICT (component_id, scope, value) DO UPDATE SET mode = excluded.mode
		RETURNING id, component_id, mode, scope, value, created_at`,
		idCol(p.Component), string(p.Mode), string(p.Scope), p.Value, ts(p.CreatedAt))
	out, err := scanPolicy(row)
	return out, mapErr(err)
}

func scanPolicy(sc pgx.Row) (tam.Policy, error) {
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
	q := `DELETE FROM policies WHERE true`
	var args []any
	add := func(cond string, v any) {
		args = append(args, v)
		q += fmt.Sprintf(" AND %s = $%d", cond, len(args))
	}
	if f.ID != 0 {
		add("id", f.ID)
	}
	if f.Component != nil {
		add("component_id", idCol(f.Component))
	}
	if f.Scope != "" {
		add("scope", string(f.Scope))
	}
	if f.Value != "" {
		add("value", f.Value)
	}
	tag, err := t.exec(ctx, q, args...)
	if err != nil {
		return 0, err
	}
	return int(tag.RowsAffected()), nil
}

func (t *tx) Policies(ctx context.Context) ([]tam.Policy, error) {
	return queryAll(ctx, t, scanPolicy, `SELECT id, component_id, mode, scope, value, created_at FROM policies ORDER BY id`)
}

// ---- trusted keys

func (t *tx) PutTrustedKey(ctx context.Context, k tam.TrustedKey) error {
	_, err := t.exec(ctx, `INSERT INTO trusted_keys (role, kid, key, comment, created_at) VALUES ($1, $2, $3, $4, $5)
		ON CONFLICT (role, kid) DO UPDATE SET key = excluded.key, comment = excluded.comment`,
		string(k.Role), nonNil(k.KID), nonNil(k.Key), k.Comment, ts(k.CreatedAt))
	return err
}

func (t *tx) DeleteTrustedKey(ctx context.Context, role tam.KeyRole, kid []byte) error {
	tag, err := t.exec(ctx, `DELETE FROM trusted_keys WHERE role = $1 AND kid = $2`, string(role), nonNil(kid))
	if err != nil {
		return err
	}
	return affected(tag, fmt.Sprintf("%s key %x", role, kid))
}

func (t *tx) TrustedKeys(ctx context.Context, role tam.KeyRole) ([]tam.TrustedKey, error) {
	return queryAll(ctx, t, scanTrustedKey, `SELECT role, kid, key, comment, created_at FROM trusted_keys WHERE role = $1 ORDER BY kid`, string(role))
}

func scanTrustedKey(sc pgx.Row) (tam.TrustedKey, error) {
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

// PutDevice upserts; the row stays locked by this transaction afterwards.
func (t *tx) PutDevice(ctx context.Context, d tam.Device) error {
	if len(d.KID) == 0 {
		return errors.New("pgstore: device without kid")
	}
	tl := map[string][]string{}
	for tenant, ls := range d.TenantLabels {
		if len(ls) > 0 && tenant != tam.DefaultTenant {
			tl[tenant] = ls
		}
	}
	tlj, err := json.Marshal(tl)
	if err != nil {
		return err
	}
	_, err = t.exec(ctx, `INSERT INTO devices (kid, key, alg, labels, ueid, oemid, hwmodel, hwversion, preregistered,
		attestation, attested_at, attestation_reason, needs_attestation, status, last_error, last_error_code, numbering, created_at, last_seen,
		tenant_labels)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, $19, $20)
		ON CONFLICT (kid) DO UPDATE SET key = excluded.key, alg = excluded.alg, labels = excluded.labels,
		tenant_labels = excluded.tenant_labels, ueid = excluded.ueid,
		oemid = excluded.oemid, hwmodel = excluded.hwmodel, hwversion = excluded.hwversion, preregistered = excluded.preregistered,
		attestation = excluded.attestation, attested_at = excluded.attested_at, attestation_reason = excluded.attestation_reason,
		needs_attestation = excluded.needs_attestation, status = excluded.status, last_error = excluded.last_error,
		last_error_code = excluded.last_error_code, numbering = excluded.numbering, created_at = excluded.created_at, last_seen = excluded.last_seen`,
		d.KID, nonNil(d.Key), d.Alg, strList(d.Labels), nonNil(d.UEID), nonNil(d.OEMID), nonNil(d.HWModel), d.HWVersion, d.Preregistered,
		string(d.Attestation), ts(d.AttestedAt), d.AttestationReason, d.NeedsAttestation, string(d.Status), d.LastError,
		d.LastErrorCode, d.Numbering, ts(d.CreatedAt), ts(d.LastSeen), string(tlj))
	if err == nil {
		t.markLocked(d.KID)
	}
	return err
}

// TouchDevice updates last_seen; the UPDATE locks the row as lockDevice
// would, so it counts as locked when it matched.
func (t *tx) TouchDevice(ctx context.Context, d tam.Device) (bool, error) {
	tag, err := t.exec(ctx, `UPDATE devices SET last_seen = $1 WHERE kid = $2 AND alg = $3 AND numbering = $4 AND status = $5
		AND last_error = $6 AND last_error_code = $7 AND attestation <> ''`,
		ts(d.LastSeen), nonNil(d.KID), d.Alg, d.Numbering, string(d.Status), d.LastError, d.LastErrorCode)
	return t.matched(tag, err, d.KID)
}

// RecordSession locks the row, when it matches, as TouchDevice does.
func (t *tx) RecordSession(ctx context.Context, d tam.Device) (bool, error) {
	tag, err := t.exec(ctx, `UPDATE devices SET last_seen = $1, status = $2, last_error = $3,
		last_error_code = CASE WHEN $4 THEN last_error_code ELSE $5 END
		WHERE kid = $6 AND alg = $7 AND numbering = $8 AND attestation <> ''`,
		ts(d.LastSeen), string(d.Status), d.LastError, d.Status == tam.StatusFailed, d.LastErrorCode, nonNil(d.KID), d.Alg, d.Numbering)
	return t.matched(tag, err, d.KID)
}

// matched reports whether a conditional UPDATE of the device kid's row
// matched it; when it did, the row is locked (as lockDevice would).
func (t *tx) matched(tag pgconn.CommandTag, err error, kid []byte) (bool, error) {
	if err != nil || tag.RowsAffected() == 0 {
		return false, err
	}
	t.markLocked(kid)
	return true, nil
}

func (t *tx) RecordSuccess(ctx context.Context, kid []byte, seen time.Time) error {
	tag, err := t.exec(ctx, `UPDATE devices SET last_seen = $1,
		last_error_code = CASE WHEN status IN ($2, $3) THEN 0 ELSE last_error_code END,
		status = CASE WHEN status IN ($2, $3) THEN $4 ELSE status END WHERE kid = $5`,
		ts(seen), string(tam.StatusPending), string(tam.StatusRetry), string(tam.StatusOK), nonNil(kid))
	if err != nil {
		return err
	}
	if err := affected(tag, fmt.Sprintf("device %x", kid)); err != nil {
		return err
	}
	t.markLocked(kid)
	return nil
}

// deviceColumns are what scanDevice scans, in its order.
var deviceColumns = []string{"kid", "key", "alg", "labels", "ueid", "oemid", "hwmodel", "hwversion", "preregistered", "attestation", "attested_at",
	"attestation_reason", "needs_attestation", "status", "last_error", "last_error_code", "numbering", "created_at", "last_seen", "tenant_labels::text"}

var deviceSelect = `SELECT ` + strings.Join(deviceColumns, ", ") + ` FROM devices`

// prefixed qualifies each column with a table alias.
func prefixed(alias string, cols []string) string {
	out := make([]string, len(cols))
	for i, c := range cols {
		out[i] = alias + c
	}
	return strings.Join(out, ", ")
}

func scanDevice(sc pgx.Row) (tam.Device, error) {
	var d tam.Device
	var att, status, tl string
	var attestedAt, created, seen int64
	if err := sc.Scan(&d.KID, &d.Key, &d.Alg, &d.Labels, &d.UEID, &d.OEMID, &d.HWModel, &d.HWVersion, &d.Preregistered, &att, &attestedAt,
		&d.AttestationReason, &d.NeedsAttestation, &status, &d.LastError, &d.LastErrorCode, &d.Numbering, &created, &seen, &tl); err != nil {
		return d, err
	}
	if len(d.Labels) == 0 {
		d.Labels = nil
	}
	if err := json.Unmarshal([]byte(tl), &d.TenantLabels); err != nil {
		return d, fmt.Errorf("pgstore: device %x tenant_labels: %w", d.KID, err)
	}
	if len(d.TenantLabels) == 0 {
		d.TenantLabels = nil
	}
	d.Attestation, d.Status = tam.AttestationStatus(att), tam.DeviceStatus(status)
	d.AttestedAt, d.CreatedAt, d.LastSeen = fromTS(attestedAt), fromTS(created), fromTS(seen)
	return d, nil
}

// Device, inside Update, locks the row (FOR UPDATE): the engine reads a
// device, changes it and writes it back, and two replicas doing that at
// once for one device must not lose either change.
func (t *tx) Device(ctx context.Context, kid []byte) (tam.Device, error) {
	q := deviceSelect + ` WHERE kid = $1`
	if !t.readOnly {
		q += ` FOR UPDATE`
	}
	d, err := scanDevice(t.tx.QueryRow(ctx, q, nonNil(kid)))
	if err != nil {
		return d, notFound(mapErr(err), fmt.Sprintf("device %x", kid))
	}
	if !t.readOnly {
		t.markLocked(kid)
	}
	return d, nil
}

func (t *tx) Devices(ctx context.Context) ([]tam.Device, error) {
	return queryAll(ctx, t, scanDevice, deviceSelect+` ORDER BY kid`)
}

func (t *tx) DeleteDevice(ctx context.Context, kid []byte) error {
	tag, err := t.exec(ctx, `DELETE FROM devices WHERE kid = $1`, nonNil(kid))
	if err != nil {
		return err
	}
	return affected(tag, fmt.Sprintf("device %x", kid))
}

// ---- installed

func (t *tx) Installed(ctx context.Context, kid []byte) ([]tam.Installed, error) {
	return queryAll(ctx, t, scanInstalled, `SELECT component_id, sequence, managed, requested, updated_at FROM installed
		WHERE device_kid = $1 ORDER BY component_id`, nonNil(kid))
}

func scanInstalled(sc pgx.Row) (tam.Installed, error) {
	var in tam.Installed
	var id string
	var s, updated int64
	if err := sc.Scan(&id, &s, &in.Managed, &in.Requested, &updated); err != nil {
		return in, err
	}
	in.Sequence, in.UpdatedAt = uint64(s), fromTS(updated)
	var err error
	in.ComponentID, err = idFromCol(id)
	return in, err
}

func (t *tx) PutInstalled(ctx context.Context, kid []byte, in tam.Installed) error {
	s, err := seq(in.Sequence)
	if err != nil {
		return err
	}
	if err := t.lockDevice(ctx, kid); err != nil {
		return err
	}
	_, err = t.exec(ctx, `INSERT INTO installed (device_kid, component_id, sequence, managed, requested, updated_at) VALUES ($1, $2, $3, $4, $5, $6)
		ON CONFLICT (device_kid, component_id) DO UPDATE SET sequence = excluded.sequence, managed = excluded.managed,
		requested = excluded.requested, updated_at = excluded.updated_at`,
		nonNil(kid), idCol(in.ComponentID), s, in.Managed, in.Requested, ts(in.UpdatedAt))
	return deviceErr(err, kid)
}

func (t *tx) DeleteInstalled(ctx context.Context, kid []byte, id suit.ComponentID) error {
	if err := t.lockDevice(ctx, kid); err != nil {
		if errors.Is(err, tam.ErrNotFound) {
			return fmt.Errorf("device %x component %s: %w", kid, id, tam.ErrNotFound)
		}
		return err
	}
	tag, err := t.exec(ctx, `DELETE FROM installed WHERE device_kid = $1 AND component_id = $2`, nonNil(kid), idCol(id))
	if err != nil {
		return err
	}
	return affected(tag, fmt.Sprintf("device %x component %s", kid, id))
}

// ---- failures

func (t *tx) PutFailure(ctx context.Context, f tam.InstallFailure) error {
	s, err := seq(f.Sequence)
	if err != nil {
		return err
	}
	if err := t.lockDevice(ctx, f.DeviceKID); err != nil {
		return err
	}
	_, err = t.exec(ctx, `INSERT INTO install_failures (device_kid, component_id, sequence, attempts, last_error, last_at) VALUES ($1, $2, $3, $4, $5, $6)
		ON CONFLICT (device_kid, component_id, sequence) DO UPDATE SET attempts = excluded.attempts,
		last_error = excluded.last_error, last_at = excluded.last_at`,
		nonNil(f.DeviceKID), idCol(f.ComponentID), s, f.Attempts, f.LastError, ts(f.LastAt))
	return deviceErr(err, f.DeviceKID)
}

func (t *tx) Failures(ctx context.Context, kid []byte) ([]tam.InstallFailure, error) {
	return queryAll(ctx, t, scanFailure, `SELECT device_kid, component_id, sequence, attempts, last_error, last_at FROM install_failures
		WHERE device_kid = $1 ORDER BY component_id, sequence`, nonNil(kid))
}

func scanFailure(sc pgx.Row) (tam.InstallFailure, error) {
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
	if err := t.lockDevice(ctx, kid); err != nil && !errors.Is(err, tam.ErrNotFound) {
		return err
	}
	_, err := t.exec(ctx, `DELETE FROM install_failures WHERE device_kid = $1`, nonNil(kid))
	return err
}

// ---- reports

// AddReport holds the device lock, so the trim to keep reports counts this
// transaction's insert and no concurrent one.
func (t *tx) AddReport(ctx context.Context, r tam.Report, keep int) (int64, error) {
	if err := t.lockDevice(ctx, r.DeviceKID); err != nil {
		return 0, err
	}
	if t.readOnly {
		return 0, tam.ErrStoreReadOnly
	}
	var id int64
	err := t.tx.QueryRow(ctx, `INSERT INTO reports (device_kid, at, kind, err_code, message, suit_reports) VALUES ($1, $2, $3, $4, $5, $6)
		RETURNING id`, nonNil(r.DeviceKID), ts(r.At), r.Kind, r.ErrCode, r.Message, byteList(r.SUITReports)).Scan(&id)
	if err != nil {
		return 0, deviceErr(mapErr(err), r.DeviceKID)
	}
	if keep > 0 {
		if _, err := t.exec(ctx, `DELETE FROM reports WHERE device_kid = $1 AND id <=
			(SELECT id FROM reports WHERE device_kid = $1 ORDER BY id DESC OFFSET $2 LIMIT 1)`, nonNil(r.DeviceKID), keep); err != nil {
			return 0, err
		}
	}
	return id, nil
}

func (t *tx) Reports(ctx context.Context, kid []byte, limit int) ([]tam.Report, error) {
	var lim *int64 // NULL: no limit
	if limit > 0 {
		l := int64(limit)
		lim = &l
	}
	return queryAll(ctx, t, scanReport, `SELECT id, device_kid, at, kind, err_code, message, suit_reports FROM reports
		WHERE device_kid = $1 ORDER BY id DESC LIMIT $2`, nonNil(kid), lim)
}

func scanReport(sc pgx.Row) (tam.Report, error) {
	var r tam.Report
	var at int64
	if err := sc.Scan(&r.ID, &r.DeviceKID, &at, &r.Kind, &r.ErrCode, &r.Message, &r.SUITReports); err != nil {
		return r, err
	}
	r.At = fromTS(at)
	return r, nil
}

// ---- sessions

type sentJSON struct {
	ComponentID     string `json:"component_id"` // idCol
	Sequence        uint64 `json:"sequence"`
	Requested       bool   `json:"requested,omitempty"`
	Personalization bool   `json:"personalization,omitempty"`
}

// PutPending holds the device lock, so the cap counts this transaction's
// insert and no concurrent one. A duplicate token is found by ON CONFLICT
// rather than a failing insert, which would abort the transaction.
func (t *tx) PutPending(ctx context.Context, p tam.PendingUpdate, maxPerDevice int) error {
	if len(p.Token) == 0 {
		return errors.New("pgstore: pending update without token")
	}
	install := make([]sentJSON, len(p.Install))
	for i, m := range p.Install {
		install[i] = sentJSON{ComponentID: idCol(m.ComponentID), Sequence: m.Sequence, Requested: m.Requested, Personalization: m.Personalization}
	}
	ij, err := json.Marshal(install)
	if err != nil {
		return fmt.Errorf("pgstore: encode: %w", err)
	}
	if err := t.lockDevice(ctx, p.DeviceKID); err != nil {
		return err
	}
	tag, err := t.exec(ctx, `INSERT INTO pending_updates (token, device_kid, numbering, install, remove, created_at, expires_at)
		VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT (token) DO NOTHING`,
		p.Token, nonNil(p.DeviceKID), p.Numbering, string(ij), ids(p.Remove), ts(p.CreatedAt), ts(p.ExpiresAt))
	if err != nil {
		return deviceErr(err, p.DeviceKID)
	}
	if tag.RowsAffected() == 0 {
		return fmt.Errorf("pending update token %x: %w", p.Token, tam.ErrExists)
	}
	if maxPerDevice > 0 {
		_, err = t.exec(ctx, `DELETE FROM pending_updates WHERE device_kid = $1 AND seq IN
			(SELECT seq FROM pending_updates WHERE device_kid = $1 ORDER BY created_at DESC, seq DESC OFFSET $2)`,
			nonNil(p.DeviceKID), maxPerDevice)
	}
	return err
}

const pendingSelect = `SELECT token, device_kid, numbering, install, remove, created_at, expires_at FROM pending_updates`

func scanPending(sc pgx.Row) (tam.PendingUpdate, error) {
	var p tam.PendingUpdate
	var ij []byte
	var remove []string
	var created, expires int64
	if err := sc.Scan(&p.Token, &p.DeviceKID, &p.Numbering, &ij, &remove, &created, &expires); err != nil {
		return p, err
	}
	var install []sentJSON
	if err := json.Unmarshal(ij, &install); err != nil {
		return p, fmt.Errorf("pgstore: corrupt pending update: %w", err)
	}
	for _, m := range install {
		id, err := idFromCol(m.ComponentID)
		if err != nil {
			return p, err
		}
		p.Install = append(p.Install, tam.SentManifest{ComponentID: id, Sequence: m.Sequence, Requested: m.Requested, Personalization: m.Personalization})
	}
	var err error
	if p.Remove, err = fromIDs(remove); err != nil {
		return p, err
	}
	p.CreatedAt, p.ExpiresAt = fromTS(created), fromTS(expires)
	return p, nil
}

func (t *tx) Pending(ctx context.Context, token []byte) (tam.PendingUpdate, error) {
	p, err := scanPending(t.tx.QueryRow(ctx, pendingSelect+` WHERE token = $1`, nonNil(token)))
	return p, notFound(mapErr(err), "pending update")
}

// DeletePending is the single use of an Update's token: of two
// transactions deleting the row, the second waits for the first and then
// finds nothing (ErrNotFound), on any replica.
func (t *tx) DeletePending(ctx context.Context, token []byte) error {
	tag, err := t.exec(ctx, `DELETE FROM pending_updates WHERE token = $1`, nonNil(token))
	if err != nil {
		return err
	}
	return affected(tag, "pending update")
}

func (t *tx) PendingFor(ctx context.Context, kid []byte) ([]tam.PendingUpdate, error) {
	return queryAll(ctx, t, scanPending, pendingSelect+` WHERE device_kid = $1 ORDER BY created_at, seq`, nonNil(kid))
}

// UseToken relies on the primary key: a concurrent insert of the same token
// waits for the first transaction, then inserts nothing if it committed.
func (t *tx) UseToken(ctx context.Context, token []byte, expires time.Time) error {
	tag, err := t.exec(ctx, `INSERT INTO used_tokens (token, expires_at) VALUES ($1, $2) ON CONFLICT (token) DO NOTHING`,
		nonNil(token), ts(expires))
	if err != nil {
		return err
	}
	if tag.RowsAffected() == 0 {
		return tam.ErrTokenUsed
	}
	return nil
}

// PurgeExpired skips rows another transaction holds (SKIP LOCKED): the
// janitors of several replicas and live sessions never wait for one another
// or deadlock here; what is skipped goes next time. The outer WHERE repeats
// the expiry (rows never change it) so the planner takes the index on both
// sides instead of joining the subquery to the whole table.
func (t *tx) PurgeExpired(ctx context.Context, now time.Time) (int, error) {
	n := 0
	for _, q := range []string{
		`DELETE FROM pending_updates WHERE expires_at <= $1 AND token IN (SELECT token FROM pending_updates WHERE expires_at <= $1 FOR UPDATE SKIP LOCKED)`,
		`DELETE FROM used_tokens WHERE expires_at <= $1 AND token IN (SELECT token FROM used_tokens WHERE expires_at <= $1 FOR UPDATE SKIP LOCKED)`,
	} {
		tag, err := t.exec(ctx, q, ts(now))
		if err != nil {
			return n, err
		}
		n += int(tag.RowsAffected())
	}
	return n, nil
}

// ---- personalization

func (t *tx) PutPersonalization(ctx context.Context, p tam.Personalization) error {
	s, err := seq(p.Sequence)
	if err != nil {
		return err
	}
	if err := t.lockDevice(ctx, p.DeviceKID); err != nil {
		return err
	}
	tenant := tenantOr(p.Tenant)
	_, err = t.exec(ctx, `INSERT INTO personalization (device_kid, name, component_id, payload_id, sequence, envelope, digest, depends_on, size, created_at, tenant_id)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)
		ON CONFLICT (device_kid, tenant_id, name) DO UPDATE SET component_id = excluded.component_id, payload_id = excluded.payload_id, sequence = excluded.sequence,
		envelope = excluded.envelope, digest = excluded.digest, depends_on = excluded.depends_on, size = excluded.size,
		created_at = excluded.created_at`,
		nonNil(p.DeviceKID), p.Name, idCol(p.ComponentID), idCol(p.PayloadID), s, nonNil(p.Envelope), nonNil(p.Digest), ids(p.DependsOn), p.Size, ts(p.CreatedAt), tenant)
	if isCode(err, codeForeignKeyViolation) {
		return fmt.Errorf("device %x or tenant %q: %w", p.DeviceKID, tenant, tam.ErrNotFound)
	}
	return err
}

func tenantOr(t string) string {
	if t == "" {
		return tam.DefaultTenant
	}
	return t
}

const personalizationSelect = `SELECT device_kid, tenant_id, name, component_id, payload_id, sequence, envelope, digest, depends_on, size, created_at FROM personalization`

func scanPersonalization(sc pgx.Row) (tam.Personalization, error) {
	var p tam.Personalization
	var id, pid string
	var deps []string
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
	p.DependsOn, err = fromIDs(deps)
	return p, err
}

func (t *tx) Personalization(ctx context.Context, kid []byte, tenant, name string) (tam.Personalization, error) {
	p, err := scanPersonalization(t.tx.QueryRow(ctx, personalizationSelect+` WHERE device_kid = $1 AND tenant_id = $2 AND name = $3`, nonNil(kid), tenantOr(tenant), name))
	return p, notFound(mapErr(err), fmt.Sprintf("personalization %q of device %x", name, kid))
}

func (t *tx) Personalizations(ctx context.Context, kid []byte) ([]tam.Personalization, error) {
	return queryAll(ctx, t, scanPersonalization, personalizationSelect+` WHERE device_kid = $1 ORDER BY tenant_id, name`, nonNil(kid))
}

func (t *tx) DeletePersonalization(ctx context.Context, kid []byte, tenant, name string) error {
	if t.readOnly {
		return tam.ErrStoreReadOnly
	}
	if err := t.lockDevice(ctx, kid); err != nil {
		if errors.Is(err, tam.ErrNotFound) {
			return fmt.Errorf("personalization %q of device %x: %w", name, kid, tam.ErrNotFound)
		}
		return err
	}
	tag, err := t.exec(ctx, `DELETE FROM personalization WHERE device_kid = $1 AND tenant_id = $2 AND name = $3`, nonNil(kid), tenantOr(tenant), name)
	if err != nil {
		return err
	}
	return affected(tag, fmt.Sprintf("personalization %q of device %x", name, kid))
}
