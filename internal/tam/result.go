package tam

import (
	"bytes"
	"context"
	"errors"
	"fmt"

	"github.com/teep-go/teep/cosekey"
	"github.com/teep-go/teep/suit"
	"github.com/teep-go/teep/teep"
)

// outstanding finds the pending Update a Success or Error answers, and the
// device key that must have signed the answer.
func (e *Engine) outstanding(ctx context.Context, token []byte, n teep.Numbering) (PendingUpdate, *cosekey.Key, error) {
	var p PendingUpdate
	var d Device
	var err error
	if e.pendingKey != nil {
		p, d.Key, err = e.pendingKey.PendingWithKey(ctx, token)
		d.KID = p.DeviceKID
	} else {
		err = e.store.View(ctx, func(tx Tx) (err error) {
			if p, err = tx.Pending(ctx, token); err != nil {
				return err
			}
			d, err = tx.Device(ctx, p.DeviceKID)
			return err
		})
	}
	switch {
	case errors.Is(err, ErrNotFound):
		return p, nil, reject(KindReplay, "unknown or already answered token", nil)
	case err != nil:
		return p, nil, err
	}
	if !e.now().Before(p.ExpiresAt) {
		return p, nil, reject(KindReplay, "expired token", nil)
	}
	if p.Numbering != n.String() {
		return p, nil, reject(KindReplay, "token was issued under the "+p.Numbering+" numbering", nil)
	}
	key, err := cosekey.ParseCOSEKey(d.Key)
	if err != nil {
		return p, nil, fmt.Errorf("device %x: stored key: %w", d.KID, err)
	}
	return p, key, nil
}

// onSuccess records that the Agent applied an Update (§4.5): the sent
// components are installed, the unneeded ones gone.
func (e *Engine) onSuccess(ctx context.Context, in []byte, op *teep.Opened, m *teep.Success, o HandleOptions) error {
	if m.Token == nil {
		return reject(KindBadMessage, "Success without token", nil)
	}
	p, key, err := e.outstanding(ctx, m.Token, o.Numbering)
	if err != nil {
		return err
	}
	vop, err := e.verify(op, key)
	if err != nil {
		return err
	}
	m = vop.Message.(*teep.Success)
	if err := checkReportNonces(m.SUITReports, m.Token); err != nil {
		return reject(KindBadMessage, err.Error(), nil)
	}
	e.met.messagesIn.WithLabelValues("success").Inc()
	now := e.now()
	err = e.store.Update(ctx, func(tx Tx) error {
		if err := tx.DeletePending(ctx, p.Token); err != nil {
			return err
		}
		for _, s := range p.Install {
			if err := tx.PutInstalled(ctx, p.DeviceKID, Installed{ComponentID: s.ComponentID, Sequence: s.Sequence, Managed: true,
				Requested: s.Requested, UpdatedAt: now}); err != nil {
				return err
			}
		}
		for _, id := range p.Remove {
			if err := tx.DeleteInstalled(ctx, p.DeviceKID, id); err != nil && !errors.Is(err, ErrNotFound) {
				return err
			}
		}
		if _, err := tx.AddReport(ctx, Report{DeviceKID: p.DeviceKID, At: now, Kind: "success", Message: m.Msg, SUITReports: m.SUITReports}, e.cfg.KeepReports); err != nil {
			return err
		}
		if st, ok := tx.(DeviceSessionTx); ok {
			return st.RecordSuccess(ctx, p.DeviceKID, now) // the same, in one UPDATE
		}
		d, err := tx.Device(ctx, p.DeviceKID)
		if err != nil {
			return err
		}
		d.LastSeen = now
		if d.Status == StatusPending || d.Status == StatusRetry {
			d.Status, d.LastErrorCode = StatusOK, 0
		}
		return tx.PutDevice(ctx, d)
	})
	if errors.Is(err, ErrNotFound) {
		return reject(KindReplay, "unknown or already answered token", nil)
	}
	if err != nil {
		return err
	}
	e.met.updates.WithLabelValues("success").Inc()
	e.log.InfoContext(ctx, "Update applied", "peer", o.Peer, "kid", hexOrNil(p.DeviceKID), "installed", len(p.Install), "removed", len(p.Remove))
	return nil
}

// reaction is what the TAM does about an Agent's err-code (§4.6.1).
func reaction(code teep.ErrCode) (DeviceStatus, bool, string) {
	switch code {
	case teep.ErrTemporaryError:
		return StatusRetry, false, "temporary failure on the device; retried at the next session"
	case teep.ErrManifestProcessingFailed:
		return StatusRetry, false, "manifest processing failed"
	case teep.ErrUnsupportedExtension, teep.ErrUnsupportedFreshnessMechanisms, teep.ErrUnsupportedMsgVersion,
		teep.ErrUnsupportedCipherSuites, teep.ErrUnsupportedSUITReport:
		return StatusIncompatible, false, "no common ground: this TAM already offers every version, suite, freshness mechanism and profile it supports"
	case teep.ErrBadCertificate, teep.ErrCertificateExpired:
		return StatusError, false, "the Agent does not accept this TAM's key; install the TAM key as a trust anchor on the device"
	case teep.ErrAttestationRequired:
		return StatusError, false, "the Agent requires attestation of the TAM, which this TAM does not provide"
	case teep.ErrPermanentError:
		return StatusError, true, "permanent error on the device; it is attested again at the next session"
	}
	return StatusError, true, "unknown error code; treated as permanent"
}

// onError records an Agent's Error (§4.6) and reacts per its err-code.
func (e *Engine) onError(ctx context.Context, in []byte, op *teep.Opened, m *teep.Error, o HandleOptions) error {
	if m.Token == nil {
		return reject(KindBadMessage, "Error without token", nil)
	}
	if e.tokens.isQuery(m.Token, op.KID, e.tokens.currentEpoch()) {
		return e.queryError(ctx, in, op, m, o)
	}
	p, key, err := e.outstanding(ctx, m.Token, o.Numbering)
	if err != nil {
		return err
	}
	vop, err := e.verify(op, key)
	if err != nil {
		return err
	}
	m = vop.Message.(*teep.Error)
	if err := checkReportNonces(m.SUITReports, m.Token); err != nil {
		return reject(KindBadMessage, err.Error(), nil)
	}
	e.met.messagesIn.WithLabelValues("error").Inc()
	e.met.agentErrors.WithLabelValues(m.ErrCode.String()).Inc()
	status, reattest, what := reaction(m.ErrCode)
	now := e.now()
	err = e.store.Update(ctx, func(tx Tx) error {
		if err := tx.DeletePending(ctx, p.Token); err != nil {
			return err
		}
		if m.ErrCode == teep.ErrManifestProcessingFailed || m.ErrCode == teep.ErrPermanentError {
			fs, err := tx.Failures(ctx, p.DeviceKID)
			if err != nil {
				return err
			}
			for _, s := range p.Install {
				f := InstallFailure{DeviceKID: p.DeviceKID, ComponentID: s.ComponentID, Sequence: s.Sequence}
				for _, old := range fs {
					if old.ComponentID.Equal(s.ComponentID) && old.Sequence == s.Sequence {
						f = old
					}
				}
				f.Attempts++
				f.LastError, f.LastAt = m.ErrCode.String()+": "+m.ErrMsg, now
				if f.Attempts >= e.cfg.MaxInstallAttempts {
					status = StatusFailed
				}
				if err := tx.PutFailure(ctx, f); err != nil {
					return err
				}
			}
		}
		if _, err := tx.AddReport(ctx, Report{DeviceKID: p.DeviceKID, At: now, Kind: "error", ErrCode: int(m.ErrCode), Message: m.ErrMsg,
			SUITReports: m.SUITReports}, e.cfg.KeepReports); err != nil {
			return err
		}
		d, err := tx.Device(ctx, p.DeviceKID)
		if err != nil {
			return err
		}
		d.LastSeen, d.Status, d.LastErrorCode = now, status, int(m.ErrCode)
		d.LastError = agentErrorText(m, what)
		d.NeedsAttestation = d.NeedsAttestation || reattest
		return tx.PutDevice(ctx, d)
	})
	if errors.Is(err, ErrNotFound) {
		return reject(KindReplay, "unknown or already answered token", nil)
	}
	if err != nil {
		return err
	}
	e.met.updates.WithLabelValues("error").Inc()
	e.log.WarnContext(ctx, "Agent reported an error for an Update", "peer", o.Peer, "kid", hexOrNil(p.DeviceKID),
		"code", m.ErrCode.String(), "msg", m.ErrMsg, "status", status)
	return nil
}

// queryError handles an Error answering a QueryRequest (the Agent could
// not or would not answer it).
func (e *Engine) queryError(ctx context.Context, in []byte, op *teep.Opened, m *teep.Error, o HandleOptions) error {
	tok, err := e.tokens.parseQuery(m.Token, o.Numbering, e.now(), op.KID)
	if err != nil {
		return reject(KindReplay, err.Error(), nil)
	}
	var d Device
	err = e.store.View(ctx, func(tx Tx) (err error) { d, err = tx.Device(ctx, op.KID); return err })
	if errors.Is(err, ErrNotFound) {
		e.log.WarnContext(ctx, "Error from an unknown Agent", "peer", o.Peer, "kid", hexOrNil(op.KID), "code", m.ErrCode.String(), "msg", m.ErrMsg)
		return reject(KindUnauthorized, "Error from an unknown Agent cannot be verified", nil)
	}
	if err != nil {
		return err
	}
	key, err := cosekey.ParseCOSEKey(d.Key)
	if err != nil {
		return fmt.Errorf("device %x: stored key: %w", d.KID, err)
	}
	vop, err := e.verify(op, key)
	if err != nil {
		return err
	}
	m = vop.Message.(*teep.Error)
	e.met.messagesIn.WithLabelValues("error").Inc()
	e.met.agentErrors.WithLabelValues(m.ErrCode.String()).Inc()
	status, reattest, what := reaction(m.ErrCode)
	now := e.now()
	err = e.store.Update(ctx, func(tx Tx) error {
		if err := e.useToken(ctx, tx, tok); err != nil {
			return err
		}
		if _, err := tx.AddReport(ctx, Report{DeviceKID: d.KID, At: now, Kind: "error", ErrCode: int(m.ErrCode), Message: m.ErrMsg,
			SUITReports: m.SUITReports}, e.cfg.KeepReports); err != nil {
			return err
		}
		cur, err := tx.Device(ctx, d.KID)
		if err != nil {
			return err
		}
		cur.LastSeen, cur.Status, cur.LastErrorCode = now, status, int(m.ErrCode)
		cur.LastError = agentErrorText(m, what)
		cur.NeedsAttestation = cur.NeedsAttestation || reattest
		cur.Alg = int64(vop.Alg)
		return tx.PutDevice(ctx, cur)
	})
	if err != nil {
		return tokenErr(err)
	}
	e.log.WarnContext(ctx, "Agent refused a QueryRequest", "peer", o.Peer, "kid", hexOrNil(d.KID), "code", m.ErrCode.String(),
		"msg", m.ErrMsg, "versions", m.Versions, "suites", fmt.Sprint(m.SupportedCipherSuites), "freshness", fmt.Sprint(m.SupportedFreshnessMechanisms))
	return nil
}

func agentErrorText(m *teep.Error, what string) string {
	s := m.ErrCode.String()
	if m.ErrMsg != "" {
		s += ` "` + m.ErrMsg + `"`
	}
	return s + ": " + what
}

// checkReportNonces enforces §4.3.1/§4.5: every SUIT report in an answer
// carries suit-report-nonce equal to the token of the request answered.
// Reports protected with COSE_Sign1 are read without verifying their
// signature (the TEEP signature already covers them); encrypted reports
// cannot be read and are stored as they are.
func checkReportNonces(reports [][]byte, token []byte) error {
	for i, r := range reports {
		nonce, ok, err := reportNonce(r)
		if err != nil {
			return fmt.Errorf("suit-reports[%d]: %v", i, err)
		}
		if ok && !bytes.Equal(nonce, token) {
			return fmt.Errorf("suit-reports[%d]: suit-report-nonce does not match the token", i)
		}
	}
	return nil
}

func reportNonce(r []byte) ([]byte, bool, error) {
	if len(r) == 0 {
		return nil, false, errors.New("empty SUIT report")
	}
	switch {
	case r[0] == 0xd0 || (len(r) > 1 && r[0] == 0xd8 && r[1] == 0x60): // COSE_Encrypt0 (16) / COSE_Encrypt (96)
		return nil, false, nil
	case r[0] == 0xd2 || r[0] == 0x84:
		s, err := cosekey.ParseSigned(r)
		if err != nil {
			return nil, false, err
		}
		if s.Payload == nil {
			return nil, false, errors.New("protected SUIT report with a detached payload")
		}
		r = s.Payload
	}
	rep, err := suit.ParseReport(r)
	if err != nil {
		return nil, false, err
	}
	return rep.Nonce, true, nil
}
