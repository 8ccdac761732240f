// Package sqlitestore is the tam.Store on SQLite (modernc.org/sqlite, pure
// Go, so CGO_ENABLED=0 builds work). The database runs in WAL mode with
// synchronous=FULL and foreign keys on; writers are serialised on one
// connection with BEGIN IMMEDIATE, and write transactions that arrive
// while one commits are group-committed (commit.go: one SQLite
// transaction, a savepoint per caller); readers use a pool of query_only
// connections. DeviceState and PendingWithKey read in one statement,
// which SQLite runs as one snapshot, without a read transaction. The schema is created and migrated by the embedded
// migrations/*.sql on open; a database from a newer release is refused.
// Dump renders the whole database for tests.
package sqlitestore
