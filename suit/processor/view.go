package processor

import (
	"encoding/hex"

	"github.com/teep-go/teep/suit"
)

// Machine-readable views of runs and of the store (snake_case keys, see
// docs/architecture.md, Machine output).

// ComponentView is a component a run installed or removed, or one the
// store holds (Action and SHA256 empty).
type ComponentView struct {
	ID     []string `json:"id"`
	SHA256 string   `json:"sha256,omitempty"`
	Size   int64    `json:"size"`
	Action string   `json:"action,omitempty"` // installed | removed
}

// ResultView is one run.
type ResultView struct {
	Envelope            string          `json:"envelope,omitempty"` // where the caller read it from
	Procedure           string          `json:"procedure"`
	Result              string          `json:"result"` // success | failure
	ManifestComponentID []string        `json:"manifest_component_id"`
	SequenceNumber      uint64          `json:"sequence_number"`
	Components          []ComponentView `json:"components"`
	Manifests           [][]string      `json:"manifests,omitempty"`
	RemovedManifests    [][]string      `json:"removed_manifests,omitempty"`
	Error               string          `json:"error,omitempty"`
	Reason              string          `json:"reason,omitempty"`
	Report              suit.ReportView `json:"report"`
}

func hexIDs(ids []suit.ComponentID) [][]string {
	out := [][]string{}
	for _, id := range ids {
		out = append(out, id.Hex())
	}
	return out
}

// NewResultView renders res.
func NewResultView(res *Result) ResultView {
	out := ResultView{Procedure: res.Procedure, Result: "success", ManifestComponentID: res.ManifestID.Hex(), SequenceNumber: res.SequenceNumber,
		Components: []ComponentView{}}
	if res.Report != nil {
		out.Report = suit.NewReportView(res.Report, res.ReportBytes)
	}
	if res.Failure != nil {
		out.Result, out.Error, out.Reason = "failure", res.Failure.Error(), res.Failure.Reason.String()
	}
	for _, c := range res.Installed {
		out.Components = append(out.Components, ComponentView{ID: c.ID.Hex(), SHA256: hex.EncodeToString(c.SHA256), Size: c.Size, Action: "installed"})
	}
	for _, c := range res.Removed {
		out.Components = append(out.Components, ComponentView{ID: c.ID.Hex(), SHA256: hex.EncodeToString(c.SHA256), Size: c.Size, Action: "removed"})
	}
	if len(res.Manifests) > 0 {
		out.Manifests = hexIDs(res.Manifests)
	}
	if len(res.RemovedManifests) > 0 {
		out.RemovedManifests = hexIDs(res.RemovedManifests)
	}
	return out
}

// ManifestView is an installed manifest as the store records it.
type ManifestView struct {
	ManifestComponentID []string        `json:"manifest_component_id"`
	SequenceNumber      uint64          `json:"sequence_number"`
	ManifestDigest      suit.DigestView `json:"manifest_digest"`
	Root                bool            `json:"root"`
	Dependents          [][]string      `json:"dependents"`
	Dependencies        [][]string      `json:"dependencies"`
	Components          [][]string      `json:"components"`
}

// NewManifestView renders r.
func NewManifestView(r *ManifestRecord) ManifestView {
	return ManifestView{ManifestComponentID: r.ID.Hex(), SequenceNumber: r.SequenceNumber, ManifestDigest: suit.NewDigestView(r.Digest),
		Root: r.Root, Dependents: hexIDs(r.Dependents), Dependencies: hexIDs(r.Dependencies), Components: hexIDs(r.Components)}
}
