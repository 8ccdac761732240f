package processor_test

import (
	"context"
	"errors"
	"fmt"
	"testing"

	"github.com/teep-go/teep/cosekey"
	"github.com/teep-go/teep/suit"
	"github.com/teep-go/teep/suit/processor"
)

// builtSigned returns a function that builds and signs a manifest with the
// example key.
func builtSigned(t *testing.T) func(suit.ManifestSpec) []byte {
	signer, err := cosekey.NewSigner(loadKey(t, "example-p256-private.pem"), 0)
	if err != nil {
		t.Fatal(err)
	}
	return func(spec suit.ManifestSpec) []byte {
		t.Helper()
		env, err := suit.Build(spec)
		if err != nil {
			t.Fatal(err)
		}
		if err := env.Sign(signer); err != nil {
			t.Fatal(err)
		}
		return env.Raw()
	}
}

// TestUpdateDropsWhatTheNewVersionNoLongerHas installs a manifest with two
// components and a dependency, then a newer version of it with one of the
// components only: the other component, the dependency's record and the
// dependency's component go away in the same commit.
func TestUpdateDropsWhatTheNewVersionNoLongerHas(t *testing.T) {
	e := newEnv(t, nil)
	build := builtSigned(t)
	app, extra, lib := suit.NewComponentID("app"), suit.NewComponentID("extra"), suit.NewComponentID("lib")
	appID, libID := suit.NewComponentID("app.suit"), suit.NewComponentID("lib.suit")
	dep := build(suit.ManifestSpec{ManifestComponentID: libID, SequenceNumber: 1,
		Components: []suit.ComponentSpec{{ID: lib, Payload: []byte("lib"), Integrated: true}}})
	v1 := build(suit.ManifestSpec{ManifestComponentID: appID, SequenceNumber: 1,
		Components: []suit.ComponentSpec{
			{ID: app, Payload: []byte("app v1"), Integrated: true},
			{ID: extra, Payload: []byte("extra"), Integrated: true},
		},
		Dependencies: []suit.DependencySpec{{Envelope: dep}}})
	if res := mustInstall(t, e, v1); len(res.Installed) != 3 || len(res.Manifests) != 2 {
		t.Fatalf("v1: installed %d components, %d manifests", len(res.Installed), len(res.Manifests))
	}

	v2 := build(suit.ManifestSpec{ManifestComponentID: appID, SequenceNumber: 2,
		Components: []suit.ComponentSpec{{ID: app, Payload: []byte("app v2"), Integrated: true}}})
	res := mustInstall(t, e, v2)
	removed := map[string]bool{}
	for _, c := range res.Removed {
		removed[c.ID.Key()] = true
	}
	if len(res.Removed) != 2 || !removed[extra.Key()] || !removed[lib.Key()] {
		t.Errorf("removed: %+v", res.Removed)
	}
	if len(res.RemovedManifests) != 1 || !res.RemovedManifests[0].Equal(libID) {
		t.Errorf("removed manifests: %v", res.RemovedManifests)
	}
	want(t, e, "app", "app v2")
	ctx := context.Background()
	for _, id := range []suit.ComponentID{extra, lib} {
		if _, _, err := e.store.Open(ctx, id); !errors.Is(err, processor.ErrNotFound) {
			t.Errorf("%s still installed (%v)", id, err)
		}
	}
	if _, err := e.store.Manifest(ctx, libID); !errors.Is(err, processor.ErrNotFound) {
		t.Errorf("dependency record kept (%v)", err)
	}
	rec, err := e.store.Manifest(ctx, appID)
	if err != nil {
		t.Fatal(err)
	}
	if rec.SequenceNumber != 2 || len(rec.Dependencies) != 0 || len(rec.Components) != 1 || !rec.Components[0].Equal(app) {
		t.Errorf("record: seq %d, dependencies %v, components %v", rec.SequenceNumber, rec.Dependencies, rec.Components)
	}
}

// TestDependencyDepthLimit: a dependency chain one level deeper than
// Limits.MaxDependencyLevels fails before anything is installed; at the
// limit it installs.
func TestDependencyDepthLimit(t *testing.T) {
	build := builtSigned(t)
	var chain []byte
	for i := 0; i < 3; i++ {
		spec := suit.ManifestSpec{ManifestComponentID: suit.NewComponentID("level", fmt.Sprint(i), "suit"), SequenceNumber: 1,
			Components: []suit.ComponentSpec{{ID: suit.NewComponentID("level", fmt.Sprint(i)), Payload: []byte{byte(i)}, Integrated: true}}}
		if chain != nil {
			spec.Dependencies = []suit.DependencySpec{{Envelope: chain}}
		}
		chain = build(spec)
	}
	// The root is level 0, so the chain reaches level 2.
	e := newEnv(t, func(c *processor.Config) { c.Limits.MaxDependencyLevels = 1 })
	res, err := install(t, e, chain)
	wantFailure(t, res, err, suit.ReasonCBORParse, "dependencies nested deeper than 1")
	storeEmpty(t, e)
	e = newEnv(t, func(c *processor.Config) { c.Limits.MaxDependencyLevels = 2 })
	if res := mustInstall(t, e, chain); len(res.Installed) != 3 {
		t.Fatalf("installed %d components, want 3", len(res.Installed))
	}
}
