package storetest

import (
	"testing"

	"github.com/teep-go/teep/internal/tam"
	"github.com/teep-go/teep/suit"
)

func testPersonalization(t *testing.T, s tam.Store) {
	d := device(1)
	p := tam.Personalization{DeviceKID: d.KID, Name: "config", ComponentID: cid(t, "pz", "config", "suit"), PayloadID: cid(t, "pz", "config"), Sequence: 1,
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
		got, err := tx.Personalization(ctx, d.KID, "config")
		equal(t, "Personalization", got, p)
		all, _ := tx.Personalizations(ctx, d.KID)
		equal(t, "Personalizations", all, []tam.Personalization{q, p})
		return err
	})
	update(t, s, func(tx tam.Tx) error { return tx.DeletePersonalization(ctx, d.KID, "config") })
	view(t, s, func(tx tam.Tx) error {
		_, err := tx.Personalization(ctx, d.KID, "config")
		wantErr(t, err, tam.ErrNotFound, "deleted personalization")
		return nil
	})
	wantErr(t, s.Update(ctx, func(tx tam.Tx) error { return tx.DeletePersonalization(ctx, d.KID, "config") }), tam.ErrNotFound, "deleting twice")
}
