package agent

import (
	"bytes"
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"regexp"
	"slices"
	"strings"

	"github.com/teep-go/teep/cosekey"
	"github.com/teep-go/teep/internal/tee"
	"github.com/teep-go/teep/suit"
)

// A trust scope ties the keys of one TAM to the Trusted Component signers
// that TAM is trusted for (RFC 9397 §4.2 lets a device trust several TAMs;
// each must be confined to its own components). A message verified by a
// scope's TAM key may install only manifests signed by that scope's
// signers, and may update or remove only components that scope installed.
// The unscoped anchors (AddTrustAnchor) are the single-TAM set-up: their
// TAM keys use their signers and may manage every unowned component.
//
// Scoped anchors are sealed under agent/scope/NAME/ROLE/KID; the owner of
// each installed manifest under agent/owner/HEX(manifest id).
const (
	objScopePrefix = "agent/scope/"
	objOwnerPrefix = "agent/owner/"
)

// MaxScopes bounds the number of trust scopes (TAMs) a TEE holds.
const MaxScopes = 16

// ValidScope is the form of a scope name: it is also a TAM's name in the
// device configuration.
var ValidScope = regexp.MustCompile(`^[a-z0-9][a-z0-9._-]{0,62}$`)

// ErrOtherTAM: a TAM tried to install, update or remove a component that
// another TAM installed.
var ErrOtherTAM = errors.New("agent: component of another TAM")

func scopePrefix(scope string, r Role) string { return objScopePrefix + scope + "/" + string(r) + "/" }

func checkScope(scope string, r Role) error {
	if !ValidScope.MatchString(scope) {
		return fmt.Errorf("agent: scope name %q: want lower-case letters, digits, '.', '_' or '-' (up to 63)", scope)
	}
	if r != RoleTAM && r != RoleSigner {
		return fmt.Errorf("agent: unknown trust role %q", r)
	}
	return nil
}

// AddScopedTrustAnchor stores a public key trusted for role within scope.
// A TAM key may belong to one scope only: it is what tells the Agent which
// TAM a message comes from.
func AddScopedTrustAnchor(st tee.Storage, scope string, r Role, k *cosekey.Key) error {
	if err := checkScope(scope, r); err != nil {
		return err
	}
	enc, err := k.PublicKey().MarshalCOSEKey(false)
	if err != nil {
		return err
	}
	kid := hex.EncodeToString(k.KID())
	name := scopePrefix(scope, r) + kid
	return tee.Update(context.Background(), st, func(tx tee.Tx) error {
		scopes := scopeNames(tx.List(objScopePrefix))
		if !slices.Contains(scopes, scope) && len(scopes) >= MaxScopes {
			return fmt.Errorf("agent: already %d trust scopes, the limit", MaxScopes)
		}
		if r == RoleTAM {
			for _, other := range scopes {
				if _, err := tx.Get(scopePrefix(other, RoleTAM) + kid); other != scope && err == nil {
					return fmt.Errorf("agent: TAM key %s is already trusted for TAM %s", kid, other)
				}
			}
		}
		if len(tx.List(scopePrefix(scope, r))) >= MaxTrustedKeys {
			if _, err := tx.Get(name); err != nil {
				return fmt.Errorf("agent: already %d %s keys for TAM %s, the limit", MaxTrustedKeys, r, scope)
			}
		}
		return tx.Put(name, enc)
	})
}

// ScopedTrustAnchors returns the keys trusted for role within scope.
func ScopedTrustAnchors(st tee.Storage, scope string, r Role) ([]*cosekey.Key, error) {
	if err := checkScope(scope, r); err != nil {
		return nil, err
	}
	return readAnchors(st, scopePrefix(scope, r))
}

// Scopes lists the trust scopes a TEE holds, sorted.
func Scopes(st tee.Storage) []string { return scopeNames(st.List(objScopePrefix)) }

func scopeNames(objects []string) []string {
	var out []string
	for _, n := range objects {
		s, _, _ := strings.Cut(strings.TrimPrefix(n, objScopePrefix), "/")
		if ValidScope.MatchString(s) && !slices.Contains(out, s) {
			out = append(out, s)
		}
	}
	slices.Sort(out)
	return out
}

// scopeOf finds the scope whose TAM anchors hold the verifying key: ""
// for an unscoped anchor.
func scopeOf(st tee.Storage, verified *cosekey.Key) string {
	kid := hex.EncodeToString(verified.KID())
	for _, s := range Scopes(st) {
		if _, err := st.Get(scopePrefix(s, RoleTAM) + kid); err == nil {
			return s
		}
	}
	return ""
}

// allTAMKeys are the unscoped TAM anchors and every scope's.
func allTAMKeys(st tee.Storage) ([]*cosekey.Key, error) {
	keys, err := TrustAnchors(st, RoleTAM)
	if err != nil {
		return nil, err
	}
	for _, s := range Scopes(st) {
		k, err := ScopedTrustAnchors(st, s, RoleTAM)
		if err != nil {
			return nil, err
		}
		keys = append(keys, k...)
	}
	return keys, nil
}

// signersFor are the Trusted Component signers a scope is trusted for.
func signersFor(st tee.Storage, scope string) ([]*cosekey.Key, error) {
	if scope == "" {
		return TrustAnchors(st, RoleSigner)
	}
	return ScopedTrustAnchors(st, scope, RoleSigner)
}

// owner is the sealed record of which TAM installed a manifest.
type owner struct {
	ID    [][]byte `cbor:"1,keyasint"`
	Scope string   `cbor:"2,keyasint"`
}

func ownerName(id suit.ComponentID) string {
	return objOwnerPrefix + hex.EncodeToString([]byte(id.Key()))
}

// Owner returns the TAM (scope) that installed the manifest id, "" when it
// was installed by an unscoped TAM or before scopes existed.
func Owner(st tee.Storage, id suit.ComponentID) (string, error) {
	data, err := st.Get(ownerName(id))
	if errors.Is(err, tee.ErrNotFound) {
		return "", nil
	}
	if err != nil {
		return "", err
	}
	var o owner
	if err := stateDec.Unmarshal(data, &o); err != nil || !suit.ComponentID(o.ID).Equal(id) || !ValidScope.MatchString(o.Scope) {
		return "", fmt.Errorf("%w: owner of %s", tee.ErrTampered, id)
	}
	return o.Scope, nil
}

// mayManage reports whether a TAM of scope may update or remove the
// manifest id: its own, and an unowned one only when scope is unscoped
// (a scoped TAM never takes over what it did not install).
func mayManage(st tee.Storage, scope string, id suit.ComponentID) error {
	o, err := Owner(st, id)
	if err != nil {
		return err
	}
	if o == scope {
		return nil
	}
	if o == "" {
		return fmt.Errorf("%w: not installed by TAM %s", ErrOtherTAM, scope)
	}
	return fmt.Errorf("%w: belongs to TAM %s", ErrOtherTAM, o)
}

// setOwner records (or, for scope "", clears) the owner of a manifest.
func setOwner(st tee.Storage, id suit.ComponentID, scope string) error {
	return tee.Update(context.Background(), st, func(tx tee.Tx) error {
		name := ownerName(id)
		if scope == "" {
			if _, err := tx.Get(name); err == nil {
				return tx.Delete(name)
			}
			return nil
		}
		enc, err := stateEnc.Marshal(owner{ID: id, Scope: scope})
		if err != nil {
			return err
		}
		if old, err := tx.Get(name); err == nil && bytes.Equal(old, enc) {
			return nil
		}
		return tx.Put(name, enc)
	})
}
