package storetest

import (
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/teep-go/teep/internal/tam"
)

func testRollback(t *testing.T, s tam.Store) {
	d := device(1)
	boom := errors.New("boom")
	err := s.Update(ctx, func(tx tam.Tx) error {
		if err := tx.PutDevice(ctx, d); err != nil {
			return err
		}
		if err := tx.AddComponentVersion(ctx, version(t, cid(t, "r"), 1), []byte("e")); err != nil {
			return err
		}
		if err := tx.UseToken(ctx, []byte("rolled-back-tok1"), at(time.Hour)); err != nil {
			return err
		}
		return boom
	})
	wantErr(t, err, boom, "Update returning an error")
	view(t, s, func(tx tam.Tx) error {
		_, err := tx.Device(ctx, d.KID)
		wantErr(t, err, tam.ErrNotFound, "device written by a failed Update")
		cs, _ := tx.Components(ctx)
		if len(cs) != 0 {
			t.Fatalf("component written by a failed Update survived")
		}
		return nil
	})
	update(t, s, func(tx tam.Tx) error { return tx.UseToken(ctx, []byte("rolled-back-tok1"), at(time.Hour)) })
}

func testViewReadOnly(t *testing.T, s tam.Store) {
	err := s.View(ctx, func(tx tam.Tx) error { return tx.PutDevice(ctx, device(1)) })
	if err == nil {
		t.Fatal("PutDevice inside View succeeded")
	}
	view(t, s, func(tx tam.Tx) error {
		_, err := tx.Device(ctx, device(1).KID)
		wantErr(t, err, tam.ErrNotFound, "device written inside View")
		return nil
	})
}

func testConcurrentTokenUse(t *testing.T, s tam.Store) {
	const n = 16
	var wins, used atomic.Int32
	var wg sync.WaitGroup
	for i := 0; i < n; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			err := s.Update(ctx, func(tx tam.Tx) error { return tx.UseToken(ctx, []byte("raced-token-0001"), at(time.Hour)) })
			switch {
			case err == nil:
				wins.Add(1)
			case errors.Is(err, tam.ErrTokenUsed):
				used.Add(1)
			default:
				t.Errorf("UseToken: %v", err)
			}
		}()
	}
	wg.Wait()
	if wins.Load() != 1 || used.Load() != n-1 {
		t.Fatalf("%d goroutines consumed the token, %d saw it used; want 1 and %d", wins.Load(), used.Load(), n-1)
	}
}

func testConcurrentUpdates(t *testing.T, s tam.Store) {
	d := device(1)
	update(t, s, func(tx tam.Tx) error { return tx.PutDevice(ctx, d) })
	const n = 20
	var wg sync.WaitGroup
	for i := 0; i < n; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			// Read-modify-write: lost updates would show as a count below n.
			err := s.Update(ctx, func(tx tam.Tx) error {
				dev, err := tx.Device(ctx, d.KID)
				if err != nil {
					return err
				}
				dev.LastErrorCode++
				return tx.PutDevice(ctx, dev)
			})
			if err != nil {
				t.Errorf("Update: %v", err)
			}
		}()
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := s.View(ctx, func(tx tam.Tx) error { _, err := tx.Devices(ctx); return err }); err != nil {
				t.Errorf("View: %v", err)
			}
		}()
	}
	wg.Wait()
	view(t, s, func(tx tam.Tx) error {
		dev, err := tx.Device(ctx, d.KID)
		if dev.LastErrorCode != d.LastErrorCode+n {
			t.Fatalf("counter = %d, want %d (lost updates)", dev.LastErrorCode, d.LastErrorCode+n)
		}
		return err
	})
}
