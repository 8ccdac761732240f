// Package pgstore is the tam.Store on PostgreSQL (github.com/jackc/pgx/v5,
// a pgxpool connection pool, every statement prepared once per connection
// and cached), for a TAM run as several stateless replicas on one
// database. It passes the same conformance suite as the SQLite store
// (internal/tam/storetest).
//
// # Schema
//
// The embedded migrations/*.sql are applied in order on Open, each in its
// own transaction, recorded in schema_migrations, under an advisory lock so
// that replicas starting together migrate once. A database whose schema is
// newer than the binary (or whose history differs) is refused: roll out a
// new release by upgrading every replica, never by running an old binary
// against a migrated database. Tables live in the current schema (the
// first of the DSN's search_path), so one server can hold several TAMs.
//
// # Concurrency across replicas
//
// SQLite runs one writer at a time, so every read inside its Update sees
// what that transaction will commit over. Here many transactions of many
// replicas run at once; Update uses READ COMMITTED plus explicit locks, and
// this is what each part of tam.Tx relies on:
//
//   - UseToken (a QueryRequest token is used once, draft-ietf-teep-protocol-26
//     §4.1.1): INSERT ... ON CONFLICT DO NOTHING on the primary key of
//     used_tokens. A second transaction inserting the same token waits for the
//     first and inserts nothing once it commits: ErrTokenUsed. The refusal is
//     the database's, not a replica's memory.
//   - DeletePending (an Update's token is answered once): DELETE of the row;
//     a concurrent second DELETE waits and then affects no row: ErrNotFound.
//   - Device inside Update reads with FOR UPDATE, and every per-device write
//     (PutInstalled, DeleteInstalled, PutFailure, ClearFailures, AddReport,
//     PutPending, PutPersonalization, DeletePersonalization) first locks the
//     device row. So the engine's read-modify-write of a device loses no
//     change, and the caps of PutPending and AddReport count exactly: per
//     device, writers are serialised, as on SQLite. Different devices never
//     wait for one another.
//   - AddComponentVersion upserts the component row first, which locks it,
//     then checks the sequence: two admin requests on two replicas cannot
//     both add "the next" version. PutPolicy takes a key-share lock on the
//     component so a concurrent DeleteComponent cannot leave a dangling
//     policy.
//   - PurgeExpired deletes with FOR UPDATE SKIP LOCKED: the janitors of
//     every replica and live sessions never wait for one another.
//   - Expected refusals (a used token, a duplicate pending token, an
//     unknown device or component) are found without a failing statement,
//     because a failed statement aborts a PostgreSQL transaction.
//   - SteadyRound (tam.SteadyRoundStore) is one statement, steady_round
//     (migration 0005), outside any explicit transaction: it inserts the
//     token as UseToken does and then updates last_seen, the same order of
//     locks as an Update of the engine, and undoes the insert by raising
//     when the device row no longer matches.
//
// View is a REPEATABLE READ, READ ONLY transaction: a consistent snapshot.
// DeviceState (tam.DeviceStateStore) is the same kind of transaction sent
// as one pipelined batch, so its five reads cost one round trip.
// A deadlock or a lock wait longer than Options.LockTimeout aborts the
// transaction with ErrConflict; nothing of it is kept and the device
// retries its session.
package pgstore
