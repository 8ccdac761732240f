package agent

import (
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"

	"github.com/fxamacker/cbor/v2"
	"github.com/teep-go/teep/cosekey"
	"github.com/teep-go/teep/internal/tee"
	"github.com/teep-go/teep/suit"
)

// The Agent keeps its state in the TEE's sealed storage under these names,
// so trust anchors and pending requests are as tamper-evident as the
// components themselves.
const (
	objTrustPrefix = "agent/trust/"
	objRequested   = "agent/requested"
	objUnneeded    = "agent/unneeded"
)

// Limits of the Agent's bookkeeping.
const (
	// MaxRequested bounds the requested-tc-list and unneeded lists.
	MaxRequested = 256
	// MaxTrustedKeys bounds each trust-anchor list.
	MaxTrustedKeys = 64
)

// Role says what a trust anchor is trusted for.
type Role string

// Trust-anchor roles.
const (
	// RoleTAM keys authenticate TAMs (their TEEP messages).
	RoleTAM Role = "tam"
	// RoleSigner keys authenticate Trusted Component signers (SUIT
	// manifests).
	RoleSigner Role = "signer"
)

func trustPrefix(r Role) string { return objTrustPrefix + string(r) + "/" }

// AddTrustAnchor stores a public key trusted for role in the TEE. Adding a
// key that is already there is not an error.
func AddTrustAnchor(st tee.Storage, r Role, k *cosekey.Key) error {
	if r != RoleTAM && r != RoleSigner {
		return fmt.Errorf("agent: unknown trust role %q", r)
	}
	enc, err := k.PublicKey().MarshalCOSEKey(false)
	if err != nil {
		return err
	}
	name := trustPrefix(r) + hex.EncodeToString(k.KID())
	return tee.Update(context.Background(), st, func(tx tee.Tx) error {
		if len(tx.List(trustPrefix(r))) >= MaxTrustedKeys {
			if _, err := tx.Get(name); err != nil {
				return fmt.Errorf("agent: already %d %s keys, the limit", MaxTrustedKeys, r)
			}
		}
		return tx.Put(name, enc)
	})
}

// RemoveTrustAnchor deletes the key with the given kid from role.
func RemoveTrustAnchor(st tee.Storage, r Role, kid []byte) error {
	return tee.Update(context.Background(), st, func(tx tee.Tx) error {
		return tx.Delete(trustPrefix(r) + hex.EncodeToString(kid))
	})
}

// TrustAnchors returns the keys trusted for role. A stored key that fails
// to decode is tampering and fails the call (it is never skipped).
func TrustAnchors(st tee.Storage, r Role) ([]*cosekey.Key, error) {
	return readAnchors(st, trustPrefix(r))
}

func readAnchors(st tee.Storage, prefix string) ([]*cosekey.Key, error) {
	var keys []*cosekey.Key
	for _, name := range st.List(prefix) {
		data, err := st.Get(name)
		if err != nil {
			return nil, err
		}
		k, err := cosekey.ParseCOSEKey(data)
		if err != nil {
			return nil, fmt.Errorf("%w: trust anchor %s: %v", tee.ErrTampered, name, err)
		}
		if want := strings.TrimPrefix(name, prefix); hex.EncodeToString(k.KID()) != want {
			return nil, fmt.Errorf("%w: trust anchor %s holds key %x", tee.ErrTampered, name, k.KID())
		}
		keys = append(keys, k)
	}
	return keys, nil
}

// pending is one entry of the requested or unneeded list.
type pending struct {
	ID  [][]byte `cbor:"1,keyasint"`
	TAM string   `cbor:"2,keyasint,omitempty"`
	// MinSeq is the lowest acceptable manifest sequence number for a
	// requested component (requested-tc-info tc-manifest-sequence-number).
	MinSeq *uint64 `cbor:"3,keyasint,omitempty"`
}

var (
	stateEnc cbor.EncMode
	stateDec cbor.DecMode
)

func init() {
	var err error
	if stateEnc, err = cbor.CoreDetEncOptions().EncMode(); err != nil {
		panic(err)
	}
	stateDec, err = cbor.DecOptions{
		DupMapKey:         cbor.DupMapKeyEnforcedAPF,
		IndefLength:       cbor.IndefLengthForbidden,
		MaxNestedLevels:   6,
		MaxArrayElements:  MaxRequested * 16,
		ExtraReturnErrors: cbor.ExtraDecErrorUnknownField,
	}.DecMode()
	if err != nil {
		panic(err)
	}
}

func loadPending(g interface{ Get(string) ([]byte, error) }, name string) ([]pending, error) {
	data, err := g.Get(name)
	if errors.Is(err, tee.ErrNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var list []pending
	if err := stateDec.Unmarshal(data, &list); err != nil {
		return nil, fmt.Errorf("%w: %s: %v", tee.ErrTampered, name, err)
	}
	return list, nil
}

func savePending(tx tee.Tx, name string, list []pending) error {
	if len(list) == 0 {
		if _, err := tx.Get(name); err == nil {
			return tx.Delete(name)
		}
		return nil
	}
	if len(list) > MaxRequested {
		return fmt.Errorf("agent: more than %d pending entries", MaxRequested)
	}
	enc, err := stateEnc.Marshal(list)
	if err != nil {
		return err
	}
	return tx.Put(name, enc)
}

func indexOf(list []pending, id suit.ComponentID) int {
	for i, p := range list {
		if suit.ComponentID(p.ID).Equal(id) {
			return i
		}
	}
	return -1
}
