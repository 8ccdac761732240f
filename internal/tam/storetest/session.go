package storetest

import (
	"fmt"
	"testing"
	"time"

	"github.com/teep-go/teep/internal/tam"
	"github.com/teep-go/teep/suit"
)

func pending(kid []byte, token string, created time.Duration, t *testing.T) tam.PendingUpdate {
	return tam.PendingUpdate{
		Token:     []byte(token),
		DeviceKID: kid,
		Numbering: "draft-26",
		Install: []tam.SentManifest{
			{ComponentID: cid(t, "a"), Sequence: 2, Requested: true},
			{ComponentID: cid(t, "p"), Sequence: 9, Personalization: true},
		},
		Remove:    []suit.ComponentID{cid(t, "old")},
		CreatedAt: at(created),
		ExpiresAt: at(created + time.Hour),
	}
}

func testPending(t *testing.T, s tam.Store) {
	d := device(1)
	p := pending(d.KID, "token-one-123456", 0, t)
	wantErr(t, s.Update(ctx, func(tx tam.Tx) error { return tx.PutPending(ctx, p, 0) }), tam.ErrNotFound, "pending for an unknown device")
	update(t, s, func(tx tam.Tx) error {
		if err := tx.PutDevice(ctx, d); err != nil {
			return err
		}
		return tx.PutPending(ctx, p, 0)
	})
	wantErr(t, s.Update(ctx, func(tx tam.Tx) error { return tx.PutPending(ctx, p, 0) }), tam.ErrExists, "same token twice")
	view(t, s, func(tx tam.Tx) error {
		got, err := tx.Pending(ctx, p.Token)
		equal(t, "Pending", got, p)
		_, err2 := tx.Pending(ctx, []byte("unknown-token-12"))
		wantErr(t, err2, tam.ErrNotFound, "unknown token")
		return err
	})
	update(t, s, func(tx tam.Tx) error { return tx.DeletePending(ctx, p.Token) })
	wantErr(t, s.Update(ctx, func(tx tam.Tx) error { return tx.DeletePending(ctx, p.Token) }), tam.ErrNotFound, "consuming twice")
}

func testPendingCap(t *testing.T, s tam.Store) {
	d, other := device(1), device(2)
	update(t, s, func(tx tam.Tx) error {
		if err := tx.PutDevice(ctx, d); err != nil {
			return err
		}
		if err := tx.PutDevice(ctx, other); err != nil {
			return err
		}
		return tx.PutPending(ctx, pending(other.KID, "other-device-tok", 0, t), 2)
	})
	for i := 0; i < 5; i++ {
		update(t, s, func(tx tam.Tx) error {
			return tx.PutPending(ctx, pending(d.KID, fmt.Sprintf("token-%010d", i), time.Duration(i)*time.Second, t), 2)
		})
	}
	view(t, s, func(tx tam.Tx) error {
		ps, err := tx.PendingFor(ctx, d.KID)
		if err != nil {
			return err
		}
		if len(ps) != 2 || string(ps[0].Token) != "token-0000000003" || string(ps[1].Token) != "token-0000000004" {
			t.Fatalf("after cap 2: %d pending, first %q", len(ps), ps[0].Token)
		}
		ps, _ = tx.PendingFor(ctx, other.KID)
		if len(ps) != 1 {
			t.Fatalf("other device's pending update was evicted")
		}
		return nil
	})
}

func testUseToken(t *testing.T, s tam.Store) {
	tok := []byte("query-token-0001")
	update(t, s, func(tx tam.Tx) error { return tx.UseToken(ctx, tok, at(time.Hour)) })
	wantErr(t, s.Update(ctx, func(tx tam.Tx) error { return tx.UseToken(ctx, tok, at(time.Hour)) }), tam.ErrTokenUsed, "token reuse")
	update(t, s, func(tx tam.Tx) error { return tx.UseToken(ctx, []byte("query-token-0002"), at(time.Hour)) })
}

func testPurgeExpired(t *testing.T, s tam.Store) {
	d := device(1)
	update(t, s, func(tx tam.Tx) error {
		if err := tx.PutDevice(ctx, d); err != nil {
			return err
		}
		if err := tx.PutPending(ctx, pending(d.KID, "expires-at-1h-00", 0, t), 0); err != nil {
			return err
		}
		if err := tx.PutPending(ctx, pending(d.KID, "expires-at-3h-00", 2*time.Hour, t), 0); err != nil {
			return err
		}
		if err := tx.UseToken(ctx, []byte("used-expires-1h0"), at(time.Hour)); err != nil {
			return err
		}
		return tx.UseToken(ctx, []byte("used-expires-5h0"), at(5*time.Hour))
	})
	var n int
	update(t, s, func(tx tam.Tx) (err error) { n, err = tx.PurgeExpired(ctx, at(time.Hour)); return err })
	if n != 2 {
		t.Fatalf("PurgeExpired removed %d rows, want 2", n)
	}
	view(t, s, func(tx tam.Tx) error {
		_, err := tx.Pending(ctx, []byte("expires-at-1h-00"))
		wantErr(t, err, tam.ErrNotFound, "expired pending")
		_, err = tx.Pending(ctx, []byte("expires-at-3h-00"))
		return err
	})
	// An expired used token is forgotten (it is rejected by its expiry instead).
	update(t, s, func(tx tam.Tx) error { return tx.UseToken(ctx, []byte("used-expires-1h0"), at(time.Hour)) })
	wantErr(t, s.Update(ctx, func(tx tam.Tx) error { return tx.UseToken(ctx, []byte("used-expires-5h0"), at(time.Hour)) }), tam.ErrTokenUsed, "unexpired token")
}
