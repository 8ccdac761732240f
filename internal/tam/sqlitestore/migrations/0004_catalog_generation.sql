-- The catalog generation (tam.CatalogGenerationTx): a number that changes
-- in the same transaction as any change to what a session plans from
-- (components and their versions, policies, trusted keys, owners), so an
-- engine that caches the catalog reloads it at its next session, whichever
-- process made the change. Triggers bump it, so no writer can forget to.

CREATE TABLE catalog_generation (
	id         INTEGER PRIMARY KEY CHECK (id = 1),
	generation INTEGER NOT NULL
);

INSERT INTO catalog_generation (id, generation) VALUES (1, 1);

CREATE TRIGGER components_ins_gen AFTER INSERT ON components BEGIN UPDATE catalog_generation SET generation = generation + 1 WHERE id = 1; END;
CREATE TRIGGER components_upd_gen AFTER UPDATE ON components BEGIN UPDATE catalog_generation SET generation = generation + 1 WHERE id = 1; END;
CREATE TRIGGER components_del_gen AFTER DELETE ON components BEGIN UPDATE catalog_generation SET generation = generation + 1 WHERE id = 1; END;
CREATE TRIGGER component_versions_ins_gen AFTER INSERT ON component_versions BEGIN UPDATE catalog_generation SET generation = generation + 1 WHERE id = 1; END;
CREATE TRIGGER component_versions_upd_gen AFTER UPDATE ON component_versions BEGIN UPDATE catalog_generation SET generation = generation + 1 WHERE id = 1; END;
CREATE TRIGGER component_versions_del_gen AFTER DELETE ON component_versions BEGIN UPDATE catalog_generation SET generation = generation + 1 WHERE id = 1; END;
CREATE TRIGGER policies_ins_gen AFTER INSERT ON policies BEGIN UPDATE catalog_generation SET generation = generation + 1 WHERE id = 1; END;
CREATE TRIGGER policies_upd_gen AFTER UPDATE ON policies BEGIN UPDATE catalog_generation SET generation = generation + 1 WHERE id = 1; END;
CREATE TRIGGER policies_del_gen AFTER DELETE ON policies BEGIN UPDATE catalog_generation SET generation = generation + 1 WHERE id = 1; END;
CREATE TRIGGER trusted_keys_ins_gen AFTER INSERT ON trusted_keys BEGIN UPDATE catalog_generation SET generation = generation + 1 WHERE id = 1; END;
CREATE TRIGGER trusted_keys_upd_gen AFTER UPDATE ON trusted_keys BEGIN UPDATE catalog_generation SET generation = generation + 1 WHERE id = 1; END;
CREATE TRIGGER trusted_keys_del_gen AFTER DELETE ON trusted_keys BEGIN UPDATE catalog_generation SET generation = generation + 1 WHERE id = 1; END;
CREATE TRIGGER owners_ins_gen AFTER INSERT ON owners BEGIN UPDATE catalog_generation SET generation = generation + 1 WHERE id = 1; END;
CREATE TRIGGER owners_upd_gen AFTER UPDATE ON owners BEGIN UPDATE catalog_generation SET generation = generation + 1 WHERE id = 1; END;
CREATE TRIGGER owners_del_gen AFTER DELETE ON owners BEGIN UPDATE catalog_generation SET generation = generation + 1 WHERE id = 1; END;
