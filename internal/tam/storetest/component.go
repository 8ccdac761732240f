package storetest

import (
	"fmt"
	"math"
	"testing"
	"time"

	"github.com/teep-go/teep/internal/tam"
	"github.com/teep-go/teep/suit"
)

func testComponents(t *testing.T, s tam.Store) {
	a, b := cid(t, "b-comp"), cid(t, "a-comp")
	update(t, s, func(tx tam.Tx) error {
		for _, v := range []tam.ComponentVersion{version(t, a, 1), version(t, a, 5), version(t, b, 2)} {
			if err := tx.AddComponentVersion(ctx, v, []byte(fmt.Sprintf("envelope-%s-%d", v.ComponentID, v.Sequence))); err != nil {
				return err
			}
		}
		return nil
	})
	view(t, s, func(tx tam.Tx) error {
		cs, err := tx.Components(ctx)
		if err != nil {
			return err
		}
		ids := []suit.ComponentID{a, b}
		if tam.IDHex(b) < tam.IDHex(a) { // stores list by the hex of the encoding
			ids = []suit.ComponentID{b, a}
		}
		if len(cs) != 2 || !cs[0].ID.Equal(ids[0]) || !cs[1].ID.Equal(ids[1]) {
			t.Fatalf("Components = %+v, want ids %v", cs, ids)
		}
		c, err := tx.Component(ctx, a)
		if err != nil {
			return err
		}
		want := tam.Component{ID: a, Latest: 5, Versions: 2, CreatedAt: at(time.Second), UpdatedAt: at(5 * time.Second)}
		equal(t, "Component", c, want)
		vs, err := tx.ComponentVersions(ctx, a)
		if err != nil {
			return err
		}
		equal(t, "ComponentVersions", vs, []tam.ComponentVersion{version(t, a, 1), version(t, a, 5)})
		all, err := tx.AllVersions(ctx)
		if err != nil {
			return err
		}
		wantAll := []tam.ComponentVersion{version(t, b, 2), version(t, a, 1), version(t, a, 5)}
		if tam.IDHex(a) < tam.IDHex(b) {
			wantAll = []tam.ComponentVersion{version(t, a, 1), version(t, a, 5), version(t, b, 2)}
		}
		equal(t, "AllVersions", all, wantAll)
		v, err := tx.ComponentVersion(ctx, a, 5)
		if err != nil {
			return err
		}
		equal(t, "ComponentVersion", v, version(t, a, 5))
		env, err := tx.Envelope(ctx, a, 1)
		if err != nil {
			return err
		}
		if string(env) != fmt.Sprintf("envelope-%s-1", a) {
			t.Fatalf("Envelope = %q", env)
		}
		_, err = tx.ComponentVersion(ctx, a, 2)
		wantErr(t, err, tam.ErrNotFound, "ComponentVersion of a missing sequence")
		_, err = tx.Envelope(ctx, a, 2)
		wantErr(t, err, tam.ErrNotFound, "Envelope of a missing sequence")
		_, err = tx.Component(ctx, cid(t, "nope"))
		wantErr(t, err, tam.ErrNotFound, "Component of a missing id")
		_, err = tx.ComponentVersions(ctx, cid(t, "nope"))
		wantErr(t, err, tam.ErrNotFound, "ComponentVersions of a missing id")
		return nil
	})
}

func testComponentSequence(t *testing.T, s tam.Store) {
	a := cid(t, "c")
	update(t, s, func(tx tam.Tx) error { return tx.AddComponentVersion(ctx, version(t, a, 7), []byte("x")) })
	for _, seq := range []uint64{7, 3, 0} {
		err := s.Update(ctx, func(tx tam.Tx) error { return tx.AddComponentVersion(ctx, version(t, a, seq), []byte("y")) })
		wantErr(t, err, tam.ErrSequence, fmt.Sprintf("adding sequence %d after 7", seq))
	}
	update(t, s, func(tx tam.Tx) error { return tx.AddComponentVersion(ctx, version(t, a, 8), []byte("z")) })
	view(t, s, func(tx tam.Tx) error {
		vs, err := tx.ComponentVersions(ctx, a)
		if err != nil {
			return err
		}
		if len(vs) != 2 || vs[0].Sequence != 7 || vs[1].Sequence != 8 {
			t.Fatalf("versions = %+v", vs)
		}
		return nil
	})
}

func testDeleteComponent(t *testing.T, s tam.Store) {
	a, b := cid(t, "a"), cid(t, "b")
	update(t, s, func(tx tam.Tx) error {
		for _, id := range []suit.ComponentID{a, b} {
			if err := tx.AddComponentVersion(ctx, version(t, id, 1), []byte("e")); err != nil {
				return err
			}
			if _, err := tx.PutPolicy(ctx, tam.Policy{Component: id, Mode: tam.Required, Scope: tam.ScopeAll, CreatedAt: base}); err != nil {
				return err
			}
		}
		return nil
	})
	update(t, s, func(tx tam.Tx) error { return tx.DeleteComponent(ctx, a) })
	view(t, s, func(tx tam.Tx) error {
		_, err := tx.Component(ctx, a)
		wantErr(t, err, tam.ErrNotFound, "deleted component")
		_, err = tx.Envelope(ctx, a, 1)
		wantErr(t, err, tam.ErrNotFound, "envelope of deleted component")
		ps, err := tx.Policies(ctx)
		if err != nil {
			return err
		}
		if len(ps) != 1 || !ps[0].Component.Equal(b) {
			t.Fatalf("policies after delete = %+v, want only %s's", ps, b)
		}
		return nil
	})
	err := s.Update(ctx, func(tx tam.Tx) error { return tx.DeleteComponent(ctx, a) })
	wantErr(t, err, tam.ErrNotFound, "deleting twice")
	// A deleted component can be registered again from any sequence.
	update(t, s, func(tx tam.Tx) error { return tx.AddComponentVersion(ctx, version(t, a, 1), []byte("again")) })
}

func testSequenceLimit(t *testing.T, s tam.Store) {
	err := s.Update(ctx, func(tx tam.Tx) error {
		return tx.AddComponentVersion(ctx, version(t, cid(t, "big"), math.MaxInt64+1), []byte("e"))
	})
	if err == nil {
		t.Fatal("a sequence number above MaxInt64 was accepted")
	}
	update(t, s, func(tx tam.Tx) error {
		return tx.AddComponentVersion(ctx, version(t, cid(t, "big"), math.MaxInt64), []byte("e"))
	})
	view(t, s, func(tx tam.Tx) error {
		c, err := tx.Component(ctx, cid(t, "big"))
		if c.Latest != math.MaxInt64 {
			t.Fatalf("Latest = %d", c.Latest)
		}
		return err
	})
}
