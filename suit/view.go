package suit

import (
	"encoding/hex"
	"strconv"

	"github.com/veraison/go-cose"

	"github.com/teep-go/teep/cosekey"
)

// Machine-readable views of envelopes and reports, shared by the CLI, the
// TAM's admin API and the device side. Keys are ours and snake_case, except
// the keys of Properties maps, which are the draft's parameter names
// (ParamName) because there the key is the protocol label
// (docs/architecture.md, Machine output).

// DigestView is a SUIT_Digest.
type DigestView struct {
	Alg   string `json:"alg"` // DigestAlgName
	AlgID int64  `json:"alg_id"`
	Hex   string `json:"hex"`
}

// NewDigestView renders d.
func NewDigestView(d Digest) DigestView {
	return DigestView{Alg: DigestAlgName(d.Alg), AlgID: d.Alg, Hex: hex.EncodeToString(d.Bytes)}
}

// ManifestSummary is the identity of one manifest: what a TEEP Update's
// manifest-list entry or a stored manifest is known by.
type ManifestSummary struct {
	ManifestComponentID []string   `json:"manifest_component_id,omitempty"`
	SequenceNumber      uint64     `json:"sequence_number"`
	ManifestDigest      DigestView `json:"manifest_digest"`
}

// Summarize parses an envelope just far enough to name its manifest.
func Summarize(envelope []byte) (ManifestSummary, error) {
	env, err := ParseEnvelope(envelope, ParseOptions{})
	if err != nil {
		return ManifestSummary{}, err
	}
	m := env.Manifest()
	s := ManifestSummary{SequenceNumber: m.SequenceNumber, ManifestDigest: NewDigestView(env.Digest())}
	if m.ComponentID != nil {
		s.ManifestComponentID = m.ComponentID.Hex()
	}
	return s, nil
}

// AuthAlgName names a COSE signature or MAC algorithm of an authentication
// block.
func AuthAlgName(alg int64) string {
	switch alg {
	case AlgHMAC256:
		return "HMAC-256"
	case AlgHMAC384:
		return "HMAC-384"
	case AlgHMAC512:
		return "HMAC-512"
	}
	return cosekey.AlgName(cose.Algorithm(alg))
}

// InspectView describes an envelope without checking its signatures.
type InspectView struct {
	Tagged              bool             `json:"tagged"`
	ManifestComponentID []string         `json:"manifest_component_id"`
	SequenceNumber      uint64           `json:"sequence_number"`
	ManifestDigest      DigestView       `json:"manifest_digest"`
	Components          [][]string       `json:"components"`
	Dependencies        []DependencyView `json:"dependencies"`
	ReferenceURI        *string          `json:"reference_uri,omitempty"`
	Authentication      []AuthView       `json:"authentication"`
	Sections            []string         `json:"sections"`
	SeverableMembers    []MemberView     `json:"severable_members"`
	Integrated          []IntegratedView `json:"integrated"`
	Description         string           `json:"description,omitempty"`
	// Unknown lists members this package does not know (parsed with
	// ParseOptions.KeepUnknownUnsafe), where they are and their size.
	Unknown []UnknownView `json:"unknown_members,omitempty"`
}

// UnknownView is one member Inspect could only show, not interpret.
type UnknownView struct {
	In   string `json:"in"` // "envelope" or "manifest"
	Key  int64  `json:"key"`
	Size int    `json:"size"`
}

// DependencyView is one suit-dependencies entry: its component index and
// the manifest component id prefix it admits.
type DependencyView struct {
	Index  uint64   `json:"index"`
	Prefix []string `json:"prefix"`
}

// AuthView is one signer or MAC of an authentication block.
type AuthView struct {
	Type  string `json:"type"`
	Alg   string `json:"alg"`
	AlgID int64  `json:"alg_id"`
	KID   string `json:"kid"`
}

// MemberView is a severable member: inline, or severed and then present in
// the envelope or not.
type MemberView struct {
	Name    string `json:"name"`
	Severed bool   `json:"severed"`
	Present bool   `json:"present"`
}

// IntegratedView is an integrated payload.
type IntegratedView struct {
	Key  string `json:"key"`
	Size int    `json:"size"`
}

// Inspect describes env.
func Inspect(env *Envelope) InspectView {
	m := env.Manifest()
	out := InspectView{
		Tagged: env.Tagged, SequenceNumber: m.SequenceNumber, ManifestDigest: NewDigestView(env.Digest()),
		Components: [][]string{}, Dependencies: []DependencyView{}, Authentication: []AuthView{},
		Sections: []string{}, SeverableMembers: []MemberView{}, Integrated: []IntegratedView{},
	}
	if m.ComponentID != nil {
		out.ManifestComponentID = m.ComponentID.Hex()
	}
	for _, u := range env.Unknown {
		out.Unknown = append(out.Unknown, UnknownView{In: "envelope", Key: u.Key, Size: u.Size})
	}
	for _, u := range m.Unknown {
		out.Unknown = append(out.Unknown, UnknownView{In: "manifest", Key: u.Key, Size: u.Size})
	}
	for _, c := range m.Common.Components {
		out.Components = append(out.Components, c.Hex())
	}
	for _, d := range m.Common.Dependencies {
		out.Dependencies = append(out.Dependencies, DependencyView{Index: d.Index, Prefix: d.Prefix.Hex()})
	}
	if m.HasReferenceURI {
		u := m.ReferenceURI
		out.ReferenceURI = &u
	}
	for _, b := range env.AuthBlocks() {
		for _, s := range b.Signers {
			out.Authentication = append(out.Authentication, AuthView{Type: b.Kind.String(), Alg: AuthAlgName(s.Alg), AlgID: s.Alg, KID: hex.EncodeToString(s.KID)})
		}
	}
	for _, sec := range []Section{SectionValidate, SectionLoad, SectionInvoke, SectionDependencyResolution,
		SectionPayloadFetch, SectionCandidateVerification, SectionInstall, SectionText, SectionUninstall} {
		if mem := m.Member(sec); mem != nil {
			out.Sections = append(out.Sections, sec.String())
			out.SeverableMembers = append(out.SeverableMembers, MemberView{Name: sec.String(), Severed: mem.Severed, Present: mem.Present})
			continue
		}
		if s, _ := m.Sequence(sec); s != nil {
			out.Sections = append(out.Sections, sec.String())
		}
	}
	for _, p := range env.Integrated() {
		out.Integrated = append(out.Integrated, IntegratedView{Key: p.Key, Size: len(p.Data)})
	}
	if m.Text != nil && m.Text.Present {
		for _, l := range m.Text.Text.Languages {
			if d := l.Manifest[1]; d != "" {
				out.Description = d
				break
			}
		}
	}
	return out
}

// ReportView is a SUIT_Report.
type ReportView struct {
	Reference ReferenceView `json:"reference"`
	Nonce     string        `json:"nonce,omitempty"`
	Records   []EntryView   `json:"records"`
	Success   bool          `json:"success"`
	Failure   *FailureView  `json:"failure,omitempty"`
	CBOR      string        `json:"cbor"` // the report as encoded, hex
}

// ReferenceView is suit-reference: the manifest the report is about.
type ReferenceView struct {
	URI    string     `json:"uri"`
	Digest DigestView `json:"digest"`
}

// EntryView is one suit-report-records entry: a suit-record or a
// system-property-claims entry.
type EntryView struct {
	Record *RecordView `json:"record,omitempty"`
	System *SystemView `json:"system,omitempty"`
}

// RecordView is a suit-record: where in which manifest a command ran.
type RecordView struct {
	ManifestID     []uint64       `json:"manifest_id"` // dependency indices from the root; empty = root
	Section        string         `json:"section"`
	SectionKey     int64          `json:"section_key"`
	Offset         uint64         `json:"offset"`
	ComponentIndex uint64         `json:"component_index"`
	Properties     map[string]any `json:"properties,omitempty"`
}

// SystemView is a system-property-claims entry.
type SystemView struct {
	SystemComponentID []string       `json:"system_component_id"`
	Properties        map[string]any `json:"properties,omitempty"`
}

// FailureView is the suit-report-result map of a failed run.
type FailureView struct {
	Code       int64      `json:"code"`
	Reason     string     `json:"reason"`
	ReasonCode int        `json:"reason_code"`
	Record     RecordView `json:"record"`
}

// ParamsView renders parameters keyed by ParamName: byte strings in hex,
// digests as DigestView, other values as decoded.
func ParamsView(ps []Param) map[string]any {
	if len(ps) == 0 {
		return nil
	}
	out := map[string]any{}
	for _, p := range ps {
		var v any
		switch x := p.Value.(type) {
		case []byte:
			v = hex.EncodeToString(x)
		case PEN:
			v = hex.EncodeToString(x)
		case Digest:
			v = NewDigestView(x)
		case *EncryptionInfo:
			v = hex.EncodeToString(x.Raw)
		case RawValue:
			v = hex.EncodeToString(x)
		default:
			v = x
		}
		out[paramKey(p.Key)] = v
	}
	return out
}

// paramKey is a parameter's draft name, or its label number when it has
// none (a key is then still the protocol label, only unnamed).
func paramKey(key int64) string {
	if n, ok := paramNames[key]; ok {
		return n
	}
	return strconv.FormatInt(key, 10)
}

func recordView(r Record) RecordView {
	id := r.ManifestID
	if id == nil {
		id = []uint64{}
	}
	return RecordView{ManifestID: id, Section: r.Section.String(), SectionKey: int64(r.Section), Offset: r.Offset,
		ComponentIndex: r.ComponentIndex, Properties: ParamsView(r.Properties)}
}

// NewReportView renders r; raw is its encoding.
func NewReportView(r *Report, raw []byte) ReportView {
	out := ReportView{
		Reference: ReferenceView{URI: r.Reference.URI, Digest: NewDigestView(r.Reference.Digest)},
		Records:   []EntryView{}, Success: r.Failure == nil, CBOR: hex.EncodeToString(raw),
	}
	if r.Nonce != nil {
		out.Nonce = hex.EncodeToString(r.Nonce)
	}
	for _, e := range r.Records {
		if e.Record != nil {
			rv := recordView(*e.Record)
			out.Records = append(out.Records, EntryView{Record: &rv})
		} else {
			out.Records = append(out.Records, EntryView{System: &SystemView{SystemComponentID: e.System.ComponentID.Hex(), Properties: ParamsView(e.System.Properties)}})
		}
	}
	if r.Failure != nil {
		out.Failure = &FailureView{Code: r.Failure.Code, Reason: r.Failure.Reason.String(), ReasonCode: int(r.Failure.Reason),
			Record: recordView(r.Failure.Record)}
	}
	return out
}
