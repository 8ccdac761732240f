package keyrule

import (
	"fmt"
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
