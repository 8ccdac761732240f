package tee

import (
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/fxamacker/cbor/v2"

	"github.com/teep-go/teep/suit"
	"github.com/teep-go/teep/suit/processor"
)

// Object names of the component store inside a TEE's Storage.
const (
	componentPrefix = "suit/component/"
	manifestPrefix  = "suit/manifest/"
	// seqCounterPrefix names the monotonic counter holding the highest
	// sequence number ever installed for a manifest-component-id.
	seqCounterPrefix = "suit/seq/"
)

// ComponentStore is the SUIT processor's component store
// (processor.ComponentStore) on top of a TEE's sealed Storage: components
// and manifest records are sealed objects, and a processor transaction is
// a Storage transaction, so an install is atomic across crashes.
//
// It adds rollback protection that outlives the manifest record: the
// highest sequence number ever installed for each manifest-component-id is
// kept in a monotonic counter, so uninstalling a Trusted Component and then
// offering an older signed version of it is refused (ErrRollback) just like
// a direct downgrade (draft-ietf-teep-protocol-26 §10: "downgrade is stopped
// by suit-manifest-sequence-number").
type ComponentStore struct {
	st Storage
}

var _ processor.ComponentStore = (*ComponentStore)(nil)

// NewComponentStore returns the component store kept in st.
func NewComponentStore(st Storage) *ComponentStore { return &ComponentStore{st: st} }

// ComponentObject is the Storage object holding component id's image, for
// a backend that keeps per-component state next to it.
func ComponentObject(id suit.ComponentID) string { return idName(componentPrefix, id) }

// ComponentPrefix is the common prefix of every ComponentObject name.
const ComponentPrefix = componentPrefix

func idName(prefix string, id suit.ComponentID) string {
	return prefix + hex.EncodeToString(id.Marshal())
}

func idFromName(prefix, name string) (suit.ComponentID, error) {
	b, err := hex.DecodeString(strings.TrimPrefix(name, prefix))
	if err != nil {
		return nil, err
	}
	return suit.DecodeComponentID(b)
}

func notFound(what string, id suit.ComponentID, err error) error {
	if errors.Is(err, ErrNotFound) {
		return fmt.Errorf("%w: %s %s", processor.ErrNotFound, what, id)
	}
	return err
}

// Open implements processor.ComponentStore.
func (c *ComponentStore) Open(_ context.Context, id suit.ComponentID) (io.ReadCloser, int64, error) {
	r, n, err := c.st.Open(idName(componentPrefix, id))
	if err != nil {
		return nil, 0, notFound("component", id, err)
	}
	return r, n, nil
}

// Components implements processor.ComponentStore.
func (c *ComponentStore) Components(_ context.Context) ([]processor.ComponentInfo, error) {
	var out []processor.ComponentInfo
	for _, name := range c.st.List(componentPrefix) {
		id, err := idFromName(componentPrefix, name)
		if err != nil {
			return nil, fmt.Errorf("%w: component name %s: %v", ErrTampered, name, err)
		}
		r, n, err := c.st.Open(name)
		if err != nil {
			return nil, err
		}
		r.Close()
		out = append(out, processor.ComponentInfo{ID: id, Size: n})
	}
	return out, nil
}

// manifestRecord is the sealed form of processor.ManifestRecord. Slices are
// not omitempty: nil and empty round-trip as null and [].
type manifestRecord struct {
	ID             suit.ComponentID   `cbor:"1,keyasint"`
	SequenceNumber uint64             `cbor:"2,keyasint"`
	DigestAlg      int64              `cbor:"3,keyasint"`
	Digest         []byte             `cbor:"4,keyasint"`
	Envelope       []byte             `cbor:"5,keyasint"`
	Root           bool               `cbor:"6,keyasint"`
	Dependents     []suit.ComponentID `cbor:"7,keyasint"`
	Dependencies   []suit.ComponentID `cbor:"8,keyasint"`
	Components     []suit.ComponentID `cbor:"9,keyasint"`
}

var (
	recEnc cbor.EncMode
	recDec cbor.DecMode
)

func init() {
	var err error
	if recEnc, err = cbor.CoreDetEncOptions().EncMode(); err != nil {
		panic(err)
	}
	recDec, err = cbor.DecOptions{
		DupMapKey:         cbor.DupMapKeyEnforcedAPF,
		IndefLength:       cbor.IndefLengthForbidden,
		MaxNestedLevels:   8,
		ExtraReturnErrors: cbor.ExtraDecErrorUnknownField,
	}.DecMode()
	if err != nil {
		panic(err)
	}
}

func encodeRecord(r *processor.ManifestRecord) ([]byte, error) {
	return recEnc.Marshal(manifestRecord{
		ID: r.ID, SequenceNumber: r.SequenceNumber, DigestAlg: r.Digest.Alg, Digest: r.Digest.Bytes,
		Envelope: r.Envelope, Root: r.Root, Dependents: r.Dependents, Dependencies: r.Dependencies, Components: r.Components,
	})
}

func decodeRecord(name string, data []byte) (*processor.ManifestRecord, error) {
	var m manifestRecord
	if err := recDec.Unmarshal(data, &m); err != nil {
		return nil, fmt.Errorf("%w: manifest record %s: %v", ErrTampered, name, err)
	}
	return &processor.ManifestRecord{
		ID: m.ID, SequenceNumber: m.SequenceNumber, Digest: suit.Digest{Alg: m.DigestAlg, Bytes: m.Digest},
		Envelope: m.Envelope, Root: m.Root, Dependents: m.Dependents, Dependencies: m.Dependencies, Components: m.Components,
	}, nil
}

// Manifest implements processor.ComponentStore.
func (c *ComponentStore) Manifest(_ context.Context, id suit.ComponentID) (*processor.ManifestRecord, error) {
	name := idName(manifestPrefix, id)
	data, err := c.st.Get(name)
	if err != nil {
		return nil, notFound("manifest", id, err)
	}
	return decodeRecord(name, data)
}

// Manifests implements processor.ComponentStore.
func (c *ComponentStore) Manifests(_ context.Context) ([]*processor.ManifestRecord, error) {
	var out []*processor.ManifestRecord
	for _, name := range c.st.List(manifestPrefix) {
		data, err := c.st.Get(name)
		if err != nil {
			return nil, err
		}
		r, err := decodeRecord(name, data)
		if err != nil {
			return nil, err
		}
		out = append(out, r)
	}
	return out, nil
}

// HighestSequence is the highest sequence number ever installed for the
// manifest-component-id (0 if none).
func (c *ComponentStore) HighestSequence(id suit.ComponentID) uint64 {
	return c.st.Counter(idName(seqCounterPrefix, id))
}

// Begin implements processor.ComponentStore.
func (c *ComponentStore) Begin(ctx context.Context) (processor.Txn, error) {
	t, err := c.st.Begin(ctx)
	if err != nil {
		return nil, err
	}
	return &componentTxn{t: t}, nil
}

type componentTxn struct{ t Txn }

func (x *componentTxn) Open(_ context.Context, id suit.ComponentID) (io.ReadCloser, int64, error) {
	r, n, err := x.t.Open(idName(componentPrefix, id))
	if err != nil {
		return nil, 0, notFound("component", id, err)
	}
	return r, n, nil
}

func (x *componentTxn) Create(_ context.Context, id suit.ComponentID) (io.WriteCloser, error) {
	return x.t.Create(idName(componentPrefix, id))
}

func (x *componentTxn) Remove(_ context.Context, id suit.ComponentID) error {
	return notFound("component", id, x.t.Delete(idName(componentPrefix, id)))
}

func (x *componentTxn) PutManifest(_ context.Context, r *processor.ManifestRecord) error {
	if r == nil || len(r.ID) == 0 {
		return errors.New("tee: manifest record without an id")
	}
	counter := idName(seqCounterPrefix, r.ID)
	if hi := x.t.Counter(counter); r.SequenceNumber < hi {
		return fmt.Errorf("%w: manifest %s sequence number %d is lower than %d, installed before",
			ErrRollback, r.ID, r.SequenceNumber, hi)
	}
	enc, err := encodeRecord(r)
	if err != nil {
		return err
	}
	if err := x.t.Put(idName(manifestPrefix, r.ID), enc); err != nil {
		return err
	}
	return x.t.SetCounter(counter, r.SequenceNumber)
}

func (x *componentTxn) DeleteManifest(_ context.Context, id suit.ComponentID) error {
	return notFound("manifest", id, x.t.Delete(idName(manifestPrefix, id)))
}

func (x *componentTxn) Commit(context.Context) error { return x.t.Commit() }

func (x *componentTxn) Abort() error { return x.t.Abort() }
