package softtee

import (
	"context"
	"fmt"
	"io"
	"strings"

	"github.com/teep-go/teep/internal/tee"
)

// keyPrefix names the sealed objects holding the TEE's private keys. The
// Storage handed to callers does not show them: keys never leave the TEE,
// and Storage is an exit like any other (the suite in internal/tee/teetest
// checks it).
const keyPrefix = "keys/"

// taPrefix names the sealed storage of Trusted Applications, one
// namespace per component (run.go); no caller outside the TA sees it.
const taPrefix = "ta/"

func reserved(name string) bool {
	return strings.HasPrefix(name, keyPrefix) || strings.HasPrefix(name, taPrefix)
}

func hidden(name string) error {
	return fmt.Errorf("%w: %s (names under %s and %s are the TEE's own)", tee.ErrNotFound, name, keyPrefix, taPrefix)
}

func errReserved(name string) error {
	return fmt.Errorf("softtee: %s: names under %s and %s are reserved for the TEE's keys and its TAs", name, keyPrefix, taPrefix)
}

func visible(names []string) []string {
	out := names[:0:0]
	for _, n := range names {
		if !reserved(n) {
			out = append(out, n)
		}
	}
	return out
}

// callerStorage is the sealed store as callers see it: everything but the
// reserved key objects.
type callerStorage struct {
	st  *store
	run *runner
}

func (c callerStorage) Get(name string) ([]byte, error) {
	if reserved(name) {
		return nil, hidden(name)
	}
	return c.st.Get(name)
}

func (c callerStorage) Open(name string) (io.ReadCloser, int64, error) {
	if reserved(name) {
		return nil, 0, hidden(name)
	}
	return c.st.Open(name)
}

func (c callerStorage) List(prefix string) []string { return visible(c.st.List(prefix)) }

func (c callerStorage) Counter(name string) uint64 { return c.st.Counter(name) }

func (c callerStorage) Begin(ctx context.Context) (tee.Txn, error) {
	t, err := c.st.Begin(ctx)
	if err != nil {
		return nil, err
	}
	return &callerTxn{Txn: t, ctx: ctx, run: c.run}, nil
}

type callerTxn struct {
	tee.Txn
	ctx context.Context
	run *runner
	// components are the component objects written or deleted: once
	// committed, their compiled TA code is forgotten.
	components []string
	// removed are component objects deleted in this transaction: a
	// component gone at commit takes its TA's sealed storage with it
	// (one replaced by an update is not gone, and keeps it).
	removed []string
}

func (x *callerTxn) Get(name string) ([]byte, error) {
	if reserved(name) {
		return nil, hidden(name)
	}
	return x.Txn.Get(name)
}

func (x *callerTxn) Open(name string) (io.ReadCloser, int64, error) {
	if reserved(name) {
		return nil, 0, hidden(name)
	}
	return x.Txn.Open(name)
}

func (x *callerTxn) List(prefix string) []string { return visible(x.Txn.List(prefix)) }

func (x *callerTxn) Put(name string, data []byte) error {
	if reserved(name) {
		return errReserved(name)
	}
	x.touch(name)
	return x.Txn.Put(name, data)
}

func (x *callerTxn) Create(name string) (io.WriteCloser, error) {
	if reserved(name) {
		return nil, errReserved(name)
	}
	x.touch(name)
	return x.Txn.Create(name)
}

func (x *callerTxn) touch(name string) {
	if strings.HasPrefix(name, tee.ComponentPrefix) {
		x.components = append(x.components, name)
	}
}

func (x *callerTxn) Delete(name string) error {
	if reserved(name) {
		return errReserved(name)
	}
	if err := x.Txn.Delete(name); err != nil {
		return err
	}
	if strings.HasPrefix(name, tee.ComponentPrefix) {
		x.removed = append(x.removed, name)
		x.components = append(x.components, name)
	}
	return nil
}

func (x *callerTxn) Commit() error {
	for _, name := range x.removed {
		if r, _, err := x.Txn.Open(name); err == nil {
			r.Close()
			continue // written again after the delete: an update
		}
		for _, obj := range x.Txn.List(taNamespace(name)) {
			if err := x.Txn.Delete(obj); err != nil {
				return fmt.Errorf("softtee: deleting the state of removed %s: %w", name, err)
			}
		}
	}
	if err := x.Txn.Commit(); err != nil {
		return err
	}
	for _, name := range x.components {
		x.run.changed(context.WithoutCancel(x.ctx), name)
	}
	return nil
}
