-- Per-tenant device labels and personalization data. Labels DefaultTenant
-- set stay in devices.labels; other tenants' are a JSON object of tenant id
-- to label list. Personalization names become per (device, tenant); every
-- existing row belongs to the default tenant.

ALTER TABLE devices ADD COLUMN tenant_labels TEXT NOT NULL DEFAULT '{}';

CREATE TABLE personalization_v3 (
	device_kid   BLOB NOT NULL REFERENCES devices(kid) ON DELETE CASCADE,
	tenant_id    TEXT NOT NULL REFERENCES tenants(id),
	name         TEXT NOT NULL,
	component_id TEXT NOT NULL,
	payload_id   TEXT NOT NULL,
	sequence     INTEGER NOT NULL,
	envelope     BLOB NOT NULL,
	digest       BLOB NOT NULL,
	depends_on   TEXT NOT NULL,
	size         INTEGER NOT NULL,
	created_at   INTEGER NOT NULL,
	PRIMARY KEY (device_kid, tenant_id, name)
);

INSERT INTO personalization_v3 (device_kid, tenant_id, name, component_id, payload_id, sequence, envelope, digest, depends_on, size, created_at)
	SELECT device_kid, 'default', name, component_id, payload_id, sequence, envelope, digest, depends_on, size, created_at FROM personalization;

DROP TABLE personalization;

ALTER TABLE personalization_v3 RENAME TO personalization;
