package teep

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"github.com/teep-go/teep/suit"
	"sort"
	"strconv"

	"github.com/teep-go/teep/cosekey"
)

// View is the machine-readable rendering of one decoded TEEP message, as
// "teep msg decode --json" prints it. Keys of our own are snake_case; the
// Message object is the protocol map itself, keyed by the IANA label names of
// draft-ietf-teep-protocol-26 §11 (docs/architecture.md, Machine output).
type View struct {
	Type       string          `json:"type"`
	Numbering  string          `json:"numbering"`
	Signed     bool            `json:"signed"`
	Structure  string          `json:"structure,omitempty"`
	Tagged     *bool           `json:"tagged,omitempty"`
	Alg        string          `json:"alg,omitempty"`
	AlgID      *int64          `json:"alg_id,omitempty"`
	KID        string          `json:"kid,omitempty"`
	Verified   *bool           `json:"verified,omitempty"`
	Signatures []SignatureView `json:"signatures,omitempty"`
	Size       int             `json:"size"`
	Message    MessageView     `json:"message"`
}

// SignatureView is one signature of a COSE_Sign.
type SignatureView struct {
	Alg   string `json:"alg"`
	AlgID int64  `json:"alg_id"`
	KID   string `json:"kid,omitempty"`
}

// ViewOptions say how to render what the teep package does not interpret
// itself (it does not parse SUIT).
type ViewOptions struct {
	Numbering Numbering
	// Verified is reported only when the caller checked signatures.
	Verified bool
	// Envelope summarises one manifest-list entry (e.g. a SUIT manifest's
	// identity); nil leaves entries as size and digest.
	Envelope func(envelope []byte) (any, error)
	// DigestAlgName names a SUIT digest algorithm; nil leaves only the id.
	DigestAlgName func(alg int64) string
}

// MessageView is the options map of a message, one field per label. Absent
// options are omitted (omitzero keeps empty but present lists). Unknown
// labels are rendered by number in Extensions.
type MessageView struct {
	Token                        *string         `json:"token,omitzero"`
	SupportedCipherSuites        [][][2]int64    `json:"supported-teep-cipher-suites,omitzero"`
	SupportedSUITCOSEProfiles    [][4]int64      `json:"supported-suit-cose-profiles,omitzero"`
	DataItemRequested            *uint64         `json:"data-item-requested,omitzero"`
	SupportedFreshnessMechanisms []uint64        `json:"supported-freshness-mechanisms,omitzero"`
	Challenge                    *string         `json:"challenge,omitzero"`
	Versions                     []uint32        `json:"versions,omitzero"`
	SelectedVersion              *uint32         `json:"selected-version,omitzero"`
	AttestationPayloadFormat     string          `json:"attestation-payload-format,omitzero"`
	AttestationPayload           *BlobView       `json:"attestation-payload,omitzero"`
	TCList                       []ClaimsView    `json:"tc-list,omitzero"`
	RequestedTCList              []RequestedView `json:"requested-tc-list,omitzero"`
	UnneededManifestList         [][]string      `json:"unneeded-manifest-list,omitzero"`
	ManifestList                 []ManifestView  `json:"manifest-list,omitzero"`
	ExtList                      []uint32        `json:"ext-list,omitzero"`
	Msg                          string          `json:"msg,omitzero"`
	SUITReports                  []BlobView      `json:"suit-reports,omitzero"`
	ErrCode                      *uint64         `json:"err-code,omitzero"`
	ErrName                      string          `json:"err_name,omitzero"` // ours: the name of ErrCode
	ErrMsg                       string          `json:"err-msg,omitzero"`
	ErrLang                      string          `json:"err-lang,omitzero"`
	// Extensions are labels this implementation does not know, keyed by
	// their number, as encoded CBOR.
	Extensions map[uint64]CBORView `json:"-"`
}

// MarshalJSON adds the extensions, keyed by label number, after the known
// labels so that the output stays deterministic.
func (m MessageView) MarshalJSON() ([]byte, error) {
	type plain MessageView
	b, err := json.Marshal(plain(m))
	if err != nil || len(m.Extensions) == 0 {
		return b, err
	}
	keys := make([]uint64, 0, len(m.Extensions))
	for k := range m.Extensions {
		keys = append(keys, k)
	}
	sort.Slice(keys, func(i, j int) bool { return keys[i] < keys[j] })
	var buf bytes.Buffer
	buf.Write(b[:len(b)-1])
	for i, k := range keys {
		if i > 0 || len(b) > 2 {
			buf.WriteByte(',')
		}
		v, err := json.Marshal(m.Extensions[k])
		if err != nil {
			return nil, err
		}
		buf.WriteString(`"` + strconv.FormatUint(k, 10) + `":`)
		buf.Write(v)
	}
	buf.WriteByte('}')
	return buf.Bytes(), nil
}

// CBORView is an item kept as encoded CBOR.
type CBORView struct {
	CBOR string `json:"cbor"`
}

// BlobView summarises a byte string carried whole (attestation payload,
// SUIT report).
type BlobView struct {
	Size   int    `json:"size"`
	SHA256 string `json:"sha256"`
	Hex    string `json:"hex"`
}

// ManifestView summarises one manifest-list entry: its size and SHA-256
// (of the whole envelope) and, when ViewOptions.Envelope is set, what that
// function makes of it (Summary) or why it could not (SummaryError; the TEEP
// message is valid all the same).
type ManifestView struct {
	Size         int    `json:"size"`
	SHA256       string `json:"sha256"`
	Hex          string `json:"hex"` // the envelope itself, so the view is lossless
	Summary      any    `json:"summary,omitempty"`
	SummaryError string `json:"summary_error,omitempty"`
}

// DigestView is a SUIT_Digest.
type DigestView struct {
	Alg   string `json:"alg,omitempty"`
	AlgID int64  `json:"alg_id"`
	Hex   string `json:"hex"`
}

// ClaimsView is one tc-list entry, the system-property-claims map of
// draft-ietf-suit-report, keyed by its CDDL names; parameters the teep
// package does not type are in Other, keyed by label number.
type ClaimsView struct {
	SystemComponentID []string           `json:"system-component-id"`
	VendorID          *string            `json:"vendor-id,omitempty"`
	ClassID           *string            `json:"class-id,omitempty"`
	ImageDigest       *DigestView        `json:"image-digest,omitempty"`
	ImageSize         *uint64            `json:"image-size,omitempty"`
	Other             map[int64]CBORView `json:"-"`
}

// MarshalJSON appends the untyped parameters by label number.
func (c ClaimsView) MarshalJSON() ([]byte, error) {
	type plain ClaimsView
	b, err := json.Marshal(plain(c))
	if err != nil || len(c.Other) == 0 {
		return b, err
	}
	keys := make([]int64, 0, len(c.Other))
	for k := range c.Other {
		keys = append(keys, k)
	}
	sort.Slice(keys, func(i, j int) bool { return keys[i] < keys[j] })
	var buf bytes.Buffer
	buf.Write(b[:len(b)-1])
	for _, k := range keys {
		v, err := json.Marshal(c.Other[k])
		if err != nil {
			return nil, err
		}
		buf.WriteString(`,"` + strconv.FormatInt(k, 10) + `":`)
		buf.Write(v)
	}
	buf.WriteByte('}')
	return buf.Bytes(), nil
}

// RequestedView is one requested-tc-list entry (requested-tc-info).
type RequestedView struct {
	ComponentID    []string `json:"component-id"`
	SequenceNumber *uint64  `json:"tc-manifest-sequence-number,omitempty"`
	HaveBinary     *bool    `json:"have-binary,omitempty"`
}

// NewView renders a bare message m (opened is nil) or the message of a
// signed one, encoded in size bytes.
func NewView(m Message, opened *Opened, size int, o ViewOptions) View {
	v := View{Type: m.Type().String(), Numbering: o.Numbering.String(), Size: size, Message: NewMessageView(m, o)}
	if opened == nil {
		return v
	}
	algID := int64(opened.Alg)
	tagged := opened.Tagged
	v.Signed, v.Structure, v.Tagged = true, opened.Structure.String(), &tagged
	v.Alg, v.AlgID, v.KID = cosekey.AlgName(opened.Alg), &algID, hex.EncodeToString(opened.KID)
	if o.Verified {
		verified := opened.Verified
		v.Verified = &verified
	}
	if opened.Structure == cosekey.StructureSign {
		for _, s := range opened.Signatures {
			v.Signatures = append(v.Signatures, SignatureView{Alg: cosekey.AlgName(s.Alg), AlgID: int64(s.Alg), KID: hex.EncodeToString(s.KID)})
		}
	}
	return v
}

func hexPtr(b []byte) *string {
	if b == nil {
		return nil
	}
	s := hex.EncodeToString(b)
	return &s
}

// hexSegments renders a component id as one lowercase hex string per
// segment, the form every machine output of the project uses.
func hexSegments(c suit.ComponentID) []string {
	out := make([]string, len(c))
	for i, s := range c {
		out[i] = hex.EncodeToString(s)
	}
	return out
}

func cidsView(list []suit.ComponentID) [][]string {
	if list == nil {
		return nil
	}
	out := make([][]string, len(list))
	for i, c := range list {
		out[i] = hexSegments(c)
	}
	return out
}

func blobView(b []byte) BlobView {
	sum := sha256.Sum256(b)
	return BlobView{Size: len(b), SHA256: hex.EncodeToString(sum[:]), Hex: hex.EncodeToString(b)}
}

func blobsView(list [][]byte) []BlobView {
	if list == nil {
		return nil
	}
	out := make([]BlobView, len(list))
	for i, b := range list {
		out[i] = blobView(b)
	}
	return out
}

func suitesView(suites []CipherSuite) [][][2]int64 {
	out := make([][][2]int64, len(suites))
	for i, s := range suites {
		out[i] = make([][2]int64, len(s))
		for j, op := range s {
			out[i][j] = [2]int64{int64(op.COSEType), op.Alg}
		}
	}
	return out
}

func profilesView(profiles []SUITCOSEProfile) [][4]int64 {
	out := make([][4]int64, len(profiles))
	for i, p := range profiles {
		out[i] = p
	}
	return out
}

func freshnessView(f []FreshnessMechanism) []uint64 {
	if f == nil {
		return nil
	}
	out := make([]uint64, len(f))
	for i, m := range f {
		out[i] = uint64(m)
	}
	return out
}

func extensionsView(x Extensions) map[uint64]CBORView {
	if len(x) == 0 {
		return nil
	}
	out := make(map[uint64]CBORView, len(x))
	for k, v := range x {
		out[k] = CBORView{CBOR: hex.EncodeToString(v)}
	}
	return out
}

func (o ViewOptions) digest(d Digest) *DigestView {
	v := &DigestView{AlgID: d.Alg, Hex: hex.EncodeToString(d.Bytes)}
	if o.DigestAlgName != nil {
		v.Alg = o.DigestAlgName(d.Alg)
	}
	return v
}

func (o ViewOptions) claims(c SystemPropertyClaims) ClaimsView {
	v := ClaimsView{SystemComponentID: hexSegments(c.ComponentID), VendorID: hexPtr(c.VendorID),
		ClassID: hexPtr(c.ClassID), ImageSize: c.ImageSize}
	if c.ImageDigest != nil {
		v.ImageDigest = o.digest(*c.ImageDigest)
	}
	if len(c.Other) > 0 {
		v.Other = make(map[int64]CBORView, len(c.Other))
		for k, b := range c.Other {
			v.Other[k] = CBORView{CBOR: hex.EncodeToString(b)}
		}
	}
	return v
}

func (o ViewOptions) manifest(envelope []byte) ManifestView {
	sum := sha256.Sum256(envelope)
	v := ManifestView{Size: len(envelope), SHA256: hex.EncodeToString(sum[:]), Hex: hex.EncodeToString(envelope)}
	if o.Envelope != nil {
		s, err := o.Envelope(envelope)
		if err != nil {
			v.SummaryError = err.Error()
		} else {
			v.Summary = s
		}
	}
	return v
}

// NewMessageView renders a message's options with the values they have on
// the wire in o.Numbering (err-code differs between the numberings).
func NewMessageView(m Message, o ViewOptions) MessageView {
	var v MessageView
	payload := func(format string, p []byte) {
		v.AttestationPayloadFormat = format
		if p != nil {
			b := blobView(p)
			v.AttestationPayload = &b
		}
	}
	errCode := func(c ErrCode) {
		w := o.Numbering.WireErrCode(c)
		v.ErrCode, v.ErrName = &w, c.String()
	}
	switch m := m.(type) {
	case *QueryRequest:
		v.Token = hexPtr(m.Token)
		v.SupportedFreshnessMechanisms = freshnessView(m.SupportedFreshnessMechanisms)
		v.Challenge = hexPtr(m.Challenge)
		v.Versions = m.Versions
		payload(m.AttestationPayloadFormat, m.AttestationPayload)
		v.SUITReports = blobsView(m.SUITReports)
		v.SupportedCipherSuites = suitesView(m.SupportedCipherSuites)
		v.SupportedSUITCOSEProfiles = profilesView(m.SupportedSUITCOSEProfiles)
		d := uint64(m.DataItemRequested)
		v.DataItemRequested = &d
		v.Extensions = extensionsView(m.Extensions)
	case *QueryResponse:
		v.Token = hexPtr(m.Token)
		v.SelectedVersion = m.SelectedVersion
		payload(m.AttestationPayloadFormat, m.AttestationPayload)
		v.SUITReports = blobsView(m.SUITReports)
		if m.TCList != nil {
			v.TCList = make([]ClaimsView, len(m.TCList))
			for i, c := range m.TCList {
				v.TCList[i] = o.claims(c)
			}
		}
		if m.RequestedTCList != nil {
			v.RequestedTCList = make([]RequestedView, len(m.RequestedTCList))
			for i, r := range m.RequestedTCList {
				v.RequestedTCList[i] = RequestedView{ComponentID: hexSegments(r.ComponentID), SequenceNumber: r.SequenceNumber, HaveBinary: r.HaveBinary}
			}
		}
		v.UnneededManifestList = cidsView(m.UnneededManifestList)
		v.ExtList = m.ExtList
		v.Extensions = extensionsView(m.Extensions)
	case *Update:
		v.Token = hexPtr(m.Token)
		v.UnneededManifestList = cidsView(m.UnneededManifestList)
		if m.ManifestList != nil {
			v.ManifestList = make([]ManifestView, len(m.ManifestList))
			for i, env := range m.ManifestList {
				v.ManifestList[i] = o.manifest(env)
			}
		}
		payload(m.AttestationPayloadFormat, m.AttestationPayload)
		if m.ErrCode != 0 {
			errCode(m.ErrCode)
		}
		v.ErrMsg, v.ErrLang = m.ErrMsg, m.ErrLang
		v.Extensions = extensionsView(m.Extensions)
	case *Success:
		v.Token = hexPtr(m.Token)
		v.Msg = m.Msg
		v.SUITReports = blobsView(m.SUITReports)
		v.Extensions = extensionsView(m.Extensions)
	case *Error:
		v.Token = hexPtr(m.Token)
		v.ErrMsg, v.ErrLang = m.ErrMsg, m.ErrLang
		if m.SupportedCipherSuites != nil {
			v.SupportedCipherSuites = suitesView(m.SupportedCipherSuites)
		}
		v.SupportedFreshnessMechanisms = freshnessView(m.SupportedFreshnessMechanisms)
		if m.SupportedSUITCOSEProfiles != nil {
			v.SupportedSUITCOSEProfiles = profilesView(m.SupportedSUITCOSEProfiles)
		}
		v.Challenge = hexPtr(m.Challenge)
		v.Versions = m.Versions
		v.SUITReports = blobsView(m.SUITReports)
		errCode(m.ErrCode)
		v.Extensions = extensionsView(m.Extensions)
	}
	return v
}
