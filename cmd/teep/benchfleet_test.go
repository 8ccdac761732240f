package main

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"
)

// placeholders replaces every number of a JSON document by 0, so that a
// golden file pins the field set and shape of a measurement, not figures.
func placeholders(t *testing.T, out string) string {
	t.Helper()
	var v any
	d := json.NewDecoder(strings.NewReader(out))
	d.UseNumber()
	if err := d.Decode(&v); err != nil {
		t.Fatalf("%v:\n%s", err, out)
	}
	var walk func(any) any
	walk = func(v any) any {
		switch x := v.(type) {
		case json.Number:
			return 0
		case map[string]any:
			for k, e := range x {
				x[k] = walk(e)
			}
		case []any:
			for i, e := range x {
				x[i] = walk(e)
			}
		}
		return v
	}
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetIndent("", "  ")
	if err := enc.Encode(walk(v)); err != nil {
		t.Fatal(err)
	}
	return b.String()
}

func TestGoldenBenchFleet(t *testing.T) {
	for _, s := range []string{"steady", "rollout"} {
		out, errs, code := teepRun(t, nil, "bench", "fleet", "--scenario", s, "--devices", "3", "--concurrency", "2", "--rounds", "1", "--json")
		if code != 0 {
			t.Fatalf("%s: exit %d: %s", s, code, errs)
		}
		if errs != "" {
			t.Errorf("%s: stderr not quiet when not a terminal: %q", s, errs)
		}
		var r struct {
			Scenario   string `json:"scenario"`
			Rounds     int    `json:"rounds"`
			ErrorCount int    `json:"error_count"`
		}
		if err := json.Unmarshal([]byte(out), &r); err != nil || r.Scenario != s || r.Rounds != 3 || r.ErrorCount != 0 {
			t.Fatalf("%s: %+v %v\n%s", s, r, err, out)
		}
		goldenCheck(t, "bench-fleet-"+s, placeholders(t, out))
	}
}

func TestBenchFleetUsage(t *testing.T) {
	for _, args := range [][]string{{"--json", "--markdown"}, {"extra"}, {"--scenario", "storm"}, {"--devices", "0"}} {
		_, _, code := teepRun(t, nil, append([]string{"bench", "fleet", "--devices", "2"}, args...)...)
		if code == 0 {
			t.Errorf("%v: accepted", args)
		}
	}
}
