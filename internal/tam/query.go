package tam

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/teep-go/teep/cosekey"
	"github.com/teep-go/teep/teep"
	"github.com/veraison/go-cose"
)

// startSession answers an empty POST (ProcessConnect, §4.1.1 / RFC 9397
// §6.2.1): a QueryRequest with a fresh token, signed with every algorithm it
// offers (COSE_Sign), since the Agent's suite is not known yet.
func (e *Engine) startSession(ctx context.Context, o HandleOptions) ([]byte, error) {
	attest := e.cfg.Attestation == AttestAlways && e.cfg.Appraiser != nil
	qr, err := e.queryRequest(attest, o.Numbering, nil)
	if err != nil {
		return nil, err
	}
	out, err := teep.SignMulti(qr, e.multiSigners(o.Numbering), e.signOpts(o.Numbering))
	if err != nil {
		return nil, fmt.Errorf("sign QueryRequest: %w", err)
	}
	e.met.sessions.Inc()
	e.met.messagesOut.WithLabelValues("query-request").Inc()
	e.log.DebugContext(ctx, "session started", "peer", o.Peer, "attestation", attest)
	return out, nil
}

// queryRequest builds a QueryRequest asking for the tc-list and, when attest
// is set, attestation. A token is always sent, even with the attestation bit
// (as Appendix D.1 does): the TAM needs it to match the response, and the
// passport model uses it as the nonce. kid non-nil binds the token to the
// Agent that key identifies.
func (e *Engine) queryRequest(attest bool, n teep.Numbering, kid []byte) (*teep.QueryRequest, error) {
	var flags byte
	items := teep.DataItemTrustedComponents
	if attest {
		flags |= flagAttest
		items |= teep.DataItemAttestation
		if !e.cfg.Passport {
			flags |= flagChallenge
		}
	}
	tok, err := e.tokens.newQuery(flags, n, e.now().Add(e.cfg.TokenLifetime), kid)
	if err != nil {
		return nil, fmt.Errorf("mint token: %w", err)
	}
	qr := &teep.QueryRequest{
		Token:                     tok,
		Versions:                  teep.SupportedVersions(),
		SupportedCipherSuites:     e.suites(n),
		SupportedSUITCOSEProfiles: teep.MandatorySUITCOSEProfiles(),
		DataItemRequested:         items,
	}
	if attest {
		qr.SupportedFreshnessMechanisms = e.cfg.Freshness
		if flags&flagChallenge != 0 {
			qr.Challenge = e.tokens.challengeFor(tok)
		}
	}
	return qr, nil
}

// session is what the engine knows while it handles one QueryResponse.
type session struct {
	o       HandleOptions
	msg     *teep.QueryResponse
	tok     queryToken
	alg     cose.Algorithm
	dev     Device // snapshot; written back through mutate
	isNew   bool   // dev is not in the store yet
	outcome *AttestationOutcome
	st      *state // read with dev, when decide follows at once; nil: decide reads it
}

func (e *Engine) onQueryResponse(ctx context.Context, in []byte, op *teep.Opened, m *teep.QueryResponse, o HandleOptions) ([]byte, error) {
	if m.Token == nil {
		// This TAM always sends a token, so a token-less QueryResponse is
		// unsolicited (§4.3): not accepted.
		return nil, reject(KindBadMessage, "QueryResponse without token (unsolicited QueryResponses are not accepted)", nil)
	}
	now := e.now()
	tok, err := e.tokens.parseQuery(m.Token, o.Numbering, now, op.KID)
	if err != nil {
		return nil, reject(KindReplay, err.Error(), nil)
	}
	var dev *Device
	var st *state
	if op.KID != nil {
		var err error
		if dev, st, err = e.readDevice(ctx, op.KID, tok, now); err != nil && !errors.Is(err, ErrNotFound) {
			return nil, err
		}
	}
	if dev == nil {
		return e.unknownAgent(ctx, in, op, m, tok, o)
	}
	key, err := cosekey.ParseCOSEKey(dev.Key)
	if err != nil {
		return nil, fmt.Errorf("device %x: stored key: %w", dev.KID, err)
	}
	vop, err := e.verify(op, key)
	if err != nil {
		return nil, err
	}
	e.met.messagesIn.WithLabelValues("query-response").Inc()
	s := &session{o: o, msg: vop.Message.(*teep.QueryResponse), tok: tok, alg: vop.Alg, dev: *dev}
	if tok.attest() {
		if m.AttestationPayload == nil {
			return e.refuse(ctx, s, teep.ErrAttestationRequired, "attestation-payload missing although requested", StatusRejected)
		}
		out, err := e.appraise(ctx, s, key)
		if err != nil || out.Status == AttestationContraindicated {
			return e.attestationFailed(ctx, s, out, err)
		}
		s.outcome = out
		return e.decide(ctx, s)
	}
	if e.needsAttestation(&s.dev, now) {
		return e.askAttestation(ctx, s, op.KID)
	}
	s.st = st
	return e.decide(ctx, s)
}

// readDevice reads the device that signed a QueryResponse and, when the
// round goes straight to decide, its state from the same snapshot (one
// read per round: each read costs a connection and, after any commit, a
// cold page cache; with a DeviceStateStore it is one statement or one
// round trip). It reads before the signature is checked, as the key to
// check it with is in the device row; a forged message still costs the
// TAM less than its signature check. st is nil when decide must read the
// state itself (attestation comes first, or the catalog cache does not
// hold the snapshot's generation).
func (e *Engine) readDevice(ctx context.Context, kid []byte, tok queryToken, now time.Time) (*Device, *state, error) {
	if e.devState != nil {
		ds, err := e.devState.DeviceState(ctx, kid)
		if err != nil {
			return nil, nil, err
		}
		if tok.attest() || e.needsAttestation(&ds.Device, now) {
			return &ds.Device, nil, nil
		}
		cat, ps, owners, hit := e.cache.get(ds.CatalogGeneration)
		if !hit {
			return &ds.Device, nil, nil
		}
		e.met.catalogHits.Inc()
		st := &state{installed: make(map[cidKey]Installed, len(ds.Installed)), failures: make(map[failKey]int, len(ds.Failures)),
			catalog: cat, policies: ps, owners: owners, personal: ds.Personalizations, gen: ds.CatalogGeneration, cached: true}
		for _, in := range ds.Installed {
			st.installed[keyOf(in.ComponentID)] = in
		}
		for _, f := range ds.Failures {
			st.failures[failKey{keyOf(f.ComponentID), f.Sequence}] = f.Attempts
		}
		return &ds.Device, st, nil
	}
	var dev *Device
	var st *state
	err := e.store.View(ctx, func(tx Tx) error {
		d, err := tx.Device(ctx, kid)
		if err != nil {
			return err
		}
		dev = &d
		if tok.attest() || e.needsAttestation(&d, now) {
			return nil
		}
		st, err = e.loadState(ctx, tx, d.KID)
		return err
	})
	return dev, st, err
}

// needsAttestation applies the attestation policy to a known device.
func (e *Engine) needsAttestation(d *Device, now time.Time) bool {
	if e.cfg.Appraiser == nil || e.cfg.Attestation == AttestNever {
		return false
	}
	if d.NeedsAttestation || e.cfg.Attestation == AttestAlways {
		return true
	}
	if d.Preregistered && d.AttestedAt.IsZero() {
		return false
	}
	return e.cfg.ReattestAfter > 0 && now.Sub(d.AttestedAt) > e.cfg.ReattestAfter
}

// askAttestation answers a validly signed QueryResponse of a known device
// with a new QueryRequest asking for attestation; the first token is used up.
func (e *Engine) askAttestation(ctx context.Context, s *session, kid []byte) ([]byte, error) {
	qr, err := e.queryRequest(true, s.o.Numbering, kid)
	if err != nil {
		return nil, err
	}
	out, err := teep.Sign(qr, e.signerFor(s.alg), e.signOpts(s.o.Numbering))
	if err != nil {
		return nil, fmt.Errorf("sign QueryRequest: %w", err)
	}
	now := e.now()
	err = e.store.Update(ctx, func(tx Tx) error {
		if err := e.useToken(ctx, tx, s.tok); err != nil {
			return err
		}
		return e.mutateDevice(ctx, tx, s, func(d *Device) { d.LastSeen = now })
	})
	if err != nil {
		return nil, tokenErr(err)
	}
	e.met.messagesOut.WithLabelValues("query-request").Inc()
	e.log.InfoContext(ctx, "requesting attestation", "peer", s.o.Peer, "kid", hexOrNil(s.dev.KID))
	return out, nil
}

// unknownAgent handles a QueryResponse signed by a key this TAM does not
// know: first ask for attestation (no state is written for a peer nobody
// has vouched for), then register the Agent once its Evidence is appraised
// and binds the key that signed the QueryResponse.
func (e *Engine) unknownAgent(ctx context.Context, in []byte, op *teep.Opened, m *teep.QueryResponse, tok queryToken, o HandleOptions) ([]byte, error) {
	if e.cfg.Appraiser == nil || e.cfg.Attestation == AttestNever {
		return nil, reject(KindUnauthorized, "unknown Agent key (attestation is not configured; pre-register the key)", nil)
	}
	if !tok.attest() {
		kid := op.KID
		if kid == nil {
			kid = []byte{}
		}
		qr, err := e.queryRequest(true, o.Numbering, kid)
		if err != nil {
			return nil, err
		}
		var out []byte
		if s := e.signers[op.Alg]; s != nil {
			out, err = teep.Sign(qr, s, e.signOpts(o.Numbering))
		} else {
			out, err = teep.SignMulti(qr, e.multiSigners(o.Numbering), e.signOpts(o.Numbering))
		}
		if err != nil {
			return nil, fmt.Errorf("sign QueryRequest: %w", err)
		}
		e.met.messagesOut.WithLabelValues("query-request").Inc()
		e.log.InfoContext(ctx, "unknown Agent: requesting attestation", "peer", o.Peer, "kid", hexOrNil(op.KID))
		return out, nil
	}
	if m.AttestationPayload == nil {
		return nil, reject(KindUnauthorized, "unknown Agent sent no attestation evidence", nil)
	}
	s := &session{o: o, msg: m, tok: tok, alg: op.Alg, isNew: true}
	out, err := e.appraise(ctx, s, nil)
	if err != nil {
		return nil, reject(KindUnauthorized, "attestation evidence not accepted", err)
	}
	key := out.AgentKey
	if key == nil {
		return nil, reject(KindUnauthorized, "attestation names the Agent key only by kid; an unknown Agent must carry its COSE_Key in cnf, or be pre-registered", nil)
	}
	if op.KID != nil && !bytes.Equal(key.KID(), op.KID) {
		return nil, reject(KindUnauthorized, "the key bound by cnf did not sign the QueryResponse", nil)
	}
	vop, err := e.verify(op, key)
	if err != nil {
		return nil, err
	}
	e.met.messagesIn.WithLabelValues("query-response").Inc()
	coseKey, err := key.MarshalCOSEKey(false)
	if err != nil {
		return nil, fmt.Errorf("encode Agent key: %w", err)
	}
	now := e.now()
	s.msg, s.alg = vop.Message.(*teep.QueryResponse), vop.Alg
	s.dev = Device{KID: key.KID(), Key: coseKey, CreatedAt: now, Status: StatusOK}
	if out.Status == AttestationContraindicated {
		return e.attestationFailed(ctx, s, out, nil)
	}
	s.outcome = out
	e.log.InfoContext(ctx, "Agent attested; registering device", "peer", o.Peer, "kid", hexOrNil(s.dev.KID), "status", out.Status)
	return e.decide(ctx, s)
}

// appraise runs the Appraiser on the QueryResponse's attestation payload.
func (e *Engine) appraise(ctx context.Context, s *session, key *cosekey.Key) (*AttestationOutcome, error) {
	in := AttestationInput{
		Format:   s.msg.AttestationPayloadFormat,
		Payload:  s.msg.AttestationPayload,
		Token:    s.tok.raw,
		AgentKey: key,
		Now:      e.now(),
	}
	if s.tok.challenge() {
		in.Challenge = e.tokens.challengeFor(s.tok.raw)
	}
	out, err := e.cfg.Appraiser.Appraise(ctx, in)
	switch {
	case err != nil:
		e.met.attestations.WithLabelValues("error").Inc()
	case out == nil:
		err = errors.New("appraiser returned no outcome")
		e.met.attestations.WithLabelValues("error").Inc()
	default:
		e.met.attestations.WithLabelValues(string(out.Status)).Inc()
		if key != nil && out.AgentKey == nil {
			out.AgentKey = key
		}
	}
	return out, err
}

// attestationFailed answers with an Update carrying ERR_ATTESTATION_REQUIRED
// (§4.3.1: the TAM cannot remediate a failed attestation) and flags the
// device.
func (e *Engine) attestationFailed(ctx context.Context, s *session, out *AttestationOutcome, err error) ([]byte, error) {
	reason := "attestation failed"
	if err != nil {
		reason += ": " + err.Error()
	} else if out != nil && len(out.Reasons) > 0 {
		reason += ": " + strings.Join(out.Reasons, "; ")
	}
	s.outcome = out
	if s.outcome == nil {
		s.outcome = &AttestationOutcome{Status: AttestationContraindicated}
	}
	s.outcome.Status = AttestationContraindicated
	s.outcome.Reasons = []string{reason}
	return e.refuse(ctx, s, teep.ErrAttestationRequired, reason, StatusRejected)
}

// refuse answers a QueryResponse with an Update that carries only an
// err-code (§4.4: a TAM-side error about the QueryResponse), uses up the
// token and records why on the device.
func (e *Engine) refuse(ctx context.Context, s *session, code teep.ErrCode, msg string, status DeviceStatus) ([]byte, error) {
	utok, err := e.tokens.newUpdate()
	if err != nil {
		return nil, err
	}
	u := &teep.Update{Token: utok, ErrCode: code, ErrMsg: truncate(msg, teep.MaxErrMsgSize)}
	out, err := teep.Sign(u, e.signerFor(s.alg), e.signOpts(s.o.Numbering))
	if err != nil {
		return nil, fmt.Errorf("sign Update: %w", err)
	}
	now := e.now()
	err = e.store.Update(ctx, func(tx Tx) error {
		if err := e.useToken(ctx, tx, s.tok); err != nil {
			return err
		}
		if err := e.mutateDevice(ctx, tx, s, func(d *Device) {
			d.Status, d.LastError, d.LastSeen = status, msg, now
		}); err != nil {
			return err
		}
		return tx.PutPending(ctx, PendingUpdate{Token: utok, DeviceKID: s.dev.KID, Numbering: s.o.Numbering.String(),
			CreatedAt: now, ExpiresAt: now.Add(e.cfg.TokenLifetime)}, e.cfg.MaxPendingPerDevice)
	})
	if err != nil {
		return nil, tokenErr(err)
	}
	e.met.messagesOut.WithLabelValues("update").Inc()
	e.log.WarnContext(ctx, "QueryResponse refused", "peer", s.o.Peer, "kid", hexOrNil(s.dev.KID), "code", code.String(), "reason", msg)
	return out, nil
}

// sessionOnly reports whether the QueryResponse's transaction changes
// nothing that must survive a power cut (docs/operations.md,
// "Durability"): the device is known and unchanged (status, error,
// suite, numbering, no new attestation), its inventory is as stored, and
// it sent no SUIT report. What it writes then is the consumed token (still
// refused after a restart: the token epoch changes), the last-seen time,
// and at most an outstanding Update with the pending status, whose loss
// makes the device's Success fail and the device start a new session.
func (e *Engine) sessionOnly(s *session, st *state, inv map[cidKey]Installed, status DeviceStatus, lastErr string) bool {
	d := s.dev
	if s.isNew || s.outcome != nil || len(s.msg.SUITReports) > 0 || d.Alg != int64(s.alg) || d.Numbering != s.o.Numbering.String() {
		return false
	}
	if status != StatusPending && (d.Status != status || d.LastError != lastErr || (status != StatusFailed && d.LastErrorCode != 0)) {
		return false
	}
	if len(inv) != len(st.installed) {
		return false
	}
	for id, in := range inv {
		if old, had := st.installed[id]; !had || !sameInstalled(old, in) {
			return false
		}
	}
	return true
}

// errTooManyPending refuses a session that would give a device more than
// Config.MaxPendingPerDevice outstanding Updates. The whole transaction is
// rolled back (the token stays unused) and the peer is told to retry later:
// dropping the oldest outstanding Update instead would make that Update's
// Success fail as an unknown token.
var errTooManyPending = errors.New("too many outstanding Updates")

// checkPendingRoom fails with errTooManyPending when the device already has
// MaxPendingPerDevice unexpired outstanding Updates. It runs inside the
// writing transaction; PutPending's bound stays as the backstop should two
// replicas race past the check.
func (e *Engine) checkPendingRoom(ctx context.Context, tx SessionTx, kid []byte, now time.Time) error {
	ps, err := tx.PendingFor(ctx, kid)
	if err != nil {
		return err
	}
	live := 0
	for _, p := range ps {
		if p.ExpiresAt.After(now) {
			live++
		}
	}
	if live >= e.cfg.MaxPendingPerDevice {
		return fmt.Errorf("%w: %d of %d", errTooManyPending, live, e.cfg.MaxPendingPerDevice)
	}
	return nil
}

// mutateDevice applies the session's changes to the device as stored now
// (so that concurrent operator changes such as labels are kept), or
// registers it.
func (e *Engine) mutateDevice(ctx context.Context, tx DeviceTx, s *session, f func(d *Device)) error {
	d, err := tx.Device(ctx, s.dev.KID)
	switch {
	case errors.Is(err, ErrNotFound) && s.isNew:
		d = s.dev
	case err != nil:
		return err
	}
	d.Alg = int64(s.alg)
	d.Numbering = s.o.Numbering.String()
	if out := s.outcome; out != nil {
		d.Attestation, d.AttestedAt = out.Status, e.now()
		d.AttestationReason = strings.Join(out.Reasons, "; ")
		d.NeedsAttestation = out.Status == AttestationContraindicated
		if out.UEID != nil {
			d.UEID = out.UEID
		}
		if out.OEMID != nil {
			d.OEMID = out.OEMID
		}
		if out.HWModel != nil {
			d.HWModel = out.HWModel
		}
		if out.HWVersion != "" {
			d.HWVersion = out.HWVersion
		}
	}
	if d.Attestation == "" {
		d.Attestation = AttestationNone
	}
	f(&d)
	s.dev = d
	return tx.PutDevice(ctx, d)
}

// recordSession writes decide's changes to the device row: last_seen,
// status and last error. A known device without a new attestation takes
// the store's RecordSession (DeviceSessionTx), one UPDATE; without it,
// when the snapshot says only last_seen changes (a steady round),
// TouchDevice (DeviceSeenTx). Both are conditional UPDATEs that match
// only if the stored row holds what a rewrite would keep; otherwise
// mutateDevice re-reads and rewrites the row. Either way the row ends
// the same.
func (e *Engine) recordSession(ctx context.Context, tx Tx, s *session, now time.Time, status DeviceStatus, lastErr string) error {
	if st, ok := tx.(DeviceSessionTx); ok && !s.isNew && s.outcome == nil {
		// What mutateDevice would write, as one UPDATE that matches only
		// if the stored row has the alg and numbering the rewrite would
		// store (and an attestation status, which it would default).
		d := s.dev
		d.Alg, d.Numbering = int64(s.alg), s.o.Numbering.String()
		d.LastSeen, d.Status, d.LastError = now, status, lastErr
		if status != StatusFailed {
			d.LastErrorCode = 0
		}
		done, err := st.RecordSession(ctx, d)
		if err != nil || done {
			if done {
				s.dev = d
			}
			return err
		}
	} else if st, ok := tx.(DeviceSeenTx); ok && e.touchOnly(s, status, lastErr) {
		d := s.dev
		d.LastSeen = now
		done, err := st.TouchDevice(ctx, d)
		if err != nil || done {
			if done {
				s.dev = d
			}
			return err
		}
	}
	return e.mutateDevice(ctx, tx, s, func(d *Device) {
		d.LastSeen, d.Status, d.LastError = now, status, lastErr
		if status != StatusFailed {
			d.LastErrorCode = 0
		}
	})
}

// touchOnly reports whether, by the snapshot, the session changes only the
// device row's last_seen (TouchDevice's and SteadyRound's condition).
func (e *Engine) touchOnly(s *session, status DeviceStatus, lastErr string) bool {
	d := s.dev
	code := d.LastErrorCode
	if status != StatusFailed {
		code = 0
	}
	return !s.isNew && s.outcome == nil && d.Attestation != "" &&
		d.Alg == int64(s.alg) && d.Numbering == s.o.Numbering.String() &&
		d.Status == status && d.LastError == lastErr && d.LastErrorCode == code
}

// tokenErr turns a lost race for a token into a replay refusal.
func tokenErr(err error) error {
	if errors.Is(err, ErrTokenUsed) {
		return reject(KindReplay, "token already used", nil)
	}
	return err
}

// truncate cuts s to at most max bytes at a rune boundary.
func truncate(s string, max int) string {
	if len(s) <= max {
		return s
	}
	for max > 0 && !utf8.RuneStart(s[max]) {
		max--
	}
	return s[:max]
}

// state is what decide reads from the store.
type state struct {
	installed map[cidKey]Installed
	catalog   *catalog
	policies  []Policy
	personal  []Personalization
	failures  map[failKey]int
	owners    map[string]string // component IDHex -> owner (OwnerTx.Owners)
	gen       uint64            // catalog generation of catalog, policies and owners
	cached    bool              // the store keeps generations (gen is meaningful)
}

// stateTx is what loading a device's state reads: every aggregate but the
// device row itself, the session state and the reports.
type stateTx interface {
	ComponentTx
	PolicyTx
	InstalledTx
	FailureTx
	PersonalizationTx
	OwnerTx
}

func (e *Engine) loadState(ctx context.Context, tx stateTx, kid []byte) (*state, error) {
	st := &state{installed: map[cidKey]Installed{}, failures: map[failKey]int{}}
	if err := e.loadCatalog(ctx, tx, st); err != nil {
		return nil, err
	}
	if kid == nil {
		return st, nil
	}
	inst, err := tx.Installed(ctx, kid)
	if err != nil {
		return nil, err
	}
	for _, in := range inst {
		st.installed[keyOf(in.ComponentID)] = in
	}
	if st.personal, err = tx.Personalizations(ctx, kid); err != nil {
		return nil, err
	}
	fs, err := tx.Failures(ctx, kid)
	if err != nil {
		return nil, err
	}
	for _, f := range fs {
		st.failures[failKey{keyOf(f.ComponentID), f.Sequence}] = f.Attempts
	}
	return st, nil
}

// reconcile rebuilds the inventory from the Agent's tc-list (which lists
// everything installed, §4.3): entries are mapped to registered components
// (by manifest or payload component id) and their sequence number
// recognised from the image digest; flags this TAM recorded are kept.
func reconcile(now time.Time, st *state, tcList []teep.SystemPropertyClaims) (map[cidKey]Installed, error) {
	out := map[cidKey]Installed{}
	pzByID := map[cidKey]*Personalization{}
	for i := range st.personal {
		pz := &st.personal[i]
		pzByID[keyOf(pz.ComponentID)] = pz
		if pz.PayloadID != nil {
			pzByID[keyOf(pz.PayloadID)] = pz
		}
	}
	for i, c := range tcList {
		if err := checkID(c.ComponentID); err != nil {
			return nil, fmt.Errorf("tc-list[%d]: %w", i, err)
		}
		raw := keyOf(c.ComponentID)
		id, known := st.catalog.resolve(raw)
		var pz *Personalization
		if !known {
			id = raw
			if pz = pzByID[raw]; pz != nil {
				id = keyOf(pz.ComponentID)
			}
		}
		if _, dup := out[id]; dup {
			continue
		}
		in, had := st.installed[id]
		if !had {
			in = Installed{ComponentID: id.id()}
		}
		switch {
		case c.ImageDigest == nil:
		case known:
			if ref, ok := st.catalog.byDigest[string(c.ImageDigest.Bytes)]; ok && ref.id == id {
				in.Sequence = ref.seq
			}
		case pz != nil && bytes.Equal(c.ImageDigest.Bytes, pz.Digest):
			in.Sequence = pz.Sequence
		}
		if !had || !sameInstalled(in, st.installed[id]) {
			in.UpdatedAt = now
		}
		out[id] = in
	}
	return out, nil
}

// decide computes what the device should get and answers with an Update,
// or ends the session when there is nothing to do (§4.3.1 step 3-4).
func (e *Engine) decide(ctx context.Context, s *session) ([]byte, error) {
	m := s.msg
	if m.SelectedVersion != nil && *m.SelectedVersion != teep.Version {
		return e.refuse(ctx, s, teep.ErrUnsupportedMsgVersion,
			fmt.Sprintf("selected-version %d is not supported (this TAM speaks %v)", *m.SelectedVersion, teep.SupportedVersions()), StatusIncompatible)
	}
	if err := checkReportNonces(m.SUITReports, s.tok.raw); err != nil {
		return e.refuse(ctx, s, teep.ErrPermanentError, err.Error(), StatusError)
	}
	st := s.st
	var kid []byte
	if !s.isNew {
		kid = s.dev.KID
	}
	if st == nil {
		if err := e.store.View(ctx, func(tx Tx) (err error) { st, err = e.loadState(ctx, tx, kid); return err }); err != nil {
			return nil, err
		}
	}
	now := e.now()
	inv, err := reconcile(now, st, m.TCList)
	if err != nil {
		return e.refuse(ctx, s, teep.ErrPermanentError, err.Error(), StatusError)
	}
	in := planInput{dev: &s.dev, installed: inv, catalog: st.catalog, policies: st.policies, owners: st.owners, personal: st.personal,
		failures: st.failures, maxAttempts: e.cfg.MaxInstallAttempts}
	for i, r := range m.RequestedTCList {
		if err := checkID(r.ComponentID); err != nil {
			return e.refuse(ctx, s, teep.ErrPermanentError, fmt.Sprintf("requested-tc-list[%d]: %v", i, err), StatusError)
		}
		id := keyOf(r.ComponentID)
		if resolved, ok := st.catalog.resolve(id); ok {
			id = resolved
		}
		rq := requestedTC{id: id}
		if r.SequenceNumber != nil {
			rq.min = *r.SequenceNumber
		}
		rq.haveBinary = r.HaveBinary != nil && *r.HaveBinary
		in.requested = append(in.requested, rq)
	}
	for i, u := range m.UnneededManifestList {
		if err := checkID(u); err != nil {
			return e.refuse(ctx, s, teep.ErrPermanentError, fmt.Sprintf("unneeded-manifest-list[%d]: %v", i, err), StatusError)
		}
		in.unneeded = append(in.unneeded, keyOf(u))
	}
	p := makePlan(in)
	status := StatusOK
	if p.exhausted {
		status = StatusFailed
	}
	lastErr := strings.Join(p.notes, "; ")

	var out []byte
	var pending *PendingUpdate
	if !p.empty() {
		u, pu, err := e.buildUpdate(ctx, s, st, p)
		if err != nil {
			return nil, err
		}
		out, pending = u, pu
		status = StatusPending
	}
	commit := e.store.Update
	if e.sessionOnly(s, st, inv, status, lastErr) {
		commit = e.updateNoSync
		if pending == nil && e.steady != nil && e.touchOnly(s, status, lastErr) {
			// A steady round: the token and last_seen are all it writes.
			d := s.dev
			d.LastSeen = now
			done, err := e.steady.SteadyRound(ctx, s.tok.raw, s.tok.expires, s.tok.epoch, d)
			if err != nil {
				return nil, tokenErr(err)
			}
			if done {
				s.dev = d
				commit = func(context.Context, func(Tx) error) error { return nil } // committed
			}
			// Otherwise the row changed since it was read: the
			// transaction below rewrites it from what is stored now.
		}
	}
	err = commit(ctx, func(tx Tx) error {
		if err := e.useToken(ctx, tx, s.tok); err != nil {
			return err
		}
		if err := e.recordSession(ctx, tx, s, now, status, lastErr); err != nil {
			return err
		}
		for id := range st.installed {
			if _, still := inv[id]; !still {
				if err := tx.DeleteInstalled(ctx, s.dev.KID, id.id()); err != nil && !errors.Is(err, ErrNotFound) {
					return err
				}
			}
		}
		for id, in := range inv {
			if old, had := st.installed[id]; had && sameInstalled(old, in) {
				continue
			}
			if err := tx.PutInstalled(ctx, s.dev.KID, in); err != nil {
				return err
			}
		}
		if len(m.SUITReports) > 0 {
			if _, err := tx.AddReport(ctx, Report{DeviceKID: s.dev.KID, At: now, Kind: "query-response", SUITReports: m.SUITReports}, e.cfg.KeepReports); err != nil {
				return err
			}
		}
		if pending != nil {
			if err := e.checkPendingRoom(ctx, tx, s.dev.KID, now); err != nil {
				return err
			}
			return tx.PutPending(ctx, *pending, e.cfg.MaxPendingPerDevice)
		}
		return nil
	})
	if errors.Is(err, errTooManyPending) {
		e.met.pendingRefused.Inc()
		return nil, reject(KindUnavailable, "too many outstanding Updates for this device; retry later", err)
	}
	if err != nil {
		return nil, tokenErr(err)
	}
	for _, n := range p.notes {
		e.log.InfoContext(ctx, "desired state not fully reachable", "kid", hexOrNil(s.dev.KID), "note", n)
	}
	if out == nil {
		e.log.InfoContext(ctx, "device up to date", "peer", s.o.Peer, "kid", hexOrNil(s.dev.KID))
		return nil, nil
	}
	e.met.messagesOut.WithLabelValues("update").Inc()
	e.log.InfoContext(ctx, "Update sent", "peer", s.o.Peer, "kid", hexOrNil(s.dev.KID),
		"install", len(pending.Install), "remove", len(pending.Remove))
	return out, nil
}

// buildUpdate loads the envelopes of the plan (within MaxUpdateBytes; what
// does not fit waits for the next session) and signs the Update.
func (e *Engine) buildUpdate(ctx context.Context, s *session, st *state, p plan) ([]byte, *PendingUpdate, error) {
	utok, err := e.tokens.newUpdate()
	if err != nil {
		return nil, nil, err
	}
	now := e.now()
	pu := &PendingUpdate{Token: utok, DeviceKID: s.dev.KID, Numbering: s.o.Numbering.String(),
		CreatedAt: now, ExpiresAt: now.Add(e.cfg.TokenLifetime)}
	u := &teep.Update{Token: utok}
	for _, k := range p.remove {
		pu.Remove = append(pu.Remove, k.id())
		u.UnneededManifestList = append(u.UnneededManifestList, k.id())
	}
	envs, err := e.envelopes(ctx, st, p.install)
	if err != nil {
		return nil, nil, err
	}
	if len(envs) < len(p.install) {
		e.log.InfoContext(ctx, "Update size limit reached; the rest follows next session", "kid", hexOrNil(s.dev.KID), "sent", len(envs), "planned", len(p.install))
	}
	if len(envs) > 0 {
		u.ManifestList = envs
		pu.Install = make([]SentManifest, len(envs))
		for i, step := range p.install[:len(envs)] {
			pu.Install[i] = SentManifest{ComponentID: step.id.id(), Sequence: step.seq, Requested: step.requested, Personalization: step.personal != nil}
		}
	}
	if s.outcome != nil && s.outcome.Result != nil {
		u.AttestationPayload, u.AttestationPayloadFormat = s.outcome.Result, s.outcome.ResultFormat
	}
	out, err := teep.Sign(u, e.signerFor(s.alg), e.signOpts(s.o.Numbering))
	if err != nil {
		return nil, nil, fmt.Errorf("sign Update: %w", err)
	}
	return out, pu, nil
}

// sameInstalled reports whether two inventory entries are the same.
func sameInstalled(a, b Installed) bool {
	return a.ComponentID.Equal(b.ComponentID) && a.Sequence == b.Sequence && a.Managed == b.Managed &&
		a.Requested == b.Requested && a.UpdatedAt == b.UpdatedAt
}
