package fleetsim

import (
	"context"
	"testing"

	"github.com/teep-go/teep/cosekey"
	"github.com/teep-go/teep/internal/tam/tamserver"
	"github.com/teep-go/teep/suit"
)

// TestFullModel: devices with a software TEE each (the device runtime, its
// Agent and SUIT processor) end in policy, pre-registered or attesting.
func TestFullModel(t *testing.T) {
	for _, s := range []string{ScenarioSteady, ScenarioRollout, ScenarioAttest} {
		t.Run(s, func(t *testing.T) {
			r, err := Run(context.Background(), Options{Model: ModelFull, Devices: 4, Concurrency: 2, Rounds: 1, Scenario: s,
				Keep: func(ctx context.Context, tm *tamserver.TAM, devs []*cosekey.Key, comp suit.ComponentID) error {
					return CheckPolicy(ctx, tm.Engine, devs, comp, 1)
				}})
			if err != nil {
				t.Fatal(err)
			}
			if r.ErrorCount != 0 || r.Rounds != 4 || r.Messages < 8 || r.Model != ModelFull {
				t.Fatalf("%+v", r)
			}
		})
	}
}

// TestHalfPeakAndScale: the half-peak mode reports the second run at half
// the first's rate; inactive registered devices and history rounds are in
// the store and every active device still ends in policy (version 2 after
// the rollout's rerun).
func TestHalfPeakAndScale(t *testing.T) {
	ctx := context.Background()
	var total int
	r, err := Run(ctx, Options{Devices: 300, Active: 20, Concurrency: 4, Rounds: 1, Scenario: ScenarioRollout, HalfPeak: true,
		HistoryRounds: 700,
		Keep: func(ctx context.Context, tm *tamserver.TAM, devs []*cosekey.Key, comp suit.ComponentID) error {
			all, err := tm.Engine.Devices(ctx)
			total = len(all)
			if err != nil {
				return err
			}
			di, err := tm.Engine.DeviceInfo(ctx, devs[0].KID(), 100)
			if err != nil {
				return err
			}
			if len(di.Reports) < 2 {
				t.Errorf("history: %d reports on a device", len(di.Reports))
			}
			return CheckPolicy(ctx, tm.Engine, devs, comp, 2)
		}})
	if err != nil {
		t.Fatal(err)
	}
	if total != 300 || r.Devices != 300 || r.ActiveDevices != 20 || r.Rounds != 20 || r.ErrorCount != 0 || r.HistoryRounds != 700 {
		t.Fatalf("%d devices in the store; %+v", total, r)
	}
	if r.PeakRoundsPerSec <= 0 || r.RateRoundsPerSec != r.PeakRoundsPerSec/2 {
		t.Fatalf("peak %g, rate %g", r.PeakRoundsPerSec, r.RateRoundsPerSec)
	}
	// An open-loop run at a given rate.
	r, err = Run(ctx, Options{Devices: 10, Concurrency: 4, Rounds: 2, Rate: 200})
	if err != nil || r.Rounds != 20 || r.RateRoundsPerSec != 200 || r.ErrorCount != 0 {
		t.Fatalf("%+v %v", r, err)
	}
	for _, o := range []Options{{Active: 5, Devices: 2}, {Rate: -1}, {HalfPeak: true, Rate: 5}, {HalfPeak: true, Scenario: ScenarioAttest},
		{HistoryRounds: -1}, {Model: ModelFull, Devices: MaxFullDevices + 1}, {Scenario: ScenarioAttest, Devices: 5, Active: 2}} {
		if _, err := Run(ctx, o); err == nil {
			t.Errorf("%+v accepted", o)
		}
	}
}
