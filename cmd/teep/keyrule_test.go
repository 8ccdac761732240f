package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"testing"

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

// keyViolations returns every object key in the JSON document data that is
// neither snake_case, a label number, nor an allowed protocol label name.
func keyViolations(data []byte) []string {
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
			if !snakeKey.MatchString(k) && !numericKey.MatchString(k) && !allowedProtocolKeys[k] {
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

// TestKeyRule proves the check can fail and what it admits.
func TestKeyRule(t *testing.T) {
	for _, c := range []struct {
		doc  string
		want []string
	}{
		{`{"sequence_number":1,"manifest_digest":{"alg":"sha-256","alg_id":-16}}`, nil},
		{`{"message":{"token":"00","tc-manifest-sequence-number":3,"err_name":"x","70000":{"cbor":"f5"}}}`, nil},
		{`{"properties":{"vendor-id":"00","image-digest":{"hex":""},"-257":1}}`, nil},
		{`{"manifest-sequence-number":1}`, []string{"manifest-sequence-number"}},
		{`{"a":[{"latestSequence":1},{"ok":{"Bad":2}}]}`, []string{"Bad", "latestSequence"}},
		{`[{"per-op":"1ns"},"not-a-key",{"x":"alg-id"}]`, []string{"per-op"}},
		{`{"_x":1,"x_":2,"x__y":3,"":4}`, []string{"", "_x", "x_", "x__y"}},
	} {
		got := keyViolations([]byte(c.doc))
		if fmt.Sprint(got) != fmt.Sprint(c.want) && !(len(got) == 0 && len(c.want) == 0) {
			t.Errorf("%s: violations %q, want %q", c.doc, got, c.want)
		}
	}
}

// TestGoldenKeys walks every golden file, so that a file added by hand or
// left behind by a renamed test is held to the rule as well.
func TestGoldenKeys(t *testing.T) {
	files, err := filepath.Glob(filepath.Join(goldenDir, "*.json"))
	if err != nil {
		t.Fatal(err)
	}
	if len(files) == 0 {
		t.Fatal("no golden files")
	}
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		if bad := keyViolations(b); len(bad) > 0 {
			t.Errorf("%s: keys break the naming rule: %q", f, bad)
		}
	}
}
