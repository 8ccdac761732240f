package storetest

import (
	"errors"
	"reflect"
	"testing"
	"time"

	"github.com/teep-go/teep/internal/tam"
	"github.com/teep-go/teep/suit"
)

// testDeviceState checks that a DeviceStateStore's one read returns what
// the Tx methods return for the same device, in the same order and with
// the same nil and empty values, and nothing of another device.
func testDeviceState(t *testing.T, s tam.Store) {
	ds, ok := s.(tam.DeviceStateStore)
	if !ok {
		t.Logf("%T does not implement tam.DeviceStateStore; the engine reads the same rows in a View", s)
		return
	}
	d, other := device(1), device(2)
	_, err := ds.DeviceState(ctx, d.KID)
	wantErr(t, err, tam.ErrNotFound, "DeviceState of an unknown device")

	update(t, s, func(tx tam.Tx) error {
		for _, dv := range []tam.Device{d, other} {
			if err := tx.PutDevice(ctx, dv); err != nil {
				return err
			}
		}
		return nil
	})
	check := func(what string) {
		t.Helper()
		var want tam.DeviceState
		view(t, s, func(tx tam.Tx) (err error) {
			if want.Device, err = tx.Device(ctx, d.KID); err != nil {
				return err
			}
			if want.Installed, err = tx.Installed(ctx, d.KID); err != nil {
				return err
			}
			if want.Personalizations, err = tx.Personalizations(ctx, d.KID); err != nil {
				return err
			}
			if want.Failures, err = tx.Failures(ctx, d.KID); err != nil {
				return err
			}
			if g, ok := tx.(tam.CatalogGenerationTx); ok {
				want.CatalogGeneration, err = g.CatalogGeneration(ctx)
			}
			return err
		})
		got, err := ds.DeviceState(ctx, d.KID)
		if err != nil {
			t.Fatalf("%s: DeviceState: %v", what, err)
		}
		if !reflect.DeepEqual(got, want) {
			t.Fatalf("%s: DeviceState:\n got  %#v\n want %#v", what, got, want)
		}
	}
	check("a device with nothing but its row")

	a, b := cid(t, "b-second"), cid(t, "a-first")
	update(t, s, func(tx tam.Tx) error {
		for _, dv := range [][]byte{d.KID, other.KID} {
			for _, id := range []suit.ComponentID{a, b} {
				if err := tx.PutInstalled(ctx, dv, tam.Installed{ComponentID: id, Sequence: 3, Managed: true, UpdatedAt: base}); err != nil {
					return err
				}
			}
			for _, seq := range []uint64{5, 4} {
				if err := tx.PutFailure(ctx, tam.InstallFailure{DeviceKID: dv, ComponentID: a, Sequence: seq, Attempts: 2, LastError: "no space", LastAt: base}); err != nil {
					return err
				}
			}
			for _, name := range []string{"zeta", "alpha"} {
				p := tam.Personalization{DeviceKID: dv, Tenant: tam.DefaultTenant, Name: name, ComponentID: cid(t, "pz", name, "suit"), PayloadID: cid(t, "pz", name),
					Sequence: 1, Envelope: []byte{0xd8, 0x6b}, Digest: []byte{1, 2}, DependsOn: []suit.ComponentID{a}, Size: 42, CreatedAt: base}
				if err := tx.PutPersonalization(ctx, p); err != nil {
					return err
				}
			}
		}
		return nil
	})
	// Another tenant's data with the same names, and dependency lists of
	// other lengths: personalizations are ordered by tenant, then name.
	update(t, s, func(tx tam.Tx) error {
		if err := tx.AddTenant(ctx, tam.Tenant{ID: "acme", Name: "Acme", CreatedAt: base}); err != nil {
			return err
		}
		for i, name := range []string{"zeta", "alpha"} {
			p := tam.Personalization{DeviceKID: d.KID, Tenant: "acme", Name: name, ComponentID: cid(t, "acme", name, "suit"), PayloadID: cid(t, "acme", name),
				Sequence: uint64(7 + i), Envelope: []byte{0xd8, 0x6b, byte(i)}, Digest: []byte{3, byte(i)}, Size: int64(i), CreatedAt: base}
			if i == 0 {
				p.DependsOn = []suit.ComponentID{a, b}
			}
			if err := tx.PutPersonalization(ctx, p); err != nil {
				return err
			}
		}
		return nil
	})
	check("a device with installed components, failures and personalizations")
	got, _ := ds.DeviceState(ctx, d.KID)
	if len(got.Installed) != 2 || len(got.Failures) != 2 || len(got.Personalizations) != 4 {
		t.Fatalf("DeviceState holds %d installed, %d failures, %d personalizations, want 2, 2 and 4 (none of the other device's)",
			len(got.Installed), len(got.Failures), len(got.Personalizations))
	}
	// The common case, which a store may read by a shorter path: installed
	// components and nothing else.
	update(t, s, func(tx tam.Tx) error {
		if err := tx.ClearFailures(ctx, d.KID); err != nil {
			return err
		}
		for _, tenant := range []string{tam.DefaultTenant, "acme"} {
			for _, name := range []string{"zeta", "alpha"} {
				if err := tx.DeletePersonalization(ctx, d.KID, tenant, name); err != nil {
					return err
				}
			}
		}
		return nil
	})
	check("a device with installed components only")
	if got, _ := ds.DeviceState(ctx, d.KID); len(got.Installed) != 2 {
		t.Fatalf("DeviceState holds %d installed, want 2", len(got.Installed))
	}

	var before uint64
	view(t, s, func(tx tam.Tx) (err error) {
		if g, ok := tx.(tam.CatalogGenerationTx); ok {
			before, err = g.CatalogGeneration(ctx)
		}
		return err
	})
	update(t, s, func(tx tam.Tx) error {
		return tx.AddComponentVersion(ctx, version(t, a, 1), []byte("x"))
	})
	check("after a catalog change")
	if got, _ := ds.DeviceState(ctx, d.KID); got.CatalogGeneration == before {
		t.Fatalf("catalog generation %d did not move with a catalog change", before)
	}
}

// testSteadyRound checks a SteadyRoundStore: both writes or neither, a
// used token or a passed epoch refused, a changed device row left to the
// caller.
func testSteadyRound(t *testing.T, s tam.Store) {
	sr, ok := s.(tam.SteadyRoundStore)
	if !ok {
		t.Logf("%T does not implement tam.SteadyRoundStore; the engine commits steady rounds with UpdateNoSync", s)
		return
	}
	var epoch uint64
	if ns, ok := s.(tam.NoSyncStore); ok {
		epoch = ns.Epoch()
	}
	d := device(1)
	update(t, s, func(tx tam.Tx) error { return tx.PutDevice(ctx, d) })
	seen := func() time.Time {
		t.Helper()
		var got tam.Device
		view(t, s, func(tx tam.Tx) (err error) { got, err = tx.Device(ctx, d.KID); return err })
		return got.LastSeen
	}
	tokenFree := func(tok string) bool {
		t.Helper()
		err := s.Update(ctx, func(tx tam.Tx) error {
			if err := tx.UseToken(ctx, []byte(tok), at(time.Hour)); err != nil {
				return err
			}
			return errProbe // roll back: only asking
		})
		if !errors.Is(err, errProbe) && !errors.Is(err, tam.ErrTokenUsed) {
			t.Fatalf("probing token %q: %v", tok, err)
		}
		return errors.Is(err, errProbe)
	}

	r := d
	r.LastSeen = at(2 * time.Hour)
	done, err := sr.SteadyRound(ctx, []byte("steady-token-1"), at(time.Hour), epoch, r)
	if err != nil || !done {
		t.Fatalf("SteadyRound: done %v, %v", done, err)
	}
	if !seen().Equal(r.LastSeen) || tokenFree("steady-token-1") {
		t.Fatalf("after SteadyRound: last_seen %v, token free %v; want %v and used", seen(), tokenFree("steady-token-1"), r.LastSeen)
	}

	r2 := d
	r2.LastSeen = at(3 * time.Hour)
	done, err = sr.SteadyRound(ctx, []byte("steady-token-1"), at(time.Hour), epoch, r2)
	wantErr(t, err, tam.ErrTokenUsed, "SteadyRound with a used token")
	if done || !seen().Equal(r.LastSeen) {
		t.Fatalf("a refused SteadyRound wrote last_seen %v (done %v)", seen(), done)
	}

	if _, ok := s.(tam.NoSyncStore); ok {
		done, err = sr.SteadyRound(ctx, []byte("steady-token-2"), at(time.Hour), epoch+1, r2)
		wantErr(t, err, tam.ErrTokenUsed, "SteadyRound under another epoch")
		if done || !seen().Equal(r.LastSeen) || !tokenFree("steady-token-2") {
			t.Fatalf("SteadyRound under another epoch wrote something (done %v)", done)
		}
	}

	changed := r2
	changed.Status = tam.StatusFailed // the stored row says otherwise
	done, err = sr.SteadyRound(ctx, []byte("steady-token-3"), at(time.Hour), epoch, changed)
	if err != nil || done {
		t.Fatalf("SteadyRound on a changed row: done %v, %v; want false, nil", done, err)
	}
	if !seen().Equal(r.LastSeen) || !tokenFree("steady-token-3") {
		t.Fatalf("SteadyRound on a changed row wrote something: last_seen %v, token free %v", seen(), tokenFree("steady-token-3"))
	}
}

var errProbe = errors.New("probe")

// testPendingWithKey checks a PendingKeyStore against Pending and Device.
func testPendingWithKey(t *testing.T, s tam.Store) {
	pk, ok := s.(tam.PendingKeyStore)
	if !ok {
		t.Logf("%T does not implement tam.PendingKeyStore; the engine reads the pending Update and its device in a View", s)
		return
	}
	d, other := device(1), device(2)
	p := pending(d.KID, "pending-key-0001", 0, t)
	update(t, s, func(tx tam.Tx) error {
		for _, dv := range []tam.Device{d, other} {
			if err := tx.PutDevice(ctx, dv); err != nil {
				return err
			}
		}
		if err := tx.PutPending(ctx, pending(other.KID, "pending-key-0002", 0, t), 0); err != nil {
			return err
		}
		return tx.PutPending(ctx, p, 0)
	})
	var want tam.PendingUpdate
	view(t, s, func(tx tam.Tx) (err error) { want, err = tx.Pending(ctx, p.Token); return err })
	got, key, err := pk.PendingWithKey(ctx, p.Token)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got, want) || !reflect.DeepEqual(key, d.Key) {
		t.Fatalf("PendingWithKey:\n got  %+v key %x\n want %+v key %x", got, key, want, d.Key)
	}
	_, _, err = pk.PendingWithKey(ctx, []byte("no-such-token-00"))
	wantErr(t, err, tam.ErrNotFound, "PendingWithKey of an unknown token")
}
