package suit

import "strconv"

// CBOR tags of draft-ietf-suit-manifest.
const (
	TagEnvelope = 107  // SUIT_Envelope_Tagged
	TagManifest = 1070 // SUIT_Manifest_Tagged
)

// Envelope keys (draft-ietf-suit-manifest §8.2, draft-ietf-suit-trust-domains).
const (
	keyDelegation = 1 // reserved; delegation chains were removed
	keyAuth       = 2
	keyManifest   = 3
)

// Manifest keys.
const (
	keyVersion     = 1
	keySequenceNum = 2
	keyCommon      = 3
	keyRefURI      = 4
	keyManifestID  = 5
)

// Section is a manifest member holding a command sequence (or the text map).
// The number is its manifest key, also used as suit-record-manifest-section.
type Section int64

// Sections (draft-ietf-suit-manifest §8.4, draft-ietf-suit-trust-domains).
const (
	SectionShared                Section = 4 // suit-shared-sequence (in SUIT_Common; key 4 there)
	SectionValidate              Section = 7
	SectionLoad                  Section = 8
	SectionInvoke                Section = 9
	SectionDependencyResolution  Section = 15
	SectionPayloadFetch          Section = 16
	SectionCandidateVerification Section = 18
	SectionInstall               Section = 20
	SectionText                  Section = 23
	SectionUninstall             Section = 24
)

var sectionNames = map[Section]string{
	SectionShared:                "shared-sequence",
	SectionValidate:              "validate",
	SectionLoad:                  "load",
	SectionInvoke:                "invoke",
	SectionDependencyResolution:  "dependency-resolution",
	SectionPayloadFetch:          "payload-fetch",
	SectionCandidateVerification: "candidate-verification",
	SectionInstall:               "install",
	SectionText:                  "text",
	SectionUninstall:             "uninstall",
}

func (s Section) String() string {
	if n, ok := sectionNames[s]; ok {
		return n
	}
	return "section(" + strconv.FormatInt(int64(s), 10) + ")"
}

// Severable reports whether the section may be moved out of the manifest.
func (s Section) Severable() bool {
	switch s {
	case SectionDependencyResolution, SectionPayloadFetch, SectionCandidateVerification, SectionInstall, SectionText:
		return true
	}
	return false
}

// SeverableSections lists the severable members in manifest key order.
var SeverableSections = []Section{SectionDependencyResolution, SectionPayloadFetch, SectionCandidateVerification, SectionInstall, SectionText}

// Common keys.
const (
	keyDependencies   = 1
	keyComponents     = 2
	keySharedSequence = 4
	keyDepPrefix      = 1
)

// Command codes: conditions and directives share one number space
// (draft-ietf-suit-manifest §8.4.9-10, draft-ietf-suit-trust-domains §6,
// draft-ietf-suit-update-management for 4 and 25-35).
const (
	CondVendorID            = 1
	CondClassID             = 2
	CondImageMatch          = 3
	CondUseBefore           = 4
	CondComponentSlot       = 5
	CondCheckContent        = 6
	CondDependencyIntegrity = 7
	CondIsDependency        = 8
	DirProcessDependency    = 11
	DirSetComponentIndex    = 12
	CondAbort               = 14
	DirTryEach              = 15
	DirWrite                = 18
	DirSetParameters        = 19
	DirOverrideParameters   = 20
	DirFetch                = 21
	DirCopy                 = 22
	DirInvoke               = 23
	CondDeviceID            = 24
	CondImageNotMatch       = 25
	CondMinimumBattery      = 26
	CondUpdateAuthorized    = 27
	CondVersion             = 28
	DirWait                 = 29
	DirSwap                 = 31
	DirRunSequence          = 32
	DirUnlink               = 33
	DirOverrideMultiple     = 34
	DirCopyParams           = 35
)

var commandNames = map[int64]string{
	CondVendorID: "vendor-identifier", CondClassID: "class-identifier", CondImageMatch: "image-match",
	CondUseBefore: "use-before", CondComponentSlot: "component-slot", CondCheckContent: "check-content",
	CondDependencyIntegrity: "dependency-integrity", CondIsDependency: "is-dependency",
	DirProcessDependency: "process-dependency", DirSetComponentIndex: "set-component-index",
	CondAbort: "abort", DirTryEach: "try-each", DirWrite: "write", DirSetParameters: "set-parameters",
	DirOverrideParameters: "override-parameters", DirFetch: "fetch", DirCopy: "copy", DirInvoke: "invoke",
	CondDeviceID: "device-identifier", CondImageNotMatch: "image-not-match", CondMinimumBattery: "minimum-battery",
	CondUpdateAuthorized: "update-authorized", CondVersion: "version", DirWait: "wait", DirSwap: "swap",
	DirRunSequence: "run-sequence", DirUnlink: "unlink", DirOverrideMultiple: "override-multiple",
	DirCopyParams: "copy-params",
}

// CommandName returns the draft name of a command code.
func CommandName(code int64) string {
	if n, ok := commandNames[code]; ok {
		return n
	}
	if code < 0 {
		return "custom(" + strconv.FormatInt(code, 10) + ")"
	}
	return "command(" + strconv.FormatInt(code, 10) + ")"
}

// IsCondition reports whether code is a condition (as opposed to a directive).
func IsCondition(code int64) bool {
	switch code {
	case CondVendorID, CondClassID, CondImageMatch, CondUseBefore, CondComponentSlot, CondCheckContent,
		CondDependencyIntegrity, CondIsDependency, CondAbort, CondDeviceID, CondImageNotMatch,
		CondMinimumBattery, CondUpdateAuthorized, CondVersion:
		return true
	}
	return false
}

// takesRepPolicy lists the commands whose argument is a reporting policy.
func takesRepPolicy(code int64) bool {
	switch code {
	case CondVendorID, CondClassID, CondImageMatch, CondComponentSlot, CondCheckContent,
		CondDependencyIntegrity, CondIsDependency, DirProcessDependency, CondAbort, DirWrite,
		DirFetch, DirCopy, DirInvoke, CondDeviceID, DirSwap, DirUnlink:
		return true
	}
	return false
}

// Parameter keys (draft-ietf-suit-manifest §8.4.8, -firmware-encryption).
const (
	ParamVendorID        = 1
	ParamClassID         = 2
	ParamImageDigest     = 3
	ParamUseBefore       = 4
	ParamComponentSlot   = 5
	ParamStrictOrder     = 12
	ParamSoftFailure     = 13
	ParamImageSize       = 14
	ParamContent         = 18
	ParamEncryptionInfo  = 19
	ParamURI             = 21
	ParamSourceComponent = 22
	ParamInvokeArgs      = 23
	ParamDeviceID        = 24
	ParamFetchArguments  = 25
)

var paramNames = map[int64]string{
	ParamVendorID: "vendor-id", ParamClassID: "class-id", ParamImageDigest: "image-digest",
	ParamUseBefore: "use-before", ParamComponentSlot: "component-slot", ParamStrictOrder: "strict-order",
	ParamSoftFailure: "soft-failure", ParamImageSize: "image-size", ParamContent: "content",
	ParamEncryptionInfo: "encryption-info", ParamURI: "uri", ParamSourceComponent: "source-component",
	ParamInvokeArgs: "invoke-args", ParamDeviceID: "device-id", ParamFetchArguments: "fetch-arguments",
	26: "minimum-battery", 27: "update-priority", 28: "version", 29: "wait-info", 30: "component-metadata",
}

// ParamName returns the draft name of a parameter key.
func ParamName(key int64) string {
	if n, ok := paramNames[key]; ok {
		return n
	}
	if key < 0 {
		return "custom(" + strconv.FormatInt(key, 10) + ")"
	}
	return "parameter(" + strconv.FormatInt(key, 10) + ")"
}

// Reporting policy bits (SUIT_Rep_Policy).
const (
	RecordOnSuccess  = 1 << 0
	RecordOnFailure  = 1 << 1
	SysinfoOnSuccess = 1 << 2
	SysinfoOnFailure = 1 << 3
	ReportAll        = 15
)

// Dependency is one entry of suit-dependencies (draft-ietf-suit-trust-domains §5).
type Dependency struct {
	Index  uint64      // component index of the dependency slot
	Prefix ComponentID // suit-dependency-prefix; nil when absent
}

// Common is SUIT_Common.
type Common struct {
	Raw          []byte // encoded SUIT_Common (content of the bstr)
	Components   []ComponentID
	Dependencies []Dependency // ordered by Index
	Shared       *Sequence    // nil when absent
}

// IndexKind tells what a set-component-index argument selects.
type IndexKind int

const (
	IndexOne  IndexKind = iota // a single index
	IndexAll                   // true: every component and dependency
	IndexList                  // an explicit list
)

// Index is a set-component-index argument.
type Index struct {
	Kind    IndexKind
	Indices []uint64 // one entry for IndexOne
}

// Param is one entry of a parameters map. Value holds, by key:
//
//	vendor-id (1)                []byte (16-byte UUID) or PEN (tag 112)
//	class-id (2), device-id (24) []byte (16-byte UUID)
//	image-digest (3)             Digest
//	component-slot (5), image-size (14), source-component (22)  uint64
//	strict-order (12), soft-failure (13)                        bool
//	content (18), invoke-args (23), fetch-arguments (25)        []byte
//	encryption-info (19)         *EncryptionInfo
//	uri (21)                     string
//	custom (< 0)                 int64, bool, string or []byte
//	anything else                RawValue (not supported by the processor)
type Param struct {
	Key   int64
	Value any
	Raw   []byte // the encoded value item
}

// PEN is a vendor identifier given as a CBOR-PEN relative OID (tag 112).
type PEN []byte

// RawValue is a parameter value this package does not interpret.
type RawValue []byte

// Command is one condition or directive with its decoded argument.
type Command struct {
	Code   int64
	Offset int    // byte offset of the command code within its sequence's Raw
	Arg    []byte // the encoded argument item

	Policy    uint64      // reporting policy, for commands that take one
	Index     Index       // set-component-index
	Params    []Param     // override-parameters / set-parameters
	Sequences []*Sequence // try-each alternatives
	TryNil    bool        // try-each ends with nil (empty alternative)
	Sub       *Sequence   // run-sequence
}

// Sequence is a decoded SUIT_Command_Sequence.
type Sequence struct {
	Raw      []byte // encoded sequence (content of its bstr); Command.Offset points into it
	Commands []Command
}

// Member is a severable manifest member: inline, or severed (the manifest
// holds only its digest) and then possibly supplied by the envelope.
type Member struct {
	Severed  bool
	Digest   Digest    // digest of the envelope element, when severed
	Present  bool      // the content is available (inline, or severed and supplied)
	Sequence *Sequence // decoded content for command sequences, when Present
	Text     *Text     // decoded content for suit-text, when Present
	Raw      []byte    // encoded content (inside the bstr), when Present
}

// Text is a decoded SUIT_Text_Map: per language tag, manifest-level and
// per-component strings keyed by their text keys.
type Text struct {
	Languages []TextLanguage
}

// TextLanguage is the text for one language tag.
type TextLanguage struct {
	Tag        string
	Manifest   map[int64]string
	Components []TextComponent
}

// TextComponent is the text for one component.
type TextComponent struct {
	ID     ComponentID
	Fields map[int64]string
}

// Manifest is a decoded SUIT_Manifest.
type Manifest struct {
	Raw             []byte // encoded manifest (content of the key-3 bstr)
	Version         uint64
	SequenceNumber  uint64
	Common          Common
	ReferenceURI    string
	HasReferenceURI bool
	ComponentID     ComponentID // suit-manifest-component-id; nil when absent

	// Unseverable sections; nil when absent.
	Validate, Load, Invoke, Uninstall *Sequence

	// Severable members; nil when absent.
	DependencyResolution, PayloadFetch, CandidateVerification, Install, Text *Member
	// Unknown lists the members ParseOptions.KeepUnknownUnsafe kept.
	Unknown []UnknownMember
}

// Sequence returns the command sequence for s: nil, nil when the manifest
// does not have it, or ErrSeveringUnsupported when it was severed and the
// envelope does not carry it.
func (m *Manifest) Sequence(s Section) (*Sequence, error) {
	switch s {
	case SectionShared:
		return m.Common.Shared, nil
	case SectionValidate:
		return m.Validate, nil
	case SectionLoad:
		return m.Load, nil
	case SectionInvoke:
		return m.Invoke, nil
	case SectionUninstall:
		return m.Uninstall, nil
	}
	mem := m.Member(s)
	if mem == nil {
		return nil, nil
	}
	if !mem.Present {
		return nil, errorf(ErrSeveringUnsupported, "%s was severed and is not in the envelope", s)
	}
	return mem.Sequence, nil
}

// Member returns the severable member for s, or nil.
func (m *Manifest) Member(s Section) *Member {
	switch s {
	case SectionDependencyResolution:
		return m.DependencyResolution
	case SectionPayloadFetch:
		return m.PayloadFetch
	case SectionCandidateVerification:
		return m.CandidateVerification
	case SectionInstall:
		return m.Install
	case SectionText:
		return m.Text
	}
	return nil
}

func (m *Manifest) setMember(s Section, mem *Member) {
	switch s {
	case SectionDependencyResolution:
		m.DependencyResolution = mem
	case SectionPayloadFetch:
		m.PayloadFetch = mem
	case SectionCandidateVerification:
		m.CandidateVerification = mem
	case SectionInstall:
		m.Install = mem
	case SectionText:
		m.Text = mem
	}
}

// Slots returns the number of component-index slots: components plus
// dependencies, using the union index space of the published examples
// (dependency indices follow the component list).
func (m *Manifest) Slots() int {
	n := len(m.Common.Components)
	for _, d := range m.Common.Dependencies {
		if int(d.Index)+1 > n {
			n = int(d.Index) + 1
		}
	}
	return n
}

// Dependency returns the dependency declared at index i, if any.
func (m *Manifest) Dependency(i uint64) (Dependency, bool) {
	for _, d := range m.Common.Dependencies {
		if d.Index == i {
			return d, true
		}
	}
	return Dependency{}, false
}

// SlotID returns the identifier addressed by component index i: the
// component's ID, or for a dependency slot its prefix.
func (m *Manifest) SlotID(i uint64) (ComponentID, bool) {
	if i < uint64(len(m.Common.Components)) {
		return m.Common.Components[i], true
	}
	if d, ok := m.Dependency(i); ok {
		return d.Prefix, true
	}
	return nil, false
}
