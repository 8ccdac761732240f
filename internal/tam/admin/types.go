package admin

import (
	"encoding/hex"
	"time"
	"unicode/utf8"

	"github.com/teep-go/teep/cosekey"
	"github.com/teep-go/teep/internal/tam"
	"github.com/teep-go/teep/suit"
	"github.com/teep-go/teep/teep"
	"github.com/veraison/go-cose"
)

// JSON shapes of the admin API (docs/openapi/admin-v1.yaml). Byte strings
// are lowercase hex; times are RFC 3339; absent times are omitted.

// Component is a registered Trusted Component.
type Component struct {
	ID             string    `json:"id"`       // hex of the CBOR SUIT_Component_Identifier
	Name           string    `json:"name"`     // readable rendering
	Segments       []string  `json:"segments"` // each segment in hex
	LatestSequence uint64    `json:"latest_sequence_number"`
	Versions       int       `json:"versions"`
	CreatedAt      time.Time `json:"created_at"`
	UpdatedAt      time.Time `json:"updated_at"`
}

// Version is one registered envelope of a component.
type Version struct {
	ComponentID    string    `json:"component_id"`
	Name           string    `json:"name"`
	Sequence       uint64    `json:"sequence_number"`
	Digest         string    `json:"manifest_digest"` // SUIT manifest digest (SHA-256)
	PayloadIDs     []string  `json:"payload_ids"`
	PayloadDigests []string  `json:"payload_digests"`
	Dependencies   []string  `json:"dependencies"`
	SignerKID      string    `json:"signer_kid"`
	Size           int64     `json:"size"`
	CreatedAt      time.Time `json:"created_at"`
}

// ComponentDetail is a component with its versions and policies.
type ComponentDetail struct {
	Component
	VersionList []Version `json:"version_list"`
	Policies    []Policy  `json:"policies"`
}

// Policy ties a component to devices.
type Policy struct {
	ID            int64     `json:"id"`
	Component     string    `json:"component_id"`
	ComponentName string    `json:"component_name,omitempty"`
	Mode          string    `json:"mode"`  // required | optional
	Scope         string    `json:"scope"` // all | label | hwmodel | device
	Value         string    `json:"value,omitempty"`
	CreatedAt     time.Time `json:"created_at,omitzero"`
}

// PolicyRemoval is the answer to a policy deletion.
type PolicyRemoval struct {
	Removed int `json:"removed"`
}

// InstalledComponent is one entry of a device's inventory.
type InstalledComponent struct {
	ID        string    `json:"id"`
	Name      string    `json:"name"`
	Segments  []string  `json:"segments"`
	Sequence  uint64    `json:"sequence_number"` // 0 when unknown
	Managed   bool      `json:"managed"`         // installed by this TAM
	Requested bool      `json:"requested"`
	UpdatedAt time.Time `json:"updated_at,omitzero"`
}

// Attestation is a device's last appraisal.
type Attestation struct {
	Status string     `json:"status"` // none | affirming | warning | contraindicated
	At     *time.Time `json:"at,omitempty"`
	Reason string     `json:"reason,omitempty"`
	Needed bool       `json:"needed"` // attested again at the next session
}

// Device is a device (TEE) known to the TAM.
type Device struct {
	KID           string               `json:"kid"`
	UEID          string               `json:"ueid,omitempty"`
	OEMID         string               `json:"oemid,omitempty"`
	HWModel       string               `json:"hwmodel,omitempty"` // text when printable, else hex
	HWVersion     string               `json:"hwversion,omitempty"`
	Labels        []string             `json:"labels"`                  // the caller's tenant's (the default tenant's for the provider)
	TenantLabels  map[string][]string  `json:"tenant_labels,omitempty"` // other tenants' labels, by tenant; the provider's view only
	Status        string               `json:"status"`
	Preregistered bool                 `json:"preregistered"`
	Attestation   Attestation          `json:"attestation"`
	Alg           string               `json:"alg,omitempty"` // the cipher suite's algorithm
	Numbering     string               `json:"numbering,omitempty"`
	LastSeen      *time.Time           `json:"last_seen,omitempty"`
	LastError     string               `json:"last_error,omitempty"`
	LastErrorCode int                  `json:"last_error_code,omitempty"`
	LastErrorName string               `json:"last_error_name,omitempty"`
	CreatedAt     time.Time            `json:"created_at"`
	Components    []InstalledComponent `json:"components"`
}

// DeviceDetail adds what the TAM keeps about one device.
type DeviceDetail struct {
	Device
	Failures        []Failure         `json:"failures"`
	Personalization []Personalization `json:"personalization"`
	Pending         []Pending         `json:"pending"`
	Reports         []Report          `json:"reports"`
}

// Failure counts failed installs of one version.
type Failure struct {
	Component string    `json:"component_id"`
	Name      string    `json:"name"`
	Sequence  uint64    `json:"sequence_number"`
	Attempts  int       `json:"attempts"`
	LastError string    `json:"last_error"`
	LastAt    time.Time `json:"last_at"`
}

// Pending is an Update awaiting its answer.
type Pending struct {
	Install   []SentManifest `json:"install"`
	Remove    []string       `json:"remove"`
	CreatedAt time.Time      `json:"created_at"`
	ExpiresAt time.Time      `json:"expires_at"`
}

// SentManifest is one manifest of a pending Update.
type SentManifest struct {
	Component       string `json:"component_id"`
	Name            string `json:"name"`
	Sequence        uint64 `json:"sequence_number"`
	Personalization bool   `json:"personalization,omitempty"`
}

// Report is a message an Agent sent about its state.
type Report struct {
	ID          int64     `json:"id"`
	At          time.Time `json:"at"`
	Kind        string    `json:"kind"` // success | error | query-response
	ErrCode     int       `json:"err_code,omitempty"`
	ErrName     string    `json:"err_name,omitempty"`
	Message     string    `json:"message,omitempty"`
	SUITReports []string  `json:"suit_reports"` // hex
}

// Personalization is per-device data (only metadata; the data is never
// returned).
type Personalization struct {
	Tenant      string    `json:"tenant"`
	Name        string    `json:"name"`
	ComponentID string    `json:"component_id"`
	PayloadID   string    `json:"payload_id"`
	Sequence    uint64    `json:"sequence_number"`
	Size        int64     `json:"size"`
	Digest      string    `json:"manifest_digest"`
	DependsOn   []string  `json:"depends_on"`
	CreatedAt   time.Time `json:"created_at"`
}

// TrustedKey is a key trusted for a role.
type TrustedKey struct {
	Role      string    `json:"role"`
	KID       string    `json:"kid"`
	Type      string    `json:"type"` // P-256 | Ed25519
	PEM       string    `json:"pem"`
	Comment   string    `json:"comment,omitempty"`
	CreatedAt time.Time `json:"created_at"`
}

// Info describes the TAM.
type Info struct {
	Version string       `json:"version"`
	Keys    []TrustedKey `json:"keys"` // the TAM's public keys (role "tam")
}

// Health is the health check answer.
type Health struct {
	Status   string `json:"status"`
	Database string `json:"database"`
}

func hx(b []byte) string { return hex.EncodeToString(b) }

func hexList(bs [][]byte) []string {
	out := make([]string, len(bs))
	for i, b := range bs {
		out[i] = hx(b)
	}
	return out
}

func idList(ids []suit.ComponentID) []string {
	out := make([]string, len(ids))
	for i, id := range ids {
		out[i] = idHex(id)
	}
	return out
}

// idHex is how the API names a component: the hex of the id's CBOR
// encoding; "" for none.
func idHex(id suit.ComponentID) string {
	if id == nil {
		return ""
	}
	return tam.IDHex(id)
}

func timePtr(t time.Time) *time.Time {
	if t.IsZero() {
		return nil
	}
	return &t
}

func text(b []byte) string {
	if utf8.Valid(b) {
		ok := true
		for _, c := range b {
			if c < 0x20 || c == 0x7f {
				ok = false
			}
		}
		if ok {
			return string(b)
		}
	}
	return hx(b)
}

func toComponent(c tam.Component) Component {
	return Component{ID: idHex(c.ID), Name: tam.IDName(c.ID), Segments: c.ID.Hex(), LatestSequence: c.Latest,
		Versions: c.Versions, CreatedAt: c.CreatedAt, UpdatedAt: c.UpdatedAt}
}

func toVersion(v tam.ComponentVersion) Version {
	return Version{ComponentID: idHex(v.ComponentID), Name: tam.IDName(v.ComponentID), Sequence: v.Sequence, Digest: hx(v.Digest),
		PayloadIDs: idList(v.PayloadIDs), PayloadDigests: hexList(v.PayloadDigests), Dependencies: idList(v.Dependencies),
		SignerKID: hx(v.SignerKID), Size: v.Size, CreatedAt: v.CreatedAt}
}

func toPolicy(p tam.Policy) Policy {
	return Policy{ID: p.ID, Component: idHex(p.Component), ComponentName: tam.IDName(p.Component), Mode: string(p.Mode),
		Scope: string(p.Scope), Value: p.Value, CreatedAt: p.CreatedAt}
}

// toDevice shows d to a caller of tenant ("" for the provider, who sees
// every tenant's labels).
func toDevice(d tam.Device, inst []tam.Installed, tenant string) Device {
	labels, others := d.Labels, d.TenantLabels
	if tenant != "" {
		labels, others = d.LabelsOf(tenant), nil
	}
	out := Device{
		KID: hx(d.KID), UEID: hx(d.UEID), OEMID: hx(d.OEMID), HWModel: text(d.HWModel), HWVersion: d.HWVersion,
		Labels: labels, TenantLabels: others, Status: string(d.Status), Preregistered: d.Preregistered,
		Attestation: Attestation{Status: string(d.Attestation), At: timePtr(d.AttestedAt), Reason: d.AttestationReason, Needed: d.NeedsAttestation},
		Numbering:   d.Numbering, LastSeen: timePtr(d.LastSeen), LastError: d.LastError, LastErrorCode: d.LastErrorCode,
		CreatedAt: d.CreatedAt, Components: []InstalledComponent{},
	}
	if out.Labels == nil {
		out.Labels = []string{}
	}
	if d.Alg != 0 {
		out.Alg = cosekey.AlgName(cose.Algorithm(d.Alg))
	}
	if d.LastErrorCode != 0 {
		out.LastErrorName = teep.ErrCode(d.LastErrorCode).String()
	}
	for _, in := range inst {
		out.Components = append(out.Components, InstalledComponent{ID: idHex(in.ComponentID), Name: tam.IDName(in.ComponentID),
			Segments: in.ComponentID.Hex(), Sequence: in.Sequence, Managed: in.Managed, Requested: in.Requested, UpdatedAt: in.UpdatedAt})
	}
	return out
}

func toDetail(di tam.DeviceInfo, tenant string) DeviceDetail {
	out := DeviceDetail{Device: toDevice(di.Device, di.Installed, tenant), Failures: []Failure{}, Personalization: []Personalization{},
		Pending: []Pending{}, Reports: []Report{}}
	for _, f := range di.Failures {
		out.Failures = append(out.Failures, Failure{Component: idHex(f.ComponentID), Name: tam.IDName(f.ComponentID), Sequence: f.Sequence,
			Attempts: f.Attempts, LastError: f.LastError, LastAt: f.LastAt})
	}
	for _, p := range di.Personalization {
		out.Personalization = append(out.Personalization, toPersonalization(p))
	}
	for _, p := range di.Pending {
		pj := Pending{Remove: idList(p.Remove), CreatedAt: p.CreatedAt, ExpiresAt: p.ExpiresAt, Install: []SentManifest{}}
		for _, s := range p.Install {
			pj.Install = append(pj.Install, SentManifest{Component: idHex(s.ComponentID), Name: tam.IDName(s.ComponentID), Sequence: s.Sequence, Personalization: s.Personalization})
		}
		out.Pending = append(out.Pending, pj)
	}
	for _, r := range di.Reports {
		rj := Report{ID: r.ID, At: r.At, Kind: r.Kind, ErrCode: r.ErrCode, Message: r.Message, SUITReports: hexList(r.SUITReports)}
		if r.ErrCode != 0 {
			rj.ErrName = teep.ErrCode(r.ErrCode).String()
		}
		out.Reports = append(out.Reports, rj)
	}
	return out
}

func toPersonalization(p tam.Personalization) Personalization {
	tenant := p.Tenant
	if tenant == "" {
		tenant = tam.DefaultTenant
	}
	return Personalization{Tenant: tenant, Name: p.Name, ComponentID: idHex(p.ComponentID), PayloadID: idHex(p.PayloadID), Sequence: p.Sequence,
		Size: p.Size, Digest: hx(p.Digest), DependsOn: idList(p.DependsOn), CreatedAt: p.CreatedAt}
}

func toTrustedKey(role string, kid, coseKey []byte, comment string, created time.Time) (TrustedKey, error) {
	k, err := cosekey.ParseCOSEKey(coseKey)
	if err != nil {
		return TrustedKey{}, err
	}
	pem, err := k.MarshalPEM(false)
	if err != nil {
		return TrustedKey{}, err
	}
	return TrustedKey{Role: role, KID: hx(kid), Type: k.Type().String(), PEM: string(pem), Comment: comment, CreatedAt: created}, nil
}
