package teep

import (
	"fmt"
	"sort"

	"github.com/teep-go/teep/cborwire"
	"github.com/teep-go/teep/suit"
)

// EncodeOptions select the numbering and the map key order of Encode.
type EncodeOptions struct {
	Numbering Numbering
	// PreserveOrder writes options, tc-list entries and requested-tc-list
	// entries of a decoded message in the order they had on the wire (keys
	// added since go after them, sorted), and extension values as received.
	// It exists to reproduce byte for byte messages such as the Appendix D
	// examples, whose maps are not sorted. Without it the output is RFC 8949
	// §4.2.1 core deterministic encoding.
	PreserveOrder bool
}

// Encode validates m and encodes it as a bare TEEP message.
//
// A message decoded in one numbering may be encoded in the other (every
// known item has a counterpart) unless it carries Extensions, whose meaning
// is tied to the numbering they were received in: that is an ErrNumbering
// error rather than a silent mix.
func Encode(m Message, o EncodeOptions) ([]byte, error) {
	if !o.Numbering.valid() {
		return nil, protoErr(ErrPermanentError, ErrInvalid, "unknown numbering %d", int(o.Numbering))
	}
	e := encoder{num: o.Numbering, preserve: o.PreserveOrder}
	switch m := m.(type) {
	case *QueryRequest:
		return e.queryRequest(m)
	case QueryRequest:
		return e.queryRequest(&m)
	case *QueryResponse:
		return e.queryResponse(m)
	case QueryResponse:
		return e.queryResponse(&m)
	case *Update:
		return e.update(m)
	case Update:
		return e.update(&m)
	case *Success:
		return e.success(m)
	case Success:
		return e.success(&m)
	case *Error:
		return e.errorMsg(m)
	case Error:
		return e.errorMsg(&m)
	}
	return nil, protoErr(ErrPermanentError, ErrInvalid, "cannot encode %T", m)
}

type encoder struct {
	num      Numbering
	preserve bool
}

// optionWriter appends the value of known label l.
type optionWriter func(b []byte, l Label) []byte

// options appends the options map: the present known labels and the
// extensions, in wire order (PreserveOrder) or sorted.
func (e *encoder) options(b []byte, t Type, present []Label, ext Extensions, w *wireInfo, val optionWriter) ([]byte, error) {
	if len(ext) > 0 && w != nil && w.numbering != e.num {
		return nil, protoErr(ErrPermanentError, ErrNumbering,
			"%s: extensions were received in %s numbering; encoding them in %s numbering would change their meaning", t.goName(), w.numbering, e.num)
	}
	type entry struct {
		wire  uint64
		label Label // 0 for an extension
		rank  int
	}
	entries := make([]entry, 0, len(present)+len(ext))
	for _, l := range present {
		entries = append(entries, entry{wire: e.num.Wire(l), label: l})
	}
	for k, v := range ext {
		if l, known := e.num.Label(k); known {
			return nil, protoErr(ErrPermanentError, ErrInvalid, "%s: extension label %d is %s in %s numbering", t.goName(), k, l, e.num)
		}
		if err := wellFormed(v, DefaultLimits.MaxNesting, DefaultLimits.MaxListLength); err != nil {
			return nil, protoErr(ErrPermanentError, ErrInvalid, "%s: extension %d: %v", t.goName(), k, err)
		}
		entries = append(entries, entry{wire: k})
	}
	if e.preserve && w != nil {
		pos := make(map[uint64]int, len(w.order))
		for i, wl := range w.order {
			// Translate to the encoding numbering; labels only known in the
			// old one were extensions and cannot be present (checked above).
			if l, ok := w.numbering.Label(wl); ok {
				wl = e.num.Wire(l)
			}
			pos[wl] = i
		}
		for i := range entries {
			if p, ok := pos[entries[i].wire]; ok {
				entries[i].rank = p
			} else {
				entries[i].rank = len(w.order)
			}
		}
	}
	sort.Slice(entries, func(i, j int) bool {
		if entries[i].rank != entries[j].rank {
			return entries[i].rank < entries[j].rank
		}
		return entries[i].wire < entries[j].wire
	})
	b = cborwire.AppendHead(b, cborwire.MajorMap, uint64(len(entries)))
	var err error
	for _, en := range entries {
		b = cborwire.AppendUint(b, en.wire)
		if en.label != 0 {
			b = val(b, en.label)
			continue
		}
		if b, err = e.raw(b, ext[en.wire]); err != nil {
			return nil, err
		}
	}
	return b, nil
}

// raw appends an opaque, already checked CBOR item: verbatim with
// PreserveOrder, in deterministic form otherwise.
func (e *encoder) raw(b, item []byte) ([]byte, error) {
	if e.preserve {
		return append(b, item...), nil
	}
	return appendCanonical(b, item)
}

// appendUints appends an array of unsigned integers (versions, ext-list,
// supported-freshness-mechanisms).
func appendUints[T ~uint32 | ~uint64](b []byte, v []T) []byte {
	b = cborwire.AppendHead(b, cborwire.MajorArray, uint64(len(v)))
	for _, x := range v {
		b = cborwire.AppendUint(b, uint64(x))
	}
	return b
}

func appendSuites(b []byte, v []CipherSuite) []byte {
	b = cborwire.AppendHead(b, cborwire.MajorArray, uint64(len(v)))
	for _, s := range v {
		b = cborwire.AppendHead(b, cborwire.MajorArray, uint64(len(s)))
		for _, op := range s {
			b = append(b, 0x82)
			b = cborwire.AppendUint(b, op.COSEType)
			b = cborwire.AppendInt(b, op.Alg)
		}
	}
	return b
}

func appendProfiles(b []byte, v []SUITCOSEProfile) []byte {
	b = cborwire.AppendHead(b, cborwire.MajorArray, uint64(len(v)))
	for _, p := range v {
		b = append(b, 0x84)
		for _, x := range p {
			b = cborwire.AppendInt(b, x)
		}
	}
	return b
}

func appendByteStrings(b []byte, v [][]byte) []byte {
	b = cborwire.AppendHead(b, cborwire.MajorArray, uint64(len(v)))
	for _, x := range v {
		b = cborwire.AppendBytes(b, x)
	}
	return b
}

func appendComponentID(b []byte, c suit.ComponentID) []byte { return appendByteStrings(b, c) }

func appendComponentIDs(b []byte, v []suit.ComponentID) []byte {
	b = cborwire.AppendHead(b, cborwire.MajorArray, uint64(len(v)))
	for _, c := range v {
		b = appendComponentID(b, c)
	}
	return b
}

// checkItems checks that every entry of a bstr .cbor list holds one
// well-formed item (and a map, for SUIT envelopes).
func checkItems(t Type, name string, items [][]byte, wantMap bool) error {
	for i, it := range items {
		if wantMap && (len(it) == 0 || it[0]>>5 != cborwire.MajorMap) {
			return invalid(t, "%s[%d]: not an untagged SUIT_Envelope (CBOR map)", name, i)
		}
		if err := wellFormed(it, DefaultLimits.MaxNesting, DefaultLimits.MaxListLength); err != nil {
			return invalid(t, "%s[%d]: %v", name, i, err)
		}
	}
	return nil
}

// claimKeyLess orders int map keys by their deterministic encoding: unsigned
// before negative, then by magnitude.
func claimKeyLess(a, b int64) bool {
	if (a < 0) != (b < 0) {
		return a >= 0
	}
	if a < 0 {
		return a > b
	}
	return a < b
}

func (e *encoder) claims(b []byte, c *SystemPropertyClaims) ([]byte, error) {
	keys := make([]int64, 0, 5+len(c.Other))
	keys = append(keys, claimSystemComponentID)
	if c.VendorID != nil {
		keys = append(keys, SUITParamVendorID)
	}
	if c.ClassID != nil {
		keys = append(keys, SUITParamClassID)
	}
	if c.ImageDigest != nil {
		keys = append(keys, SUITParamImageDigest)
	}
	if c.ImageSize != nil {
		keys = append(keys, SUITParamImageSize)
	}
	for k, v := range c.Other {
		if err := wellFormed(v, DefaultLimits.MaxNesting, DefaultLimits.MaxListLength); err != nil {
			return nil, fmt.Errorf("parameter %d: %w", k, err)
		}
		keys = append(keys, k)
	}
	rank := func(k int64) int {
		if e.preserve {
			for i, x := range c.order {
				if x == k {
					return i
				}
			}
		}
		return len(c.order)
	}
	sort.Slice(keys, func(i, j int) bool {
		ri, rj := rank(keys[i]), rank(keys[j])
		if ri != rj {
			return ri < rj
		}
		return claimKeyLess(keys[i], keys[j])
	})
	b = cborwire.AppendHead(b, cborwire.MajorMap, uint64(len(keys)))
	var err error
	for _, k := range keys {
		b = cborwire.AppendInt(b, k)
		switch k {
		case claimSystemComponentID:
			b = appendComponentID(b, c.ComponentID)
		case SUITParamVendorID:
			b = cborwire.AppendBytes(b, c.VendorID)
		case SUITParamClassID:
			b = cborwire.AppendBytes(b, c.ClassID)
		case SUITParamImageDigest:
			inner := cborwire.AppendInt([]byte{0x82}, c.ImageDigest.Alg)
			inner = cborwire.AppendBytes(inner, c.ImageDigest.Bytes)
			b = cborwire.AppendBytes(b, inner)
		case SUITParamImageSize:
			b = cborwire.AppendUint(b, *c.ImageSize)
		default:
			if b, err = e.raw(b, c.Other[k]); err != nil {
				return nil, err
			}
		}
	}
	return b, nil
}

func (e *encoder) requestedTC(b []byte, r *RequestedTC) []byte {
	labels := []Label{LabelComponentID}
	if r.SequenceNumber != nil {
		labels = append(labels, LabelTCManifestSequenceNumber)
	}
	if r.HaveBinary != nil {
		labels = append(labels, LabelHaveBinary)
	}
	rank := func(l Label) int {
		if e.preserve {
			for i, x := range r.order {
				if x == e.num.Wire(l) {
					return i
				}
			}
		}
		return len(r.order) + int(l)
	}
	sort.Slice(labels, func(i, j int) bool { return rank(labels[i]) < rank(labels[j]) })
	b = cborwire.AppendHead(b, cborwire.MajorMap, uint64(len(labels)))
	for _, l := range labels {
		b = cborwire.AppendUint(b, e.num.Wire(l))
		switch l {
		case LabelComponentID:
			b = appendComponentID(b, r.ComponentID)
		case LabelTCManifestSequenceNumber:
			b = cborwire.AppendUint(b, *r.SequenceNumber)
		case LabelHaveBinary:
			b = cborwire.AppendBool(b, *r.HaveBinary)
		}
	}
	return b
}

func (e *encoder) header(t Type, n int) []byte {
	b := make([]byte, 0, 128)
	b = cborwire.AppendHead(b, cborwire.MajorArray, uint64(n))
	return cborwire.AppendUint(b, t.Wire(e.num))
}

func (e *encoder) queryRequest(m *QueryRequest) ([]byte, error) {
	t := TypeQueryRequest
	if err := m.Validate(); err != nil {
		return nil, err
	}
	if err := checkItems(t, "suit-reports", m.SUITReports, false); err != nil {
		return nil, err
	}
	var present []Label
	add := func(ok bool, l Label) {
		if ok {
			present = append(present, l)
		}
	}
	add(m.Token != nil, LabelToken)
	add(m.SupportedFreshnessMechanisms != nil, LabelSupportedFreshnessMechanisms)
	add(m.Challenge != nil, LabelChallenge)
	add(m.Versions != nil, LabelVersions)
	add(m.AttestationPayloadFormat != "", LabelAttestationPayloadFormat)
	add(m.AttestationPayload != nil, LabelAttestationPayload)
	add(m.SUITReports != nil, LabelSUITReports)
	b, err := e.options(e.header(t, 5), t, present, m.Extensions, m.wire, func(b []byte, l Label) []byte {
		switch l {
		case LabelToken:
			return cborwire.AppendBytes(b, m.Token)
		case LabelSupportedFreshnessMechanisms:
			return appendUints(b, m.SupportedFreshnessMechanisms)
		case LabelChallenge:
			return cborwire.AppendBytes(b, m.Challenge)
		case LabelVersions:
			return appendUints(b, m.Versions)
		case LabelAttestationPayloadFormat:
			return cborwire.AppendText(b, m.AttestationPayloadFormat)
		case LabelAttestationPayload:
			return cborwire.AppendBytes(b, m.AttestationPayload)
		}
		return appendByteStrings(b, m.SUITReports)
	})
	if err != nil {
		return nil, err
	}
	b = appendSuites(b, m.SupportedCipherSuites)
	b = appendProfiles(b, m.SupportedSUITCOSEProfiles)
	return cborwire.AppendUint(b, uint64(m.DataItemRequested)), nil
}

func (e *encoder) queryResponse(m *QueryResponse) ([]byte, error) {
	t := TypeQueryResponse
	if err := m.Validate(); err != nil {
		return nil, err
	}
	if err := checkItems(t, "suit-reports", m.SUITReports, false); err != nil {
		return nil, err
	}
	var present []Label
	add := func(ok bool, l Label) {
		if ok {
			present = append(present, l)
		}
	}
	add(m.Token != nil, LabelToken)
	add(m.SelectedVersion != nil, LabelSelectedVersion)
	add(m.AttestationPayloadFormat != "", LabelAttestationPayloadFormat)
	add(m.AttestationPayload != nil, LabelAttestationPayload)
	add(m.SUITReports != nil, LabelSUITReports)
	add(m.TCList != nil, LabelTCList)
	add(m.RequestedTCList != nil, LabelRequestedTCList)
	add(m.UnneededManifestList != nil, LabelUnneededManifestList)
	add(m.ExtList != nil, LabelExtList)
	var inner error
	b, err := e.options(e.header(t, 2), t, present, m.Extensions, m.wire, func(b []byte, l Label) []byte {
		switch l {
		case LabelToken:
			return cborwire.AppendBytes(b, m.Token)
		case LabelSelectedVersion:
			return cborwire.AppendUint(b, uint64(*m.SelectedVersion))
		case LabelAttestationPayloadFormat:
			return cborwire.AppendText(b, m.AttestationPayloadFormat)
		case LabelAttestationPayload:
			return cborwire.AppendBytes(b, m.AttestationPayload)
		case LabelSUITReports:
			return appendByteStrings(b, m.SUITReports)
		case LabelTCList:
			b = cborwire.AppendHead(b, cborwire.MajorArray, uint64(len(m.TCList)))
			for i := range m.TCList {
				var err error
				if b, err = e.claims(b, &m.TCList[i]); err != nil && inner == nil {
					inner = invalid(t, "tc-list[%d]: %v", i, err)
				}
			}
			return b
		case LabelRequestedTCList:
			b = cborwire.AppendHead(b, cborwire.MajorArray, uint64(len(m.RequestedTCList)))
			for i := range m.RequestedTCList {
				b = e.requestedTC(b, &m.RequestedTCList[i])
			}
			return b
		case LabelUnneededManifestList:
			return appendComponentIDs(b, m.UnneededManifestList)
		}
		return appendUints(b, m.ExtList)
	})
	if err == nil {
		err = inner
	}
	if err != nil {
		return nil, err
	}
	return b, nil
}

func (e *encoder) update(m *Update) ([]byte, error) {
	t := TypeUpdate
	if err := m.Validate(); err != nil {
		return nil, err
	}
	if err := checkItems(t, "manifest-list", m.ManifestList, true); err != nil {
		return nil, err
	}
	var present []Label
	add := func(ok bool, l Label) {
		if ok {
			present = append(present, l)
		}
	}
	add(m.Token != nil, LabelToken)
	add(m.UnneededManifestList != nil, LabelUnneededManifestList)
	add(m.ManifestList != nil, LabelManifestList)
	add(m.AttestationPayloadFormat != "", LabelAttestationPayloadFormat)
	add(m.AttestationPayload != nil, LabelAttestationPayload)
	add(m.ErrCode != 0, LabelErrCode)
	add(m.ErrMsg != "", LabelErrMsg)
	add(m.ErrLang != "", LabelErrLang)
	size := 64
	for _, env := range m.ManifestList {
		size += len(env) + 9
	}
	b := make([]byte, 0, size)
	b = cborwire.AppendHead(b, cborwire.MajorArray, 2)
	b = cborwire.AppendUint(b, t.Wire(e.num))
	return e.options(b, t, present, m.Extensions, m.wire, func(b []byte, l Label) []byte {
		switch l {
		case LabelToken:
			return cborwire.AppendBytes(b, m.Token)
		case LabelUnneededManifestList:
			return appendComponentIDs(b, m.UnneededManifestList)
		case LabelManifestList:
			return appendByteStrings(b, m.ManifestList)
		case LabelAttestationPayloadFormat:
			return cborwire.AppendText(b, m.AttestationPayloadFormat)
		case LabelAttestationPayload:
			return cborwire.AppendBytes(b, m.AttestationPayload)
		case LabelErrCode:
			return cborwire.AppendUint(b, e.num.wireErrCode(m.ErrCode))
		case LabelErrMsg:
			return cborwire.AppendText(b, m.ErrMsg)
		}
		return cborwire.AppendText(b, m.ErrLang)
	})
}

func (e *encoder) success(m *Success) ([]byte, error) {
	t := TypeSuccess
	if err := m.Validate(); err != nil {
		return nil, err
	}
	if err := checkItems(t, "suit-reports", m.SUITReports, false); err != nil {
		return nil, err
	}
	var present []Label
	if m.Token != nil {
		present = append(present, LabelToken)
	}
	if m.Msg != "" {
		present = append(present, LabelMsg)
	}
	if m.SUITReports != nil {
		present = append(present, LabelSUITReports)
	}
	return e.options(e.header(t, 2), t, present, m.Extensions, m.wire, func(b []byte, l Label) []byte {
		switch l {
		case LabelToken:
			return cborwire.AppendBytes(b, m.Token)
		case LabelMsg:
			return cborwire.AppendText(b, m.Msg)
		}
		return appendByteStrings(b, m.SUITReports)
	})
}

func (e *encoder) errorMsg(m *Error) ([]byte, error) {
	t := TypeError
	if err := m.Validate(); err != nil {
		return nil, err
	}
	if err := checkItems(t, "suit-reports", m.SUITReports, false); err != nil {
		return nil, err
	}
	var present []Label
	add := func(ok bool, l Label) {
		if ok {
			present = append(present, l)
		}
	}
	add(m.Token != nil, LabelToken)
	add(m.ErrMsg != "", LabelErrMsg)
	add(m.ErrLang != "", LabelErrLang)
	add(m.SupportedCipherSuites != nil, LabelSupportedCipherSuites)
	add(m.SupportedFreshnessMechanisms != nil, LabelSupportedFreshnessMechanisms)
	add(m.SupportedSUITCOSEProfiles != nil, LabelSupportedSUITCOSEProfiles)
	add(m.Challenge != nil, LabelChallenge)
	add(m.Versions != nil, LabelVersions)
	add(m.SUITReports != nil, LabelSUITReports)
	b, err := e.options(e.header(t, 3), t, present, m.Extensions, m.wire, func(b []byte, l Label) []byte {
		switch l {
		case LabelToken:
			return cborwire.AppendBytes(b, m.Token)
		case LabelErrMsg:
			return cborwire.AppendText(b, m.ErrMsg)
		case LabelErrLang:
			return cborwire.AppendText(b, m.ErrLang)
		case LabelSupportedCipherSuites:
			return appendSuites(b, m.SupportedCipherSuites)
		case LabelSupportedFreshnessMechanisms:
			return appendUints(b, m.SupportedFreshnessMechanisms)
		case LabelSupportedSUITCOSEProfiles:
			return appendProfiles(b, m.SupportedSUITCOSEProfiles)
		case LabelChallenge:
			return cborwire.AppendBytes(b, m.Challenge)
		case LabelVersions:
			return appendUints(b, m.Versions)
		}
		return appendByteStrings(b, m.SUITReports)
	})
	if err != nil {
		return nil, err
	}
	return cborwire.AppendUint(b, e.num.wireErrCode(m.ErrCode)), nil
}
