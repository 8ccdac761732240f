-- Tenants, admin API tokens (only the SHA-256 of the secret) and the audit
-- log. The implicit tenant "default" always exists (tam.DefaultTenant).

CREATE TABLE tenants (
	id         TEXT PRIMARY KEY,
	name       TEXT NOT NULL,
	created_at INTEGER NOT NULL
);

INSERT INTO tenants (id, name, created_at) VALUES ('default', 'default', 0);

CREATE TABLE api_tokens (
	id         TEXT PRIMARY KEY,
	name       TEXT NOT NULL,
	tenant_id  TEXT REFERENCES tenants(id),
	role       TEXT NOT NULL,
	hash       BLOB NOT NULL UNIQUE,
	created_at INTEGER NOT NULL,
	expires_at INTEGER NOT NULL,
	revoked_at INTEGER NOT NULL
);

CREATE TABLE audit_log (
	id         INTEGER PRIMARY KEY AUTOINCREMENT,
	at         INTEGER NOT NULL,
	token_id   TEXT NOT NULL,
	token_name TEXT NOT NULL,
	tenant_id  TEXT NOT NULL,
	action     TEXT NOT NULL,
	object     TEXT NOT NULL,
	remote     TEXT NOT NULL,
	outcome    TEXT NOT NULL
);

CREATE INDEX audit_log_tenant ON audit_log (tenant_id, id);

-- Which tenant owns a TC signer key or a component (tam.OwnerTx); no row
-- means the default tenant, so databases from before tenants need no data
-- migration.
CREATE TABLE owners (
	kind      TEXT NOT NULL,
	key       TEXT NOT NULL,
	tenant_id TEXT NOT NULL REFERENCES tenants(id),
	PRIMARY KEY (kind, key)
);
