package pgstore

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/teep-go/teep/internal/tam"
	"github.com/teep-go/teep/internal/tam/pgstore/pgtest"
)

// Two Store handles on one database stand for two replicas: what one
// consumes, the other must see consumed, whatever the interleaving.
func TestReplicasShareSingleUse(t *testing.T) {
	ctx := context.Background()
	dsn := pgtest.DSN(t)
	a, b := open(t, dsn), open(t, dsn)
	defer a.Close()
	defer b.Close()
	replicas := []*Store{a, b}
	kid := bytes.Repeat([]byte{7}, 32)
	if err := a.Update(ctx, func(tx tam.Tx) error { return tx.PutDevice(ctx, tam.Device{KID: kid, Status: tam.StatusOK}) }); err != nil {
		t.Fatal(err)
	}
	expires := time.Now().Add(time.Hour)
	const tokens, racers = 20, 8
	for i := 0; i < tokens; i++ {
		tok := []byte(fmt.Sprintf("update-token-%04d", i))
		if err := a.Update(ctx, func(tx tam.Tx) error {
			return tx.PutPending(ctx, tam.PendingUpdate{Token: tok, DeviceKID: kid, CreatedAt: time.Now(), ExpiresAt: expires}, 0)
		}); err != nil {
			t.Fatal(err)
		}
	}
	var queryWins, updateWins, refused atomic.Int32
	var wg sync.WaitGroup
	for i := 0; i < tokens; i++ {
		for r := 0; r < racers; r++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				s := replicas[r%2]
				// A QueryRequest token and an Update token, each raced by
				// several sessions, half on each replica; every winner also
				// bumps the device (read-modify-write under the row lock).
				err := s.Update(ctx, func(tx tam.Tx) error {
					if err := tx.UseToken(ctx, []byte(fmt.Sprintf("query-token-%04d", i)), expires); err != nil {
						return err
					}
					d, err := tx.Device(ctx, kid)
					if err != nil {
						return err
					}
					d.LastErrorCode++
					return tx.PutDevice(ctx, d)
				})
				switch {
				case err == nil:
					queryWins.Add(1)
				case errors.Is(err, tam.ErrTokenUsed):
					refused.Add(1)
				default:
					t.Errorf("UseToken: %v", err)
				}
				err = s.Update(ctx, func(tx tam.Tx) error {
					return tx.DeletePending(ctx, []byte(fmt.Sprintf("update-token-%04d", i)))
				})
				switch {
				case err == nil:
					updateWins.Add(1)
				case errors.Is(err, tam.ErrNotFound):
					refused.Add(1)
				default:
					t.Errorf("DeletePending: %v", err)
				}
			}()
		}
	}
	wg.Wait()
	if queryWins.Load() != tokens || updateWins.Load() != tokens || refused.Load() != 2*tokens*(racers-1) {
		t.Fatalf("query tokens accepted %d times, update tokens %d, refusals %d; want %d, %d, %d",
			queryWins.Load(), updateWins.Load(), refused.Load(), tokens, tokens, 2*tokens*(racers-1))
	}
	if err := b.View(ctx, func(tx tam.Tx) error {
		d, err := tx.Device(ctx, kid)
		if err == nil && d.LastErrorCode != tokens {
			t.Errorf("device counter %d, want %d (lost updates across replicas)", d.LastErrorCode, tokens)
		}
		return err
	}); err != nil {
		t.Fatal(err)
	}
}

// The per-device caps count exactly when both replicas add at once.
func TestReplicasKeepPendingCap(t *testing.T) {
	ctx := context.Background()
	dsn := pgtest.DSN(t)
	a, b := open(t, dsn), open(t, dsn)
	defer a.Close()
	defer b.Close()
	kid := bytes.Repeat([]byte{8}, 32)
	if err := a.Update(ctx, func(tx tam.Tx) error { return tx.PutDevice(ctx, tam.Device{KID: kid, Status: tam.StatusOK}) }); err != nil {
		t.Fatal(err)
	}
	const n, maxPending, keep = 24, 3, 5
	var wg sync.WaitGroup
	for i := 0; i < n; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			s := []*Store{a, b}[i%2]
			err := s.Update(ctx, func(tx tam.Tx) error {
				now := time.Now()
				if err := tx.PutPending(ctx, tam.PendingUpdate{Token: []byte(fmt.Sprintf("capped-token-%04d", i)), DeviceKID: kid,
					CreatedAt: now, ExpiresAt: now.Add(time.Hour)}, maxPending); err != nil {
					return err
				}
				_, err := tx.AddReport(ctx, tam.Report{DeviceKID: kid, At: now, Kind: "success"}, keep)
				return err
			})
			if err != nil {
				t.Errorf("Update: %v", err)
			}
		}()
	}
	wg.Wait()
	if err := a.View(ctx, func(tx tam.Tx) error {
		ps, err := tx.PendingFor(ctx, kid)
		if err != nil {
			return err
		}
		rs, err := tx.Reports(ctx, kid, 0)
		if len(ps) != maxPending || len(rs) != keep {
			t.Errorf("%d pending Updates, %d reports; want %d and %d", len(ps), len(rs), maxPending, keep)
		}
		return err
	}); err != nil {
		t.Fatal(err)
	}
}
