package tam

import (
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
	"unicode/utf8"

	"github.com/fxamacker/cbor/v2"
)

// ComponentID names a Trusted Component: the lowercase hex of the CBOR
// encoding of its SUIT_Component_Identifier (an array of byte strings). For a
// component registered from a SUIT envelope it is the manifest's
// manifest-component-id, the id draft-ietf-teep-protocol-26 uses in
// unneeded-manifest-list. The hex form is one unambiguous string usable in
// URLs, database keys and command lines.
type ComponentID string

// Limits on component identifiers.
const (
	MaxComponentIDSegments    = 16  // segments in one SUIT_Component_Identifier
	MaxComponentIDSegmentSize = 256 // bytes in one segment
)

var errComponentID = errors.New("tam: invalid component id")

var cidEnc, cidDec = func() (cbor.EncMode, cbor.DecMode) {
	em, err := cbor.CoreDetEncOptions().EncMode()
	if err != nil {
		panic(err)
	}
	dm, err := cbor.DecOptions{
		DupMapKey:        cbor.DupMapKeyEnforcedAPF,
		IndefLength:      cbor.IndefLengthForbidden,
		MaxNestedLevels:  4,
		MaxArrayElements: MaxComponentIDSegments,
	}.DecMode()
	if err != nil {
		panic(err)
	}
	return em, dm
}()

// NewComponentID builds the id of a SUIT_Component_Identifier.
func NewComponentID(segments [][]byte) (ComponentID, error) {
	if err := checkSegments(segments); err != nil {
		return "", err
	}
	if segments == nil {
		segments = [][]byte{}
	}
	b, err := cidEnc.Marshal(segments)
	if err != nil {
		return "", fmt.Errorf("%w: %v", errComponentID, err)
	}
	return ComponentID(hex.EncodeToString(b)), nil
}

func checkSegments(segments [][]byte) error {
	if len(segments) == 0 {
		return fmt.Errorf("%w: no segments", errComponentID)
	}
	if len(segments) > MaxComponentIDSegments {
		return fmt.Errorf("%w: %d segments, limit %d", errComponentID, len(segments), MaxComponentIDSegments)
	}
	for i, s := range segments {
		if len(s) > MaxComponentIDSegmentSize {
			return fmt.Errorf("%w: segment %d has %d bytes, limit %d", errComponentID, i, len(s), MaxComponentIDSegmentSize)
		}
	}
	return nil
}

// ParseComponentID checks that s is the hex of a CBOR array of byte strings
// and returns it in canonical (lowercase) form.
func ParseComponentID(s string) (ComponentID, error) {
	raw, err := hex.DecodeString(s)
	if err != nil {
		return "", fmt.Errorf("%w: not hex: %v", errComponentID, err)
	}
	var segs [][]byte
	if err := cidDec.Unmarshal(raw, &segs); err != nil {
		return "", fmt.Errorf("%w: want a CBOR array of byte strings: %v", errComponentID, err)
	}
	id, err := NewComponentID(segs)
	if err != nil {
		return "", err
	}
	if string(id) != strings.ToLower(s) {
		return "", fmt.Errorf("%w: not in deterministic CBOR encoding", errComponentID)
	}
	return id, nil
}

// Segments decodes the id; an invalid id yields nil.
func (c ComponentID) Segments() [][]byte {
	raw, err := hex.DecodeString(string(c))
	if err != nil {
		return nil
	}
	var segs [][]byte
	if cidDec.Unmarshal(raw, &segs) != nil {
		return nil
	}
	return segs
}

// HexSegments returns each segment in lowercase hex, the form device-side
// tools print.
func (c ComponentID) HexSegments() []string {
	segs := c.Segments()
	out := make([]string, len(segs))
	for i, s := range segs {
		out[i] = hex.EncodeToString(s)
	}
	return out
}

// Name is a readable rendering for people: segments joined by "/", printable
// ASCII segments as text and others as "0x" hex. It is not parsed back.
func (c ComponentID) Name() string {
	segs := c.Segments()
	parts := make([]string, len(segs))
	for i, s := range segs {
		if printable(s) {
			parts[i] = string(s)
		} else {
			parts[i] = "0x" + hex.EncodeToString(s)
		}
	}
	return strings.Join(parts, "/")
}

func printable(s []byte) bool {
	if len(s) == 0 || !utf8.Valid(s) {
		return false
	}
	for _, b := range s {
		if b < 0x21 || b > 0x7e || b == '/' {
			return false
		}
	}
	return true
}
