package appraiser

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/teep-go/teep/cosekey"
	"github.com/teep-go/teep/eat"
	"github.com/teep-go/teep/internal/tam"
	"github.com/teep-go/teep/internal/verifier"
	"github.com/teep-go/teep/teep"
)

// Verifier is the tam.Appraiser built on internal/verifier. It accepts
// EAT payloads (attestation-payload-format absent, or an application/eat+cwt
// media type) and tells the two models apart by who signed the token:
//
//   - signed by a key in ResultKeys: an Attestation Result (passport model,
//     draft-ietf-teep-protocol-26 §5): verifier.VerifyResult with nonce = the
//     QueryRequest token (or the challenge, if one was sent);
//   - otherwise Evidence (background-check model): appraised by Local, or
//     sent to the Remote Verifier service, with nonce = the challenge.
//
// Either way cnf must bind the Agent key: the key that signed the
// QueryResponse for a known Agent; for an unknown Agent, the COSE_Key cnf
// carries (then checked against the QueryResponse signature by the engine).
type Verifier struct {
	Local      *verifier.Verifier // appraises Evidence in process; may be nil
	Remote     *verifier.Client   // a `teep verifier serve` to appraise Evidence; may be nil
	ResultKeys []*cosekey.Key     // trusted Verifier keys for Attestation Results
	// ResultKeysFunc adds Verifier keys looked up at each appraisal (e.g.
	// the ones an operator trusts through the admin API).
	ResultKeysFunc func(ctx context.Context) ([]*cosekey.Key, error)
	// AllowTimestamp accepts Evidence without eat_nonce when its iat is
	// recent (FRESHNESS_TIMESTAMP), if the TAM offered that mechanism.
	AllowTimestamp bool
	MaxAge         time.Duration // timestamp freshness window for results; 0: verifier default
}

var _ tam.Appraiser = (*Verifier)(nil)

// Appraisal errors that mean the payload cannot be trusted at all.
var errAttestationFormat = errors.New("unsupported attestation-payload-format")

// Appraise implements tam.Appraiser.
func (va *Verifier) Appraise(ctx context.Context, in tam.AttestationInput) (*tam.AttestationOutcome, error) {
	if in.Format != "" {
		base, _, _ := strings.Cut(in.Format, ";")
		if !strings.EqualFold(strings.TrimSpace(base), eat.MediaTypeEAT) {
			return nil, fmt.Errorf("%w %q (this TAM takes EAT, application/eat+cwt)", errAttestationFormat, in.Format)
		}
	}
	tok, err := eat.Parse(in.Payload, eat.ParseOptions{})
	if err != nil {
		return nil, fmt.Errorf("attestation payload: %w", err)
	}
	exp := verifier.Expectations{Freshness: teep.FreshnessNonce, Nonce: in.Challenge, AgentKey: in.AgentKey, Now: in.Now, MaxAge: va.MaxAge}
	if exp.Nonce == nil {
		exp.Nonce = in.Token
	}
	if tok.Claims.Nonce == nil && va.AllowTimestamp {
		exp.Freshness, exp.Nonce = teep.FreshnessTimestamp, nil
	}
	// The key cnf names, for an Agent the TAM does not know yet. It is
	// only believed once the token's own signature has been checked below.
	if exp.AgentKey == nil && tok.Claims.CNF != nil {
		exp.AgentKey = tok.Claims.CNF.Key
	}
	var a *verifier.Appraisal
	resultKeys := va.ResultKeys
	if va.ResultKeysFunc != nil {
		more, err := va.ResultKeysFunc(ctx)
		if err != nil {
			return nil, fmt.Errorf("trusted Verifier keys: %w", err)
		}
		resultKeys = append(append([]*cosekey.Key{}, resultKeys...), more...)
	}
	isResult := false
	if len(resultKeys) > 0 {
		if _, err := tok.Verify(resultKeys); err == nil {
			isResult = true
		}
	}
	switch {
	case isResult:
		if exp.AgentKey == nil {
			return nil, errors.New("attestation result: cnf carries no COSE_Key and the Agent is unknown")
		}
		a, err = verifier.VerifyResult(in.Payload, resultKeys, exp)
	case va.Local != nil:
		a, err = va.Local.AppraiseEvidence(ctx, in.Payload, exp)
	case va.Remote != nil:
		if exp.AgentKey == nil {
			return nil, errors.New("evidence: cnf carries no COSE_Key and the Agent is unknown")
		}
		a, err = va.Remote.AppraiseEvidence(ctx, in.Payload, exp)
	default:
		return nil, errors.New("attestation payload is not an Attestation Result from a trusted Verifier, and no Verifier is configured for Evidence")
	}
	if a == nil {
		return nil, err
	}
	if err != nil && !errors.Is(err, verifier.ErrPolicy) && !errors.Is(err, verifier.ErrResult) {
		// Malformed, untrusted, stale or not bound to this Agent: nothing
		// in it can be believed.
		return nil, err
	}
	out := &tam.AttestationOutcome{Reasons: a.Reasons, AgentKey: exp.AgentKey}
	switch a.Status {
	case verifier.Affirming:
		out.Status = tam.AttestationAffirming
	case verifier.Warning:
		out.Status = tam.AttestationWarning
	default:
		out.Status = tam.AttestationContraindicated
	}
	if c := a.Claims; c != nil {
		if c.CNF != nil && c.CNF.Key != nil && in.AgentKey == nil {
			out.AgentKey = c.CNF.Key
		}
		out.UEID, out.HWModel = c.UEID, c.HWModel
		if c.OEMID != nil {
			if c.OEMID.Bytes != nil {
				out.OEMID = c.OEMID.Bytes
			} else {
				out.OEMID = []byte(strconv.FormatUint(c.OEMID.PEN, 10))
			}
		}
		if c.HWVersion != nil {
			out.HWVersion = c.HWVersion.Version
		}
	}
	return out, nil
}
