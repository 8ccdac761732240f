// Package sqlitestore is the tam.Store on SQLite (modernc.org/sqlite, pure
// Go, so CGO_ENABLED=0 builds work). The database runs in WAL mode with
// synchronous=FULL and foreign keys on; writers are serialised on one
// connection with BEGIN IMMEDIATE, readers use a pool of query_only
// connections. The schema is created and migrated by the embedded
// migrations/*.sql on open; a database from a newer release is refused.
// Dump renders the whole database for tests.
package sqlitestore
