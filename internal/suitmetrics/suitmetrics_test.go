package suitmetrics

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/teep-go/teep/suit"
	"github.com/teep-go/teep/suit/processor"
)

func TestObserveCountsRuns(t *testing.T) {
	reg := prometheus.NewPedanticRegistry()
	m, err := New(reg)
	if err != nil {
		t.Fatal(err)
	}
	m.Observe(&processor.Result{Success: true, Procedure: "update", Duration: time.Millisecond,
		Installed: []processor.ComponentChange{{Size: 100}, {Size: 23}}})
	m.Observe(&processor.Result{Procedure: "uninstall",
		Removed: []processor.ComponentChange{{}}})
	m.Observe(&processor.Result{Procedure: "update",
		Failure: &processor.Failure{Reason: suit.ReasonUnauthorised, Err: errors.New("bad signature")}})

	want := `
# HELP teep_suit_components_installed_total Components installed by committed SUIT procedures.
# TYPE teep_suit_components_installed_total counter
teep_suit_components_installed_total 2
# HELP teep_suit_components_removed_total Components removed by committed SUIT procedures.
# TYPE teep_suit_components_removed_total counter
teep_suit_components_removed_total 1
# HELP teep_suit_installed_bytes_total Bytes of components installed by committed SUIT procedures.
# TYPE teep_suit_installed_bytes_total counter
teep_suit_installed_bytes_total 123
# HELP teep_suit_runs_total SUIT procedures run, by procedure, result and SUIT_Report reason.
# TYPE teep_suit_runs_total counter
teep_suit_runs_total{procedure="uninstall",reason="ok",result="success"} 1
teep_suit_runs_total{procedure="update",reason="ok",result="success"} 1
teep_suit_runs_total{procedure="update",reason="unauthorised",result="failure"} 1
`
	if err := testutil.GatherAndCompare(reg, strings.NewReader(want),
		"teep_suit_components_installed_total", "teep_suit_components_removed_total",
		"teep_suit_installed_bytes_total", "teep_suit_runs_total"); err != nil {
		t.Error(err)
	}
	if n := testutil.CollectAndCount(m.duration); n != 2 {
		t.Errorf("duration series = %d, want 2 (update, uninstall)", n)
	}
}

func TestNewRefusesDoubleRegistration(t *testing.T) {
	reg := prometheus.NewRegistry()
	if _, err := New(reg); err != nil {
		t.Fatal(err)
	}
	if _, err := New(reg); err == nil {
		t.Fatal("second registration with the same registry succeeded")
	}
}
