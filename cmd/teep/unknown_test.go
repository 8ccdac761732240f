package main

import (
	"encoding/json"
	"path/filepath"
	"strings"
	"testing"
)

// suit inspect shows what it does not know (suit-coswid, 14) and the rest;
// verify refuses the envelope, naming the member.
func TestSuitInspectUnknownMembers(t *testing.T) {
	in := filepath.Join("..", "..", "testdata", "suit", "unknown-member-14.cbor")
	out, errs, code := suitRun(t, "suit", "inspect", in)
	if code != 0 || !strings.Contains(out, "envelope member 14:") || !strings.Contains(out, "manifest member 14:") ||
		!strings.Contains(out, "manifest-sequence-number: 0") {
		t.Fatalf("inspect: exit %d\n%s%s", code, out, errs)
	}
	js, _, code := suitRun(t, "suit", "inspect", "--json", in)
	var v struct {
		Unknown []struct {
			In   string `json:"in"`
			Key  int64  `json:"key"`
			Size int    `json:"size"`
		} `json:"unknown_members"`
	}
	if err := json.Unmarshal([]byte(js), &v); err != nil || code != 0 || len(v.Unknown) != 2 || v.Unknown[0].Key != 14 || v.Unknown[0].In != "envelope" {
		t.Fatalf("inspect --json: exit %d, %v, %+v", code, err, v)
	}
	dir := t.TempDir()
	_, pub, _ := eatKey(t, dir, "k", "esp256")
	if _, errs, code := suitRun(t, "suit", "verify", "--key", pub, in); code != 1 || !strings.Contains(errs, "member 14") {
		t.Fatalf("verify: exit %d %q, want a refusal naming member 14", code, errs)
	}
}
