package conform

import (
	"encoding/json"
	"flag"
	"os"
	"path/filepath"
	"testing"
)

var update = flag.Bool("update", false, "rewrite testdata/*.golden from the current output")

// The JSON form of a report (as `teep conform tam --json` prints it), one
// result of each status, against testdata/report.json.golden.
func TestReportJSONGolden(t *testing.T) {
	rep := &Report{Target: "coap://127.0.0.1:5683/tam", Numbering: "draft-26"}
	for _, res := range []Result{
		{ID: "coap.empty-post", Group: "transport", Title: "an empty POST starts a session: 2.04 with Content-Format", Section: "coap-binding §2", Required: true, Status: Pass, Detail: "2.04, Content-Format 65000, 180 bytes"},
		{ID: "http.empty-post", Group: "transport", Title: "an empty POST with only Accept starts a session", Section: "otrp-over-http-15 §6.2", Required: true, Status: NotApplicable, Detail: "not applicable over COAP: coap.empty-post checks this over CoAP"},
		{ID: "coap.wrong-accept", Group: "transport", Title: "an Accept without TEEP's Content-Format gets 4.06", Section: "coap-binding §2", Status: Fail, Detail: "answered 2.04, want 4.06"},
		{ID: "session.valid-response", Group: "sessions", Title: "a valid QueryResponse ends in 204 or an Update", Section: "protocol-26 §4.3, otrp-over-http-15 §6.3", Required: true, Status: Skip, Detail: "needs --agent-key (an Agent key the TAM trusts)"},
	} {
		rep.add(res)
	}
	b, err := json.MarshalIndent(rep, "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	b = append(b, '\n')
	path := filepath.Join("testdata", "report.json.golden")
	if *update {
		if err := os.MkdirAll("testdata", 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run with -update to create it)", err)
	}
	if string(b) != string(want) {
		t.Fatalf("report JSON differs from %s (run with -update if intended):\n%s", path, b)
	}
}
