// Package tamserver assembles a runnable TAM from a data directory: it
// creates (on first start) or loads the TAM's signing keys, the admin token,
// the session key and the database (SQLite in the data directory, or a
// PostgreSQL database shared by replicas: Options.DB), wires the engine,
// the TEEP HTTP binding, the admin API and metrics, and serves them. `teep tam serve` and
// the tamtest harness both use it.
//
// Data directory (mode 0700):
//
//	tam-esp256.key   P-256 signing key (COSE_Key, 0600)
//	tam-ed25519.key  Ed25519 signing key (COSE_Key, 0600)
//	session.key      32-byte key authenticating QueryRequest tokens (0600)
//	admin.token      bearer token of the admin API (0600)
//	tam.db           SQLite database (WAL; with tam.db-wal and tam.db-shm);
//	                 absent when Options.DB names a PostgreSQL database
//
// Replicas on one PostgreSQL database each need a copy of the four key
// files above: a token one replica issues is checked by another.
package tamserver
