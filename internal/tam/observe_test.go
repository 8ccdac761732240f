package tam_test

import (
	"bytes"
	"encoding/json"
	"log/slog"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/teep-go/teep/internal/tam"
	"github.com/teep-go/teep/internal/tam/tamtest"
)

// A session and a rejected message show in the metrics (sessions, messages
// by type, rejections by kind, attestations, latency), and the rejection is
// logged with its reason and the peer.
func TestMetricsAndRejectionLog(t *testing.T) {
	var logs bytes.Buffer
	reg := prometheus.NewRegistry()
	f := newFixture(t, func(c *tam.Config) {
		c.Logger = slog.New(slog.NewJSONHandler(&logs, nil))
		c.Registerer = reg
	})
	id := f.add(f.tc("app", 1, []byte("x")))
	f.require(id, tam.Required, tam.ScopeAll, "")
	a := f.agent(tamtest.AgentOptions{})
	runSession(t, a, "query-request", "query-response", "query-request", "query-response", "update", "success")
	const peer = "198.51.100.7:4711"
	if _, err := f.eng.Handle(ctx, []byte{0xff, 0x00}, tam.HandleOptions{Peer: peer}); tam.KindOf(err) != tam.KindBadMessage {
		t.Fatalf("garbage: %v", err)
	}

	rejected := 0
	for _, line := range strings.Split(logs.String(), "\n") {
		var rec map[string]any
		if json.Unmarshal([]byte(line), &rec) != nil || rec["msg"] != "TEEP message rejected" {
			continue
		}
		rejected++
		if rec["peer"] != peer || rec["reason"] != "not a signed TEEP message" || rec["kind"] != "bad-message" || rec["level"] != "WARN" {
			t.Errorf("rejection log %v", rec)
		}
	}
	if rejected != 1 {
		t.Fatalf("%d rejection log lines:\n%s", rejected, logs.String())
	}

	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]float64{}
	for _, mf := range mfs {
		for _, m := range mf.GetMetric() {
			key := mf.GetName()
			for _, l := range m.GetLabel() {
				key += " " + l.GetName() + "=" + l.GetValue()
			}
			if c := m.GetCounter(); c != nil {
				got[key] = c.GetValue()
			}
			if h := m.GetHistogram(); h != nil {
				got[key] = float64(h.GetSampleCount())
			}
		}
	}
	for key, want := range map[string]float64{
		"teep_tam_sessions_started_total":                      1,
		"teep_tam_messages_sent_total type=query-request":      2, // the first, then the one asking an unknown Agent to attest
		"teep_tam_messages_sent_total type=update":             1,
		"teep_tam_messages_received_total type=query-response": 1, // only validly signed ones count
		"teep_tam_messages_received_total type=success":        1,
		"teep_tam_messages_rejected_total kind=bad-message":    1,
		"teep_tam_attestations_total result=affirming":         1,
		"teep_tam_updates_completed_total outcome=success":     1,
		"teep_tam_handle_duration_seconds type=connect":        1,
		"teep_tam_handle_duration_seconds type=query-response": 2,
		"teep_tam_handle_duration_seconds type=success":        1,
		"teep_tam_handle_duration_seconds type=malformed":      1,
	} {
		if got[key] != want {
			t.Errorf("%s = %v, want %v", key, got[key], want)
		}
	}
}
