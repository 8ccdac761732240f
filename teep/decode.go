package teep

import (
	"bytes"
	"errors"
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"

	"github.com/teep-go/teep/cborwire"
	"github.com/teep-go/teep/suit"
)

// DecodeOptions select the numbering and the limits of Decode.
type DecodeOptions struct {
	Numbering Numbering
	Limits    Limits // zero fields: DefaultLimits
}

// Decode parses one bare (unsigned) TEEP message strictly and validates it
// (see Validate). It returns *QueryRequest, *QueryResponse, *Update,
// *Success or *Error. The result does not alias data.
//
// Every failure is a *ProtocolError whose Code is the err-code to answer
// with (ERR_PERMANENT_ERROR for malformed or invalid input) and whose text
// says what is wrong and where, e.g.
// "teep: QueryResponse option tc-list[0]: component-id: want array, got map (at byte 23)".
func Decode(data []byte, o DecodeOptions) (Message, error) {
	if !o.Numbering.valid() {
		return nil, protoErr(ErrPermanentError, ErrInvalid, "unknown numbering %d", int(o.Numbering))
	}
	lim := o.Limits.withDefaults()
	if len(data) > lim.MaxMessageSize {
		return nil, protoErr(ErrPermanentError, ErrLimit, "message of %d bytes exceeds the limit of %d", len(data), lim.MaxMessageSize)
	}
	d := decoder{r: newReader(bytes.Clone(data)), lim: &lim, num: o.Numbering}
	m, err := d.message()
	if err != nil {
		return nil, err
	}
	switch v := m.(type) {
	case interface{ validateInput() error }:
		if err := v.validateInput(); err != nil {
			return nil, err
		}
	case interface{ Validate() error }:
		if err := v.Validate(); err != nil {
			return nil, err
		}
	}
	return m, nil
}

type decoder struct {
	r   reader
	lim *Limits
	num Numbering
}

// wrap turns a low-level error into a ProtocolError with the path prefix.
func wrapErr(where string, err error) error {
	if err == nil {
		return nil
	}
	var pe *ProtocolError
	if errors.As(err, &pe) {
		return err
	}
	class := ErrMalformed
	var ce *cborErr
	if errors.As(err, &ce) && ce.class != nil {
		class = ce.class
	}
	return &ProtocolError{Code: ErrPermanentError, Msg: where + ": " + err.Error(), Err: class}
}

// pathErr prefixes an error with where it happened; nested pathErrs join
// into one path such as "option tc-list[0]: component-id".
type pathErr struct {
	path string
	err  error
}

func (e *pathErr) Error() string { return e.path + ": " + e.err.Error() }
func (e *pathErr) Unwrap() error { return e.err }

// at prefixes err with a path element. Only called on the error path.
func at(where string, err error) error {
	if pe, ok := err.(*pathErr); ok && strings.HasPrefix(pe.path, "[") {
		return &pathErr{path: where + pe.path, err: pe.err}
	}
	return &pathErr{path: where, err: err}
}

func atIndex(where string, i int, err error) error {
	return at(where+"["+strconv.Itoa(i)+"]", err)
}

func (d *decoder) message() (Message, error) {
	r := &d.r
	start := r.Off
	if r.done() {
		return nil, protoErr(ErrPermanentError, ErrMalformed, "empty input")
	}
	if major, _ := r.peek(); major == cborwire.MajorTag {
		return nil, protoErr(ErrPermanentError, ErrMalformed,
			"not a bare TEEP message: starts with a CBOR tag (a signed message? use Open)")
	}
	n, err := r.array(8, "message")
	if err != nil {
		return nil, wrapErr("message", err)
	}
	if n < 2 || n == 4 {
		what := ""
		if n == 4 {
			what = " (a four-element array looks like an untagged COSE_Sign1; use Open)"
		}
		return nil, protoErr(ErrPermanentError, ErrMalformed, "message is an array of %d elements; want 2, 3 or 5%s (at byte %d)", n, what, start)
	}
	typeOff := r.Off
	wt, err := r.uint()
	if err != nil {
		return nil, wrapErr("message type", err)
	}
	t, ok := TypeOf(wt, d.num)
	if !ok {
		return nil, protoErr(ErrPermanentError, ErrUnknownType, "unknown message type %d in %s numbering%s (at byte %d)",
			wt, d.num, d.otherTypeHint(wt, n), typeOff)
	}
	if want := t.arrayLen(); n != want {
		return nil, protoErr(ErrPermanentError, ErrMalformed, "%s is an array of %d elements, want %d%s (at byte %d)",
			t.goName(), n, want, d.otherTypeHint(wt, n), start)
	}
	var m Message
	switch t {
	case TypeQueryRequest:
		m, err = d.queryRequest()
	case TypeQueryResponse:
		m, err = d.queryResponse()
	case TypeUpdate:
		m, err = d.update()
	case TypeSuccess:
		m, err = d.success()
	case TypeError:
		m, err = d.errorMsg()
	}
	if err != nil {
		return nil, wrapErr(t.goName(), err)
	}
	if !r.done() {
		return nil, protoErr(ErrPermanentError, ErrMalformed, "%d trailing bytes after the message (at byte %d)", len(r.Data)-r.Off, r.Off)
	}
	return m, nil
}

// otherTypeHint explains a type/length combination that would be valid in
// the other numbering, the usual cause of which is a peer on the other side
// of the draft-26 renumbering.
func (d *decoder) otherTypeHint(wt uint64, n int) string {
	other := Legacy
	if d.num == Legacy {
		other = Draft26
	}
	t, ok := TypeOf(wt, other)
	if !ok {
		return ""
	}
	if n != t.arrayLen() {
		return ""
	}
	return fmt.Sprintf("; a %d-element message of type %d is a %s in %s numbering", n, wt, t.goName(), other)
}

// arrayLen is the number of elements of a message of type t: type, options
// and the mandatory items (Appendix C).
func (t Type) arrayLen() int {
	switch t {
	case TypeQueryRequest:
		return 5
	case TypeError:
		return 3
	}
	return 2
}

// allowed option labels per message type (draft-26 Appendix C).
var allowedOptions = map[Type][]Label{
	TypeQueryRequest: {LabelToken, LabelSupportedFreshnessMechanisms, LabelChallenge, LabelVersions,
		LabelAttestationPayloadFormat, LabelAttestationPayload, LabelSUITReports},
	TypeQueryResponse: {LabelToken, LabelSelectedVersion, LabelAttestationPayloadFormat, LabelAttestationPayload,
		LabelSUITReports, LabelTCList, LabelRequestedTCList, LabelUnneededManifestList, LabelExtList},
	TypeUpdate: {LabelToken, LabelUnneededManifestList, LabelManifestList, LabelAttestationPayloadFormat,
		LabelAttestationPayload, LabelErrCode, LabelErrMsg, LabelErrLang},
	TypeSuccess: {LabelToken, LabelMsg, LabelSUITReports},
	TypeError: {LabelToken, LabelErrMsg, LabelErrLang, LabelSupportedCipherSuites, LabelSupportedFreshnessMechanisms,
		LabelSupportedSUITCOSEProfiles, LabelChallenge, LabelVersions, LabelSUITReports},
}

func isAllowed(t Type, l Label) bool {
	for _, x := range allowedOptions[t] {
		if x == l {
			return true
		}
	}
	return false
}

// options walks an options map, calling set for every known label allowed
// in t, keeping unknown labels as extensions. It returns the wire info.
func (d *decoder) options(t Type, set func(Label) error) (*wireInfo, Extensions, error) {
	r := &d.r
	n, err := r.mapHead(d.lim.MaxOptions, "options")
	if err != nil {
		return nil, nil, at("options", err)
	}
	info := &wireInfo{numbering: d.num, order: make([]uint64, 0, n)}
	var ext Extensions
	for i := 0; i < n; i++ {
		keyOff := r.Off
		wl, err := r.uint()
		if err != nil {
			return nil, nil, at(fmt.Sprintf("option key #%d", i), err)
		}
		if info.order, err = addKey(r, info.order, wl, keyOff, "option label"); err != nil {
			return nil, nil, err
		}
		l, known := d.num.Label(wl)
		switch {
		case known && isAllowed(t, l):
			if err := set(l); err != nil {
				return nil, nil, at("option "+l.String(), err)
			}
		case known:
			return nil, nil, r.fail(keyOff, ErrMalformed, "option %d (%s in %s numbering) is not allowed in %s%s",
				wl, l, d.num, t.goName(), d.otherLabelHint(t, wl))
		default:
			raw, err := r.skip(d.lim.MaxNesting-2, d.lim.MaxListLength)
			if err != nil {
				return nil, nil, at(fmt.Sprintf("option %d (unknown)", wl), err)
			}
			if len(raw) > d.lim.MaxExtensionSize {
				return nil, nil, r.fail(keyOff, ErrLimit, "unknown option %d of %d bytes exceeds the limit of %d", wl, len(raw), d.lim.MaxExtensionSize)
			}
			if ext == nil {
				ext = Extensions{}
			}
			ext[wl] = raw
		}
	}
	return info, ext, nil
}

func (d *decoder) otherLabelHint(t Type, wl uint64) string {
	other := Legacy
	if d.num == Legacy {
		other = Draft26
	}
	if l, ok := other.Label(wl); ok && isAllowed(t, l) {
		return fmt.Sprintf(" (in %s numbering it is %s: is the peer using that numbering?)", other, l)
	}
	return ""
}

func (d *decoder) token() ([]byte, error) { return d.r.bytes(MaxTokenSize, "token") }

func (d *decoder) challenge() ([]byte, error) {
	return d.r.bytes(MaxChallengeSize, "challenge")
}

func (d *decoder) text(what string, max int) (string, error) {
	return d.r.text(max, what)
}

func (d *decoder) attestationPayload() ([]byte, error) {
	return d.r.bytes(d.lim.MaxAttestationPayloadSize, "attestation-payload")
}

func (d *decoder) uint32List(what string) ([]uint32, error) {
	return list(d, what, func(v *uint32) (err error) {
		*v, err = d.r.uint32()
		return err
	})
}

func (d *decoder) freshness() ([]FreshnessMechanism, error) {
	return list(d, "supported-freshness-mechanisms", func(f *FreshnessMechanism) error {
		v, err := d.r.uint()
		*f = FreshnessMechanism(v)
		return err
	})
}

func (d *decoder) cipherSuites() ([]CipherSuite, error) {
	return list(d, "cipher suite list", func(suite *CipherSuite) error {
		r := &d.r
		ops, err := r.array(d.lim.MaxListLength, "cipher suite")
		if err != nil {
			return err
		}
		if ops == 0 {
			return r.fail(r.Off-1, ErrMalformed, "cipher suite has no operations")
		}
		*suite = make(CipherSuite, ops)
		for j := range *suite {
			if err := d.operation(&(*suite)[j]); err != nil {
				return atIndex("operation", j, err)
			}
		}
		return nil
	})
}

func (d *decoder) operation(op *Operation) error {
	r := &d.r
	start := r.Off
	n, err := r.array(d.lim.MaxListLength, "operation")
	if err != nil {
		return err
	}
	if n != 2 {
		return r.fail(start, ErrMalformed, "want [COSE type, COSE algorithm], got %d elements", n)
	}
	if op.COSEType, err = r.uint(); err != nil {
		return at("COSE type", err)
	}
	if op.Alg, err = r.int(); err != nil {
		return at("COSE algorithm", err)
	}
	return nil
}

func (d *decoder) suitProfiles() ([]SUITCOSEProfile, error) {
	return list(d, "SUIT COSE profile list", func(p *SUITCOSEProfile) error {
		r := &d.r
		start := r.Off
		k, err := r.array(d.lim.MaxListLength, "SUIT COSE profile")
		if err != nil {
			return err
		}
		if k != len(p) {
			return r.fail(start, ErrMalformed, "want 4 algorithm ids, got %d", k)
		}
		for j := range p {
			if p[j], err = r.int(); err != nil {
				return err
			}
		}
		return nil
	})
}

// suitReports reads [+ bstr .cbor SUIT_Report_*]; each entry must hold one
// well-formed CBOR item (its meaning is the suit package's business).
func (d *decoder) suitReports() ([][]byte, error) {
	r := &d.r
	n, err := r.array(d.lim.MaxSUITReports, "suit-reports")
	if err != nil {
		return nil, err
	}
	out := make([][]byte, n)
	for i := range out {
		start := r.Off
		b, err := r.bytes(d.lim.MaxSUITReportSize, "SUIT report")
		if err != nil {
			return nil, atIndex("", i, err)
		}
		if err := wellFormed(b, d.lim.MaxNesting, d.lim.MaxListLength); err != nil {
			return nil, atIndex("", i, fmt.Errorf("content of the bstr at byte %d: %w", start, err))
		}
		out[i] = b
	}
	return out, nil
}

// componentID reads a SUIT_Component_Identifier within the limits of package
// suit, the ones the TAM's store and the command line apply: an id a
// message may carry is one they accept.
func (d *decoder) componentID() (suit.ComponentID, error) {
	r := &d.r
	start := r.Off
	n, err := r.array(suit.MaxComponentIDSegments, "component identifier")
	if err != nil {
		return nil, err
	}
	out := make(suit.ComponentID, n)
	for i := range out {
		if out[i], err = r.bytes(suit.MaxComponentIDSegmentSize, "component identifier part"); err != nil {
			return nil, atIndex("", i, err)
		}
	}
	if err := out.Check(); err != nil {
		return nil, r.fail(start, ErrLimit, "component identifier: %v", err)
	}
	return out, nil
}

func (d *decoder) componentIDs() ([]suit.ComponentID, error) {
	return list(d, "component list", func(c *suit.ComponentID) (err error) {
		*c, err = d.componentID()
		return err
	})
}

// list decodes an array of at most MaxListLength items with item, naming
// the failing index in errors.
func list[T any](d *decoder, what string, item func(*T) error) ([]T, error) {
	n, err := d.r.array(d.lim.MaxListLength, what)
	if err != nil {
		return nil, err
	}
	out := make([]T, n)
	for i := range out {
		if err := item(&out[i]); err != nil {
			return nil, atIndex("", i, err)
		}
	}
	return out, nil
}

func (d *decoder) manifests() ([][]byte, error) {
	r := &d.r
	n, err := r.array(d.lim.MaxManifests, "manifest-list")
	if err != nil {
		return nil, err
	}
	out := make([][]byte, n)
	for i := range out {
		start := r.Off
		b, err := r.bytes(d.lim.MaxEnvelopeSize, "SUIT envelope")
		if err != nil {
			return nil, atIndex("", i, err)
		}
		if len(b) == 0 || b[0]>>5 != cborwire.MajorMap {
			what := "empty"
			if len(b) > 0 {
				what = cborwire.MajorName(b[0] >> 5)
				if b[0]>>5 == cborwire.MajorTag {
					what = "a tagged item (SUIT_Envelope_Tagged is not allowed here)"
				}
			}
			return nil, atIndex("", i, r.fail(start, ErrMalformed, "bstr must hold an untagged SUIT_Envelope map, got %s", what))
		}
		if err := wellFormed(b, d.lim.MaxNesting, d.lim.MaxListLength); err != nil {
			return nil, atIndex("", i, fmt.Errorf("SUIT envelope in the bstr at byte %d: %w", start, err))
		}
		out[i] = b
	}
	return out, nil
}

func (d *decoder) tcList() ([]SystemPropertyClaims, error) {
	return list(d, "tc-list", d.claims)
}

func (d *decoder) claims(c *SystemPropertyClaims) error {
	r := &d.r
	mapOff := r.Off
	n, err := r.mapHead(d.lim.MaxListLength, "system-property-claims")
	if err != nil {
		return err
	}
	c.order = make([]int64, 0, n)
	haveID := false
	for i := 0; i < n; i++ {
		keyOff := r.Off
		k, err := r.int()
		if err != nil {
			return at(fmt.Sprintf("key #%d", i), err)
		}
		if c.order, err = addKey(r, c.order, k, keyOff, "key"); err != nil {
			return err
		}
		switch k {
		case claimSystemComponentID:
			haveID = true
			if c.ComponentID, err = d.componentID(); err != nil {
				return at("system-component-id", err)
			}
		case SUITParamVendorID:
			if c.VendorID, err = r.bytes(maxClassIDSize, "vendor-id"); err != nil {
				return at("vendor-id", err)
			}
		case SUITParamClassID:
			if c.ClassID, err = r.bytes(maxClassIDSize, "class-id"); err != nil {
				return at("class-id", err)
			}
		case SUITParamImageDigest:
			if c.ImageDigest, err = d.digest(); err != nil {
				return at("image-digest", err)
			}
		case SUITParamImageSize:
			v, err := r.uint()
			if err != nil {
				return at("image-size", err)
			}
			c.ImageSize = &v
		default:
			raw, err := r.skip(d.lim.MaxNesting-4, d.lim.MaxListLength)
			if err != nil {
				return at(fmt.Sprintf("parameter %d", k), err)
			}
			if len(raw) > d.lim.MaxExtensionSize {
				return r.fail(keyOff, ErrLimit, "parameter %d of %d bytes exceeds the limit of %d", k, len(raw), d.lim.MaxExtensionSize)
			}
			if c.Other == nil {
				c.Other = map[int64][]byte{}
			}
			c.Other[k] = raw
		}
	}
	if !haveID {
		return r.fail(mapOff, ErrMalformed, "system-component-id (key 0) is missing")
	}
	return nil
}

// digest reads bstr .cbor SUIT_Digest = << [alg, bytes] >>.
func (d *decoder) digest() (*Digest, error) {
	start := d.r.Off
	b, err := d.r.bytes(d.lim.MaxExtensionSize, "SUIT_Digest")
	if err != nil {
		return nil, err
	}
	in := newReader(b)
	fail := func(err error) (*Digest, error) {
		return nil, fmt.Errorf("SUIT_Digest in the bstr at byte %d: %w", start, err)
	}
	n, err := in.array(d.lim.MaxListLength, "SUIT_Digest")
	if err != nil {
		return fail(err)
	}
	if n != 2 {
		return fail(in.fail(0, ErrMalformed, "want [algorithm, bytes], got %d elements", n))
	}
	var dg Digest
	if dg.Alg, err = in.int(); err != nil {
		return fail(at("algorithm", err))
	}
	if dg.Bytes, err = in.bytes(math.MaxInt, "digest"); err != nil {
		return fail(at("bytes", err))
	}
	if !in.done() {
		return fail(in.fail(in.Off, ErrMalformed, "trailing bytes after SUIT_Digest"))
	}
	return &dg, nil
}

func (d *decoder) requestedTCs() ([]RequestedTC, error) {
	return list(d, "requested-tc-list", d.requestedTC)
}

func (d *decoder) requestedTC(t *RequestedTC) error {
	r := &d.r
	mapOff := r.Off
	n, err := r.mapHead(d.lim.MaxListLength, "requested-tc-info")
	if err != nil {
		return err
	}
	t.order = make([]uint64, 0, n)
	haveID := false
	for i := 0; i < n; i++ {
		keyOff := r.Off
		wl, err := r.uint()
		if err != nil {
			return at(fmt.Sprintf("key #%d", i), err)
		}
		if t.order, err = addKey(r, t.order, wl, keyOff, "key"); err != nil {
			return err
		}
		l, _ := d.num.Label(wl)
		switch l {
		case LabelComponentID:
			haveID = true
			if t.ComponentID, err = d.componentID(); err != nil {
				return at("component-id", err)
			}
		case LabelTCManifestSequenceNumber:
			v, err := r.uint()
			if err != nil {
				return at("tc-manifest-sequence-number", err)
			}
			t.SequenceNumber = &v
		case LabelHaveBinary:
			v, err := r.bool()
			if err != nil {
				return at("have-binary", err)
			}
			t.HaveBinary = &v
		default:
			return r.fail(keyOff, ErrMalformed, "key %d is not allowed in requested-tc-info (%s numbering: component-id %d, tc-manifest-sequence-number %d, have-binary %d)",
				wl, d.num, d.num.Wire(LabelComponentID), d.num.Wire(LabelTCManifestSequenceNumber), d.num.Wire(LabelHaveBinary))
		}
	}
	if !haveID {
		return r.fail(mapOff, ErrMalformed, "component-id (label %d) is missing", d.num.Wire(LabelComponentID))
	}
	return nil
}

// addKey records map key k (read at off) in order, failing on a duplicate
// ("duplicate <what> <k>").
func addKey[K int64 | uint64](r *reader, order []K, k K, off int, what string) ([]K, error) {
	if slices.Contains(order, k) {
		return order, r.fail(off, ErrMalformed, "duplicate %s %d", what, k)
	}
	return append(order, k), nil
}

func (d *decoder) errCode() (ErrCode, error) {
	start := d.r.Off
	v, err := d.r.uint()
	if err != nil {
		return 0, err
	}
	if v == 0 {
		return 0, d.r.fail(start, ErrInvalid, "err-code 0 is reserved")
	}
	return d.num.errCodeOf(v), nil
}

func (d *decoder) queryRequest() (*QueryRequest, error) {
	m := &QueryRequest{}
	var err error
	m.wire, m.Extensions, err = d.options(TypeQueryRequest, func(l Label) (err error) {
		switch l {
		case LabelToken:
			m.Token, err = d.token()
		case LabelSupportedFreshnessMechanisms:
			m.SupportedFreshnessMechanisms, err = d.freshness()
		case LabelChallenge:
			m.Challenge, err = d.challenge()
		case LabelVersions:
			m.Versions, err = d.uint32List("versions")
		case LabelAttestationPayloadFormat:
			m.AttestationPayloadFormat, err = d.text("attestation-payload-format", d.lim.MaxTextSize)
		case LabelAttestationPayload:
			m.AttestationPayload, err = d.attestationPayload()
		case LabelSUITReports:
			m.SUITReports, err = d.suitReports()
		}
		return err
	})
	if err != nil {
		return nil, err
	}
	if m.SupportedCipherSuites, err = d.cipherSuites(); err != nil {
		return nil, at("supported-teep-cipher-suites", err)
	}
	if m.SupportedSUITCOSEProfiles, err = d.suitProfiles(); err != nil {
		return nil, at("supported-suit-cose-profiles", err)
	}
	v, err := d.r.uint()
	if err != nil {
		return nil, at("data-item-requested", err)
	}
	m.DataItemRequested = DataItem(v)
	return m, nil
}

func (d *decoder) queryResponse() (*QueryResponse, error) {
	m := &QueryResponse{}
	var err error
	m.wire, m.Extensions, err = d.options(TypeQueryResponse, func(l Label) (err error) {
		switch l {
		case LabelToken:
			m.Token, err = d.token()
		case LabelSelectedVersion:
			var v uint32
			if v, err = d.r.uint32(); err == nil {
				m.SelectedVersion = &v
			}
		case LabelAttestationPayloadFormat:
			m.AttestationPayloadFormat, err = d.text("attestation-payload-format", d.lim.MaxTextSize)
		case LabelAttestationPayload:
			m.AttestationPayload, err = d.attestationPayload()
		case LabelSUITReports:
			m.SUITReports, err = d.suitReports()
		case LabelTCList:
			m.TCList, err = d.tcList()
		case LabelRequestedTCList:
			m.RequestedTCList, err = d.requestedTCs()
		case LabelUnneededManifestList:
			m.UnneededManifestList, err = d.componentIDs()
		case LabelExtList:
			m.ExtList, err = d.uint32List("ext-list")
		}
		return err
	})
	if err != nil {
		return nil, err
	}
	return m, nil
}

func (d *decoder) update() (*Update, error) {
	m := &Update{}
	var err error
	m.wire, m.Extensions, err = d.options(TypeUpdate, func(l Label) (err error) {
		switch l {
		case LabelToken:
			m.Token, err = d.token()
		case LabelUnneededManifestList:
			m.UnneededManifestList, err = d.componentIDs()
		case LabelManifestList:
			m.ManifestList, err = d.manifests()
		case LabelAttestationPayloadFormat:
			m.AttestationPayloadFormat, err = d.text("attestation-payload-format", d.lim.MaxTextSize)
		case LabelAttestationPayload:
			m.AttestationPayload, err = d.attestationPayload()
		case LabelErrCode:
			m.ErrCode, err = d.errCode()
		case LabelErrMsg:
			m.ErrMsg, err = d.text("err-msg", d.lim.MaxTextSize)
		case LabelErrLang:
			m.ErrLang, err = d.text("err-lang", d.lim.MaxTextSize)
		}
		return err
	})
	if err != nil {
		return nil, err
	}
	return m, nil
}

func (d *decoder) success() (*Success, error) {
	m := &Success{}
	var err error
	m.wire, m.Extensions, err = d.options(TypeSuccess, func(l Label) (err error) {
		switch l {
		case LabelToken:
			m.Token, err = d.token()
		case LabelMsg:
			m.Msg, err = d.text("msg", d.lim.MaxTextSize)
		case LabelSUITReports:
			m.SUITReports, err = d.suitReports()
		}
		return err
	})
	if err != nil {
		return nil, err
	}
	return m, nil
}

func (d *decoder) errorMsg() (*Error, error) {
	m := &Error{}
	var err error
	m.wire, m.Extensions, err = d.options(TypeError, func(l Label) (err error) {
		switch l {
		case LabelToken:
			m.Token, err = d.token()
		case LabelErrMsg:
			m.ErrMsg, err = d.text("err-msg", d.lim.MaxTextSize)
		case LabelErrLang:
			m.ErrLang, err = d.text("err-lang", d.lim.MaxTextSize)
		case LabelSupportedCipherSuites:
			m.SupportedCipherSuites, err = d.cipherSuites()
		case LabelSupportedFreshnessMechanisms:
			m.SupportedFreshnessMechanisms, err = d.freshness()
		case LabelSupportedSUITCOSEProfiles:
			m.SupportedSUITCOSEProfiles, err = d.suitProfiles()
		case LabelChallenge:
			m.Challenge, err = d.challenge()
		case LabelVersions:
			m.Versions, err = d.uint32List("versions")
		case LabelSUITReports:
			m.SUITReports, err = d.suitReports()
		}
		return err
	})
	if err != nil {
		return nil, err
	}
	if m.ErrCode, err = d.errCode(); err != nil {
		return nil, at("err-code", err)
	}
	return m, nil
}
