package suit

import (
	"bytes"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"strings"

	"github.com/teep-go/teep/cborwire"
)

// Limits on a component identifier. They are the one limit set of the
// project: the SUIT and TEEP decoders, the TAM store and the command line all
// check them through Check, so an id one of them accepts the others accept too.
const (
	MaxComponentIDSegments    = 32   // byte strings in one SUIT_Component_Identifier
	MaxComponentIDSegmentSize = 1024 // bytes in one segment
	MaxComponentIDEncodedSize = 4096 // bytes of the CBOR encoding ([* bstr])
	// MaxComponentIDTextSize bounds the text ParseComponentID reads: every
	// byte of an id at the size limit written as hex, with its prefixes and
	// separators.
	MaxComponentIDTextSize = 2*MaxComponentIDEncodedSize + len(hexPrefix+"/")*MaxComponentIDSegments
)

// ErrComponentID is wrapped by every error about a malformed or oversize
// component identifier.
var ErrComponentID = errors.New("invalid component id")

const hexPrefix = "hex:"

// ComponentID is a SUIT_Component_Identifier: a path of byte strings
// (draft-ietf-suit-manifest §8.4.5.1). TEEP messages carry the same type
// (draft-ietf-teep-protocol-26 §4.3, §4.4).
//
// Its text form (String, ParseComponentID, MarshalJSON) is the segments
// joined by "/"; a segment is written as text when every byte is one of
// A-Z a-z 0-9 - . _ ~ + = : @ and it does not begin with "hex:", and as
// "hex:" followed by its bytes in hex otherwise (the empty segment is "hex:").
// The identifier without segments is written "[]".
type ComponentID [][]byte

// NewComponentID builds an identifier from text segments.
func NewComponentID(segments ...string) ComponentID {
	id := make(ComponentID, len(segments))
	for i, s := range segments {
		id[i] = []byte(s)
	}
	return id
}

// Check reports whether c is within the limits: at most
// MaxComponentIDSegments segments of at most MaxComponentIDSegmentSize bytes,
// at most MaxComponentIDEncodedSize bytes encoded. The identifier without
// segments is valid, as in the CDDL ([* bstr]).
func (c ComponentID) Check() error {
	if len(c) > MaxComponentIDSegments {
		return fmt.Errorf("%w: %d segments, limit %d", ErrComponentID, len(c), MaxComponentIDSegments)
	}
	for i, s := range c {
		if len(s) > MaxComponentIDSegmentSize {
			return fmt.Errorf("%w: segment %d has %d bytes, limit %d", ErrComponentID, i, len(s), MaxComponentIDSegmentSize)
		}
	}
	if n := c.encodedSize(); n > MaxComponentIDEncodedSize {
		return fmt.Errorf("%w: %d bytes encoded, limit %d", ErrComponentID, n, MaxComponentIDEncodedSize)
	}
	return nil
}

func (c ComponentID) encodedSize() int {
	head := func(n int) int { return len(cborwire.AppendArrayHead(nil, n)) }
	n := head(len(c))
	for _, s := range c {
		n += head(len(s)) + len(s)
	}
	return n
}

// Equal reports whether two identifiers have the same segments.
func (c ComponentID) Equal(o ComponentID) bool {
	if len(c) != len(o) {
		return false
	}
	for i := range c {
		if !bytes.Equal(c[i], o[i]) {
			return false
		}
	}
	return true
}

// HasPrefix reports whether p is a leading part of c.
func (c ComponentID) HasPrefix(p ComponentID) bool {
	return len(p) <= len(c) && c[:len(p)].Equal(p)
}

// Marshal returns the CBOR encoding ([* bstr]).
func (c ComponentID) Marshal() []byte { return c.appendTo(nil) }

func (c ComponentID) appendTo(b []byte) []byte {
	b = cborwire.AppendArrayHead(b, len(c))
	for _, s := range c {
		b = cborwire.AppendBytes(b, s)
	}
	return b
}

// Key is a string usable as a map or database key: the CBOR encoding, which
// is canonical (one encoding per identifier).
func (c ComponentID) Key() string { return string(c.Marshal()) }

// Hex returns each segment in lower-case hex.
func (c ComponentID) Hex() []string {
	out := make([]string, len(c))
	for i, s := range c {
		out[i] = hex.EncodeToString(s)
	}
	return out
}

// Clone returns a deep copy.
func (c ComponentID) Clone() ComponentID {
	if c == nil {
		return nil
	}
	out := make(ComponentID, len(c))
	for i, s := range c {
		out[i] = bytes.Clone(s)
	}
	return out
}

// String renders the identifier in the text form ParseComponentID reads.
func (c ComponentID) String() string {
	if len(c) == 0 {
		return "[]"
	}
	var sb strings.Builder
	for i, s := range c {
		if i > 0 {
			sb.WriteByte('/')
		}
		if textSegment(s) {
			sb.Write(s)
		} else {
			sb.WriteString(hexPrefix)
			sb.WriteString(hex.EncodeToString(s))
		}
	}
	return sb.String()
}

// MarshalJSON renders the identifier as a JSON string of its text form.
func (c ComponentID) MarshalJSON() ([]byte, error) { return json.Marshal(c.String()) }

// UnmarshalJSON reads a JSON string in the text form or, as
// ParseComponentID does, a list of hex strings. null leaves c unchanged.
func (c *ComponentID) UnmarshalJSON(b []byte) error {
	b = bytes.TrimSpace(b)
	if string(b) == "null" {
		return nil
	}
	var id ComponentID
	var err error
	if len(b) > 0 && b[0] == '[' {
		id, err = parseHexList(b)
	} else {
		var s string
		if err = json.Unmarshal(b, &s); err != nil {
			return fmt.Errorf("%w: want a string: %v", ErrComponentID, err)
		}
		id, err = ParseComponentID(s)
	}
	if err != nil {
		return err
	}
	*c = id
	return nil
}

// ParseComponentID reads the text form of an identifier (see ComponentID)
// and checks the limits. For compatibility it also reads the forms earlier
// releases printed: a JSON list of hex strings, one per segment
// (`["544545502d446576696365", "7461"]`, and "[]" for the identifier without
// segments), and hex segments separated by commas
// ("544545502d446576696365,7461"). Text segments hold neither '[' nor ',',
// so the forms do not overlap.
func ParseComponentID(s string) (ComponentID, error) {
	if len(s) > MaxComponentIDTextSize {
		return nil, fmt.Errorf("%w: %d bytes of text, limit %d", ErrComponentID, len(s), MaxComponentIDTextSize)
	}
	if t := strings.TrimSpace(s); strings.HasPrefix(t, "[") {
		return parseHexList([]byte(t))
	}
	if s == "" {
		return nil, fmt.Errorf("%w: empty", ErrComponentID)
	}
	if strings.Contains(s, ",") {
		return parseHexParts(strings.Split(s, ","))
	}
	parts := strings.Split(s, "/")
	if len(parts) > MaxComponentIDSegments {
		return nil, fmt.Errorf("%w: %d segments, limit %d", ErrComponentID, len(parts), MaxComponentIDSegments)
	}
	id := make(ComponentID, len(parts))
	for i, p := range parts {
		seg, err := ParseComponentIDSegment(p)
		if err != nil {
			return nil, fmt.Errorf("segment %d: %w", i, err)
		}
		id[i] = seg
	}
	return id, id.Check()
}

// ParseComponentIDSegment reads one segment of the text form: "hex:" and
// hex digits, or text of the characters String writes as text.
func ParseComponentIDSegment(s string) ([]byte, error) {
	if h, ok := strings.CutPrefix(s, hexPrefix); ok {
		b, err := hex.DecodeString(h)
		if err != nil {
			return nil, fmt.Errorf("%w: bad hex segment %q: %v", ErrComponentID, s, err)
		}
		return b, nil
	}
	if s == "" {
		return nil, fmt.Errorf("%w: empty segment (write the empty byte string as %q)", ErrComponentID, hexPrefix)
	}
	for i := 0; i < len(s); i++ {
		if !textByte(s[i]) {
			return nil, fmt.Errorf("%w: segment %q: byte %q at %d is not allowed in text (use %q and hex)", ErrComponentID, s, s[i], i, hexPrefix)
		}
	}
	return []byte(s), nil
}

// maxHexListJSON bounds the JSON list form like the text form.
const maxHexListJSON = MaxComponentIDTextSize

func parseHexList(b []byte) (ComponentID, error) {
	if len(b) > maxHexListJSON {
		return nil, fmt.Errorf("%w: %d bytes of JSON, limit %d", ErrComponentID, len(b), maxHexListJSON)
	}
	var parts []string
	if err := json.Unmarshal(b, &parts); err != nil {
		return nil, fmt.Errorf("%w: want a list of hex strings: %v", ErrComponentID, err)
	}
	return parseHexParts(parts)
}

func parseHexParts(parts []string) (ComponentID, error) {
	if len(parts) > MaxComponentIDSegments {
		return nil, fmt.Errorf("%w: %d segments, limit %d", ErrComponentID, len(parts), MaxComponentIDSegments)
	}
	id := make(ComponentID, len(parts))
	for i, p := range parts {
		seg, err := hex.DecodeString(p)
		if err != nil {
			return nil, fmt.Errorf("%w: segment %d: %v", ErrComponentID, i, err)
		}
		id[i] = seg
	}
	return id, id.Check()
}

func textSegment(s []byte) bool {
	if len(s) == 0 || bytes.HasPrefix(s, []byte(hexPrefix)) {
		return false
	}
	for _, b := range s {
		if !textByte(b) {
			return false
		}
	}
	return true
}

// textByte reports whether b may appear in a text segment: characters that
// need no quoting in a shell, a URL path segment or JSON, except '/'.
func textByte(b byte) bool {
	switch {
	case 'a' <= b && b <= 'z', 'A' <= b && b <= 'Z', '0' <= b && b <= '9':
		return true
	}
	return strings.IndexByte("-._~+=:@", b) >= 0
}

// DecodeComponentID decodes a CBOR SUIT_Component_Identifier and checks the
// limits.
func DecodeComponentID(data []byte) (ComponentID, error) {
	if len(data) > MaxComponentIDEncodedSize {
		return nil, fmt.Errorf("%w: %d bytes encoded, limit %d", ErrComponentID, len(data), MaxComponentIDEncodedSize)
	}
	lim := DefaultLimits()
	if err := wellFormed(data, &lim); err != nil {
		return nil, in("component id", err)
	}
	c := newCur(data, "component id")
	id, err := c.componentID("component id", &lim)
	if err != nil {
		return nil, err
	}
	return id, c.end()
}
