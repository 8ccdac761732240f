package agent

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/teep-go/teep/cosekey"
	"github.com/teep-go/teep/eat"
	"github.com/teep-go/teep/internal/tee"
	"github.com/teep-go/teep/suit"
	"github.com/teep-go/teep/teep"
	"github.com/veraison/go-cose"
)

// Errors an Agent reports for messages it refuses; CodeOf maps them.
var (
	// ErrUntrustedTAM: the message is not signed by a trusted TAM key.
	ErrUntrustedTAM = errors.New("agent: message not signed by a trusted TAM")
	// ErrUnexpectedMessage: a TAM sent a message type only Agents send.
	ErrUnexpectedMessage = errors.New("agent: unexpected message type from a TAM")
)

// ProcessTeepMessage handles one message from the TAM at tam
// (draft-ietf-teep-protocol-26 §6.1 item 5): it validates it (§4.1.2;
// invalid messages get an Error, §6) and answers a QueryRequest (§6.2) or
// an Update (§6.3). The returned Result carries the signed answer, or
// nothing when there is none to send.
func (a *Agent) ProcessTeepMessage(ctx context.Context, tam string, data []byte) (Result, error) {
	keys, err := allTAMKeys(a.tee.Storage())
	if err != nil {
		return Result{}, fmt.Errorf("agent: TAM trust anchors: %w", err)
	}
	op, err := teep.Open(data, teep.OpenOptions{Numbering: a.cfg.Numbering, Keys: keys})
	if err != nil {
		return a.refuse(tam, data, err)
	}
	a.log.Debug("message", "tam", tam, "type", op.Message.Type().String(), "kid", fmt.Sprintf("%x", op.KID))
	switch m := op.Message.(type) {
	case *teep.QueryRequest:
		return a.onQueryRequest(ctx, tam, op, m)
	case *teep.Update:
		return a.onUpdate(ctx, tam, scopeOf(a.tee.Storage(), op.Key), op, m)
	}
	tok := tokenOf(op.Message)
	return a.answerError(tam, &teep.ProtocolError{Code: teep.ErrPermanentError,
		Msg: fmt.Sprintf("a TAM does not send %s", op.Message.Type()), Err: ErrUnexpectedMessage}, tok, a.algs[0])
}

// refuse answers a message that failed validation. A signature by a key
// that is not a trust anchor (no trusted kid, or none at all) is an
// untrusted TAM: ERR_BAD_CERTIFICATE. A message that names a trusted key
// but does not verify, or is malformed, is ERR_PERMANENT_ERROR (via CodeOf).
func (a *Agent) refuse(tam string, data []byte, cause error) (Result, error) {
	// The token, read without trusting anything else, lets the TAM match
	// our Error to its request.
	var token []byte
	if op, err := teep.Open(data, teep.OpenOptions{Numbering: a.cfg.Numbering, SkipVerifyUnsafe: true}); err == nil {
		token = tokenOf(op.Message)
	}
	if errors.Is(cause, cosekey.ErrNoTrustedKey) {
		cause = &teep.ProtocolError{Code: teep.ErrBadCertificate, Msg: "signer is not a trusted TAM", Err: ErrUntrustedTAM}
	}
	a.emit(Event{Kind: EventFailure, TAM: tam, Detail: "refused message: " + cause.Error()})
	a.noteProblem("refused a message from %s: %v", tam, cause)
	r, err := a.answerError(tam, cause, token, a.algs[0])
	r.Refused = cause.Error()
	return r, err
}

func tokenOf(m teep.Message) []byte {
	switch m := m.(type) {
	case *teep.QueryRequest:
		return m.Token
	case *teep.Update:
		return m.Token
	case *teep.QueryResponse:
		return m.Token
	case *teep.Success:
		return m.Token
	case *teep.Error:
		return m.Token
	}
	return nil
}

// answerError signs the Error for cause (teep.ErrorFor fills the code and
// the capability list the code requires).
func (a *Agent) answerError(tam string, cause error, token []byte, alg cose.Algorithm) (Result, error) {
	m := teep.ErrorFor(cause, token, a.capabilities())
	return a.answer(tam, m, alg)
}

func (a *Agent) answer(tam string, m teep.Message, alg cose.Algorithm) (Result, error) {
	out, err := a.sign(m, alg)
	if err != nil {
		return Result{}, fmt.Errorf("agent: sign %s: %w", m.Type(), err)
	}
	return Result{TAMURI: tam, Message: out}, nil
}

// onQueryRequest answers a QueryRequest (§6.2): negotiate version, cipher
// suite and freshness, then report what was asked for.
func (a *Agent) onQueryRequest(ctx context.Context, tam string, op *teep.Opened, q *teep.QueryRequest) (Result, error) {
	caps := a.capabilities()
	ver, err := teep.SelectVersion(q.Versions, caps.Versions)
	if err != nil {
		return a.answerError(tam, err, q.Token, a.algs[0])
	}
	suite, err := teep.SelectCipherSuite(q.SupportedCipherSuites, caps.CipherSuites)
	if err != nil {
		// §4.6: this Error is signed with a suite every TAM supports, which
		// our first suite is.
		return a.answerError(tam, err, q.Token, a.algs[0])
	}
	alg64, _ := suite.Sign1Alg()
	alg := cose.Algorithm(alg64)
	inst, err := a.cfg.Installer.Installed()
	if err != nil {
		return a.answerError(tam, err, q.Token, alg)
	}
	resp := &teep.QueryResponse{Token: q.Token, SelectedVersion: &ver}
	if q.DataItemRequested.Has(teep.DataItemAttestation) {
		fresh, err := teep.SelectFreshness(q.SupportedFreshnessMechanisms, a.cfg.Freshness)
		if err != nil {
			return a.answerError(tam, err, q.Token, alg)
		}
		req := tee.EvidenceRequest{Timestamp: fresh == teep.FreshnessTimestamp, Manifests: suitReferences(inst)}
		if fresh == teep.FreshnessNonce {
			// §5.2: the challenge in the background-check model, the
			// token in the passport model.
			req.Nonce = q.Challenge
			if req.Nonce == nil {
				req.Nonce = q.Token
			}
			if req.Nonce == nil {
				return a.answerError(tam, &teep.ProtocolError{Code: teep.ErrPermanentError,
					Msg: "attestation with nonce freshness needs a challenge or a token"}, nil, alg)
			}
		}
		ev, err := a.tee.Evidence(ctx, req)
		if err != nil {
			return a.answerError(tam, fmt.Errorf("evidence: %w", err), q.Token, alg)
		}
		resp.AttestationPayload = ev.Payload
		resp.AttestationPayloadFormat = ev.Format
		detail := fmt.Sprintf("Evidence (%d bytes, %s freshness)", len(ev.Payload), fresh)
		if q.Challenge == nil && a.cfg.Passport != nil && ev.Format == "" {
			// Passport model: present the Verifier's Attestation Result.
			if res, err := a.cfg.Passport.Result(ctx, ev.Payload); err != nil {
				a.log.Warn("Verifier failed; sending Evidence instead of an Attestation Result", "err", err)
			} else {
				resp.AttestationPayload = res
				detail = fmt.Sprintf("Attestation Result from the Verifier (%d bytes, %s freshness)", len(res), fresh)
			}
		}
		a.emit(Event{Kind: EventAttestation, TAM: tam, Detail: detail})
	}
	if q.DataItemRequested.Has(teep.DataItemTrustedComponents) {
		resp.TCList = tcList(inst)
	}
	// ext-list (bit 2) needs at least one entry and no extensions are
	// defined; suit-reports (bit 3) are boot-time reports this Agent does
	// not keep. Both are left out rather than sent empty, which the CDDL
	// forbids.
	req, err := loadPending(a.tee.Storage(), objRequested)
	if err != nil {
		return Result{}, err
	}
	for _, p := range req {
		if !a.addressedTo(p, tam) {
			continue
		}
		rtc := teep.RequestedTC{ComponentID: p.ID}
		if p.MinSeq != nil {
			s := *p.MinSeq
			rtc.SequenceNumber = &s
		}
		resp.RequestedTCList = append(resp.RequestedTCList, rtc)
	}
	un, err := loadPending(a.tee.Storage(), objUnneeded)
	if err != nil {
		return Result{}, err
	}
	for _, p := range un {
		if a.addressedTo(p, tam) {
			resp.UnneededManifestList = append(resp.UnneededManifestList, p.ID)
		}
	}
	a.emit(Event{Kind: EventQuery, TAM: tam, Detail: fmt.Sprintf("QueryResponse: %d installed, %d requested, %d unneeded",
		len(resp.TCList), len(resp.RequestedTCList), len(resp.UnneededManifestList))})
	return a.answer(tam, resp, alg)
}

// addressedTo says whether a request or release goes to the TAM at tam:
// each goes to the TAM it named (RFC 9397 RequestTA), and one naming no
// TAM, or a TAM no longer configured, to the default TAM.
func (a *Agent) addressedTo(p pending, tam string) bool {
	if p.TAM == tam {
		return true
	}
	if p.TAM != "" && slices.Contains(a.cfg.TAMs, p.TAM) {
		return false
	}
	return len(a.cfg.TAMs) == 0 || a.cfg.TAMs[0] == tam
}

func tcList(inst []Installed) []teep.SystemPropertyClaims {
	var out []teep.SystemPropertyClaims
	for _, c := range inst {
		size := c.Size
		e := teep.SystemPropertyClaims{ComponentID: c.ComponentID, ImageSize: &size}
		if len(c.SHA256) > 0 {
			e.ImageDigest = &teep.Digest{Alg: eat.AlgSHA256, Bytes: c.SHA256}
		}
		e.VendorID, e.ClassID = c.VendorID, c.ClassID
		out = append(out, e)
	}
	return out
}

// suitReferences names the installed manifests in Evidence (the TEEP EAT
// profile's manifests claim, draft-26 §5.1).
func suitReferences(inst []Installed) []eat.Manifest {
	var out []eat.Manifest
	seen := map[string]bool{}
	for _, c := range inst {
		if len(c.ManifestDigest) == 0 || seen[string(c.ManifestDigest)] {
			continue
		}
		seen[string(c.ManifestDigest)] = true
		out = append(out, eat.SUITReference{URI: c.ManifestURI, DigestAlg: eat.AlgSHA256, Digest: c.ManifestDigest}.Manifest(eat.ContentFormatCBOR))
	}
	return out
}

// onUpdate applies an Update (§6.3): unneeded manifests are unlinked first,
// then every manifest is processed; each is atomic, and every one is tried
// even when an earlier one failed (§4.6.1: the TAM may still want the
// independent ones). The answer is Success, or Error
// ERR_MANIFEST_PROCESSING_FAILED, with the SUIT Reports (nonce = token).
//
// scope is the trust scope of the TAM key that signed the Update ("" for
// an unscoped key): its manifests must be signed by that scope's signers,
// and what it updates or removes must be what it installed. A manifest
// refused for touching another TAM's component is a manifest processing
// failure like any other (draft-26 §4.6.1 ERR_MANIFEST_PROCESSING_FAILED:
// the message was valid and its other manifests are still processed),
// not ERR_PERMANENT_ERROR, which would condemn the whole message.
func (a *Agent) onUpdate(ctx context.Context, tam, scope string, op *teep.Opened, u *teep.Update) (Result, error) {
	alg := a.algs[0]
	if slices.Contains(a.algs, op.Alg) && op.Structure == cosekey.StructureSign1 {
		alg = op.Alg // §8.2: the selected suite is used in both directions
	}
	if u.ErrCode != 0 {
		a.emit(Event{Kind: EventTAMError, TAM: tam, Detail: fmt.Sprintf("%s: %s", u.ErrCode, u.ErrMsg)})
		a.noteProblem("TAM %s reported %s: %s", tam, u.ErrCode, u.ErrMsg)
		if len(u.ManifestList) == 0 && len(u.UnneededManifestList) == 0 {
			return Result{}, nil // nothing to answer: the TAM ends the exchange
		}
	}
	var (
		reports  [][]byte
		failures []string
		code     = teep.ErrManifestProcessingFailed
		removed  []suit.ComponentID
		// unchanged counts Updates of what was installed already: they
		// change nothing, so they do not keep the policy round going.
		unchanged int
	)
	fail := func(what string, id suit.ComponentID, err error) {
		failures = append(failures, fmt.Sprintf("%s %s: %v", what, id, err))
		if errors.Is(err, tee.ErrTampered) || errors.Is(err, tee.ErrRollback) {
			// The TEE's own state is broken: no retry will fix it.
			code = teep.ErrPermanentError
		}
		a.emit(Event{Kind: EventFailure, TAM: tam, Component: id, Detail: fmt.Sprintf("%s failed: %v", what, err)})
	}
	before, err := a.cfg.Installer.Installed()
	if err != nil {
		return a.answerError(tam, err, u.Token, alg)
	}
	st := a.tee.Storage()
	for _, id := range u.UnneededManifestList {
		if findInstalled(before, id) != nil {
			if err := mayManage(st, scope, id); err != nil {
				fail("uninstall", id, err)
				continue
			}
		}
		out, err := a.cfg.Installer.Uninstall(ctx, id, u.Token)
		if out.Report != nil {
			reports = append(reports, out.Report)
		}
		if err != nil {
			fail("uninstall", id, err)
			continue
		}
		removed = append(removed, id)
		if err := setOwner(st, id, ""); err != nil {
			return Result{}, fmt.Errorf("agent: forget owner of %s: %w", id, err)
		}
		a.emit(Event{Kind: EventUninstall, TAM: tam, Component: id, Sequence: out.Sequence, Detail: "removed"})
	}
	for i, env := range u.ManifestList {
		if mid, err := a.checkOwnership(scope, env, before); err != nil {
			fail("install", mid, err)
			continue
		}
		out, err := a.install(ctx, scope, env, u.Token)
		if out.Report != nil {
			reports = append(reports, out.Report)
		}
		if out.InvokeReport != nil {
			reports = append(reports, out.InvokeReport)
		}
		var invokeErr error
		if errors.Is(err, ErrInvokeFailed) {
			invokeErr, err = err, nil // installed all the same
		}
		if err != nil {
			id := out.ManifestID
			if id == nil {
				id = suit.ComponentID{[]byte(fmt.Sprintf("manifest-list[%d]", i))}
			}
			fail("install", id, err)
			continue
		}
		if err := setOwner(st, out.ManifestID, scope); err != nil {
			return Result{}, fmt.Errorf("agent: record owner of %s: %w", out.ManifestID, err)
		}
		if invokeErr != nil {
			fail("invoke", out.ManifestID, invokeErr)
		}
		if out.Unchanged {
			unchanged++
			a.log.Warn("TAM resent an installed manifest; not reinstalled", "tam", tam, "manifest", out.ManifestID.String(), "sequence", out.Sequence)
			a.emit(Event{Kind: EventUnchanged, TAM: tam, Component: out.ManifestID, Sequence: out.Sequence,
				Detail: "already installed and valid; the TAM resent it"})
		}
	}
	after, err := a.cfg.Installer.Installed()
	if err != nil {
		return a.answerError(tam, err, u.Token, alg)
	}
	a.reportInstalls(tam, before, after)
	if err := a.settle(after, removed); err != nil {
		return Result{}, err
	}
	if len(u.ManifestList)+len(u.UnneededManifestList) > len(failures)+unchanged {
		a.noteChanged()
	}
	if len(failures) > 0 {
		msg := strings.Join(failures, "; ")
		a.noteProblem("update from %s: %s", tam, msg)
		e := teep.ErrorFor(&teep.ProtocolError{Code: code, Msg: msg}, u.Token, a.capabilities())
		e.SUITReports = reports
		return a.answer(tam, e, alg)
	}
	return a.answer(tam, &teep.Success{Token: u.Token, SUITReports: reports}, alg)
}

// install runs one manifest trusting the signers of scope.
func (a *Agent) install(ctx context.Context, scope string, env, nonce []byte) (Outcome, error) {
	if scope == "" {
		return a.cfg.Installer.Install(ctx, env, nonce)
	}
	si, ok := a.cfg.Installer.(ScopedInstaller)
	if !ok {
		return Outcome{}, fmt.Errorf("agent: the installer cannot confine TAM %s to its signers", scope)
	}
	signers, err := signersFor(a.tee.Storage(), scope)
	if err != nil {
		return Outcome{}, err
	}
	if len(signers) == 0 {
		return Outcome{}, fmt.Errorf("%w for TAM %s", ErrNoSigners, scope)
	}
	return si.InstallTrusting(ctx, env, nonce, signers)
}

// checkOwnership refuses a manifest that would replace a manifest, or
// overwrite a component, that another TAM installed. It reads the envelope
// unverified: the processor verifies it afterwards, and a forged id can
// only make this check refuse, never let through.
func (a *Agent) checkOwnership(scope string, env []byte, before []Installed) (suit.ComponentID, error) {
	e, err := suit.ParseEnvelope(env, suit.ParseOptions{})
	if err != nil || e.Manifest() == nil {
		return nil, nil // the processor reports it
	}
	m := e.Manifest()
	st := a.tee.Storage()
	for _, c := range before {
		touches := c.ManifestID.Equal(m.ComponentID) || slices.ContainsFunc(m.Common.Components, c.ComponentID.Equal)
		if !touches {
			continue
		}
		if err := mayManage(st, scope, c.ManifestID); err != nil {
			return m.ComponentID, err
		}
	}
	return m.ComponentID, nil
}

// reportInstalls emits an install event per manifest that is new or has a
// new sequence number.
func (a *Agent) reportInstalls(tam string, before, after []Installed) {
	for _, c := range after {
		var old *Installed
		for i := range before {
			if before[i].ManifestID.Equal(c.ManifestID) && before[i].ComponentID.Equal(c.ComponentID) {
				old = &before[i]
			}
		}
		switch {
		case old == nil:
			a.emit(Event{Kind: EventInstall, TAM: tam, Component: c.ComponentID, Sequence: c.Sequence, Detail: "installed"})
		case old.Sequence != c.Sequence || !bytes.Equal(old.SHA256, c.SHA256):
			a.emit(Event{Kind: EventInstall, TAM: tam, Component: c.ComponentID, Sequence: c.Sequence,
				Detail: fmt.Sprintf("updated from sequence %d", old.Sequence)})
		}
	}
}

// settle drops requests that are now satisfied and releases that are done.
func (a *Agent) settle(inst []Installed, removed []suit.ComponentID) error {
	return tee.Update(context.Background(), a.tee.Storage(), func(tx tee.Tx) error {
		req, err := loadPending(tx, objRequested)
		if err != nil {
			return err
		}
		req = slices.DeleteFunc(req, func(p pending) bool {
			c := findInstalled(inst, p.ID)
			return c != nil && (p.MinSeq == nil || c.Sequence >= *p.MinSeq)
		})
		if err := savePending(tx, objRequested, req); err != nil {
			return err
		}
		un, err := loadPending(tx, objUnneeded)
		if err != nil {
			return err
		}
		un = slices.DeleteFunc(un, func(p pending) bool {
			return findInstalled(inst, p.ID) == nil || slices.ContainsFunc(removed, func(id suit.ComponentID) bool { return id.Equal(p.ID) })
		})
		return savePending(tx, objUnneeded, un)
	})
}
