package verifier

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/teep-go/teep/cosekey"
	"github.com/teep-go/teep/eat"
	"github.com/teep-go/teep/teep"
)

// Status is the outcome of an appraisal, after the AR4SI trust tiers
// (draft-ietf-rats-ar4si §2.3.1).
type Status int

const (
	// Affirming: every check passed.
	Affirming Status = iota + 1
	// Warning: trustworthy, but something is off (lenient decoding, an
	// out-of-date manifest, a result without a status claim); see Reasons.
	Warning
	// Contraindicated: do not trust the Attester; see Reasons.
	Contraindicated
)

func (s Status) String() string {
	switch s {
	case Affirming:
		return "affirming"
	case Warning:
		return "warning"
	case Contraindicated:
		return "contraindicated"
	}
	return "none"
}

// Tier is the AR4SI trust tier carried as ear.status.
func (s Status) Tier() eat.TrustTier {
	switch s {
	case Affirming:
		return eat.TierAffirming
	case Warning:
		return eat.TierWarning
	case Contraindicated:
		return eat.TierContraindicated
	}
	return eat.TierNone
}

// statusFromTier maps ear.status back; unknown tiers are contraindicated.
func statusFromTier(t eat.TrustTier) Status {
	switch {
	case t == eat.TierNone:
		return 0
	case t >= 2 && t <= 31:
		return Affirming
	case t >= 32 && t <= 95:
		return Warning
	}
	return Contraindicated
}

// Errors returned with a contraindicated appraisal, one per kind of failure,
// so callers can map them (e.g. to HTTP status codes) with errors.Is.
var (
	ErrMalformed  = errors.New("verifier: malformed token")
	ErrUntrusted  = errors.New("verifier: not signed by a trusted key")
	ErrFreshness  = errors.New("verifier: freshness check failed")
	ErrBinding    = errors.New("verifier: cnf does not bind the Agent key")
	ErrPolicy     = errors.New("verifier: reference values not met")
	ErrResult     = errors.New("verifier: attestation result says contraindicated")
	ErrNoAgentKey = errors.New("verifier: the Agent key is needed to check a result")
)

// Expectations are what the relying party knows about this attestation.
type Expectations struct {
	// Freshness is the mechanism in use: teep.FreshnessNonce (the default)
	// or teep.FreshnessTimestamp.
	Freshness teep.FreshnessMechanism
	// Nonce is the eat_nonce the token must carry under nonce freshness:
	// the QueryRequest challenge (background-check) or token (passport).
	// Nil means the caller cannot know it, which is the case of the
	// passport-model Verifier service: the nonce must then be present and is
	// echoed into the Attestation Result for the TAM to check.
	Nonce []byte
	// AgentKey is the key that signed the TEEP message carrying the token;
	// cnf must name it. Nil skips the comparison (the Verifier service does
	// not see TEEP messages); cnf must be present either way.
	AgentKey *cosekey.Key

	// Now and MaxAge are used by VerifyResult only (a Verifier has its clock
	// and policy): the time to check against (zero means time.Now) and the
	// oldest iat accepted under timestamp freshness (zero means
	// DefaultMaxAge).
	Now    time.Time
	MaxAge time.Duration
}

// Appraisal is the outcome of appraising Evidence or checking a result.
type Appraisal struct {
	Status  Status
	Reasons []string // why the status is not Affirming; empty when it is
	Claims  *eat.Claims

	Endorsement string       // which endorsement's key verified the token
	SignerKey   *cosekey.Key // that key
	PolicyID    string       // the policy applied (from ear.appraisal-policy-id for results)
	Time        time.Time    // when the appraisal was made

	// Freshness is the mechanism that was actually checked.
	Freshness teep.FreshnessMechanism
}

// reasons accumulates findings, each with the status it forces.
type reasons struct {
	a     *Appraisal
	first error // sentinel of the first contraindication
}

func (r *reasons) add(s Status, kind error, format string, args ...any) {
	r.a.Reasons = append(r.a.Reasons, fmt.Sprintf(format, args...))
	if s > r.a.Status {
		r.a.Status = s
	}
	if s == Contraindicated && r.first == nil {
		r.first = kind
	}
}

func (r *reasons) result() (*Appraisal, error) {
	if r.a.Status == 0 {
		r.a.Status = Affirming
	}
	if r.a.Status == Contraindicated {
		return r.a, fmt.Errorf("%w: %s", r.first, strings.Join(r.a.Reasons, "; "))
	}
	return r.a, nil
}

// Config configures a Verifier.
type Config struct {
	// Policy must not change after New; load a new one and make a new
	// Verifier to switch policies.
	Policy *Policy
	// Key signs Attestation Results (IssueResult); not needed to appraise.
	Key *cosekey.Signer
	// Issuer is the iss claim of issued results (e.g. the service URL).
	Issuer string
	// Clock is the time source; nil means time.Now.
	Clock func() time.Time
}

// Verifier appraises Evidence against a policy and issues Attestation
// Results. It is safe for concurrent use.
type Verifier struct {
	policy *Policy
	key    *cosekey.Signer
	issuer string
	now    func() time.Time
	keys   []*cosekey.Key
}

// New returns a Verifier. A policy with no endorsements is an error: it
// could never affirm anything.
func New(cfg Config) (*Verifier, error) {
	if cfg.Policy == nil {
		return nil, errors.New("verifier: no policy")
	}
	if len(cfg.Policy.Endorsements) == 0 {
		return nil, errors.New("verifier: the policy trusts no attestation key (no endorsements)")
	}
	// Policies are immutable once in use: fill unset fields in a copy, so a
	// Policy written as a Go literal behaves like one parsed from JSON.
	p := *cfg.Policy
	for _, w := range []struct {
		v   *time.Duration
		def time.Duration
	}{{&p.MaxAge, DefaultMaxAge}, {&p.ClockSkew, DefaultClockSkew}, {&p.ResultTTL, DefaultResultTTL}} {
		if *w.v == 0 {
			*w.v = w.def
		}
	}
	if p.RequiredClaims == nil { // nil, not empty: a JSON policy may require none
		p.RequiredClaims = append([]int64(nil), eat.RequiredTEEPClaims...)
	}
	v := &Verifier{policy: &p, key: cfg.Key, issuer: cfg.Issuer, now: cfg.Clock}
	if v.now == nil {
		v.now = time.Now
	}
	for _, e := range cfg.Policy.Endorsements {
		if e.Key == nil {
			return nil, fmt.Errorf("verifier: endorsement %q has no key", e.Name)
		}
		v.keys = append(v.keys, e.Key)
	}
	return v, nil
}

// Policy returns the policy in force.
func (v *Verifier) Policy() *Policy { return v.policy }

// PublicKey returns the key results are signed with, or nil.
func (v *Verifier) PublicKey() *cosekey.Key {
	if v.key == nil {
		return nil
	}
	return v.key.PublicKey()
}

// AppraiseEvidence checks Evidence (an EAT of the TEEP profile) in the
// order of draft-ietf-teep-protocol-26 §5 and RFC 9711: framing, signature
// by an endorsed key, profile, required claims, freshness, cnf binding, and
// reference values. The Appraisal is returned whenever the token decoded
// (so a TAM can see what is out of date even after a failure); the error is
// non-nil exactly when the status is Contraindicated, and wraps one of
// ErrMalformed, ErrUntrusted, ErrFreshness, ErrBinding or ErrPolicy.
func (v *Verifier) AppraiseEvidence(ctx context.Context, evidence []byte, exp Expectations) (*Appraisal, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	now := v.now()
	p := v.policy
	a := &Appraisal{Time: now, PolicyID: p.ID}
	r := &reasons{a: a}

	tok, err := eat.Parse(evidence, eat.ParseOptions{LenientUnsafe: p.LenientDecodingUnsafe})
	if err != nil {
		r.add(Contraindicated, ErrMalformed, "evidence: %v", err)
		return r.result()
	}
	c := tok.Claims
	a.Claims = c
	ver, err := tok.Verify(v.keys)
	if err != nil {
		r.add(Contraindicated, ErrUntrusted, "evidence signature (kid %x): %v", tok.KID, err)
		return r.result()
	}
	a.SignerKey = ver.Key
	e, ok := v.endorsementFor(ver.Key, c)
	a.Endorsement = e.Name
	if !ok {
		if e.OEMID != nil && !e.OEMID.Equal(c.OEMID) {
			r.add(Contraindicated, ErrUntrusted, "endorsement %q covers oemid %v only, evidence says %v", e.Name, e.OEMID, c.OEMID)
		}
		if len(e.HWModels) > 0 && !containsBytes(e.HWModels, c.HWModel) {
			r.add(Contraindicated, ErrUntrusted, "endorsement %q does not cover hwmodel %x", e.Name, c.HWModel)
		}
	}

	checkProfile(r, c)
	for _, k := range p.RequiredClaims {
		if k != eat.ClaimCnf && !c.Has(k) { // cnf: checkBinding says more
			r.add(Contraindicated, ErrPolicy, "required claim %s is missing", eat.ClaimName(k))
		}
	}
	for _, d := range c.Deviations {
		r.add(Warning, ErrMalformed, "lenient decoding: %s", d)
	}
	checkFreshness(r, c, exp, now, p.MaxAge, p.ClockSkew, true)
	checkBinding(r, c, exp.AgentKey)
	v.checkReferenceValues(r, c)
	return r.result()
}

// endorsementFor picks the endorsement of key k whose constraints the claims
// meet; when none does, it returns the first for k with ok false.
func (v *Verifier) endorsementFor(k *cosekey.Key, c *eat.Claims) (e Endorsement, ok bool) {
	first := true
	for _, x := range v.policy.Endorsements {
		if !x.Key.Equal(k) {
			continue
		}
		if (x.OEMID == nil || x.OEMID.Equal(c.OEMID)) && (len(x.HWModels) == 0 || containsBytes(x.HWModels, c.HWModel)) {
			return x, true
		}
		if first {
			e, first = x, false
		}
	}
	return e, false
}

func checkProfile(r *reasons, c *eat.Claims) {
	switch {
	case c.ProfileOID != nil:
		r.add(Contraindicated, ErrPolicy, "eat_profile is an OID, not %s", eat.ProfileTEEP)
	case c.Profile != "" && c.Profile != eat.ProfileTEEP:
		r.add(Contraindicated, ErrPolicy, "eat_profile %q is not %s", c.Profile, eat.ProfileTEEP)
	}
	if c.Nonces != nil {
		r.add(Contraindicated, ErrFreshness, "eat_nonce is an array; the TEEP profile uses a single byte string")
	}
}

// checkFreshness applies the nonce or timestamp mechanism, then the CWT
// validity claims. evidence selects the wording and whether a missing
// expected nonce means "echo" (the Verifier service).
func checkFreshness(r *reasons, c *eat.Claims, exp Expectations, now time.Time, maxAge, skew time.Duration, evidence bool) {
	a := r.a
	switch exp.Freshness {
	case teep.FreshnessNonce:
		a.Freshness = teep.FreshnessNonce
		switch {
		case c.Nonces != nil:
			// already reported by checkProfile
		case c.Nonce == nil && exp.Nonce == nil && evidence && c.IssuedAt != nil:
			// the Verifier service: no nonce to echo, fall back to iat
			a.Freshness = teep.FreshnessTimestamp
			checkIAT(r, c, now, maxAge, skew, true)
		case c.Nonce == nil:
			r.add(Contraindicated, ErrFreshness, "eat_nonce is missing (nonce freshness)")
		case exp.Nonce != nil && !bytes.Equal(c.Nonce, exp.Nonce):
			r.add(Contraindicated, ErrFreshness, "eat_nonce %x does not match the expected %x", c.Nonce, exp.Nonce)
		}
		if a.Freshness == teep.FreshnessNonce && c.IssuedAt != nil {
			checkIAT(r, c, now, maxAge, skew, false)
		}
	case teep.FreshnessTimestamp:
		a.Freshness = teep.FreshnessTimestamp
		if exp.Nonce != nil && c.Nonce != nil && !bytes.Equal(c.Nonce, exp.Nonce) {
			r.add(Contraindicated, ErrFreshness, "eat_nonce %x does not match the expected %x", c.Nonce, exp.Nonce)
		}
		checkIAT(r, c, now, maxAge, skew, true)
	default:
		r.add(Contraindicated, ErrFreshness, "unsupported freshness mechanism %d", exp.Freshness)
	}
	if c.Expiry != nil && !now.Before(*c.Expiry) {
		r.add(Contraindicated, ErrFreshness, "expired at %s (exp)", c.Expiry.Format(time.RFC3339))
	}
	if c.NotBefore != nil && now.Add(skew).Before(*c.NotBefore) {
		r.add(Contraindicated, ErrFreshness, "not valid before %s (nbf)", c.NotBefore.Format(time.RFC3339))
	}
}

// checkIAT enforces the iat window. When iat is the freshness proof
// (required), a missing or out-of-window iat is contraindicated; when a nonce
// already proves freshness, an odd iat is only a warning.
func checkIAT(r *reasons, c *eat.Claims, now time.Time, maxAge, skew time.Duration, required bool) {
	sev := Warning
	if required {
		sev = Contraindicated
	}
	switch {
	case c.IssuedAt == nil:
		r.add(sev, ErrFreshness, "iat is missing (timestamp freshness)")
	case c.IssuedAt.After(now.Add(skew)):
		r.add(sev, ErrFreshness, "iat %s is in the future (now %s, allowed skew %s)", c.IssuedAt.Format(time.RFC3339), now.UTC().Format(time.RFC3339), skew)
	case c.IssuedAt.Before(now.Add(-maxAge)):
		r.add(sev, ErrFreshness, "iat %s is stale (older than %s)", c.IssuedAt.Format(time.RFC3339), maxAge)
	}
}

func checkBinding(r *reasons, c *eat.Claims, agent *cosekey.Key) {
	switch {
	case c.CNF == nil:
		r.add(Contraindicated, ErrBinding, "cnf is missing: the token is not bound to an Agent key")
	case c.CNF.Key == nil && c.CNF.KID == nil:
		r.add(Contraindicated, ErrBinding, "cnf names no key")
	case agent != nil:
		if err := c.CNF.Binds(agent); err != nil {
			r.add(Contraindicated, ErrBinding, "%v", err)
		}
	}
}

func (v *Verifier) checkReferenceValues(r *reasons, c *eat.Claims) {
	p := v.policy
	if c.UEID != nil && containsBytes(p.DeniedUEIDs, c.UEID) {
		r.add(Contraindicated, ErrPolicy, "ueid %x is revoked", c.UEID)
	}
	if len(p.AllowedUEIDs) > 0 && !containsBytes(p.AllowedUEIDs, c.UEID) {
		r.add(Contraindicated, ErrPolicy, "ueid %x is not an allowed device", c.UEID)
	}
	if len(p.Devices) > 0 {
		var dc *DeviceClass
		for i := range p.Devices {
			d := &p.Devices[i]
			if (d.OEMID == nil || d.OEMID.Equal(c.OEMID)) && bytes.Equal(d.HWModel, c.HWModel) {
				dc = d
				break
			}
		}
		if dc == nil {
			r.add(Contraindicated, ErrPolicy, "unknown device class: hwmodel %x of oemid %v is not in the reference values", c.HWModel, c.OEMID)
		} else {
			checkMinVersion(r, "hwversion", c.HWVersion, dc.MinHWVersion)
			checkMinVersion(r, "swversion", c.SWVersion, dc.MinSWVersion)
		}
	}
	if p.RequireDebugDisabled {
		switch {
		case c.DbgStat == nil:
			r.add(Contraindicated, ErrPolicy, "dbgstat is missing; the policy requires debug to be disabled")
		case *c.DbgStat == eat.DebugEnabled:
			r.add(Contraindicated, ErrPolicy, "debug is enabled (dbgstat 0)")
		}
	}
	for i, m := range c.Manifests {
		ref, err := m.SUITReference()
		if err != nil {
			continue // not a SUIT reference: nothing to compare
		}
		for _, k := range p.KnownManifests {
			if k.URI == ref.URI && (k.DigestAlg != ref.DigestAlg || !bytes.Equal(k.Digest, ref.Digest)) {
				r.add(Warning, ErrPolicy, "manifests[%d] %s has digest %x, the reference is %x (update needed)", i, ref.URI, ref.Digest, k.Digest)
			}
		}
	}
}

func checkMinVersion(r *reasons, name string, have *eat.Version, min string) {
	if min == "" {
		return
	}
	if have == nil {
		r.add(Contraindicated, ErrPolicy, "%s is missing; the policy requires at least %s", name, min)
		return
	}
	cmp, err := compareVersions(have.Version, min)
	switch {
	case err != nil:
		r.add(Contraindicated, ErrPolicy, "%s: %v", name, err)
	case cmp < 0:
		r.add(Contraindicated, ErrPolicy, "%s %s is older than the minimum %s", name, have.Version, min)
	}
}

func containsBytes(list [][]byte, b []byte) bool {
	for _, x := range list {
		if bytes.Equal(x, b) {
			return true
		}
	}
	return false
}

// IssueResult signs an Attestation Result for an appraisal: an EAT of the
// TEEP profile (draft-ietf-teep-protocol-26 §5) that keeps the Evidence's
// eat_nonce (the TEEP token in the passport model) and cnf, repeats the
// device claims a TAM decides on, and states the outcome in ear.status
// (draft-ietf-rats-ear) with the policy id. It expires after the policy's
// ResultTTL.
func (v *Verifier) IssueResult(a *Appraisal) ([]byte, error) {
	if v.key == nil {
		return nil, errors.New("verifier: no result-signing key configured")
	}
	if a == nil || a.Claims == nil || a.Status == 0 {
		return nil, errors.New("verifier: no appraisal to issue a result for")
	}
	ev := a.Claims
	now := v.now().Truncate(time.Second).UTC()
	exp := now.Add(v.policy.ResultTTL)
	tier := a.Status.Tier()
	c := &eat.Claims{
		Issuer:      v.issuer,
		IssuedAt:    &now,
		Expiry:      &exp,
		CNF:         ev.CNF,
		Nonce:       ev.Nonce,
		UEID:        ev.UEID,
		OEMID:       ev.OEMID,
		HWModel:     ev.HWModel,
		HWVersion:   ev.HWVersion,
		DbgStat:     ev.DbgStat,
		Profile:     eat.ProfileTEEP,
		SWName:      ev.SWName,
		SWVersion:   ev.SWVersion,
		Manifests:   ev.Manifests,
		EARStatus:   &tier,
		EARPolicyID: v.policy.ID,
	}
	if len(ev.Deviations) > 0 {
		// leniently decoded bodies are not re-issued; the result states the
		// verdict and the identity, not the odd encodings
		c.Manifests = nil
		for _, m := range ev.Manifests {
			if _, ok := m.Bytes(); ok {
				c.Manifests = append(c.Manifests, m)
			} else if _, ok := m.Text(); ok {
				c.Manifests = append(c.Manifests, m)
			}
		}
		if c.UEID != nil && eat.ValidUEID(c.UEID) != nil {
			c.UEID = nil
		}
	}
	tok, err := eat.Sign(c, v.key, eat.SignOptions{})
	if err != nil {
		return nil, fmt.Errorf("verifier: issue result: %w", err)
	}
	return tok, nil
}

// VerifyResult is the TAM side of the passport model: it checks that an
// Attestation Result is signed by a trusted Verifier, is fresh (eat_nonce =
// the QueryRequest token, or iat within MaxAge under timestamp freshness),
// has not expired, and that its cnf names the key that signed the TEEP
// message carrying it (exp.AgentKey, required). The Appraisal's status is the
// Verifier's (ear.status), lowered to Contraindicated by any failed check; a
// result without ear.status is trusted on its signature with a warning.
func VerifyResult(result []byte, trustedVerifierKeys []*cosekey.Key, exp Expectations) (*Appraisal, error) {
	now := exp.Now
	if now.IsZero() {
		now = time.Now()
	}
	maxAge := exp.MaxAge
	if maxAge == 0 {
		maxAge = DefaultMaxAge
	}
	a := &Appraisal{Time: now}
	r := &reasons{a: a}
	if exp.AgentKey == nil {
		r.add(Contraindicated, ErrNoAgentKey, "no Agent key to compare cnf with")
		return r.result()
	}
	tok, err := eat.Parse(result, eat.ParseOptions{})
	if err != nil {
		r.add(Contraindicated, ErrMalformed, "attestation result: %v", err)
		return r.result()
	}
	c := tok.Claims
	a.Claims, a.PolicyID = c, c.EARPolicyID
	ver, err := tok.Verify(trustedVerifierKeys)
	if err != nil {
		r.add(Contraindicated, ErrUntrusted, "attestation result signature (kid %x): %v", tok.KID, err)
		return r.result()
	}
	a.SignerKey = ver.Key
	switch {
	case c.EARStatus == nil:
		r.add(Warning, ErrResult, "the result carries no ear.status; trusted on its signature alone")
	default:
		if s := statusFromTier(*c.EARStatus); s == Contraindicated || s == 0 {
			r.add(Contraindicated, ErrResult, "the Verifier's verdict is %s", *c.EARStatus)
		} else if s == Warning {
			r.add(Warning, ErrResult, "the Verifier's verdict is warning")
		}
	}
	checkProfile(r, c)
	if exp.Freshness == teep.FreshnessNonce && exp.Nonce == nil {
		r.add(Contraindicated, ErrFreshness, "nonce freshness needs the expected nonce (the QueryRequest token)")
	}
	checkFreshness(r, c, exp, now, maxAge, DefaultClockSkew, false)
	checkBinding(r, c, exp.AgentKey)
	return r.result()
}
