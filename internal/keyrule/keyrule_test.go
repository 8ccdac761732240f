package keyrule

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"
)

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
		got := Violations([]byte(c.doc))
		if fmt.Sprint(got) != fmt.Sprint(c.want) && !(len(got) == 0 && len(c.want) == 0) {
			t.Errorf("%s: violations %q, want %q", c.doc, got, c.want)
		}
	}
}

func TestInvalidJSONIsAViolation(t *testing.T) {
	for _, doc := range []string{`{"a":`, `{"a" 1}`, `[}`} {
		if got := Violations([]byte(doc)); len(got) != 1 || !strings.HasPrefix(got[0], "invalid JSON") {
			t.Errorf("%s: %q", doc, got)
		}
	}
}

// FuzzViolations: any input gives an answer, never a panic, and a document
// re-encoded from what it decodes to has the same violations.
func FuzzViolations(f *testing.F) {
	for _, s := range []string{`{"sequence_number":1}`, `{"Bad":[{"x-y":{}}]}`, `[1,"a",{"b":null}]`, `{"a":`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		got := Violations(data)
		var v any
		if json.Unmarshal(data, &v) != nil {
			return
		}
		again, err := json.Marshal(v)
		if err != nil {
			return
		}
		// Duplicate keys collapse in the round trip, so compare sets.
		if fmt.Sprint(dedupe(got)) != fmt.Sprint(dedupe(Violations(again))) {
			t.Fatalf("%q: %q, re-encoded %q", data, got, Violations(again))
		}
	})
}

func dedupe(s []string) []string {
	seen := map[string]bool{}
	var out []string
	for _, k := range s {
		if !seen[k] {
			seen[k] = true
			out = append(out, k)
		}
	}
	return out
}
