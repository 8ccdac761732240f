package tam

import (
	"context"
	"fmt"
)

// auditKey carries the pending audit entry of an admin request.
type auditKey struct{}

// PendingAudit is the audit entry of one admin request. The store the
// engine writes through (see auditStore) appends it inside the first
// transaction of the request that commits a change, so the record and the
// change are kept or lost together.
type PendingAudit struct {
	Entry   AuditEntry
	Written bool // set once the entry is in the database
}

// WithAudit returns a context whose engine writes a commit audit p.
func WithAudit(ctx context.Context, p *PendingAudit) context.Context {
	return context.WithValue(ctx, auditKey{}, p)
}

func pendingAudit(ctx context.Context) *PendingAudit {
	p, _ := ctx.Value(auditKey{}).(*PendingAudit)
	return p
}

// auditStore appends the request's pending audit entry to the first
// Update it runs.
type auditStore struct{ Store }

func (s auditStore) Update(ctx context.Context, fn func(Tx) error) error {
	p := pendingAudit(ctx)
	if p == nil || p.Written {
		return s.Store.Update(ctx, fn)
	}
	var id int64
	err := s.Store.Update(ctx, func(tx Tx) error {
		if err := fn(tx); err != nil {
			return err
		}
		e := p.Entry
		e.Outcome = "ok"
		var err error
		if id, err = tx.AddAudit(ctx, e); err != nil {
			return fmt.Errorf("audit: %w", err)
		}
		return nil
	})
	if err == nil {
		p.Written, p.Entry.ID, p.Entry.Outcome = true, id, "ok"
	}
	return err
}
