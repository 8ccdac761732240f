package tam

import (
	"context"
	"time"

	"github.com/teep-go/teep/cosekey"
)

// Appraiser judges the attestation-payload of a QueryResponse
// (draft-ietf-teep-protocol-26 §4.3.1 and §5): Evidence in the
// background-check model, an Attestation Result in the passport model.
type Appraiser interface {
	Appraise(ctx context.Context, in AttestationInput) (*AttestationOutcome, error)
}

// AttestationInput is what the TAM knows when it appraises.
type AttestationInput struct {
	Format    string // attestation-payload-format; "" means the TEEP EAT profile
	Payload   []byte
	Challenge []byte // the QueryRequest challenge (background-check); nil if none was sent
	Token     []byte // the QueryRequest token (the nonce in the passport model)
	// AgentKey is the key that signed the QueryResponse when the Agent is
	// already known; the cnf claim must bind it. Nil for an unknown Agent:
	// the appraiser then returns the key cnf carries.
	AgentKey *cosekey.Key
	Now      time.Time
}

// AttestationOutcome is the appraisal. An error from Appraise means the
// payload could not be authenticated at all (malformed, untrusted signer,
// stale nonce): nothing in it may be used. An outcome with Status
// AttestationContraindicated means it was authentic but failed policy.
type AttestationOutcome struct {
	Status  AttestationStatus
	Reasons []string
	// AgentKey is the key cnf binds (a COSE_Key in cnf), or AgentKey of
	// the input. Nil when cnf names the key only by kid and the Agent was
	// unknown: such an Agent cannot be registered.
	AgentKey  *cosekey.Key
	UEID      []byte
	OEMID     []byte
	HWModel   []byte
	HWVersion string
	// Result is a signed Attestation Result the TAM may hand back to the
	// Agent in its Update (passport model), when the appraiser produced one.
	Result       []byte
	ResultFormat string
}
