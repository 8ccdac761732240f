package tam

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/teep-go/teep/cosekey"
	"github.com/teep-go/teep/teep"
)

// Bounds of the bulk operations: rows per transaction, so that one commit
// stays short and a failure loses one batch at most.
const (
	BulkBatch = 2000
	// MaxBulkAgents and MaxHistoryRounds bound one call.
	MaxBulkAgents    = 1_000_000
	MaxHistoryRounds = 10_000_000
)

// AddAgents pre-registers many Agent keys with the same labels, as
// AddAgent does for one, BulkBatch keys per transaction: a fleet of
// 100,000 devices is registered in seconds, not one commit per device. An
// invalid key or label fails the call before anything is written; a key
// already registered is re-labelled and marked pre-registered, as AddAgent
// does. It returns how many keys were registered.
func (e *Engine) AddAgents(ctx context.Context, keys []*cosekey.Key, labels []string) (int, error) {
	if len(keys) > MaxBulkAgents {
		return 0, invalidf("%d keys: at most %d in one call", len(keys), MaxBulkAgents)
	}
	labels, err := normLabels(labels)
	if err != nil {
		return 0, err
	}
	raws := make([][]byte, len(keys))
	for i, k := range keys {
		if k == nil {
			return 0, invalidf("key %d: missing", i)
		}
		if raws[i], err = k.MarshalCOSEKey(false); err != nil {
			return 0, invalidf("key %d: %v", i, err)
		}
	}
	done := 0
	for start := 0; start < len(keys); start += BulkBatch {
		end := min(start+BulkBatch, len(keys))
		err := e.store.Update(ctx, func(tx Tx) error {
			now := e.now()
			for i := start; i < end; i++ {
				kid := keys[i].KID()
				d, err := tx.Device(ctx, kid)
				switch {
				case errors.Is(err, ErrNotFound):
					d = Device{KID: kid, Key: raws[i], Attestation: AttestationNone, Status: StatusRegistered, CreatedAt: now}
				case err != nil:
					return err
				}
				d.Preregistered, d.Labels = true, labels
				if err := tx.PutDevice(ctx, d); err != nil {
					return err
				}
			}
			return nil
		})
		if err != nil {
			return done, fmt.Errorf("tam: bulk registration, keys %d..%d: %w", start, end-1, err)
		}
		done = end
	}
	e.log.InfoContext(ctx, "Agent keys registered in bulk", "count", done, "labels", labels)
	return done, nil
}

// FillHistory writes, through the store, the rows rounds completed
// policy-check rounds leave behind, spread over the devices kids (round i
// belongs to kids[i%len(kids)]): each round's consumed QueryRequest token (a
// token minted as a real QueryRequest's, kept until its expiry) and a
// "success" report (the store keeps the newest KeepReports per device), and
// the device's last-seen time. It is how a benchmark measures a TAM with
// a long history without running every round; BulkBatch rounds per
// transaction. Every device must exist (ErrNotFound otherwise, that batch
// not written).
func (e *Engine) FillHistory(ctx context.Context, kids [][]byte, rounds int) (int, error) {
	switch {
	case rounds < 0 || rounds > MaxHistoryRounds:
		return 0, invalidf("history rounds %d outside 0..%d", rounds, MaxHistoryRounds)
	case rounds > 0 && len(kids) == 0:
		return 0, invalidf("history rounds need devices")
	}
	done := 0
	for start := 0; start < rounds; start += BulkBatch {
		end := min(start+BulkBatch, rounds)
		err := e.store.Update(ctx, func(tx Tx) error {
			now := e.now()
			expires := now.Add(e.cfg.TokenLifetime)
			seen := map[string]bool{}
			for i := start; i < end; i++ {
				kid := kids[i%len(kids)]
				tok, err := e.tokens.newQuery(0, teep.Draft26, expires, kid)
				if err != nil {
					return err
				}
				if err := tx.UseToken(ctx, tok, expires); err != nil {
					return err
				}
				if _, err := tx.AddReport(ctx, Report{DeviceKID: kid, At: now, Kind: "success"}, e.cfg.KeepReports); err != nil {
					return fmt.Errorf("device %x: %w", kid, err)
				}
				if !seen[string(kid)] {
					seen[string(kid)] = true
					d, err := tx.Device(ctx, kid)
					if err != nil {
						return fmt.Errorf("device %x: %w", kid, err)
					}
					d.LastSeen = now.Truncate(time.Microsecond)
					if err := tx.PutDevice(ctx, d); err != nil {
						return err
					}
				}
			}
			return nil
		})
		if err != nil {
			return done, fmt.Errorf("tam: history rounds %d..%d: %w", start, end-1, err)
		}
		done = end
	}
	return done, nil
}
