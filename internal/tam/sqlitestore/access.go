package sqlitestore

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/teep-go/teep/internal/tam"
	sqlite3 "modernc.org/sqlite/lib"
)

// Tenants, API tokens and the audit log (migration 0002).

var (
	_ tam.TenantTx   = (*tx)(nil)
	_ tam.APITokenTx = (*tx)(nil)
	_ tam.AuditTx    = (*tx)(nil)
)

func (t *tx) AddTenant(ctx context.Context, te tam.Tenant) error {
	_, err := t.exec(ctx, `INSERT INTO tenants (id, name, created_at) VALUES (?, ?, ?)`, te.ID, te.Name, ts(te.CreatedAt))
	if isConstraint(err, sqlite3.SQLITE_CONSTRAINT_PRIMARYKEY) {
		return fmt.Errorf("tenant %q: %w", te.ID, tam.ErrExists)
	}
	return err
}

func (t *tx) Tenant(ctx context.Context, id string) (tam.Tenant, error) {
	te, err := scanTenant(t.queryRow(ctx, `SELECT id, name, created_at FROM tenants WHERE id = ?`, id))
	return te, notFound(mapErr(err), fmt.Sprintf("tenant %q", id))
}

func (t *tx) Tenants(ctx context.Context) ([]tam.Tenant, error) {
	return queryAll(ctx, t, scanTenant, `SELECT id, name, created_at FROM tenants ORDER BY id`)
}

func scanTenant(sc scanner) (tam.Tenant, error) {
	var te tam.Tenant
	var created int64
	err := sc.Scan(&te.ID, &te.Name, &created)
	te.CreatedAt = fromTS(created)
	return te, err
}

const tokenCols = `id, name, tenant_id, role, hash, created_at, expires_at, revoked_at`

func (t *tx) AddAPIToken(ctx context.Context, k tam.APIToken) error {
	var tenant sql.NullString
	if k.Tenant != "" {
		tenant = sql.NullString{String: k.Tenant, Valid: true}
	}
	_, err := t.exec(ctx, `INSERT INTO api_tokens (`+tokenCols+`) VALUES (?, ?, ?, ?, ?, ?, ?, ?)`,
		k.ID, k.Name, tenant, string(k.Role), nonNil(k.Hash), ts(k.CreatedAt), ts(k.ExpiresAt), ts(k.RevokedAt))
	switch {
	case isConstraint(err, sqlite3.SQLITE_CONSTRAINT_PRIMARYKEY), isConstraint(err, sqlite3.SQLITE_CONSTRAINT_UNIQUE):
		return fmt.Errorf("API token %q: %w", k.ID, tam.ErrExists)
	case isConstraint(err, sqlite3.SQLITE_CONSTRAINT_FOREIGNKEY):
		return fmt.Errorf("tenant %q: %w", k.Tenant, tam.ErrNotFound)
	}
	return err
}

func (t *tx) APIToken(ctx context.Context, id string) (tam.APIToken, error) {
	k, err := scanAPIToken(t.queryRow(ctx, `SELECT `+tokenCols+` FROM api_tokens WHERE id = ?`, id))
	return k, notFound(mapErr(err), fmt.Sprintf("API token %q", id))
}

func (t *tx) APITokenByHash(ctx context.Context, hash []byte) (tam.APIToken, error) {
	k, err := scanAPIToken(t.queryRow(ctx, `SELECT `+tokenCols+` FROM api_tokens WHERE hash = ?`, nonNil(hash)))
	return k, notFound(mapErr(err), "API token")
}

func (t *tx) APITokens(ctx context.Context, tenant string) ([]tam.APIToken, error) {
	if tenant == "" {
		return queryAll(ctx, t, scanAPIToken, `SELECT `+tokenCols+` FROM api_tokens ORDER BY id`)
	}
	return queryAll(ctx, t, scanAPIToken, `SELECT `+tokenCols+` FROM api_tokens WHERE tenant_id = ? ORDER BY id`, tenant)
}

func (t *tx) RevokeAPIToken(ctx context.Context, id string, at time.Time) error {
	r, err := t.exec(ctx, `UPDATE api_tokens SET revoked_at = ? WHERE id = ? AND revoked_at = 0`, ts(at), id)
	if err != nil {
		return err
	}
	return affected(r, fmt.Sprintf("API token %q", id))
}

func scanAPIToken(sc scanner) (tam.APIToken, error) {
	var k tam.APIToken
	var tenant sql.NullString
	var role string
	var created, expires, revoked int64
	if err := sc.Scan(&k.ID, &k.Name, &tenant, &role, &k.Hash, &created, &expires, &revoked); err != nil {
		return k, err
	}
	k.Tenant, k.Role = tenant.String, tam.Role(role)
	k.CreatedAt, k.ExpiresAt, k.RevokedAt = fromTS(created), fromTS(expires), fromTS(revoked)
	return k, nil
}

func (t *tx) AddAudit(ctx context.Context, e tam.AuditEntry) (int64, error) {
	r, err := t.exec(ctx, `INSERT INTO audit_log (at, token_id, token_name, tenant_id, action, object, remote, outcome)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?)`, ts(e.Time), e.TokenID, e.TokenName, e.Tenant, e.Action, e.Object, e.Remote, e.Outcome)
	if err != nil {
		return 0, err
	}
	return r.LastInsertId()
}

func (t *tx) Audit(ctx context.Context, f tam.AuditFilter) ([]tam.AuditEntry, error) {
	var where []string
	var args []any
	add := func(cond string, v any) { where = append(where, cond); args = append(args, v) }
	if f.Tenant != "" {
		add("tenant_id = ?", f.Tenant)
	}
	if f.TokenID != "" {
		add("token_id = ?", f.TokenID)
	}
	if f.Action != "" {
		add("action = ?", f.Action)
	}
	if !f.Since.IsZero() {
		add("at >= ?", ts(f.Since))
	}
	if !f.Until.IsZero() {
		add("at < ?", ts(f.Until))
	}
	if f.Before > 0 {
		add("id < ?", f.Before)
	}
	q := `SELECT id, at, token_id, token_name, tenant_id, action, object, remote, outcome FROM audit_log`
	if len(where) > 0 {
		q += " WHERE " + strings.Join(where, " AND ")
	}
	q += " ORDER BY id DESC"
	if f.Limit > 0 {
		q += " LIMIT ?"
		args = append(args, f.Limit)
	}
	return queryAll(ctx, t, scanAudit, q, args...)
}

func scanAudit(sc scanner) (tam.AuditEntry, error) {
	var e tam.AuditEntry
	var at int64
	err := sc.Scan(&e.ID, &at, &e.TokenID, &e.TokenName, &e.Tenant, &e.Action, &e.Object, &e.Remote, &e.Outcome)
	e.Time = fromTS(at)
	return e, err
}

var _ tam.OwnerTx = (*tx)(nil)

func (t *tx) SetOwner(ctx context.Context, kind tam.OwnedKind, key, tenant string) error {
	_, err := t.exec(ctx, `INSERT INTO owners (kind, key, tenant_id) VALUES (?, ?, ?)
		ON CONFLICT (kind, key) DO UPDATE SET tenant_id = excluded.tenant_id`, string(kind), key, tenant)
	if isConstraint(err, sqlite3.SQLITE_CONSTRAINT_FOREIGNKEY) {
		return fmt.Errorf("tenant %q: %w", tenant, tam.ErrNotFound)
	}
	return err
}

func (t *tx) Owner(ctx context.Context, kind tam.OwnedKind, key string) (string, error) {
	var tenant string
	err := t.queryRow(ctx, `SELECT tenant_id FROM owners WHERE kind = ? AND key = ?`, string(kind), key).Scan(&tenant)
	if errors.Is(err, sql.ErrNoRows) {
		return tam.DefaultTenant, nil
	}
	return tenant, mapErr(err)
}

func (t *tx) Owners(ctx context.Context, kind tam.OwnedKind) (map[string]string, error) {
	rows, err := t.query(ctx, `SELECT key, tenant_id FROM owners WHERE kind = ?`, string(kind))
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	out := map[string]string{}
	for rows.Next() {
		var k, tenant string
		if err := rows.Scan(&k, &tenant); err != nil {
			return nil, mapErr(err)
		}
		out[k] = tenant
	}
	return out, mapErr(rows.Err())
}
