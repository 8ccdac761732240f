package storetest

import (
	"reflect"
	"testing"

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
			t.Fatalf("%s: DeviceState:\n got  %+v\n want %+v", what, got, want)
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
	check("a device with installed components, failures and personalizations")
	got, _ := ds.DeviceState(ctx, d.KID)
	if len(got.Installed) != 2 || len(got.Failures) != 2 || len(got.Personalizations) != 2 {
		t.Fatalf("DeviceState holds %d installed, %d failures, %d personalizations, want 2 of each (none of the other device's)",
			len(got.Installed), len(got.Failures), len(got.Personalizations))
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
