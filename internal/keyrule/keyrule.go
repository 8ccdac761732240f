package keyrule

import (
	"bytes"
	"encoding/json"
	"io"
	"regexp"
	"sort"
	"strings"

	"github.com/teep-go/teep/suit"
	"github.com/teep-go/teep/teep"
)

// The machine-output naming rule (docs/architecture.md, Machine output):
// keys we define are snake_case; a key may be a protocol label name only
// where the key is that protocol label, and those names are listed here.
var (
	snakeKey   = regexp.MustCompile(`^[a-z][a-z0-9]*(_[a-z0-9]+)*$`)
	numericKey = regexp.MustCompile(`^-?[0-9]+$`) // a protocol label without a name
)

// protocolKeys are the label names that may appear as keys: the TEEP option
// labels (draft-ietf-teep-protocol-26 §11, with data-item-requested, the
// positional field of query-request), the SUIT parameters and the
// system-property-claims key (draft-ietf-suit-manifest §8.4.8,
// draft-ietf-suit-report), and the JWK members of RFC 7517/7518 that are not
// snake_case already (none today; listed for completeness).
func protocolKeys() map[string]bool {
	keys := map[string]bool{"data-item-requested": true, "system-component-id": true}
	for l := teep.Label(1); !strings.HasPrefix(l.String(), "label("); l++ {
		keys[l.String()] = true
	}
	for k := int64(-300); k <= 300; k++ {
		if n := suit.ParamName(k); !strings.Contains(n, "(") {
			keys[n] = true
		}
	}
	return keys
}

var allowedProtocolKeys = protocolKeys()

// Allowed reports whether key obeys the rule.
func Allowed(key string) bool {
	return snakeKey.MatchString(key) || numericKey.MatchString(key) || allowedProtocolKeys[key]
}

// Violations returns, sorted, every object key in the JSON document data
// that is neither snake_case, a label number, nor an allowed protocol label
// name. Invalid JSON is reported as a violation.
func Violations(data []byte) []string {
	if !json.Valid(data) {
		return []string{"invalid JSON"}
	}
	seen := map[string]bool{}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	// Object keys are the tokens at even positions inside an object; a
	// stack says whether the current container is an object and where.
	type frame struct {
		object bool
		n      int
	}
	var stack []frame
	for {
		tok, err := dec.Token()
		if err == io.EOF {
			break
		}
		if err != nil {
			return []string{"invalid JSON: " + err.Error()}
		}
		if d, ok := tok.(json.Delim); ok {
			switch d {
			case '{', '[':
				if len(stack) > 0 {
					stack[len(stack)-1].n++
				}
				stack = append(stack, frame{object: d == '{'})
			default:
				stack = stack[:len(stack)-1]
			}
			continue
		}
		if len(stack) == 0 {
			continue
		}
		top := &stack[len(stack)-1]
		if top.object && top.n%2 == 0 {
			k := tok.(string)
			if !Allowed(k) {
				seen[k] = true
			}
		}
		top.n++
	}
	out := make([]string, 0, len(seen))
	for k := range seen {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}
