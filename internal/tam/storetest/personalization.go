package storetest

import (
	"testing"

	"github.com/teep-go/teep/internal/tam"
	"github.com/teep-go/teep/suit"
)

func testPersonalization(t *testing.T, s tam.Store) {
	d := device(1)
	p := tam.Personalization{DeviceKID: d.KID, Tenant: tam.DefaultTenant, Name: "config", ComponentID: cid(t, "pz", "config", "suit"), PayloadID: cid(t, "pz", "config"), Sequence: 1,
		Envelope: []byte{0xd8, 0x6b}, Digest: []byte{1, 2}, DependsOn: []suit.ComponentID{cid(t, "ta")}, Size: 42, CreatedAt: base}
	wantErr(t, s.Update(ctx, func(tx tam.Tx) error { return tx.PutPersonalization(ctx, p) }), tam.ErrNotFound, "personalization for an unknown device")
	q := p
	q.Name, q.DependsOn = "a-key", nil
	update(t, s, func(tx tam.Tx) error {
		if err := tx.PutDevice(ctx, d); err != nil {
			return err
		}
		if err := tx.PutPersonalization(ctx, p); err != nil {
			return err
		}
		return tx.PutPersonalization(ctx, q)
	})
	p.Sequence, p.Envelope = 2, []byte{3}
	update(t, s, func(tx tam.Tx) error { return tx.PutPersonalization(ctx, p) })
	view(t, s, func(tx tam.Tx) error {
		got, err := tx.Personalization(ctx, d.KID, tam.DefaultTenant, "config")
		equal(t, "Personalization", got, p)
		all, _ := tx.Personalizations(ctx, d.KID)
		equal(t, "Personalizations", all, []tam.Personalization{q, p})
		return err
	})
	update(t, s, func(tx tam.Tx) error { return tx.DeletePersonalization(ctx, d.KID, tam.DefaultTenant, "config") })
	view(t, s, func(tx tam.Tx) error {
		_, err := tx.Personalization(ctx, d.KID, tam.DefaultTenant, "config")
		wantErr(t, err, tam.ErrNotFound, "deleted personalization")
		return nil
	})
	wantErr(t, s.Update(ctx, func(tx tam.Tx) error { return tx.DeletePersonalization(ctx, d.KID, tam.DefaultTenant, "config") }), tam.ErrNotFound, "deleting twice")
}

// testPersonalizationTenants: names are per (device, tenant); an empty
// Tenant is the default tenant's; an unknown tenant is refused.
func testPersonalizationTenants(t *testing.T, s tam.Store) {
	d := device(1)
	mine := tam.Personalization{DeviceKID: d.KID, Name: "config", ComponentID: cid(t, "pz", "config", "suit"), PayloadID: cid(t, "pz", "config"),
		Sequence: 3, Envelope: []byte{1}, Digest: []byte{1}, CreatedAt: base}
	theirs := mine
	theirs.Tenant, theirs.Sequence, theirs.Envelope = "acme", 1, []byte{2}
	theirs.ComponentID, theirs.PayloadID = cid(t, "pz", "acme", "config", "suit"), cid(t, "pz", "acme", "config")
	update(t, s, func(tx tam.Tx) error {
		if err := tx.AddTenant(ctx, tam.Tenant{ID: "acme", Name: "Acme", CreatedAt: base}); err != nil {
			return err
		}
		if err := tx.PutDevice(ctx, d); err != nil {
			return err
		}
		if err := tx.PutPersonalization(ctx, mine); err != nil {
			return err
		}
		return tx.PutPersonalization(ctx, theirs)
	})
	unknown := theirs
	unknown.Tenant = "nobody"
	wantErr(t, s.Update(ctx, func(tx tam.Tx) error { return tx.PutPersonalization(ctx, unknown) }), tam.ErrNotFound, "personalization of an unknown tenant")
	mine.Tenant = tam.DefaultTenant // stored and read back as the default tenant
	view(t, s, func(tx tam.Tx) error {
		got, err := tx.Personalization(ctx, d.KID, "", "config")
		if err != nil {
			return err
		}
		equal(t, "default tenant's item", got, mine)
		got, err = tx.Personalization(ctx, d.KID, "acme", "config")
		if err != nil {
			return err
		}
		equal(t, "acme's item of the same name", got, theirs)
		all, err := tx.Personalizations(ctx, d.KID)
		equal(t, "Personalizations (by tenant, name)", all, []tam.Personalization{theirs, mine})
		return err
	})
	update(t, s, func(tx tam.Tx) error { return tx.DeletePersonalization(ctx, d.KID, "acme", "config") })
	view(t, s, func(tx tam.Tx) error {
		_, err := tx.Personalization(ctx, d.KID, "acme", "config")
		wantErr(t, err, tam.ErrNotFound, "acme's deleted item")
		got, err := tx.Personalization(ctx, d.KID, tam.DefaultTenant, "config")
		equal(t, "the default tenant's item survives", got, mine)
		return err
	})
	wantErr(t, s.Update(ctx, func(tx tam.Tx) error { return tx.DeletePersonalization(ctx, d.KID, "acme", "config") }), tam.ErrNotFound, "deleting acme's twice")
}
