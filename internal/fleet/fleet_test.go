package fleet_test

import (
	"context"
	"testing"

	"github.com/teep-go/teep/internal/agent"
	"github.com/teep-go/teep/internal/fleet"
	"github.com/teep-go/teep/internal/tam"
)

// TestFleetInstalls: every TEE of the fleet attests at first contact and
// installs a required component; events name their device.
func TestFleetInstalls(t *testing.T) {
	ctx := context.Background()
	installs := map[string]int{}
	w, err := fleet.Start(ctx, fleet.Options{Dir: t.TempDir(),
		Fleet: []fleet.DeviceSpec{{Name: "d1", TEEs: []string{"tee"}}, {Name: "d2", TEEs: []string{"a", "b"}}},
		Events: func(dev string, ev agent.Event) {
			if ev.Kind == agent.EventInstall {
				installs[dev+"/"+ev.TEE]++
			}
		}})
	if err != nil {
		t.Fatal(err)
	}
	defer func() {
		if err := w.Close(); err != nil {
			t.Error(err)
		}
	}()
	env, err := fleet.Envelope(w.Signer, "app", 1, []byte("payload"))
	if err != nil {
		t.Fatal(err)
	}
	c, err := w.TAM.Engine.AddComponent(ctx, env)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := w.TAM.Engine.SetPolicy(ctx, tam.Policy{Component: c.ComponentID, Mode: tam.Required, Scope: tam.ScopeAll}); err != nil {
		t.Fatal(err)
	}
	for _, d := range w.Devices {
		if err := d.Run(ctx); err != nil {
			t.Fatalf("%s: %v", d.Name, err)
		}
		for _, tt := range d.TEEs() {
			inst, err := tt.SUIT.Installed()
			if err != nil || len(inst) != 1 || inst[0].ComponentID.String() != fleet.PayloadID("app").String() {
				t.Fatalf("%s/%s: %+v %v", d.Name, tt.Name, inst, err)
			}
		}
	}
	if len(installs) != 3 || installs["d2/b"] != 1 {
		t.Fatalf("install events: %v", installs)
	}
}
