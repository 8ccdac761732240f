-- Per-tenant device labels and personalization data. Labels DefaultTenant
-- set stay in devices.labels; other tenants' are a JSON object of tenant id
-- to label list. Personalization names become per (device, tenant); every
-- existing row belongs to the default tenant.

ALTER TABLE devices ADD COLUMN tenant_labels JSONB NOT NULL DEFAULT '{}';

ALTER TABLE personalization ADD COLUMN tenant_id TEXT NOT NULL DEFAULT 'default' REFERENCES tenants(id);
ALTER TABLE personalization ALTER COLUMN tenant_id DROP DEFAULT;
ALTER TABLE personalization DROP CONSTRAINT personalization_pkey;
ALTER TABLE personalization ADD PRIMARY KEY (device_kid, tenant_id, name);
