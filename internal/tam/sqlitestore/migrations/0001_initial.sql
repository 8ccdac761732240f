-- Initial schema of the TAM state. Times are Unix nanoseconds (0 = never),
-- lists are JSON text, kids and tokens are raw bytes, component ids are the
-- hex of their CBOR encoding (see tam.ComponentID).

CREATE TABLE components (
	id         TEXT PRIMARY KEY,
	created_at INTEGER NOT NULL,
	updated_at INTEGER NOT NULL
);

CREATE TABLE component_versions (
	component_id    TEXT NOT NULL REFERENCES components(id) ON DELETE CASCADE,
	sequence        INTEGER NOT NULL CHECK (sequence >= 0),
	digest          BLOB NOT NULL,
	payload_ids     TEXT NOT NULL,
	payload_digests TEXT NOT NULL,
	dependencies    TEXT NOT NULL,
	signer_kid      BLOB NOT NULL,
	size            INTEGER NOT NULL,
	envelope        BLOB NOT NULL,
	created_at      INTEGER NOT NULL,
	PRIMARY KEY (component_id, sequence)
);

CREATE TABLE policies (
	id           INTEGER PRIMARY KEY AUTOINCREMENT,
	component_id TEXT NOT NULL REFERENCES components(id) ON DELETE CASCADE,
	mode         TEXT NOT NULL,
	scope        TEXT NOT NULL,
	value        TEXT NOT NULL,
	created_at   INTEGER NOT NULL,
	UNIQUE (component_id, scope, value)
);

CREATE TABLE trusted_keys (
	role       TEXT NOT NULL,
	kid        BLOB NOT NULL,
	key        BLOB NOT NULL,
	comment    TEXT NOT NULL,
	created_at INTEGER NOT NULL,
	PRIMARY KEY (role, kid)
);

CREATE TABLE devices (
	kid                BLOB PRIMARY KEY,
	key                BLOB NOT NULL,
	alg                INTEGER NOT NULL,
	labels             TEXT NOT NULL,
	ueid               BLOB NOT NULL,
	oemid              BLOB NOT NULL,
	hwmodel            BLOB NOT NULL,
	hwversion          TEXT NOT NULL,
	preregistered      INTEGER NOT NULL,
	attestation        TEXT NOT NULL,
	attested_at        INTEGER NOT NULL,
	attestation_reason TEXT NOT NULL,
	needs_attestation  INTEGER NOT NULL,
	status             TEXT NOT NULL,
	last_error         TEXT NOT NULL,
	last_error_code    INTEGER NOT NULL,
	numbering          TEXT NOT NULL,
	created_at         INTEGER NOT NULL,
	last_seen          INTEGER NOT NULL
);

CREATE TABLE installed (
	device_kid   BLOB NOT NULL REFERENCES devices(kid) ON DELETE CASCADE,
	component_id TEXT NOT NULL,
	sequence     INTEGER NOT NULL,
	managed      INTEGER NOT NULL,
	requested    INTEGER NOT NULL,
	updated_at   INTEGER NOT NULL,
	PRIMARY KEY (device_kid, component_id)
);

CREATE TABLE install_failures (
	device_kid   BLOB NOT NULL REFERENCES devices(kid) ON DELETE CASCADE,
	component_id TEXT NOT NULL,
	sequence     INTEGER NOT NULL,
	attempts     INTEGER NOT NULL,
	last_error   TEXT NOT NULL,
	last_at      INTEGER NOT NULL,
	PRIMARY KEY (device_kid, component_id, sequence)
);

CREATE TABLE reports (
	id           INTEGER PRIMARY KEY AUTOINCREMENT,
	device_kid   BLOB NOT NULL REFERENCES devices(kid) ON DELETE CASCADE,
	at           INTEGER NOT NULL,
	kind         TEXT NOT NULL,
	err_code     INTEGER NOT NULL,
	message      TEXT NOT NULL,
	suit_reports TEXT NOT NULL
);
CREATE INDEX reports_by_device ON reports (device_kid, id);

CREATE TABLE pending_updates (
	token      BLOB PRIMARY KEY,
	device_kid BLOB NOT NULL REFERENCES devices(kid) ON DELETE CASCADE,
	numbering  TEXT NOT NULL,
	install    TEXT NOT NULL,
	remove     TEXT NOT NULL,
	created_at INTEGER NOT NULL,
	expires_at INTEGER NOT NULL
);
CREATE INDEX pending_by_device ON pending_updates (device_kid, created_at);
CREATE INDEX pending_by_expiry ON pending_updates (expires_at);

CREATE TABLE used_tokens (
	token      BLOB PRIMARY KEY,
	expires_at INTEGER NOT NULL
);
CREATE INDEX used_tokens_by_expiry ON used_tokens (expires_at);

CREATE TABLE personalization (
	device_kid   BLOB NOT NULL REFERENCES devices(kid) ON DELETE CASCADE,
	name         TEXT NOT NULL,
	component_id TEXT NOT NULL,
	payload_id   TEXT NOT NULL,
	sequence     INTEGER NOT NULL,
	envelope     BLOB NOT NULL,
	digest       BLOB NOT NULL,
	depends_on   TEXT NOT NULL,
	size         INTEGER NOT NULL,
	created_at   INTEGER NOT NULL,
	PRIMARY KEY (device_kid, name)
);
