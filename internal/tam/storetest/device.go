package storetest

import (
	"fmt"
	"testing"
	"time"

	"github.com/teep-go/teep/internal/tam"
)

func testDevices(t *testing.T, s tam.Store) {
	d1, d2 := device(2), device(1)
	update(t, s, func(tx tam.Tx) error {
		if err := tx.PutDevice(ctx, d1); err != nil {
			return err
		}
		return tx.PutDevice(ctx, d2)
	})
	view(t, s, func(tx tam.Tx) error {
		got, err := tx.Device(ctx, d1.KID)
		if err != nil {
			return err
		}
		equal(t, "Device", got, d1)
		all, err := tx.Devices(ctx)
		equal(t, "Devices (by kid)", all, []tam.Device{d2, d1})
		return err
	})
	d1.Labels, d1.Status, d1.LastSeen, d1.NeedsAttestation, d1.HWModel = nil, tam.StatusFailed, at(time.Hour), true, nil
	d1.AttestedAt = time.Time{}
	update(t, s, func(tx tam.Tx) error { return tx.PutDevice(ctx, d1) })
	view(t, s, func(tx tam.Tx) error {
		got, err := tx.Device(ctx, d1.KID)
		equal(t, "replaced Device", got, d1)
		if !got.AttestedAt.IsZero() {
			t.Fatalf("zero AttestedAt came back as %v", got.AttestedAt)
		}
		_, err2 := tx.Device(ctx, []byte{9})
		wantErr(t, err2, tam.ErrNotFound, "unknown device")
		return err
	})
	update(t, s, func(tx tam.Tx) error { return tx.DeleteDevice(ctx, d1.KID) })
	err := s.Update(ctx, func(tx tam.Tx) error { return tx.DeleteDevice(ctx, d1.KID) })
	wantErr(t, err, tam.ErrNotFound, "deleting a device twice")
}

// testDeviceTenantLabels: other tenants' labels round-trip per tenant,
// apart from the default tenant's; an empty list drops the tenant's entry.
func testDeviceTenantLabels(t *testing.T, s tam.Store) {
	d := device(1)
	d.SetLabelsOf("acme", []string{"region=eu"})
	d.SetLabelsOf("beta-corp", []string{"fleet-a", "region=us"})
	update(t, s, func(tx tam.Tx) error { return tx.PutDevice(ctx, d) })
	view(t, s, func(tx tam.Tx) error {
		got, err := tx.Device(ctx, d.KID)
		if err != nil {
			return err
		}
		equal(t, "Device with tenant labels", got, d)
		equal(t, "acme's labels", got.LabelsOf("acme"), []string{"region=eu"})
		equal(t, "default tenant's labels", got.LabelsOf(tam.DefaultTenant), []string{"fleet-a", "beta"})
		if l := got.LabelsOf("nobody"); l != nil {
			t.Fatalf("labels of a tenant that set none: %q", l)
		}
		return nil
	})
	d.SetLabelsOf("acme", nil)
	d.SetLabelsOf(tam.DefaultTenant, nil)
	update(t, s, func(tx tam.Tx) error { return tx.PutDevice(ctx, d) })
	view(t, s, func(tx tam.Tx) error {
		got, err := tx.Device(ctx, d.KID)
		equal(t, "Device after clearing two tenants' labels", got, d)
		equal(t, "tenants left", len(got.TenantLabels), 1)
		return err
	})
}

func testDeleteDeviceCascades(t *testing.T, s tam.Store) {
	d, other := device(1), device(2)
	id := cid(t, "x")
	fill := func(tx tam.Tx, dev tam.Device) error {
		if err := tx.PutDevice(ctx, dev); err != nil {
			return err
		}
		if err := tx.PutInstalled(ctx, dev.KID, tam.Installed{ComponentID: id, Sequence: 1, UpdatedAt: base}); err != nil {
			return err
		}
		if err := tx.PutFailure(ctx, tam.InstallFailure{DeviceKID: dev.KID, ComponentID: id, Sequence: 1, Attempts: 1, LastAt: base}); err != nil {
			return err
		}
		if _, err := tx.AddReport(ctx, tam.Report{DeviceKID: dev.KID, At: base, Kind: "success"}, 0); err != nil {
			return err
		}
		if err := tx.PutPending(ctx, tam.PendingUpdate{Token: append([]byte("token-"), dev.KID[0]), DeviceKID: dev.KID, CreatedAt: base, ExpiresAt: at(time.Hour)}, 0); err != nil {
			return err
		}
		return tx.PutPersonalization(ctx, tam.Personalization{DeviceKID: dev.KID, Name: "cfg", ComponentID: id, Sequence: 1, Envelope: []byte{1}, CreatedAt: base})
	}
	update(t, s, func(tx tam.Tx) error {
		if err := fill(tx, d); err != nil {
			return err
		}
		return fill(tx, other)
	})
	update(t, s, func(tx tam.Tx) error { return tx.DeleteDevice(ctx, d.KID) })
	view(t, s, func(tx tam.Tx) error {
		for _, c := range []struct {
			kid  []byte
			want int
		}{{d.KID, 0}, {other.KID, 1}} {
			in, _ := tx.Installed(ctx, c.kid)
			fs, _ := tx.Failures(ctx, c.kid)
			rs, _ := tx.Reports(ctx, c.kid, 0)
			ps, _ := tx.PendingFor(ctx, c.kid)
			pz, _ := tx.Personalizations(ctx, c.kid)
			if len(in) != c.want || len(fs) != c.want || len(rs) != c.want || len(ps) != c.want || len(pz) != c.want {
				t.Fatalf("device %x after delete: installed %d failures %d reports %d pending %d personalization %d, want %d each",
					c.kid[:1], len(in), len(fs), len(rs), len(ps), len(pz), c.want)
			}
		}
		return nil
	})
}

// testTouchDevice checks tam.DeviceSeenTx, for stores that implement it:
// last_seen changes only when the row holds every expected field, and
// nothing else changes.
func testTouchDevice(t *testing.T, s tam.Store) {
	d := device(1)
	update(t, s, func(tx tam.Tx) error { return tx.PutDevice(ctx, d) })
	touch := func(want tam.Device) bool {
		t.Helper()
		var done bool
		update(t, s, func(tx tam.Tx) (err error) {
			st, ok := tx.(tam.DeviceSeenTx)
			if !ok {
				t.Skip("the store has no TouchDevice (tam.DeviceSeenTx is optional)")
			}
			done, err = st.TouchDevice(ctx, want)
			return err
		})
		return done
	}
	stored := func() tam.Device { t.Helper(); return storedDevice(t, s, d.KID) }
	seen := d
	seen.LastSeen = at(2 * time.Hour)
	for _, c := range []struct {
		what string
		f    func(x *tam.Device)
	}{
		{"alg", func(x *tam.Device) { x.Alg = -7 }},
		{"numbering", func(x *tam.Device) { x.Numbering = "legacy-other" }},
		{"status", func(x *tam.Device) { x.Status = tam.StatusPending }},
		{"last error", func(x *tam.Device) { x.LastError = "other" }},
		{"last error code", func(x *tam.Device) { x.LastErrorCode = 99 }},
		{"kid", func(x *tam.Device) { x.KID = []byte{9} }},
	} {
		x := seen
		c.f(&x)
		if touch(x) {
			t.Fatalf("TouchDevice with another %s matched", c.what)
		}
		equal(t, "Device after a TouchDevice that did not match ("+c.what+")", stored(), d)
	}
	if !touch(seen) {
		t.Fatal("TouchDevice of an unchanged device did not match")
	}
	equal(t, "touched Device", stored(), seen)
	noAtt := d
	noAtt.Attestation = ""
	update(t, s, func(tx tam.Tx) error { return tx.PutDevice(ctx, noAtt) })
	if touch(seen) {
		t.Fatal("TouchDevice matched a device without attestation status")
	}
}

// testRecordSession checks tam.DeviceSessionTx, for stores that implement
// it: RecordSession writes last_seen, status, last error and (unless the
// device failed) its code, and matches only the alg, numbering and an
// attestation status; RecordSuccess turns pending or retry into ok and
// leaves every other status as it is.
func testRecordSession(t *testing.T, s tam.Store) {
	d := device(1)
	update(t, s, func(tx tam.Tx) error { return tx.PutDevice(ctx, d) })
	sessionTx := func(tx tam.Tx) tam.DeviceSessionTx {
		st, ok := tx.(tam.DeviceSessionTx)
		if !ok {
			t.Skip("the store has no RecordSession (tam.DeviceSessionTx is optional)")
		}
		return st
	}
	record := func(want tam.Device) bool {
		t.Helper()
		var done bool
		update(t, s, func(tx tam.Tx) (err error) {
			done, err = sessionTx(tx).RecordSession(ctx, want)
			return err
		})
		return done
	}
	stored := func() tam.Device { t.Helper(); return storedDevice(t, s, d.KID) }
	pending := d
	pending.LastSeen, pending.Status, pending.LastError, pending.LastErrorCode = at(2*time.Hour), tam.StatusPending, "", 0
	for _, c := range []struct {
		what string
		f    func(x *tam.Device)
	}{
		{"alg", func(x *tam.Device) { x.Alg = -7 }},
		{"numbering", func(x *tam.Device) { x.Numbering = "legacy-other" }},
		{"kid", func(x *tam.Device) { x.KID = []byte{9} }},
	} {
		x := pending
		c.f(&x)
		if record(x) {
			t.Fatalf("RecordSession with another %s matched", c.what)
		}
		equal(t, "Device after a RecordSession that did not match ("+c.what+")", stored(), d)
	}
	if !record(pending) {
		t.Fatal("RecordSession of a device with its alg and numbering did not match")
	}
	equal(t, "Device after RecordSession", stored(), pending)

	// A failed device keeps the code it was stored with.
	failed := pending
	failed.LastSeen, failed.Status, failed.LastError, failed.LastErrorCode = at(3*time.Hour), tam.StatusFailed, "gave up", 77
	if !record(failed) {
		t.Fatal("RecordSession of a failing device did not match")
	}
	want := failed
	want.LastErrorCode = pending.LastErrorCode
	equal(t, "Device after RecordSession with status failed", stored(), want)

	success := func(kid []byte, seen time.Time) error {
		t.Helper()
		return s.Update(ctx, func(tx tam.Tx) error { return sessionTx(tx).RecordSuccess(ctx, kid, seen) })
	}
	for _, c := range []struct {
		from, to tam.DeviceStatus
		code     int
	}{
		{tam.StatusPending, tam.StatusOK, 0},
		{tam.StatusRetry, tam.StatusOK, 0},
		{tam.StatusError, tam.StatusError, 12},
		{tam.StatusFailed, tam.StatusFailed, 12},
	} {
		x := d
		x.Status, x.LastErrorCode = c.from, 12
		update(t, s, func(tx tam.Tx) error { return tx.PutDevice(ctx, x) })
		if err := success(d.KID, at(4*time.Hour)); err != nil {
			t.Fatalf("RecordSuccess of a device with status %s: %v", c.from, err)
		}
		x.Status, x.LastErrorCode, x.LastSeen = c.to, c.code, at(4*time.Hour)
		equal(t, fmt.Sprintf("Device with status %s after RecordSuccess", c.from), stored(), x)
	}
	wantErr(t, success([]byte{9}, at(5*time.Hour)), tam.ErrNotFound, "RecordSuccess of an unknown device")

	noAtt := d
	noAtt.Attestation = ""
	update(t, s, func(tx tam.Tx) error { return tx.PutDevice(ctx, noAtt) })
	if record(pending) {
		t.Fatal("RecordSession matched a device without attestation status")
	}
}

// storedDevice is the device kid as the store holds it.
func storedDevice(t *testing.T, s tam.Store, kid []byte) tam.Device {
	t.Helper()
	var got tam.Device
	view(t, s, func(tx tam.Tx) (err error) { got, err = tx.Device(ctx, kid); return err })
	return got
}
