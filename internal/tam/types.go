package tam

import (
	"encoding/hex"
	"time"

	"github.com/teep-go/teep/suit"
)

// DeviceStatus summarises where a device stands with this TAM.
type DeviceStatus string

// Device statuses. Flagged statuses (failed, incompatible, rejected, error)
// stay until the operator resets the device or a later session clears them.
const (
	StatusRegistered   DeviceStatus = "registered"   // Agent key pre-registered, never seen
	StatusOK           DeviceStatus = "ok"           // last session ended with the device in its desired state
	StatusPending      DeviceStatus = "pending"      // an Update was sent; waiting for Success or Error
	StatusRetry        DeviceStatus = "retry"        // the Agent reported a temporary error; retried next session
	StatusFailed       DeviceStatus = "failed"       // an install failed too often; that version is no longer offered
	StatusIncompatible DeviceStatus = "incompatible" // no common version, cipher suite, freshness mechanism or profile
	StatusRejected     DeviceStatus = "rejected"     // attestation failed
	StatusError        DeviceStatus = "error"        // the Agent reported a permanent error or distrusts this TAM
)

// AttestationStatus is the outcome of the last appraisal of a device.
type AttestationStatus string

// Attestation outcomes, after the AR4SI trust tiers.
const (
	AttestationNone            AttestationStatus = "none"            // never attested (pre-registered key)
	AttestationAffirming       AttestationStatus = "affirming"       // appraisal passed
	AttestationWarning         AttestationStatus = "warning"         // passed with warnings
	AttestationContraindicated AttestationStatus = "contraindicated" // appraisal failed
)

// Device is a TEE (its TEEP Agent) known to the TAM, identified by the RFC
// 9679 thumbprint of its Agent key.
type Device struct {
	KID               []byte              // RFC 9679 thumbprint of the Agent key
	Key               []byte              // the Agent's public key as COSE_Key
	Alg               int64               // COSE algorithm the Agent signs with (its cipher suite); 0 unknown
	Labels            []string            // groups DefaultTenant assigned, for its policies
	TenantLabels      map[string][]string // groups other tenants assigned, by tenant (never DefaultTenant)
	UEID              []byte              // from attestation
	OEMID             []byte              // from attestation
	HWModel           []byte              // from attestation
	HWVersion         string              // from attestation
	Preregistered     bool                // key added by the operator (trusted without attestation)
	Attestation       AttestationStatus   // last appraisal outcome
	AttestedAt        time.Time           // zero if never
	AttestationReason string              // why the last appraisal failed or warned
	NeedsAttestation  bool                // appraise again at the next session
	Status            DeviceStatus
	LastError         string // last problem, for operators
	LastErrorCode     int    // last TEEP err-code received from the Agent; 0 none
	Numbering         string // TEEP numbering last used: "draft-26" or "legacy"
	CreatedAt         time.Time
	LastSeen          time.Time // zero if never
}

// LabelsOf returns the labels tenant set on the device. Labels are per
// tenant: a policy's label scope matches only its owner's labels, so one
// tenant cannot steer another's components by labelling a shared device.
func (d *Device) LabelsOf(tenant string) []string {
	if tenant == DefaultTenant {
		return d.Labels
	}
	return d.TenantLabels[tenant]
}

// SetLabelsOf replaces the labels tenant set on the device; none removes
// the tenant's entry.
func (d *Device) SetLabelsOf(tenant string, labels []string) {
	if tenant == DefaultTenant {
		d.Labels = labels
		return
	}
	if len(labels) == 0 {
		delete(d.TenantLabels, tenant)
		return
	}
	m := make(map[string][]string, len(d.TenantLabels)+1)
	for t, ls := range d.TenantLabels { // a copy: Device values are shared by callers
		m[t] = ls
	}
	m[tenant] = labels
	d.TenantLabels = m
}

// KIDHex is the kid in lowercase hex, the form used in the admin API and CLI.
func (d *Device) KIDHex() string { return hex.EncodeToString(d.KID) }

// Installed is one component on a device as the TAM knows it: from the
// Agent's tc-list and from Updates the Agent confirmed.
type Installed struct {
	ComponentID suit.ComponentID
	Sequence    uint64 // manifest sequence number; 0 when unknown
	Managed     bool   // installed by this TAM, so this TAM may remove it
	Requested   bool   // installed because the Agent asked for it (requested-tc-list)
	UpdatedAt   time.Time
}

// Component summarises a registered Trusted Component.
type Component struct {
	ID        suit.ComponentID
	Latest    uint64 // highest sequence number
	Versions  int
	CreatedAt time.Time
	UpdatedAt time.Time
}

// ComponentVersion is one uploaded, verified SUIT envelope of a component.
// Every version is kept.
type ComponentVersion struct {
	ComponentID    suit.ComponentID
	Sequence       uint64             // suit-manifest-sequence-number
	Digest         []byte             // SUIT manifest digest (SHA-256)
	PayloadIDs     []suit.ComponentID // components the manifest writes
	PayloadDigests [][]byte           // their image digests, to recognise tc-list entries
	Dependencies   []suit.ComponentID // manifest-component-ids of manifests it depends on
	SignerKID      []byte             // the trusted TC signer key that verified it
	Size           int64              // envelope size in bytes
	CreatedAt      time.Time
}

// PolicyMode says whether a component is pushed or only offered.
type PolicyMode string

// Policy modes.
const (
	Required PolicyMode = "required" // installed on every device in scope
	Optional PolicyMode = "optional" // installed on devices in scope that request it
)

// ScopeKind says which devices a policy covers.
type ScopeKind string

// Policy scopes.
const (
	ScopeAll     ScopeKind = "all"     // every device
	ScopeLabel   ScopeKind = "label"   // devices carrying the label Value
	ScopeHWModel ScopeKind = "hwmodel" // devices whose attested hwmodel is Value (text, or hex of the bytes)
	ScopeDevice  ScopeKind = "device"  // the device whose kid (hex) is Value
)

// Policy ties a component to a set of devices. A component with no policy
// covering a device is not wanted there; if this TAM installed it, it is
// removed (unneeded-manifest-list).
type Policy struct {
	ID        int64
	Component suit.ComponentID
	Mode      PolicyMode
	Scope     ScopeKind
	Value     string // empty for ScopeAll
	CreatedAt time.Time
}

// PolicyFilter selects policies to delete; zero fields match anything.
type PolicyFilter struct {
	ID        int64
	Component suit.ComponentID
	Scope     ScopeKind
	Value     string
}

// KeyRole says what a trusted key is trusted for.
type KeyRole string

// Key roles.
const (
	RoleTCSigner KeyRole = "tc-signer" // signs Trusted Component manifests
	RoleVerifier KeyRole = "verifier"  // signs Attestation Results (passport model)
)

// TrustedKey is a public key the operator trusts for one role.
type TrustedKey struct {
	Role      KeyRole
	KID       []byte // RFC 9679 thumbprint
	Key       []byte // COSE_Key
	Comment   string
	CreatedAt time.Time
}

// SentManifest is one manifest carried by an Update.
type SentManifest struct {
	ComponentID     suit.ComponentID
	Sequence        uint64
	Requested       bool // the Agent asked for it
	Personalization bool // per-device personalization data
}

// PendingUpdate is an Update waiting for its Success or Error, keyed by its
// token. It is bound to one device: only that device's Agent key can
// complete it.
type PendingUpdate struct {
	Token     []byte
	DeviceKID []byte
	Numbering string
	Install   []SentManifest
	Remove    []suit.ComponentID
	CreatedAt time.Time
	ExpiresAt time.Time
}

// InstallFailure counts failed attempts to install one version on one device.
type InstallFailure struct {
	DeviceKID   []byte
	ComponentID suit.ComponentID
	Sequence    uint64
	Attempts    int
	LastError   string
	LastAt      time.Time
}

// Report is a message an Agent sent about its state: a Success, an Error, or
// SUIT reports in a QueryResponse.
type Report struct {
	ID          int64
	DeviceKID   []byte
	At          time.Time
	Kind        string // "success", "error" or "query-response"
	ErrCode     int    // TEEP err-code of an Error; 0 otherwise
	Message     string // msg / err-msg
	SUITReports [][]byte
}

// Personalization is per-device data delivered as its own SUIT manifest,
// encrypted to the device's Agent key and signed by the TAM. Only the
// encrypted envelope is stored.
type Personalization struct {
	DeviceKID   []byte
	Tenant      string // the owner; names are per (device, tenant); "" is DefaultTenant
	Name        string
	ComponentID suit.ComponentID // manifest-component-id of the generated manifest
	PayloadID   suit.ComponentID // the component the manifest writes the data to
	Sequence    uint64
	Envelope    []byte
	Digest      []byte
	DependsOn   []suit.ComponentID
	Size        int64 // plaintext size
	CreatedAt   time.Time
}
