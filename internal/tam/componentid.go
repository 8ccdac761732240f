package tam

import (
	"encoding/hex"
	"fmt"
	"strings"

	"github.com/teep-go/teep/suit"
)

// ComponentID is the TAM's storage key for a suit.ComponentID: the lowercase
// hex of its CBOR encoding, comparable and usable in URLs and database rows.
// It is not a second kind of identifier: ids are built, checked, parsed and
// rendered by package suit (one syntax, one set of limits), and this key is
// derived from and decoded to a suit.ComponentID. For a component registered
// from a SUIT envelope it is the manifest's manifest-component-id, the id
// draft-ietf-teep-protocol-26 uses in unneeded-manifest-list.
type ComponentID string

// NewComponentID returns the key of an identifier within the suit limits.
func NewComponentID(id suit.ComponentID) (ComponentID, error) {
	if err := id.Check(); err != nil {
		return "", err
	}
	if len(id) == 0 {
		// A TEEP message may name the empty id; the TAM cannot manage it.
		return "", fmt.Errorf("%w: no segments", suit.ErrComponentID)
	}
	return ComponentID(hex.EncodeToString(id.Marshal())), nil
}

// ParseComponentID reads an identifier in the text form of package suit
// (suit.ParseComponentID) or, for compatibility with ids this TAM printed
// before, the hex of its CBOR encoding; the hex form wins when the text is
// both (a single text segment made only of hex digits that decode to a
// canonical CBOR array of byte strings).
func ParseComponentID(s string) (ComponentID, error) {
	if k, ok := hexKey(s); ok {
		return k, nil
	}
	id, err := suit.ParseComponentID(s)
	if err != nil {
		return "", err
	}
	return NewComponentID(id)
}

// hexKey reads s as the hex of the canonical encoding of a usable id.
func hexKey(s string) (ComponentID, bool) {
	raw, err := hex.DecodeString(s)
	if err != nil || len(raw) == 0 {
		return "", false
	}
	id, err := suit.DecodeComponentID(raw)
	if err != nil {
		return "", false
	}
	k, err := NewComponentID(id)
	return k, err == nil && string(k) == strings.ToLower(s)
}

// ID decodes the key; a key not made by NewComponentID yields nil.
func (c ComponentID) ID() suit.ComponentID {
	raw, err := hex.DecodeString(string(c))
	if err != nil {
		return nil
	}
	id, err := suit.DecodeComponentID(raw)
	if err != nil {
		return nil
	}
	return id
}

// Segments returns the identifier's segments.
func (c ComponentID) Segments() [][]byte { return c.ID() }

// HexSegments returns each segment in lowercase hex.
func (c ComponentID) HexSegments() []string { return c.ID().Hex() }

// Name is the identifier in the text form of package suit, which
// ParseComponentID reads back: a lone text segment that would read as the
// hex key of another id is written in hex.
func (c ComponentID) Name() string {
	id := c.ID()
	s := id.String()
	if k, ok := hexKey(s); ok && k != c {
		return "hex:" + hex.EncodeToString(id[0])
	}
	return s
}
