package pgstore

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/teep-go/teep/internal/tam"
)

// Tenants, API tokens and the audit log (migration 0002).

var (
	_ tam.TenantTx   = (*tx)(nil)
	_ tam.APITokenTx = (*tx)(nil)
	_ tam.AuditTx    = (*tx)(nil)
)

func (t *tx) AddTenant(ctx context.Context, te tam.Tenant) error {
	_, err := t.exec(ctx, `INSERT INTO tenants (id, name, created_at) VALUES ($1, $2, $3)`, te.ID, te.Name, ts(te.CreatedAt))
	if isCode(err, codeUniqueViolation) {
		return fmt.Errorf("tenant %q: %w", te.ID, tam.ErrExists)
	}
	return err
}

func (t *tx) Tenant(ctx context.Context, id string) (tam.Tenant, error) {
	te, err := scanTenant(t.tx.QueryRow(ctx, `SELECT id, name, created_at FROM tenants WHERE id = $1`, id))
	return te, notFound(mapErr(err), fmt.Sprintf("tenant %q", id))
}

func (t *tx) Tenants(ctx context.Context) ([]tam.Tenant, error) {
	return queryAll(ctx, t, scanTenant, `SELECT id, name, created_at FROM tenants ORDER BY id`)
}

func scanTenant(sc pgx.Row) (tam.Tenant, error) {
	var te tam.Tenant
	var created int64
	err := sc.Scan(&te.ID, &te.Name, &created)
	te.CreatedAt = fromTS(created)
	return te, err
}

const tokenCols = `id, name, tenant_id, role, hash, created_at, expires_at, revoked_at`

func (t *tx) AddAPIToken(ctx context.Context, k tam.APIToken) error {
	var tenant *string
	if k.Tenant != "" {
		tenant = &k.Tenant
	}
	_, err := t.exec(ctx, `INSERT INTO api_tokens (`+tokenCols+`) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)`,
		k.ID, k.Name, tenant, string(k.Role), nonNil(k.Hash), ts(k.CreatedAt), ts(k.ExpiresAt), ts(k.RevokedAt))
	switch {
	case isCode(err, codeUniqueViolation):
		return fmt.Errorf("API token %q: %w", k.ID, tam.ErrExists)
	case isCode(err, codeForeignKeyViolation):
		return fmt.Errorf("tenant %q: %w", k.Tenant, tam.ErrNotFound)
	}
	return err
}

func (t *tx) APIToken(ctx context.Context, id string) (tam.APIToken, error) {
	k, err := scanAPIToken(t.tx.QueryRow(ctx, `SELECT `+tokenCols+` FROM api_tokens WHERE id = $1`, id))
	return k, notFound(mapErr(err), fmt.Sprintf("API token %q", id))
}

func (t *tx) APITokenByHash(ctx context.Context, hash []byte) (tam.APIToken, error) {
	k, err := scanAPIToken(t.tx.QueryRow(ctx, `SELECT `+tokenCols+` FROM api_tokens WHERE hash = $1`, nonNil(hash)))
	return k, notFound(mapErr(err), "API token")
}

func (t *tx) APITokens(ctx context.Context, tenant string) ([]tam.APIToken, error) {
	if tenant == "" {
		return queryAll(ctx, t, scanAPIToken, `SELECT `+tokenCols+` FROM api_tokens ORDER BY id`)
	}
	return queryAll(ctx, t, scanAPIToken, `SELECT `+tokenCols+` FROM api_tokens WHERE tenant_id = $1 ORDER BY id`, tenant)
}

func (t *tx) RevokeAPIToken(ctx context.Context, id string, at time.Time) error {
	tag, err := t.exec(ctx, `UPDATE api_tokens SET revoked_at = $1 WHERE id = $2 AND revoked_at = 0`, ts(at), id)
	if err != nil {
		return err
	}
	return affected(tag, fmt.Sprintf("API token %q", id))
}

func scanAPIToken(sc pgx.Row) (tam.APIToken, error) {
	var k tam.APIToken
	var tenant *string
	var role string
	var created, expires, revoked int64
	if err := sc.Scan(&k.ID, &k.Name, &tenant, &role, &k.Hash, &created, &expires, &revoked); err != nil {
		return k, err
	}
	if tenant != nil {
		k.Tenant = *tenant
	}
	k.Role = tam.Role(role)
	k.CreatedAt, k.ExpiresAt, k.RevokedAt = fromTS(created), fromTS(expires), fromTS(revoked)
	return k, nil
}

func (t *tx) AddAudit(ctx context.Context, e tam.AuditEntry) (int64, error) {
	if t.readOnly {
		return 0, tam.ErrStoreReadOnly
	}
	var id int64
	err := t.tx.QueryRow(ctx, `INSERT INTO audit_log (at, token_id, token_name, tenant_id, action, object, remote, outcome)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8) RETURNING id`,
		ts(e.Time), e.TokenID, e.TokenName, e.Tenant, e.Action, e.Object, e.Remote, e.Outcome).Scan(&id)
	return id, mapErr(err)
}

func (t *tx) Audit(ctx context.Context, f tam.AuditFilter) ([]tam.AuditEntry, error) {
	var where []string
	var args []any
	add := func(cond string, v any) {
		args = append(args, v)
		where = append(where, fmt.Sprintf(cond, len(args)))
	}
	if f.Tenant != "" {
		add("tenant_id = $%d", f.Tenant)
	}
	if f.TokenID != "" {
		add("token_id = $%d", f.TokenID)
	}
	if f.Action != "" {
		add("action = $%d", f.Action)
	}
	if !f.Since.IsZero() {
		add("at >= $%d", ts(f.Since))
	}
	if !f.Until.IsZero() {
		add("at < $%d", ts(f.Until))
	}
	if f.Before > 0 {
		add("id < $%d", f.Before)
	}
	q := `SELECT id, at, token_id, token_name, tenant_id, action, object, remote, outcome FROM audit_log`
	if len(where) > 0 {
		q += " WHERE " + strings.Join(where, " AND ")
	}
	q += " ORDER BY id DESC"
	if f.Limit > 0 {
		args = append(args, f.Limit)
		q += fmt.Sprintf(" LIMIT $%d", len(args))
	}
	return queryAll(ctx, t, scanAudit, q, args...)
}

func scanAudit(sc pgx.Row) (tam.AuditEntry, error) {
	var e tam.AuditEntry
	var at int64
	err := sc.Scan(&e.ID, &at, &e.TokenID, &e.TokenName, &e.Tenant, &e.Action, &e.Object, &e.Remote, &e.Outcome)
	e.Time = fromTS(at)
	return e, err
}

var _ tam.OwnerTx = (*tx)(nil)

func (t *tx) SetOwner(ctx context.Context, kind tam.OwnedKind, key, tenant string) error {
	_, err := t.exec(ctx, `INSERT INTO owners (kind, key, tenant_id) VALUES ($1, $2, $3)
		ON CONFLICT (kind, key) DO UPDATE SET tenant_id = excluded.tenant_id`, string(kind), key, tenant)
	if isCode(err, codeForeignKeyViolation) {
		return fmt.Errorf("tenant %q: %w", tenant, tam.ErrNotFound)
	}
	return err
}

func (t *tx) Owner(ctx context.Context, kind tam.OwnedKind, key string) (string, error) {
	var tenant string
	err := t.tx.QueryRow(ctx, `SELECT tenant_id FROM owners WHERE kind = $1 AND key = $2`, string(kind), key).Scan(&tenant)
	if errors.Is(err, pgx.ErrNoRows) {
		return tam.DefaultTenant, nil
	}
	return tenant, mapErr(err)
}

func (t *tx) Owners(ctx context.Context, kind tam.OwnedKind) (map[string]string, error) {
	rows, err := t.tx.Query(ctx, `SELECT key, tenant_id FROM owners WHERE kind = $1`, string(kind))
	if err != nil {
		return nil, mapErr(err)
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
