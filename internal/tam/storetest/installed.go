package storetest

import (
	"testing"
	"time"

	"github.com/teep-go/teep/internal/tam"
)

func testInstalled(t *testing.T, s tam.Store) {
	d := device(1)
	a, b := cid(t, "b"), cid(t, "a")
	err := s.Update(ctx, func(tx tam.Tx) error {
		return tx.PutInstalled(ctx, d.KID, tam.Installed{ComponentID: a, Sequence: 1})
	})
	wantErr(t, err, tam.ErrNotFound, "installed on an unknown device")
	ia := tam.Installed{ComponentID: a, Sequence: 3, Managed: true, Requested: true, UpdatedAt: base}
	ib := tam.Installed{ComponentID: b, Sequence: 0, UpdatedAt: at(time.Second)}
	update(t, s, func(tx tam.Tx) error {
		if err := tx.PutDevice(ctx, d); err != nil {
			return err
		}
		if err := tx.PutInstalled(ctx, d.KID, ia); err != nil {
			return err
		}
		return tx.PutInstalled(ctx, d.KID, ib)
	})
	ia.Sequence, ia.Requested = 4, false
	update(t, s, func(tx tam.Tx) error { return tx.PutInstalled(ctx, d.KID, ia) })
	view(t, s, func(tx tam.Tx) error {
		got, err := tx.Installed(ctx, d.KID)
		want := []tam.Installed{ia, ib}
		if tam.IDHex(b) < tam.IDHex(a) { // stores list by the hex of the encoding
			want = []tam.Installed{ib, ia}
		}
		equal(t, "Installed", got, want)
		return err
	})
	update(t, s, func(tx tam.Tx) error { return tx.DeleteInstalled(ctx, d.KID, a) })
	err = s.Update(ctx, func(tx tam.Tx) error { return tx.DeleteInstalled(ctx, d.KID, a) })
	wantErr(t, err, tam.ErrNotFound, "deleting an installed component twice")
	view(t, s, func(tx tam.Tx) error {
		got, err := tx.Installed(ctx, d.KID)
		equal(t, "Installed after delete", got, []tam.Installed{ib})
		return err
	})
}

func testFailures(t *testing.T, s tam.Store) {
	d := device(1)
	id := cid(t, "f")
	f := tam.InstallFailure{DeviceKID: d.KID, ComponentID: id, Sequence: 2, Attempts: 1, LastError: "disk full", LastAt: base}
	wantErr(t, s.Update(ctx, func(tx tam.Tx) error { return tx.PutFailure(ctx, f) }), tam.ErrNotFound, "failure for an unknown device")
	update(t, s, func(tx tam.Tx) error {
		if err := tx.PutDevice(ctx, d); err != nil {
			return err
		}
		return tx.PutFailure(ctx, f)
	})
	f.Attempts, f.LastError = 2, "again"
	f2 := tam.InstallFailure{DeviceKID: d.KID, ComponentID: id, Sequence: 3, Attempts: 1, LastAt: base}
	update(t, s, func(tx tam.Tx) error {
		if err := tx.PutFailure(ctx, f); err != nil {
			return err
		}
		return tx.PutFailure(ctx, f2)
	})
	view(t, s, func(tx tam.Tx) error {
		got, err := tx.Failures(ctx, d.KID)
		equal(t, "Failures", got, []tam.InstallFailure{f, f2})
		return err
	})
	update(t, s, func(tx tam.Tx) error { return tx.ClearFailures(ctx, d.KID) })
	view(t, s, func(tx tam.Tx) error {
		got, err := tx.Failures(ctx, d.KID)
		if len(got) != 0 {
			t.Fatalf("failures after clear: %+v", got)
		}
		return err
	})
}
