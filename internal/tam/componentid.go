package tam

import (
	"encoding/hex"
	"fmt"
	"strings"

	"github.com/teep-go/teep/suit"
)

// Trusted Components are named by suit.ComponentID, built, checked, parsed
// and rendered by package suit (one syntax, one set of limits). For a
// component registered from a SUIT envelope the id is the manifest's
// manifest-component-id, the id draft-ietf-teep-protocol-26 uses in
// unneeded-manifest-list.

// cidKey is a component id as a map key: its CBOR encoding (suit's Key),
// which is canonical, so equal ids have equal keys and keys sort like the
// hex the admin API shows.
type cidKey string

func keyOf(id suit.ComponentID) cidKey { return cidKey(id.Key()) }

// id decodes the key; keys are only made by keyOf, so this cannot fail.
func (k cidKey) id() suit.ComponentID {
	id, err := suit.DecodeComponentID([]byte(k))
	if err != nil {
		return nil
	}
	return id
}

// Name is the id in suit's text form, for notes and logs.
func (k cidKey) Name() string { return k.id().String() }

// checkID applies the suit limits and refuses the id without segments: a
// TEEP message may name it, but it names nothing the TAM can manage.
func checkID(id suit.ComponentID) error {
	if err := id.Check(); err != nil {
		return err
	}
	if len(id) == 0 {
		return fmt.Errorf("%w: no segments", suit.ErrComponentID)
	}
	return nil
}

// ParseComponentID reads a component id in the text form of package suit
// (suit.ParseComponentID) or, for ids this TAM showed before, the hex of its
// CBOR encoding (what the admin API lists as a component's id); the hex form
// wins when the text is both (a lone text segment of hex digits that decode
// to the canonical encoding of an id).
func ParseComponentID(s string) (suit.ComponentID, error) {
	if id, ok := hexKey(s); ok {
		return id, nil
	}
	id, err := suit.ParseComponentID(s)
	if err != nil {
		return nil, err
	}
	return id, checkID(id)
}

// hexKey reads s as the hex of the canonical encoding of a usable id.
func hexKey(s string) (suit.ComponentID, bool) {
	raw, err := hex.DecodeString(s)
	if err != nil || len(raw) == 0 {
		return nil, false
	}
	id, err := suit.DecodeComponentID(raw)
	if err != nil || checkID(id) != nil || hex.EncodeToString(id.Marshal()) != strings.ToLower(s) {
		return nil, false
	}
	return id, true
}

// IDHex is the hex of the id's CBOR encoding: how the admin API and the
// database name a component.
func IDHex(id suit.ComponentID) string { return hex.EncodeToString(id.Marshal()) }

// IDName is the id in the text form of package suit, written so that
// ParseComponentID reads it back: a lone text segment that would read as the
// hex of another id's encoding is written in hex.
func IDName(id suit.ComponentID) string {
	s := id.String()
	if other, ok := hexKey(s); ok && !other.Equal(id) {
		return "hex:" + hex.EncodeToString(id[0])
	}
	return s
}
