package tee

import (
	"context"
	"crypto"
	"crypto/ecdh"
	"errors"
	"io"

	"github.com/teep-go/teep/eat"
	"github.com/teep-go/teep/suit"
)

// Errors every backend reports the same way, so callers can tell tampering
// from ordinary absence with errors.Is.
var (
	// ErrTampered: protected state failed authentication. Whatever failed is
	// never used; the error text says what and where.
	ErrTampered = errors.New("tee: sealed state tampered with")
	// ErrRollback: protected state is older than a monotonic counter says it
	// must be (a file replaced by an earlier sealed version).
	ErrRollback = errors.New("tee: sealed state rolled back")
	// ErrNotFound: no such sealed object.
	ErrNotFound = errors.New("tee: not found")
	// ErrCounterBackwards: an attempt to move a monotonic counter down.
	ErrCounterBackwards = errors.New("tee: monotonic counter cannot go backwards")
	// ErrBusy: the TEE's state is held by another process.
	ErrBusy = errors.New("tee: in use by another process")
)

// TEE is what a TEEP Agent needs from the Trusted Execution Environment it
// runs in (RFC 9397 §4, §5). Private keys never leave it: callers get
// signers and key-agreement operations, not key material.
type TEE interface {
	// Name identifies this TEE among the TEEs of one device.
	Name() string

	// AgentKey signs TEEP messages (draft-ietf-teep-protocol-26 §7).
	AgentKey() crypto.Signer
	// Decrypters are the TEE's key-agreement keys, for SUIT payloads
	// (personalization data) encrypted to it with ECDH-ES
	// (draft-ietf-suit-firmware-encryption): the Agent key when it is a
	// P-256 key, which is what a TAM encrypts to, and any provisioned
	// decryption key. Each satisfies suit.ECDHPrivateKey.
	Decrypters() []Decrypter

	// Identity is the TEE's identity: SUIT vendor/class ids and the device
	// claims that go into Evidence.
	Identity() Identity
	// Evidence returns attestation Evidence for the given freshness nonce.
	Evidence(ctx context.Context, req EvidenceRequest) (*Evidence, error)

	// Sealed storage, rollback-protected with the TEE's monotonic counter.
	// The TEE's private keys are not among its objects.
	Storage() Storage

	// Close releases the TEE (its lock, open files).
	Close() error
}

// Decrypter is a key-agreement key that never leaves the TEE.
type Decrypter interface {
	// PublicKey is the public half, for a TAM or TC Signer to encrypt to.
	PublicKey() *ecdh.PublicKey
	// ECDH returns the shared secret with peer (RFC 9053 ECDH-ES input).
	ECDH(peer *ecdh.PublicKey) ([]byte, error)
}

// Identity names a TEE for SUIT conditions and attestation claims.
type Identity struct {
	VendorID  [16]byte // SUIT vendor-id condition (RFC 9562 UUID)
	ClassID   [16]byte // SUIT class-id condition
	UEID      []byte   // RFC 9711 ueid (RAND type, 0x01 + 32 bytes)
	OEMID     []byte   // RFC 9711 oemid (16 random bytes or 3-byte OUI)
	HWModel   []byte   // RFC 9711 hwmodel
	HWVersion string   // RFC 9711 hwversion
}

// EvidenceRequest says what the Evidence must bind. The backend adds its
// own claims (device identity, its software, cnf naming the Agent key).
type EvidenceRequest struct {
	// Nonce is the eat_nonce: the QueryRequest challenge (background-check
	// model) or its token (passport model); nil for timestamp freshness.
	Nonce []byte
	// Timestamp adds iat (FRESHNESS_TIMESTAMP).
	Timestamp bool
	// Manifests are SUIT references of the installed Trusted Components.
	Manifests []eat.Manifest
}

// Evidence is an attestation payload and its media type.
type Evidence struct {
	Format  string // attestation-payload-format; "" means the TEEP EAT profile
	Payload []byte
}

// Storage is sealed, rollback-protected storage with atomic multi-object
// transactions. Objects are named by slash-separated strings and stream, so
// a component of any size never has to fit in memory.
type Storage interface {
	// Get returns a small sealed object's plaintext (ErrNotFound,
	// ErrTampered); Open streams one of any size.
	Get(name string) ([]byte, error)
	// Open streams an object, authenticating it as it is read; it reports
	// its plaintext size.
	Open(name string) (io.ReadCloser, int64, error)
	// List returns the names under prefix, sorted.
	List(prefix string) []string
	// Counter reads a named monotonic counter (0 if never set).
	Counter(name string) uint64
	// Begin starts a transaction, waiting while another one is open (or
	// until ctx ends). Its writes become visible together at Commit, or
	// not at all, even across a crash.
	//
	// Begin/Commit/Abort is the only transaction style a backend
	// implements. It is what TEE storage offers natively (a transaction
	// handle kept across calls into a Trusted Application or an enclave,
	// committed by one final operation), and it is what the SUIT
	// processor needs: its transaction stays open across many streamed
	// writes driven from outside. The closure form callers prefer is the
	// function Update in this package, built on Begin, so backends do not
	// implement it twice.
	Begin(ctx context.Context) (Txn, error)
}

// Update runs fn in a transaction of st: if fn returns an error the
// transaction is aborted and nothing it wrote is kept; otherwise it is
// committed and Update returns Commit's error. A panicking fn aborts too,
// so the next Begin does not wait forever.
func Update(ctx context.Context, st Storage, fn func(Tx) error) error {
	t, err := st.Begin(ctx)
	if err != nil {
		return err
	}
	defer t.Abort() // no-op after Commit
	if err := fn(t); err != nil {
		return err
	}
	return t.Commit()
}

// Tx is one storage transaction; it reads its own writes.
type Tx interface {
	Get(name string) ([]byte, error)
	Open(name string) (io.ReadCloser, int64, error)
	List(prefix string) []string
	Put(name string, data []byte) error
	// Create stages an object written as a stream; it counts when the
	// writer's Close returns nil. A writer never closed is discarded.
	Create(name string) (io.WriteCloser, error)
	Delete(name string) error
	Counter(name string) uint64
	// SetCounter raises a monotonic counter; lower values fail with
	// ErrCounterBackwards.
	SetCounter(name string, v uint64) error
}

// Txn is a transaction started with Begin.
type Txn interface {
	Tx
	// Commit makes every write visible at once. After an error nothing is.
	Commit() error
	// Abort discards the transaction; after Commit, or twice, it does
	// nothing.
	Abort() error
}

// ErrNotRunnable: the component is installed but is not something this
// TEE can run (docs/trusted-apps.md says what is).
var ErrNotRunnable = errors.New("tee: component is not runnable")

// Runner is implemented by a TEE that runs Trusted Applications (RFC 9397
// §2). It is optional: a TEE that only stores components does not have
// it, and a hardware backend runs TAs its own way behind the same call.
type Runner interface {
	// Invoke runs the installed component id once with input and returns
	// its output. An unknown or removed component fails with ErrNotFound,
	// one that cannot run with ErrNotRunnable.
	Invoke(ctx context.Context, id suit.ComponentID, input []byte) ([]byte, error)
}
