package attester

import (
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/fxamacker/cbor/v2"
	"github.com/teep-go/teep/cosekey"
	"github.com/teep-go/teep/eat"
)

// Identity is what the device says about itself in every Evidence.
type Identity struct {
	UEID      []byte      // ueid; NewUEID makes a RAND one
	OEMID     *eat.OEMID  // oemid: PEN, IEEE OUI or 16 random bytes
	HWModel   []byte      // hwmodel, 1..32 bytes
	HWVersion eat.Version // hwversion
	SWName    string      // swname of the TEE / Agent software (optional)
	SWVersion eat.Version // swversion (optional; empty Version omits it)

	// Manifests are the SUIT references of the TEE and Agent software itself;
	// each Request adds those of the installed Trusted Components.
	Manifests []eat.Manifest
}

// Attester signs Evidence with the TEE's attestation key.
type Attester struct {
	Key      *cosekey.Signer // the attestation key (not the Agent's TEEP key)
	Identity Identity
	Clock    func() time.Time // nil means time.Now
	Sign     eat.SignOptions  // token framing; the zero value is an untagged COSE_Sign1
}

// Request says what one Evidence must contain besides the identity.
type Request struct {
	// Nonce is the eat_nonce (8..64 bytes): the QueryRequest challenge in the
	// background-check model, or its token in the passport model.
	Nonce []byte
	// Timestamp adds iat for the timestamp freshness mechanism. At least one
	// of Nonce and Timestamp is required.
	Timestamp bool
	// AgentKey is the Agent's TEEP message-signing key; cnf names it by its
	// RFC 9679 thumbprint. Required: Evidence not bound to a key could be
	// presented by anyone.
	AgentKey *cosekey.Key
	// IncludeAgentKey puts the public key itself in cnf next to the kid, for
	// verifiers that want to see it.
	IncludeAgentKey bool
	// Manifests are SUIT references of the installed components
	// (eat.SUITReference.Manifest builds one).
	Manifests []eat.Manifest
	// Measurements carries measured evidence such as SUIT_Reports.
	Measurements []eat.Manifest
	// DebugStatus is the dbgstat claim; nil leaves it out.
	DebugStatus *eat.DebugStatus
	// Extra are further claims by integer label, as encoded CBOR values.
	Extra map[int64]cbor.RawMessage
}

// Errors for requests that cannot produce Evidence.
var (
	ErrNoFreshness = errors.New("attester: need a nonce or a timestamp")
	ErrNoAgentKey  = errors.New("attester: need the Agent key for cnf")
	ErrNoKey       = errors.New("attester: no attestation key")
)

// Claims builds the claims-set of an Evidence without signing it.
func (a *Attester) Claims(req Request) (*eat.Claims, error) {
	if req.Nonce == nil && !req.Timestamp {
		return nil, ErrNoFreshness
	}
	if req.AgentKey == nil {
		return nil, ErrNoAgentKey
	}
	id := a.Identity
	c := &eat.Claims{
		Profile:      eat.ProfileTEEP,
		Nonce:        req.Nonce,
		UEID:         id.UEID,
		OEMID:        id.OEMID,
		HWModel:      id.HWModel,
		SWName:       id.SWName,
		CNF:          eat.ConfirmKID(req.AgentKey),
		DbgStat:      req.DebugStatus,
		Measurements: req.Measurements,
	}
	if id.HWVersion.Version != "" {
		v := id.HWVersion
		c.HWVersion = &v
	}
	if id.SWVersion.Version != "" {
		v := id.SWVersion
		c.SWVersion = &v
	}
	if req.IncludeAgentKey {
		c.CNF.Key = req.AgentKey.PublicKey()
	}
	if n := len(id.Manifests) + len(req.Manifests); n > 0 {
		c.Manifests = make([]eat.Manifest, 0, n)
		c.Manifests = append(append(c.Manifests, id.Manifests...), req.Manifests...)
	}
	if req.Timestamp {
		now := time.Now
		if a.Clock != nil {
			now = a.Clock
		}
		// whole seconds: iat is an integer NumericDate in the profile's
		// preferred form, and sub-second precision adds nothing to freshness
		t := now().Truncate(time.Second).UTC()
		c.IssuedAt = &t
	}
	if len(req.Extra) > 0 {
		c.Unknown = make(map[int64]cbor.RawMessage, len(req.Extra))
		for k, v := range req.Extra {
			c.Unknown[k] = v
		}
	}
	return c, nil
}

// Evidence returns a signed EAT for req.
func (a *Attester) Evidence(req Request) ([]byte, error) {
	if a.Key == nil {
		return nil, ErrNoKey
	}
	c, err := a.Claims(req)
	if err != nil {
		return nil, err
	}
	tok, err := eat.Sign(c, a.Key, a.Sign)
	if err != nil {
		return nil, fmt.Errorf("attester: %w", err)
	}
	return tok, nil
}

// NewUEID returns a RAND UEID: type byte 0x01 and 32 random bytes
// (RFC 9711 §4.2.1).
func NewUEID() ([]byte, error) { return NewUEIDFrom(rand.Reader) }

// NewUEIDFrom is NewUEID with an explicit entropy source.
func NewUEIDFrom(r io.Reader) ([]byte, error) {
	u := make([]byte, 33)
	u[0] = 0x01
	if _, err := io.ReadFull(r, u[1:]); err != nil {
		return nil, fmt.Errorf("attester: UEID: %w", err)
	}
	return u, nil
}
