package processor

import (
	"context"
	"errors"
	"io"

	"github.com/teep-go/teep/suit"
)

// ErrNotFound is returned by stores for a component or manifest that does
// not exist (wrap it; the processor tests with errors.Is).
var ErrNotFound = errors.New("processor: not found")

// ErrTxnActive may be returned by Begin when another transaction is open.
var ErrTxnActive = errors.New("processor: a store transaction is already open")

// ComponentInfo describes an installed component.
type ComponentInfo struct {
	ID   suit.ComponentID
	Size int64
}

// ManifestRecord is what the processor persists per installed manifest,
// keyed by its manifest-component-id (draft-ietf-suit-trust-domains §5.1).
// Reference counts follow from the records: a component is referenced by
// every record that lists it in Components; a manifest is referenced by
// Root (installed on request, e.g. TEEP manifest-list) and by every manifest
// in Dependents. Nothing is deleted while it is referenced.
type ManifestRecord struct {
	ID             suit.ComponentID
	SequenceNumber uint64      // rollback protection: never accept a lower one
	Digest         suit.Digest // manifest digest (auth-wrapper digest)
	Envelope       []byte      // the authenticated envelope, integrated payloads dropped
	Root           bool
	Dependents     []suit.ComponentID // manifests that depend on this one
	Dependencies   []suit.ComponentID // manifests this one depends on
	Components     []suit.ComponentID // components this manifest links
}

// Clone returns a deep copy.
func (r *ManifestRecord) Clone() *ManifestRecord {
	if r == nil {
		return nil
	}
	c := *r
	c.ID = r.ID.Clone()
	c.Digest = suit.Digest{Alg: r.Digest.Alg, Bytes: append([]byte(nil), r.Digest.Bytes...)}
	c.Envelope = append([]byte(nil), r.Envelope...)
	c.Dependents = cloneIDs(r.Dependents)
	c.Dependencies = cloneIDs(r.Dependencies)
	c.Components = cloneIDs(r.Components)
	return &c
}

func cloneIDs(ids []suit.ComponentID) []suit.ComponentID {
	if ids == nil {
		return nil
	}
	out := make([]suit.ComponentID, len(ids))
	for i, id := range ids {
		out[i] = id.Clone()
	}
	return out
}

// ComponentStore is where installed components and manifest records live.
// The processor is its only writer and holds at most one transaction at a
// time per store.
//
// Contract (the storetest package checks it):
//
//   - Reads outside a transaction see only committed state.
//   - Every change happens inside a Txn. Nothing a Txn does is visible
//     outside it before Commit returns nil. Commit applies every staged
//     component write, removal, manifest put and manifest delete of the Txn
//     as one atomic step: after a crash at any point, reopening the store
//     shows either the complete old state or the complete new state, never
//     a mix and never a partial component (use a journal or an atomic rename
//     of a generation, and recover on open).
//   - Abort (or a failed Commit) leaves the committed state exactly as it
//     was and releases everything staged. Abort after Commit, or twice, is
//     a no-op.
//   - Inside a Txn, Txn.Open sees the Txn's own staged writes and removals
//     (read-your-writes), so a component fetched in one command can be
//     copied or checked by the next.
//   - Staged content is written as it streams (a 1 GiB component must not
//     be held in memory); it counts as staged when its writer's Close
//     returns nil. A second Create for the same id replaces the staged
//     content. Closing is the processor's job; an unclosed writer is
//     discarded by Abort or Commit.
//   - Missing components and manifests yield an error wrapping ErrNotFound.
//   - Manifest records round-trip exactly (all fields, slices in order).
type ComponentStore interface {
	// Open reads an installed component.
	Open(ctx context.Context, id suit.ComponentID) (io.ReadCloser, int64, error)
	// Components lists installed components.
	Components(ctx context.Context) ([]ComponentInfo, error)
	// Manifest returns the record for a manifest-component-id.
	Manifest(ctx context.Context, id suit.ComponentID) (*ManifestRecord, error)
	// Manifests lists every manifest record.
	Manifests(ctx context.Context) ([]*ManifestRecord, error)
	// Begin starts a transaction.
	Begin(ctx context.Context) (Txn, error)
}

// Txn is one atomic set of changes to a ComponentStore.
type Txn interface {
	// Open reads a component as this transaction sees it.
	Open(ctx context.Context, id suit.ComponentID) (io.ReadCloser, int64, error)
	// Create stages new content for id; it replaces the component on Commit.
	Create(ctx context.Context, id suit.ComponentID) (io.WriteCloser, error)
	// Remove stages the removal of id (ErrNotFound if it does not exist in
	// this transaction's view).
	Remove(ctx context.Context, id suit.ComponentID) error
	// PutManifest stages a manifest record (insert or replace by ID).
	PutManifest(ctx context.Context, rec *ManifestRecord) error
	// DeleteManifest stages the removal of a manifest record.
	DeleteManifest(ctx context.Context, id suit.ComponentID) error
	// Commit applies everything atomically.
	Commit(ctx context.Context) error
	// Abort discards everything staged.
	Abort() error
}

// SequenceKeeper is an optional ComponentStore extension: a store that
// remembers the highest sequence number ever committed for each
// manifest-component-id, also after its record is deleted, implements it so
// an uninstalled Trusted Component cannot come back at an older version.
// The processor rejects a manifest whose sequence number is lower. (The
// value must only grow, and only with a committed PutManifest.)
type SequenceKeeper interface {
	HighestSequence(id suit.ComponentID) uint64
}

// Fetcher retrieves payloads and dependency envelopes by URI. It streams:
// the processor reads, decrypts, hashes and stages as bytes arrive. size is
// the announced length, or -1 when unknown; the processor enforces its own
// limits either way.
type Fetcher interface {
	Fetch(ctx context.Context, uri string) (r io.ReadCloser, size int64, err error)
}

// Invoker starts a component (suit-directive-invoke). A TEE that cannot run
// components leaves Config.Invoker nil and invoke fails with
// command-unsupported.
type Invoker interface {
	Invoke(ctx context.Context, id suit.ComponentID, args []byte) error
}
