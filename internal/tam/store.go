package tam

import (
	"context"
	"errors"
	"time"
)

// Store errors. Implementations return them (possibly wrapped) so the engine
// and the admin API can tell the cases apart.
var (
	ErrNotFound      = errors.New("tam: not found")
	ErrExists        = errors.New("tam: already exists")
	ErrSequence      = errors.New("tam: sequence number does not increase")
	ErrTokenUsed     = errors.New("tam: token already used")
	ErrStoreReadOnly = errors.New("tam: write in a read-only transaction")
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

// Tx is the set of operations inside one transaction. Lists are returned in
// a stable order (documented per method). Methods that look one item up
// return ErrNotFound when it does not exist; per-device writes for a device
// that does not exist return ErrNotFound too. Times keep at least microsecond
// precision; sequence numbers above math.MaxInt64 are rejected (SQL BIGINT).
// Writes inside View fail with ErrStoreReadOnly.
type Tx interface {
	// AddComponentVersion stores a new version with its envelope. It fails
	// with ErrSequence unless v.Sequence is greater than every stored
	// version of the component.
	AddComponentVersion(ctx context.Context, v ComponentVersion, envelope []byte) error
	Component(ctx context.Context, id ComponentID) (Component, error)
	Components(ctx context.Context) ([]Component, error)                               // by id
	ComponentVersions(ctx context.Context, id ComponentID) ([]ComponentVersion, error) // ascending sequence; ErrNotFound if no such component
	ComponentVersion(ctx context.Context, id ComponentID, seq uint64) (ComponentVersion, error)
	AllVersions(ctx context.Context) ([]ComponentVersion, error) // every version of every component, by id then sequence
	Envelope(ctx context.Context, id ComponentID, seq uint64) ([]byte, error)
	// DeleteComponent removes every version and the policies naming it.
	DeleteComponent(ctx context.Context, id ComponentID) error

	// PutPolicy inserts p, or changes the mode of the policy with the same
	// component, scope and value; it returns the stored policy with its ID.
	PutPolicy(ctx context.Context, p Policy) (Policy, error)
	DeletePolicies(ctx context.Context, f PolicyFilter) (int, error)
	Policies(ctx context.Context) ([]Policy, error) // by ID

	PutTrustedKey(ctx context.Context, k TrustedKey) error // insert or replace (role, kid)
	DeleteTrustedKey(ctx context.Context, role KeyRole, kid []byte) error
	TrustedKeys(ctx context.Context, role KeyRole) ([]TrustedKey, error) // by kid

	PutDevice(ctx context.Context, d Device) error // insert or replace by kid
	Device(ctx context.Context, kid []byte) (Device, error)
	Devices(ctx context.Context) ([]Device, error) // by kid
	// DeleteDevice removes the device and everything kept about it.
	DeleteDevice(ctx context.Context, kid []byte) error

	Installed(ctx context.Context, kid []byte) ([]Installed, error) // by component id
	PutInstalled(ctx context.Context, kid []byte, in Installed) error
	DeleteInstalled(ctx context.Context, kid []byte, id ComponentID) error

	PutFailure(ctx context.Context, f InstallFailure) error // insert or replace (device, component, sequence)
	Failures(ctx context.Context, kid []byte) ([]InstallFailure, error)
	ClearFailures(ctx context.Context, kid []byte) error

	// AddReport appends r and keeps only the newest keep reports of that
	// device (keep <= 0 keeps all). It returns the new report's ID.
	AddReport(ctx context.Context, r Report, keep int) (int64, error)
	Reports(ctx context.Context, kid []byte, limit int) ([]Report, error) // newest first

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

	PutPersonalization(ctx context.Context, p Personalization) error // insert or replace (device, name)
	Personalization(ctx context.Context, kid []byte, name string) (Personalization, error)
	Personalizations(ctx context.Context, kid []byte) ([]Personalization, error) // by name
	DeletePersonalization(ctx context.Context, kid []byte, name string) error
}
