package processor

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/teep-go/teep/cosekey"
	"github.com/teep-go/teep/suit"
)

// run is the state of one procedure.
type run struct {
	p     *Processor
	ctx   context.Context
	proc  string
	opts  RunOptions
	start time.Time
	lim   Limits

	txn  Txn
	root *mctx
	// invoking: suit-invoke of the Invocation procedure is running, with
	// txn a read-only view of the committed store.
	invoking bool

	params  map[string]map[int64]suit.Param // by slot key, shared by the manifest tree
	staged  map[string]*stagedComp          // components written in this run
	order   []string                        // staging order of staged keys
	removed map[string]ComponentChange
	rmOrder []string
	digests map[digestKey]suit.Digest // digest of each slot's current content, by algorithm

	records    map[string]*ManifestRecord // working copies of manifest records
	deleted    map[string]bool            // manifest records to delete
	recOrder   []string
	linked     map[string][]suit.ComponentID // manifest key -> components it wrote this run
	processed  map[string]*mctx              // manifests processed (installed) in this run
	procOrder  []string
	allRecords []*ManifestRecord // committed records, loaded once

	entries []suit.ReportEntry
	fail    *Failure
	res     *Result
}

// digestKey indexes the digest cache.
type digestKey struct {
	slot string // slot key
	alg  int64
}

type stagedComp struct {
	id     suit.ComponentID
	size   int64
	sha256 []byte
	temp   bool // swap scratch space, not reported
}

// mctx is one manifest in the tree being processed.
type mctx struct {
	env    *suit.Envelope
	m      *suit.Manifest
	id     suit.ComponentID
	path   []uint64
	parent *mctx
	signer *cosekey.Key
	deps   map[uint64]*depSlot
	level  int
	stored bool // loaded from the store (already authenticated when installed)
}

type depSlot struct {
	raw      []byte
	env      *suit.Envelope
	mc       *mctx
	verified bool
}

func (p *Processor) newRun(ctx context.Context, proc string, o RunOptions) *run {
	return &run{
		p: p, ctx: ctx, proc: proc, opts: o, start: time.Now(), lim: p.cfg.Limits,
		params: map[string]map[int64]suit.Param{}, staged: map[string]*stagedComp{},
		removed: map[string]ComponentChange{}, digests: map[digestKey]suit.Digest{},
		records: map[string]*ManifestRecord{}, deleted: map[string]bool{},
		linked: map[string][]suit.ComponentID{}, processed: map[string]*mctx{},
		res: &Result{Procedure: proc},
	}
}

// failAt records the failure (the first one wins: it is the innermost).
func (r *run) failAt(mc *mctx, sec suit.Section, cmd *suit.Command, idx uint64, err error) {
	if r.fail != nil {
		return
	}
	f := &Failure{Section: sec, ComponentIndex: idx, Reason: suit.ReasonOf(err), Err: err}
	if mc != nil {
		f.ManifestID, f.ManifestPath = mc.id, mc.path
	}
	if cmd != nil {
		f.Command, f.Offset = cmd.Code, cmd.Offset
		if mc != nil {
			if s, err := mc.slot(idx); err == nil {
				f.Properties = r.properties(s, cmd.Code)
			}
		}
	}
	r.fail = f
}

// failEarly records a failure before any command ran.
func (r *run) failEarly(err error) { r.failAt(nil, 0, nil, 0, err) }

// install runs the Update procedure.
func (r *run) install(envelope []byte) {
	lim := r.lim.Limits
	env, err := suit.ParseEnvelope(envelope, suit.ParseOptions{Limits: lim})
	if err != nil {
		r.refFromRaw(envelope)
		r.failEarly(fmt.Errorf("envelope: %w", err))
		return
	}
	r.setReference(env)
	mc, err := r.accept(env, nil, 0)
	if err != nil {
		r.failEarly(err)
		return
	}
	r.root = mc
	r.res.ManifestID, r.res.SequenceNumber, r.res.Digest = mc.id, mc.m.SequenceNumber, env.Digest()
	if !r.begin() {
		return
	}
	r.processed[mc.id.Key()] = mc
	r.procOrder = append(r.procOrder, mc.id.Key())
	update := []suit.Section{suit.SectionDependencyResolution, suit.SectionPayloadFetch,
		suit.SectionCandidateVerification, suit.SectionInstall, suit.SectionValidate}
	any := false
	for _, sec := range update {
		if s, err := mc.m.Sequence(sec); s != nil || err != nil {
			any = true
		}
	}
	if !any {
		// Nothing to run would report success for a manifest that does
		// nothing, e.g. one built for an older draft that used other keys.
		r.failEarly(fmt.Errorf("%w: manifest has no section of the Update procedure (dependency-resolution, payload-fetch, candidate-verification, install, validate)", suit.ErrOperationFailed))
		return
	}
	for _, sec := range update {
		if !r.runSection(mc, sec) {
			return
		}
	}
	r.commitUpdate()
}

// accept authenticates a manifest and checks rollback and authorisation.
// parent is nil for the root.
func (r *run) accept(env *suit.Envelope, parent *mctx, slot uint64) (*mctx, error) {
	v, err := env.Verify(r.p.cfg.Trust, r.p.cfg.MACKeys...)
	if err != nil {
		return nil, err
	}
	m := env.Manifest()
	mc := &mctx{env: env, m: m, id: m.ComponentID, signer: v.Key, deps: map[uint64]*depSlot{}}
	if parent != nil {
		if err := r.attach(mc, parent, slot); err != nil {
			return nil, err
		}
		prefix, _ := parent.m.SlotID(slot)
		if mc.id == nil {
			mc.id = prefix
		} else if prefix != nil && !prefix.Equal(mc.id) {
			return nil, fmt.Errorf("%w: dependency declares manifest-component-id %s, dependent expects %s", suit.ErrComponentUnauthorised, mc.id, prefix)
		}
	}
	if mc.id == nil {
		mc.id = fallbackManifestID(m)
	}
	for a := parent; a != nil; a = a.parent {
		if a.id.Equal(mc.id) {
			return nil, fmt.Errorf("%w: dependency cycle through %s", suit.ErrComponentUnsupported, mc.id)
		}
	}
	if m.Slots() > r.lim.MaxComponents+r.lim.MaxDependencies {
		return nil, fmt.Errorf("%w: %d component slots", suit.ErrComponentUnsupported, m.Slots())
	}
	if err := r.authorize(mc, nil); err != nil {
		return nil, err
	}
	if err := r.checkRollback(mc); err != nil {
		return nil, err
	}
	return mc, nil
}

func (r *run) authorize(mc *mctx, comp suit.ComponentID) error {
	if r.p.cfg.Authorize == nil {
		return nil
	}
	if err := r.p.cfg.Authorize(AuthorizeRequest{Signer: mc.signer, ManifestID: mc.id, Component: comp}); err != nil {
		return fmt.Errorf("%w: %v", suit.ErrComponentUnauthorised, err)
	}
	return nil
}

// checkRollback rejects a lower sequence number than the installed one
// (draft-ietf-suit-manifest §8.4.2), and an equal one unless it is the same
// manifest (or at all, with RequireIncreasingSequence).
func (r *run) checkRollback(mc *mctx) error {
	seq := mc.m.SequenceNumber
	if k, ok := r.p.cfg.Store.(SequenceKeeper); ok {
		if hi := k.HighestSequence(mc.id); seq < hi {
			return fmt.Errorf("%w: rollback: sequence number %d is lower than %d, the highest ever installed for %s", suit.ErrUnauthorised, seq, hi, mc.id)
		}
	}
	old, err := r.record(mc.id)
	if err != nil || old == nil {
		return err
	}
	switch {
	case seq < old.SequenceNumber:
		return fmt.Errorf("%w: rollback: sequence number %d is lower than the installed %d for %s", suit.ErrUnauthorised, seq, old.SequenceNumber, mc.id)
	case seq == old.SequenceNumber && (r.p.cfg.RequireIncreasingSequence || !old.Digest.Equal(mc.env.Digest())):
		return fmt.Errorf("%w: rollback: sequence number %d is already installed for %s with another manifest", suit.ErrUnauthorised, seq, mc.id)
	}
	return nil
}

func (r *run) begin() bool {
	txn, err := r.p.cfg.Store.Begin(r.ctx)
	if err != nil {
		r.failEarly(fmt.Errorf("%w: store: %v", suit.ErrOperationFailed, err))
		return false
	}
	r.txn = txn
	return true
}

// runSection runs the shared sequence and then section sec of mc; it
// reports false after a failure (already recorded).
func (r *run) runSection(mc *mctx, sec suit.Section) bool {
	seq, err := mc.m.Sequence(sec)
	if err != nil {
		r.failAt(mc, sec, nil, 0, err)
		return false
	}
	if seq == nil {
		return true
	}
	if sh := mc.m.Common.Shared; sh != nil {
		if st, _ := r.exec(mc, suit.SectionShared, sh, []uint64{0}, false, false); st == stAbort {
			return false
		}
	}
	st, _ := r.exec(mc, sec, seq, []uint64{0}, false, false)
	return st != stAbort
}

// uninstall removes the root reference to a manifest.
func (r *run) uninstall(id suit.ComponentID) {
	rec, err := r.p.cfg.Store.Manifest(r.ctx, id)
	if err != nil {
		if errors.Is(err, ErrNotFound) {
			err = fmt.Errorf("%w: manifest %s is not installed", suit.ErrComponentUnsupported, id)
		}
		r.res.ManifestID = id
		r.failEarly(err)
		return
	}
	r.res.ManifestID, r.res.SequenceNumber, r.res.Digest = rec.ID, rec.SequenceNumber, rec.Digest
	mc, err := r.storedManifest(rec, nil, 0)
	if err != nil {
		r.failEarly(err)
		return
	}
	r.setReference(mc.env)
	if !rec.Root {
		r.failEarly(fmt.Errorf("%w: manifest %s was installed only as a dependency of %v", suit.ErrComponentUnauthorised, id, rec.Dependents))
		return
	}
	if !r.begin() {
		return
	}
	w, err := r.record(id)
	if err != nil {
		r.failEarly(err)
		return
	}
	w.Root = false
	r.touch(w)
	if len(w.Dependents) == 0 {
		if !r.unlinkManifest(mc) {
			return
		}
	}
	r.commit()
}

// invoke runs the Invocation procedure of an installed manifest.
func (r *run) invoke(id suit.ComponentID) {
	rec, err := r.p.cfg.Store.Manifest(r.ctx, id)
	if err != nil {
		r.res.ManifestID = id
		r.failEarly(err)
		return
	}
	r.res.ManifestID, r.res.SequenceNumber, r.res.Digest = rec.ID, rec.SequenceNumber, rec.Digest
	mc, err := r.storedManifest(rec, nil, 0)
	if err != nil {
		r.failEarly(err)
		return
	}
	r.setReference(mc.env)
	if !r.begin() {
		return
	}
	for _, sec := range []suit.Section{suit.SectionValidate, suit.SectionLoad} {
		if !r.runSection(mc, sec) {
			return
		}
	}
	// What load staged is committed before anything runs, and suit-invoke
	// runs with no store transaction held: an invoked component may
	// change the device's state itself (a Trusted Application's sealed
	// storage can share the store), and a long run must not hold off
	// installs. It sees the committed state and changes no component.
	r.commit()
	if r.fail != nil {
		return
	}
	r.txn, r.invoking = committedView{r.p.cfg.Store}, true
	r.runSection(mc, suit.SectionInvoke)
	r.txn, r.invoking = nil, false
}

// committedView is the store as suit-invoke sees it: committed state,
// read only.
type committedView struct{ st ComponentStore }

func (v committedView) Open(ctx context.Context, id suit.ComponentID) (io.ReadCloser, int64, error) {
	return v.st.Open(ctx, id)
}

func errInvokeWrites() error {
	return fmt.Errorf("%w: suit-invoke changes no component (that is for install and load)", suit.ErrCommandUnsupported)
}

func (committedView) Create(context.Context, suit.ComponentID) (io.WriteCloser, error) {
	return nil, errInvokeWrites()
}
func (committedView) Remove(context.Context, suit.ComponentID) error { return errInvokeWrites() }
func (committedView) PutManifest(context.Context, *ManifestRecord) error {
	return errInvokeWrites()
}
func (committedView) DeleteManifest(context.Context, suit.ComponentID) error {
	return errInvokeWrites()
}
func (committedView) Commit(context.Context) error { return nil }
func (committedView) Abort() error                 { return nil }

// storedManifest builds the context of an installed manifest. The store is
// trusted: the envelope was authenticated when it was installed.
func (r *run) storedManifest(rec *ManifestRecord, parent *mctx, slot uint64) (*mctx, error) {
	env, err := suit.ParseEnvelope(rec.Envelope, suit.ParseOptions{Limits: r.lim.Limits})
	if err != nil {
		return nil, fmt.Errorf("stored envelope of %s: %w", rec.ID, err)
	}
	mc := &mctx{env: env, m: env.Manifest(), id: rec.ID, deps: map[uint64]*depSlot{}, stored: true}
	if parent != nil {
		if err := r.attach(mc, parent, slot); err != nil {
			return nil, err
		}
	}
	return mc, nil
}

// attach makes mc the dependency of parent at component index slot.
func (r *run) attach(mc, parent *mctx, slot uint64) error {
	mc.parent, mc.level = parent, parent.level+1
	mc.path = append(append([]uint64{}, parent.path...), slot)
	if mc.level > r.lim.MaxDependencyLevels {
		return fmt.Errorf("%w: dependencies nested deeper than %d", suit.ErrLimit, r.lim.MaxDependencyLevels)
	}
	return nil
}

// ---- manifest records and reference counts ----

// loadAll reads the committed records once.
func (r *run) loadAll() ([]*ManifestRecord, error) {
	if r.allRecords == nil {
		recs, err := r.p.cfg.Store.Manifests(r.ctx)
		if err != nil {
			return nil, fmt.Errorf("%w: store: %v", suit.ErrOperationFailed, err)
		}
		r.allRecords = recs
		if r.allRecords == nil {
			r.allRecords = []*ManifestRecord{}
		}
	}
	return r.allRecords, nil
}

// record returns the working copy of a manifest record, or nil.
func (r *run) record(id suit.ComponentID) (*ManifestRecord, error) {
	k := id.Key()
	if r.deleted[k] {
		return nil, nil
	}
	if w, ok := r.records[k]; ok {
		return w, nil
	}
	all, err := r.loadAll()
	if err != nil {
		return nil, err
	}
	for _, rec := range all {
		if rec.ID.Equal(id) {
			w := rec.Clone()
			r.records[k] = w
			return w, nil
		}
	}
	return nil, nil
}

// touch marks a working record as changed.
func (r *run) touch(w *ManifestRecord) {
	k := w.ID.Key()
	r.records[k] = w
	delete(r.deleted, k)
	for _, o := range r.recOrder {
		if o == k {
			return
		}
	}
	r.recOrder = append(r.recOrder, k)
}

func (r *run) deleteRecord(id suit.ComponentID) {
	k := id.Key()
	r.deleted[k] = true
	delete(r.records, k)
	r.res.RemovedManifests = append(r.res.RemovedManifests, id)
	for _, o := range r.recOrder {
		if o == k {
			return
		}
	}
	r.recOrder = append(r.recOrder, k)
}

// holders returns the manifests (other than except) that link component id.
func (r *run) holders(id suit.ComponentID, except suit.ComponentID) ([]suit.ComponentID, error) {
	all, err := r.loadAll()
	if err != nil {
		return nil, err
	}
	var out []suit.ComponentID
	seen := map[string]bool{}
	check := func(rec *ManifestRecord) {
		if (except != nil && rec.ID.Equal(except)) || seen[rec.ID.Key()] {
			return
		}
		seen[rec.ID.Key()] = true
		if containsID(rec.Components, id) {
			out = append(out, rec.ID)
		}
	}
	for k, w := range r.records {
		if !r.deleted[k] {
			check(w)
		}
	}
	for _, rec := range all {
		if !r.deleted[rec.ID.Key()] && r.records[rec.ID.Key()] == nil {
			check(rec)
		}
	}
	return out, nil
}

func containsID(list []suit.ComponentID, id suit.ComponentID) bool {
	for _, x := range list {
		if x.Equal(id) {
			return true
		}
	}
	return false
}

func addID(list []suit.ComponentID, id suit.ComponentID) []suit.ComponentID {
	if containsID(list, id) {
		return list
	}
	return append(list, id.Clone())
}

func removeID(list []suit.ComponentID, id suit.ComponentID) []suit.ComponentID {
	out := list[:0]
	for _, x := range list {
		if !x.Equal(id) {
			out = append(out, x)
		}
	}
	return out
}

// unlinkComponent drops holder's link to a component and removes the
// component when no manifest links it any more.
func (r *run) unlinkComponent(holder suit.ComponentID, id suit.ComponentID) error {
	if w, err := r.record(holder); err != nil {
		return err
	} else if w != nil {
		w.Components = removeID(w.Components, id)
		r.touch(w)
	}
	return r.removeIfUnlinked(id, holder)
}

// removeIfUnlinked removes a component that no manifest other than except
// links.
func (r *run) removeIfUnlinked(id, except suit.ComponentID) error {
	others, err := r.holders(id, except)
	if err != nil || len(others) > 0 {
		return err
	}
	return r.removeComponent(id)
}

func (r *run) removeComponent(id suit.ComponentID) error {
	k := id.Key()
	// Hash what is removed, so the result names exactly what went away.
	h := sha256.New()
	var size int64
	if rc, _, err := r.txn.Open(r.ctx, id); err == nil {
		size, err = io.CopyBuffer(h, rc, make([]byte, copyBuffer))
		rc.Close()
		if err != nil {
			return fmt.Errorf("%w: read %s: %v", suit.ErrOperationFailed, id, err)
		}
	} else if errors.Is(err, ErrNotFound) {
		return nil // never installed (or already removed): nothing to do
	} else {
		return fmt.Errorf("%w: %v", suit.ErrOperationFailed, err)
	}
	if err := r.txn.Remove(r.ctx, id); err != nil {
		return fmt.Errorf("%w: remove %s: %v", suit.ErrOperationFailed, id, err)
	}
	r.forget(k)
	delete(r.staged, k)
	if _, ok := r.removed[k]; !ok {
		r.rmOrder = append(r.rmOrder, k)
	}
	r.removed[k] = ComponentChange{ID: id, SHA256: h.Sum(nil), Size: size}
	return nil
}

// forget drops cached digests of a slot key.
func (r *run) forget(k string) {
	for ck := range r.digests {
		if ck.slot == k {
			delete(r.digests, ck)
		}
	}
}

// unlinkManifest runs mc's uninstall sequence, deletes its record and
// removes what only it linked (draft-ietf-suit-trust-domains §6.6, §7).
func (r *run) unlinkManifest(mc *mctx) bool {
	if !r.runSection(mc, suit.SectionUninstall) {
		return false
	}
	w, err := r.record(mc.id)
	if err != nil {
		r.failAt(mc, suit.SectionUninstall, nil, 0, err)
		return false
	}
	if w == nil {
		return true // already unlinked from inside its own uninstall sequence
	}
	r.deleteRecord(mc.id)
	for _, c := range w.Components {
		if err := r.removeIfUnlinked(c, mc.id); err != nil {
			r.failAt(mc, suit.SectionUninstall, nil, 0, err)
			return false
		}
	}
	for _, d := range w.Dependencies {
		if !r.dropDependent(mc, d) {
			return false
		}
	}
	return true
}

// dropDependent removes mc's reference to dependency d and unlinks d when
// nothing references it any more.
func (r *run) dropDependent(mc *mctx, d suit.ComponentID) bool {
	dw, err := r.record(d)
	if err != nil {
		r.failAt(mc, suit.SectionUninstall, nil, 0, err)
		return false
	}
	if dw == nil {
		return true
	}
	dw.Dependents = removeID(dw.Dependents, mc.id)
	r.touch(dw)
	if dw.Root || len(dw.Dependents) > 0 {
		return true
	}
	child, err := r.storedManifest(dw, mc, 0)
	if err != nil {
		r.failAt(mc, suit.SectionUninstall, nil, 0, err)
		return false
	}
	return r.unlinkManifest(child)
}

// commitUpdate writes the manifest records of a successful Update
// procedure and commits.
func (r *run) commitUpdate() {
	for _, k := range r.procOrder {
		mc := r.processed[k]
		w, err := r.record(mc.id)
		if err != nil {
			r.failEarly(err)
			return
		}
		old := w
		if w == nil {
			w = &ManifestRecord{ID: mc.id.Clone()}
		}
		raw, err := mc.env.Marshal(suit.MarshalOptions{DropIntegrated: true})
		if err != nil {
			r.failEarly(err)
			return
		}
		w.SequenceNumber, w.Digest, w.Envelope = mc.m.SequenceNumber, mc.env.Digest(), raw
		if mc.parent == nil {
			w.Root = true
		} else {
			w.Dependents = addID(w.Dependents, mc.parent.id)
		}
		// Components: what this run wrote, plus earlier links still listed.
		var comps []suit.ComponentID
		for _, c := range r.linked[k] {
			comps = addID(comps, c)
		}
		var dropped []suit.ComponentID
		if old != nil {
			for _, c := range old.Components {
				if containsID(mc.m.Common.Components, c) {
					comps = addID(comps, c)
				} else {
					dropped = append(dropped, c)
				}
			}
		}
		w.Components = comps
		var deps []suit.ComponentID
		for _, k2 := range r.procOrder {
			if c := r.processed[k2]; c.parent == mc {
				deps = addID(deps, c.id)
			}
		}
		var droppedDeps []suit.ComponentID
		if old != nil {
			for _, d := range old.Dependencies {
				if !containsID(deps, d) {
					droppedDeps = append(droppedDeps, d)
				}
			}
		}
		w.Dependencies = deps
		r.touch(w)
		r.res.Manifests = append(r.res.Manifests, mc.id)
		for _, c := range dropped {
			if err := r.removeIfUnlinked(c, mc.id); err != nil {
				r.failEarly(err)
				return
			}
		}
		for _, d := range droppedDeps {
			if !r.dropDependent(mc, d) {
				return
			}
		}
	}
	r.commit()
}

// commit writes the touched records and commits the transaction.
func (r *run) commit() {
	for _, k := range r.recOrder {
		var err error
		if r.deleted[k] {
			var id suit.ComponentID
			if id, err = suit.DecodeComponentID([]byte(k)); err == nil {
				err = r.txn.DeleteManifest(r.ctx, id)
			}
		} else {
			err = r.txn.PutManifest(r.ctx, r.records[k])
		}
		if err != nil {
			r.failEarly(fmt.Errorf("%w: store: %v", suit.ErrOperationFailed, err))
			return
		}
	}
	if err := r.ctx.Err(); err != nil {
		r.failEarly(fmt.Errorf("%w: %v", suit.ErrOperationFailed, err))
		return
	}
	if err := r.txn.Commit(r.ctx); err != nil {
		r.failEarly(fmt.Errorf("%w: store commit: %v", suit.ErrOperationFailed, err))
		return
	}
	r.txn = nil
}

// ---- results and reports ----

func (r *run) refFromRaw(raw []byte) {
	d, _ := suit.DigestOf(suit.AlgSHA256, raw)
	r.res.Report = &suit.Report{Reference: suit.Reference{Digest: d}}
}

func (r *run) setReference(env *suit.Envelope) {
	ref := suit.Reference{Digest: env.Digest()}
	if m := env.Manifest(); m != nil && m.HasReferenceURI {
		ref.URI = m.ReferenceURI
	}
	r.res.Report = &suit.Report{Reference: ref}
}

func (r *run) finish() (*Result, error) {
	res := r.res
	if r.txn != nil {
		r.txn.Abort()
		r.txn = nil
	}
	if res.Report == nil {
		res.Report = &suit.Report{}
	}
	rep := res.Report
	rep.Nonce = r.opts.Nonce
	if r.opts.Capabilities {
		rep.Capability, _ = r.p.Capabilities().Marshal()
	}
	rep.Records = r.entries
	if rep.Records == nil {
		rep.Records = []suit.ReportEntry{}
	}
	res.Duration = time.Since(r.start)
	if r.fail != nil {
		res.Failure = r.fail
		res.Installed, res.Removed, res.Manifests, res.RemovedManifests = nil, nil, nil, nil
		rep.Failure = &suit.Failure{
			Code:   r.fail.Command,
			Reason: r.fail.Reason,
			Record: suit.Record{ManifestID: r.fail.ManifestPath, Section: r.fail.Section,
				Offset: uint64(r.fail.Offset), ComponentIndex: r.fail.ComponentIndex, Properties: r.fail.Properties},
		}
		if rep.Failure.Record.ManifestID == nil {
			rep.Failure.Record.ManifestID = []uint64{}
		}
	} else {
		res.Success = true
		for _, k := range r.order {
			if s, ok := r.staged[k]; ok && !s.temp {
				res.Installed = append(res.Installed, ComponentChange{ID: s.id, SHA256: s.sha256, Size: s.size})
			}
		}
		for _, k := range r.rmOrder {
			if _, again := r.staged[k]; !again {
				res.Removed = append(res.Removed, r.removed[k])
			}
		}
	}
	b, err := rep.Marshal()
	if err == nil {
		res.ReportBytes = b
	}
	r.p.observe(res)
	if r.fail != nil {
		return res, r.fail
	}
	return res, nil
}
