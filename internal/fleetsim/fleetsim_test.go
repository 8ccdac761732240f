package fleetsim

import (
	"context"
	"encoding/hex"
	"strings"
	"testing"

	"github.com/teep-go/teep/cosekey"
	"github.com/teep-go/teep/internal/tam"
	"github.com/teep-go/teep/internal/tam/pgstore/pgtest"
	"github.com/teep-go/teep/internal/tam/tamserver"
	"github.com/teep-go/teep/suit"
)

// A short run per scenario and database: correctness, not speed. Every
// device must end in policy, as the TAM's store records it, with no error.
const (
	testDevices     = 50
	testConcurrency = 8
)

func checkRun(t *testing.T, db, scenario string) {
	t.Helper()
	ctx := context.Background()
	checked := false
	r, err := Run(ctx, Options{Devices: testDevices, Concurrency: testConcurrency, Rounds: 2, Scenario: scenario, DB: db,
		Keep: func(ctx context.Context, tm *tamserver.TAM, devs []*cosekey.Key, comp suit.ComponentID) error {
			checked = true
			if len(devs) != testDevices {
				t.Errorf("%d devices, want %d", len(devs), testDevices)
			}
			if scenario == ScenarioAttest {
				for _, k := range devs {
					di, err := tm.Engine.DeviceInfo(ctx, k.KID(), 0)
					if err != nil {
						return err
					}
					if di.Preregistered || di.Attestation == tam.AttestationNone {
						t.Errorf("device %x: registered without attestation: %+v", k.KID(), di.Device)
					}
				}
			}
			return CheckPolicy(ctx, tm.Engine, devs, comp, 1)
		}})
	if err != nil {
		t.Fatal(err)
	}
	if !checked {
		t.Fatal("the store was not checked")
	}
	if r.ErrorCount != 0 || len(r.Errors) != 0 {
		t.Fatalf("errors: %v", r.Errors)
	}
	want, perRound := int64(testDevices*2), int64(2) // steady: QueryRequest, QueryResponse→204
	switch scenario {
	case ScenarioRollout:
		want, perRound = testDevices, 3 // connect, QueryResponse→Update, Success→204
	case ScenarioAttest:
		want, perRound = testDevices, 3 // connect, QueryResponse→QueryRequest (attestation), QueryResponse (Evidence)→204
	}
	if r.Rounds != want || r.Messages != want*perRound {
		t.Fatalf("rounds %d messages %d, want %d and %d", r.Rounds, r.Messages, want, want*perRound)
	}
	if r.RoundsPerSec <= 0 || r.FloorRoundsPerSec <= 0 || r.OfFloor <= 0 || r.LatencyP50Ms <= 0 ||
		r.LatencyP50Ms > r.LatencyP99Ms {
		t.Fatalf("figures: %+v", r)
	}
	if cpuTime() > 0 && (r.TransportRoundMs <= 0 || r.FloorWithTransportRoundsPerSec >= r.FloorRoundsPerSec || r.OfFloorWithTransport <= r.OfFloor) {
		t.Fatalf("transport floor: %.3f ms per round, %.0f rounds/s with signatures (signatures alone %.0f), achieved %.2f of it (%.2f of the signature floor)",
			r.TransportRoundMs, r.FloorWithTransportRoundsPerSec, r.FloorRoundsPerSec, r.OfFloorWithTransport, r.OfFloor)
	}
}

func TestFleetSQLite(t *testing.T) {
	for _, s := range []string{ScenarioSteady, ScenarioRollout, ScenarioAttest} {
		t.Run(s, func(t *testing.T) { checkRun(t, "", s) })
	}
}

func TestFleetPostgreSQL(t *testing.T) {
	for _, s := range []string{ScenarioSteady, ScenarioRollout, ScenarioAttest} {
		t.Run(s, func(t *testing.T) { checkRun(t, pgtest.DSN(t), s) })
	}
}

// TestOutOfPolicyDetected: a device whose install the store does not hold
// (removed after the run) fails the check, by name.
func TestOutOfPolicyDetected(t *testing.T) {
	ctx := context.Background()
	var victim string
	_, err := Run(ctx, Options{Devices: 5, Concurrency: 2, Rounds: 1, Scenario: ScenarioRollout,
		Keep: func(ctx context.Context, tm *tamserver.TAM, devs []*cosekey.Key, comp suit.ComponentID) error {
			if err := CheckPolicy(ctx, tm.Engine, devs, comp, 1); err != nil {
				t.Errorf("before: %v", err)
			}
			// Version 2 is not what anyone has: everyone is out of policy.
			if err := CheckPolicy(ctx, tm.Engine, devs, comp, 2); err == nil || !strings.Contains(err.Error(), "5 of 5") {
				t.Errorf("version 2: %v", err)
			}
			k := devs[3]
			victim = hex.EncodeToString(k.KID())
			if err := tm.Engine.Store().Update(ctx, func(tx tam.Tx) error { return tx.DeleteInstalled(ctx, k.KID(), comp) }); err != nil {
				return err
			}
			return CheckPolicy(ctx, tm.Engine, devs, comp, 1)
		}})
	if err == nil || !strings.Contains(err.Error(), "1 of 5 devices out of policy") || !strings.Contains(err.Error(), victim) {
		t.Fatalf("got %v, want device %s out of policy", err, victim)
	}
}

func TestOptionsRefused(t *testing.T) {
	for _, o := range []Options{{Devices: -1}, {Concurrency: MaxConcurrency + 1}, {Scenario: "storm"}, {Model: "heavy"},
		{Size: MaxSize + 1}, {Rounds: -2}} {
		if _, err := Run(context.Background(), o); err == nil {
			t.Errorf("%+v accepted", o)
		}
	}
}
