-- The catalog generation (tam.CatalogGenerationTx): a number that changes
-- in the same transaction as any change to what a session plans from
-- (components and their versions, policies, trusted keys, owners), so a
-- replica that caches the catalog reloads it at its next session. Triggers
-- bump it, so no writer can forget to.

CREATE TABLE catalog_generation (
	id         INTEGER PRIMARY KEY CHECK (id = 1),
	generation BIGINT NOT NULL
);

INSERT INTO catalog_generation (id, generation) VALUES (1, 1);

CREATE FUNCTION bump_catalog_generation() RETURNS trigger
	LANGUAGE plpgsql SET search_path FROM CURRENT AS $$
BEGIN
	UPDATE catalog_generation SET generation = generation + 1 WHERE id = 1;
	RETURN NULL;
END
$$;

CREATE TRIGGER components_gen AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON components
	FOR EACH STATEMENT EXECUTE FUNCTION bump_catalog_generation();
CREATE TRIGGER component_versions_gen AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON component_versions
	FOR EACH STATEMENT EXECUTE FUNCTION bump_catalog_generation();
CREATE TRIGGER policies_gen AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON policies
	FOR EACH STATEMENT EXECUTE FUNCTION bump_catalog_generation();
CREATE TRIGGER trusted_keys_gen AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON trusted_keys
	FOR EACH STATEMENT EXECUTE FUNCTION bump_catalog_generation();
CREATE TRIGGER owners_gen AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON owners
	FOR EACH STATEMENT EXECUTE FUNCTION bump_catalog_generation();

-- Session state that need not survive a database crash (docs/operations.md,
-- "Durability"): consumed QueryRequest tokens are written without WAL, and
-- the token epoch lives in an unlogged table too. Crash recovery empties
-- both together, so the first connection afterwards picks a new epoch and
-- every token minted before the crash stops verifying: a consumption lost
-- with the table cannot be replayed. A clean shutdown keeps both.
ALTER TABLE used_tokens SET UNLOGGED;

CREATE UNLOGGED TABLE token_epoch (
	id    INTEGER PRIMARY KEY CHECK (id = 1),
	epoch BIGINT NOT NULL
);
