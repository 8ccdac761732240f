package tam

import (
	"context"
	"errors"
	"time"

	"github.com/teep-go/teep/suit"
)

// Store errors. Implementations return them (possibly wrapped) so the engine
// and the admin API can tell the cases apart.
var (
	ErrNotFound      = errors.New("tam: not found")
	ErrExists        = errors.New("tam: already exists")
	ErrSequence      = errors.New("tam: sequence number does not increase")
	ErrTokenUsed     = errors.New("tam: token already used")
	ErrStoreReadOnly = errors.New("tam: write in a read-only transaction")
	// ErrStoreBusy: the transaction lost to a concurrent one (another
	// replica) and kept nothing; the peer should retry (KindUnavailable).
	ErrStoreBusy = errors.New("tam: store busy, retry")
)

// Store keeps the TAM's state. Every state change happens inside Update: if
// fn returns an error, nothing it did is kept; once Update returns nil the
// change is durable. View gives a consistent read-only snapshot. Both may run
// concurrently from many goroutines; implementations serialise writers as
// they must. A PostgreSQL store implements the same interface (and passes
// storetest.Run) without engine changes.
type Store interface {
	Update(ctx context.Context, fn func(Tx) error) error
	View(ctx context.Context, fn func(Tx) error) error
	Close() error
}

// NoSyncStore is a Store that can also commit without waiting for stable
// storage (sqlitestore). A power cut may lose the newest such commits, but
// never a durable commit and never out of order. The engine uses it only
// for changes whose loss costs a retry (docs/operations.md, "Durability"),
// and mixes Epoch into its QueryRequest tokens: a token consumed in a lost
// commit was minted under an earlier epoch, so it is still refused after
// the restart.
type NoSyncStore interface {
	Store
	UpdateNoSync(ctx context.Context, fn func(Tx) error) error
	// Epoch identifies the lifetime of the non-durable state: durable
	// before the store is used, never the same for two opens of a SQLite
	// file, and, for a shared database, changed by the first connection
	// after the database lost such state (pgstore: a server crash). It may
	// change while the store is open; the engine checks, inside the
	// transaction that consumes a token, that the token's epoch is still
	// the current one.
	Epoch() uint64
}

// DeviceState is what a session reads of one device before it decides:
// the device row, its installed components, personalizations and install
// failures (each ordered as their Tx methods order them), and the catalog
// generation, all from one snapshot.
type DeviceState struct {
	Device            Device
	Installed         []Installed
	Personalizations  []Personalization
	Failures          []InstallFailure
	CatalogGeneration uint64
}

// DeviceStateStore is a Store that reads a DeviceState at once: in one
// statement, without a read transaction's begin and end (sqlitestore),
// or in one round trip to the server (pgstore). Every QueryResponse
// starts with this read, so its cost is paid once per round. Optional:
// without it the engine reads the same rows in a View.
type DeviceStateStore interface {
	// DeviceState returns ErrNotFound for an unknown kid.
	DeviceState(ctx context.Context, kid []byte) (DeviceState, error)
}

// PendingKeyStore is a Store that reads the outstanding Update a Success
// or Error answers together with its device's stored COSE_Key in one
// statement: no read transaction on SQLite, one round trip on PostgreSQL.
// Optional: without it the engine reads both in a View.
type PendingKeyStore interface {
	// PendingWithKey returns ErrNotFound for an unknown token.
	PendingWithKey(ctx context.Context, token []byte) (p PendingUpdate, deviceKey []byte, err error)
}

// SteadyRoundStore is a Store that commits a steady round at once: the
// QueryRequest token consumed and the device's last_seen recorded, as one
// commit that need not wait for stable storage (the kind NoSyncStore's
// UpdateNoSync makes), without a transaction around it (pgstore: one
// statement, one round trip). Optional: without it the engine commits the
// same writes with UpdateNoSync.
type SteadyRoundStore interface {
	// SteadyRound consumes token (valid until expires) if the store's
	// token epoch is still epoch, and sets the last_seen of the device
	// d.KID to d.LastSeen if its stored row still holds d's algorithm,
	// numbering, status and last error and has been attested or marked
	// attestation-free (DeviceSeenTx.TouchDevice's condition). Both or
	// neither: done false with a nil error means nothing was written
	// because the row changed (the caller commits the round in a
	// transaction); ErrTokenUsed means the token was used before or its
	// epoch has passed, and nothing was written.
	SteadyRound(ctx context.Context, token []byte, expires time.Time, epoch uint64, d Device) (done bool, err error)
}

// CatalogGenerationTx is implemented by the Tx of stores that keep a
// catalog generation (both SQL stores; the interface stays optional so a
// store without it still works, reloading the catalog every session).
type CatalogGenerationTx interface {
	// CatalogGeneration returns a number that changes, in the same
	// transaction, with any change to components, their versions,
	// policies, trusted keys or owners. Two reads that return the same
	// number saw the same catalog.
	CatalogGeneration(ctx context.Context) (uint64, error)
}

// DeviceSeenTx is implemented by the Tx of stores that can record a
// session on an unchanged device with one narrow UPDATE (both SQL stores;
// optional: without it the engine re-reads and rewrites the whole row).
// A steady round changes nothing but last_seen, and it runs inside the
// write transaction every round takes (SQLite: the single writer), so the
// full read-modify-write there costs every round's throughput.
type DeviceSeenTx interface {
	// TouchDevice sets last_seen of d.KID to d.LastSeen if the stored row
	// has d's alg, numbering, status, last_error and last_error_code and a
	// non-empty attestation status (what a rewrite would store), and
	// reports whether it did; false (nil error) leaves the row as it was.
	TouchDevice(ctx context.Context, d Device) (bool, error)
}

// DeviceSessionTx is implemented by the Tx of stores that write what a
// session changes on a device row with one UPDATE, without reading the
// row first (both SQL stores; optional: without it the engine reads the
// row and rewrites all of it, which ends the same). The rows are written
// twice per install (the QueryResponse that sends the Update, then the
// Success), each time as part of a transaction the install waits for.
type DeviceSessionTx interface {
	// RecordSession sets last_seen, status and last_error of d.KID to
	// d's, and last_error_code to d's unless d.Status is StatusFailed (a
	// failed device keeps its stored code), if the stored row has d's alg
	// and numbering and a non-empty attestation status; it reports
	// whether it did. False (nil error) leaves the row as it was.
	RecordSession(ctx context.Context, d Device) (bool, error)
	// RecordSuccess records a Success of the device kid at seen: its
	// last_seen, and, when its status is pending or retry, status ok and
	// last_error_code 0. ErrNotFound for an unknown device.
	RecordSuccess(ctx context.Context, kid []byte, seen time.Time) error
}

// Tx is the set of operations inside one transaction: the union of one
// small interface per aggregate, so a new store is written (and tested, with
// storetest) one aggregate at a time, and engine code that touches one
// aggregate can ask for only that. Conventions shared by every method:
// lists are returned in a stable order (documented per method); methods
// that look one item up return ErrNotFound when it does not exist; per-device
// writes for a device that does not exist return ErrNotFound too; times keep
// at least microsecond precision; sequence numbers above math.MaxInt64 are
// rejected (SQL BIGINT); writes inside View fail with ErrStoreReadOnly.
type Tx interface {
	ComponentTx
	PolicyTx
	TrustedKeyTx
	DeviceTx
	InstalledTx
	FailureTx
	ReportTx
	SessionTx
	PersonalizationTx
	TenantTx
	APITokenTx
	AuditTx
	OwnerTx
}

// ComponentTx keeps Trusted Components: their signed SUIT envelopes, one per
// (component, sequence number).
type ComponentTx interface {
	// AddComponentVersion stores a new version with its envelope. It fails
	// with ErrSequence unless v.Sequence is greater than every stored
	// version of the component.
	AddComponentVersion(ctx context.Context, v ComponentVersion, envelope []byte) error
	Component(ctx context.Context, id suit.ComponentID) (Component, error)
	Components(ctx context.Context) ([]Component, error)                                    // by id
	ComponentVersions(ctx context.Context, id suit.ComponentID) ([]ComponentVersion, error) // ascending sequence; ErrNotFound if no such component
	ComponentVersion(ctx context.Context, id suit.ComponentID, seq uint64) (ComponentVersion, error)
	AllVersions(ctx context.Context) ([]ComponentVersion, error) // every version of every component, by id then sequence
	Envelope(ctx context.Context, id suit.ComponentID, seq uint64) ([]byte, error)
	// DeleteComponent removes every version and the policies naming it.
	DeleteComponent(ctx context.Context, id suit.ComponentID) error
}

// PolicyTx keeps the policies saying which devices get which components.
type PolicyTx interface {
	// PutPolicy inserts p, or changes the mode of the policy with the same
	// component, scope and value; it returns the stored policy with its ID.
	PutPolicy(ctx context.Context, p Policy) (Policy, error)
	DeletePolicies(ctx context.Context, f PolicyFilter) (int, error)
	Policies(ctx context.Context) ([]Policy, error) // by ID
}

// TrustedKeyTx keeps the keys the TAM trusts, per role.
type TrustedKeyTx interface {
	PutTrustedKey(ctx context.Context, k TrustedKey) error // insert or replace (role, kid)
	DeleteTrustedKey(ctx context.Context, role KeyRole, kid []byte) error
	TrustedKeys(ctx context.Context, role KeyRole) ([]TrustedKey, error) // by kid
}

// DeviceTx keeps the devices (TEEP Agents) the TAM knows, by Agent key id.
type DeviceTx interface {
	PutDevice(ctx context.Context, d Device) error // insert or replace by kid
	Device(ctx context.Context, kid []byte) (Device, error)
	Devices(ctx context.Context) ([]Device, error) // by kid
	// DeleteDevice removes the device and everything kept about it (the
	// rows of InstalledTx, FailureTx, ReportTx, SessionTx and
	// PersonalizationTx for that device).
	DeleteDevice(ctx context.Context, kid []byte) error
}

// InstalledTx keeps what the TAM believes is installed on each device.
type InstalledTx interface {
	Installed(ctx context.Context, kid []byte) ([]Installed, error) // by component id
	PutInstalled(ctx context.Context, kid []byte, in Installed) error
	DeleteInstalled(ctx context.Context, kid []byte, id suit.ComponentID) error
}

// FailureTx keeps the installs a device reported as failed.
type FailureTx interface {
	PutFailure(ctx context.Context, f InstallFailure) error // insert or replace (device, component, sequence)
	Failures(ctx context.Context, kid []byte) ([]InstallFailure, error)
	ClearFailures(ctx context.Context, kid []byte) error
}

// ReportTx keeps a bounded history of each device's sessions.
type ReportTx interface {
	// AddReport appends r and keeps only the newest keep reports of that
	// device (keep <= 0 keeps all). It returns the new report's ID.
	AddReport(ctx context.Context, r Report, keep int) (int64, error)
	Reports(ctx context.Context, kid []byte, limit int) ([]Report, error) // newest first
}

// SessionTx keeps protocol session state: outstanding Updates waiting for
// their Success/Error, and consumed QueryRequest tokens.
type SessionTx interface {
	// PutPending stores an outstanding Update. When the device then has more
	// than maxPerDevice outstanding Updates, the oldest are dropped.
	PutPending(ctx context.Context, p PendingUpdate, maxPerDevice int) error
	Pending(ctx context.Context, token []byte) (PendingUpdate, error)
	// DeletePending consumes an outstanding Update; ErrNotFound if it is
	// gone (answered, expired, or never existed).
	DeletePending(ctx context.Context, token []byte) error
	PendingFor(ctx context.Context, kid []byte) ([]PendingUpdate, error) // oldest first
	// UseToken marks a QueryRequest token consumed until expires;
	// ErrTokenUsed if it already is.
	UseToken(ctx context.Context, token []byte, expires time.Time) error
	// PurgeExpired drops pending Updates and used tokens that expired at or
	// before now, returning how many rows went.
	PurgeExpired(ctx context.Context, now time.Time) (int, error)
}

// PersonalizationTx keeps per-device personalization data, by tenant and
// name: each tenant has its own names on a device. An empty Tenant is
// stored and returned as DefaultTenant.
type PersonalizationTx interface {
	PutPersonalization(ctx context.Context, p Personalization) error // insert or replace (device, tenant, name)
	Personalization(ctx context.Context, kid []byte, tenant, name string) (Personalization, error)
	Personalizations(ctx context.Context, kid []byte) ([]Personalization, error) // every tenant's, by tenant then name
	DeletePersonalization(ctx context.Context, kid []byte, tenant, name string) error
}
