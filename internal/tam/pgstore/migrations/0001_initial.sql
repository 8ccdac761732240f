-- Initial schema of the TAM state on PostgreSQL. Times are Unix
-- nanoseconds (0 = never), as in the SQLite store, so both keep the same
-- precision; kids and tokens are raw bytes; component ids are the hex of
-- their CBOR encoding (see tam.ComponentID). Tables are created in the
-- current schema (the first of search_path).

CREATE TABLE components (
	id         TEXT PRIMARY KEY,
	created_at BIGINT NOT NULL,
	updated_at BIGINT NOT NULL
);

CREATE TABLE component_versions (
	component_id    TEXT NOT NULL REFERENCES components(id) ON DELETE CASCADE,
	sequence        BIGINT NOT NULL CHECK (sequence >= 0),
	digest          BYTEA NOT NULL,
	payload_ids     TEXT[] NOT NULL,
	payload_digests BYTEA[] NOT NULL,
	dependencies    TEXT[] NOT NULL,
	signer_kid      BYTEA NOT NULL,
	size            BIGINT NOT NULL,
	envelope        BYTEA NOT NULL,
	created_at      BIGINT NOT NULL,
	PRIMARY KEY (component_id, sequence)
);

CREATE TABLE policies (
	id           BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
	component_id TEXT NOT NULL REFERENCES components(id) ON DELETE CASCADE,
	mode         TEXT NOT NULL,
	scope        TEXT NOT NULL,
	value        TEXT NOT NULL,
	created_at   BIGINT NOT NULL,
	UNIQUE (component_id, scope, value)
);

CREATE TABLE trusted_keys (
	role       TEXT NOT NULL,
	kid        BYTEA NOT NULL,
	key        BYTEA NOT NULL,
	comment    TEXT NOT NULL,
	created_at BIGINT NOT NULL,
	PRIMARY KEY (role, kid)
);

CREATE TABLE devices (
	kid                BYTEA PRIMARY KEY,
	key                BYTEA NOT NULL,
	alg                BIGINT NOT NULL,
	labels             TEXT[] NOT NULL,
	ueid               BYTEA NOT NULL,
	oemid              BYTEA NOT NULL,
	hwmodel            BYTEA NOT NULL,
	hwversion          TEXT NOT NULL,
	preregistered      BOOLEAN NOT NULL,
	attestation        TEXT NOT NULL,
	attested_at        BIGINT NOT NULL,
	attestation_reason TEXT NOT NULL,
	needs_attestation  BOOLEAN NOT NULL,
	status             TEXT NOT NULL,
	last_error         TEXT NOT NULL,
	last_error_code    BIGINT NOT NULL,
	numbering          TEXT NOT NULL,
	created_at         BIGINT NOT NULL,
	last_seen          BIGINT NOT NULL
);

CREATE TABLE installed (
	device_kid   BYTEA NOT NULL REFERENCES devices(kid) ON DELETE CASCADE,
	component_id TEXT NOT NULL,
	sequence     BIGINT NOT NULL,
	managed      BOOLEAN NOT NULL,
	requested    BOOLEAN NOT NULL,
	updated_at   BIGINT NOT NULL,
	PRIMARY KEY (device_kid, component_id)
);

CREATE TABLE install_failures (
	device_kid   BYTEA NOT NULL REFERENCES devices(kid) ON DELETE CASCADE,
	component_id TEXT NOT NULL,
	sequence     BIGINT NOT NULL,
	attempts     BIGINT NOT NULL,
	last_error   TEXT NOT NULL,
	last_at      BIGINT NOT NULL,
	PRIMARY KEY (device_kid, component_id, sequence)
);

CREATE TABLE reports (
	id           BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
	device_kid   BYTEA NOT NULL REFERENCES devices(kid) ON DELETE CASCADE,
	at           BIGINT NOT NULL,
	kind         TEXT NOT NULL,
	err_code     BIGINT NOT NULL,
	message      TEXT NOT NULL,
	suit_reports BYTEA[] NOT NULL
);
CREATE INDEX reports_by_device ON reports (device_kid, id);

-- seq orders a device's pending Updates created in the same instant.
CREATE TABLE pending_updates (
	token      BYTEA PRIMARY KEY,
	seq        BIGINT GENERATED ALWAYS AS IDENTITY,
	device_kid BYTEA NOT NULL REFERENCES devices(kid) ON DELETE CASCADE,
	numbering  TEXT NOT NULL,
	install    JSONB NOT NULL,
	remove     TEXT[] NOT NULL,
	created_at BIGINT NOT NULL,
	expires_at BIGINT NOT NULL
);
CREATE INDEX pending_by_device ON pending_updates (device_kid, created_at, seq);
CREATE INDEX pending_by_expiry ON pending_updates (expires_at);

-- The primary key is what makes a QueryRequest token single-use across
-- every replica sharing this database.
CREATE TABLE used_tokens (
	token      BYTEA PRIMARY KEY,
	expires_at BIGINT NOT NULL
);
CREATE INDEX used_tokens_by_expiry ON used_tokens (expires_at);

CREATE TABLE personalization (
	device_kid   BYTEA NOT NULL REFERENCES devices(kid) ON DELETE CASCADE,
	name         TEXT NOT NULL,
	component_id TEXT NOT NULL,
	payload_id   TEXT NOT NULL,
	sequence     BIGINT NOT NULL,
	envelope     BYTEA NOT NULL,
	digest       BYTEA NOT NULL,
	depends_on   TEXT[] NOT NULL,
	size         BIGINT NOT NULL,
	created_at   BIGINT NOT NULL,
	PRIMARY KEY (device_kid, name)
);
