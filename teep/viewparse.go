package teep

import (
	"bytes"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"github.com/teep-go/teep/suit"
	"strconv"
)

// The JSON view is lossless: MessageFromView rebuilds from a MessageView
// the message NewMessageView rendered, so that "teep msg encode" is the
// inverse of "teep msg decode --json". What only summarises (sizes,
// SHA-256 digests, err_name, SUIT summaries) is ignored on input.

// ParseType is the inverse of Type.String.
func ParseType(s string) (Type, error) {
	for _, t := range []Type{TypeQueryRequest, TypeQueryResponse, TypeUpdate, TypeSuccess, TypeError} {
		if t.String() == s {
			return t, nil
		}
	}
	return 0, fmt.Errorf("teep: unknown message type %q (want query-request, query-response, update, success or error)", s)
}

// UnmarshalJSON reads the known labels strictly and numeric keys as
// extensions.
func (m *MessageView) UnmarshalJSON(b []byte) error {
	type plain MessageView
	known, ext, err := splitNumericKeys(b)
	if err != nil {
		return err
	}
	var p plain
	if err := strictJSON(known, &p); err != nil {
		return fmt.Errorf("message: %w", err)
	}
	*m = MessageView(p)
	for k, raw := range ext {
		n, err := strconv.ParseUint(k, 10, 64)
		if err != nil {
			return fmt.Errorf("message: extension key %q is not a label number", k)
		}
		var v CBORView
		if err := strictJSON(raw, &v); err != nil {
			return fmt.Errorf("message: extension %s: %w", k, err)
		}
		if m.Extensions == nil {
			m.Extensions = map[uint64]CBORView{}
		}
		m.Extensions[n] = v
	}
	return nil
}

// UnmarshalJSON reads the typed parameters strictly and numeric keys as
// other parameters.
func (c *ClaimsView) UnmarshalJSON(b []byte) error {
	type plain ClaimsView
	known, other, err := splitNumericKeys(b)
	if err != nil {
		return err
	}
	var p plain
	if err := strictJSON(known, &p); err != nil {
		return fmt.Errorf("tc-list entry: %w", err)
	}
	*c = ClaimsView(p)
	for k, raw := range other {
		n, err := strconv.ParseInt(k, 10, 64)
		if err != nil {
			return fmt.Errorf("tc-list entry: key %q is not a parameter number", k)
		}
		var v CBORView
		if err := strictJSON(raw, &v); err != nil {
			return fmt.Errorf("tc-list entry: parameter %s: %w", k, err)
		}
		if c.Other == nil {
			c.Other = map[int64]CBORView{}
		}
		c.Other[n] = v
	}
	return nil
}

// splitNumericKeys separates an object's keys that are numbers (possibly
// negative) from the others, which it returns re-encoded.
func splitNumericKeys(b []byte) (known []byte, numeric map[string]json.RawMessage, err error) {
	var all map[string]json.RawMessage
	if err := strictJSON(b, &all); err != nil {
		return nil, nil, err
	}
	rest := map[string]json.RawMessage{}
	for k, v := range all {
		if _, err := strconv.ParseInt(k, 10, 64); err == nil {
			if numeric == nil {
				numeric = map[string]json.RawMessage{}
			}
			numeric[k] = v
			continue
		}
		rest[k] = v
	}
	known, err = json.Marshal(rest)
	return known, numeric, err
}

func strictJSON(b []byte, v any) error {
	d := json.NewDecoder(bytes.NewReader(b))
	d.DisallowUnknownFields()
	if err := d.Decode(v); err != nil {
		return err
	}
	if d.More() {
		return fmt.Errorf("trailing data after the JSON value")
	}
	return nil
}

// viewReader collects the first error of a conversion.
type viewReader struct{ err error }

func (r *viewReader) fail(format string, a ...any) {
	if r.err == nil {
		r.err = fmt.Errorf("teep: JSON view: "+format, a...)
	}
}

func (r *viewReader) hex(name string, s *string) []byte {
	if s == nil {
		return nil
	}
	b, err := hex.DecodeString(*s)
	if err != nil {
		r.fail("%s: %v", name, err)
		return nil
	}
	return b
}

func (r *viewReader) cid(name string, segs []string) suit.ComponentID {
	out := make(suit.ComponentID, len(segs))
	for i, s := range segs {
		out[i] = r.hex(fmt.Sprintf("%s[%d]", name, i), &s)
	}
	return out
}

func (r *viewReader) cids(name string, list [][]string) []suit.ComponentID {
	if list == nil {
		return nil
	}
	out := make([]suit.ComponentID, len(list))
	for i, c := range list {
		out[i] = r.cid(fmt.Sprintf("%s[%d]", name, i), c)
	}
	return out
}

func (r *viewReader) blob(name string, b *BlobView) []byte {
	if b == nil {
		return nil
	}
	out := r.hex(name, &b.Hex)
	if out == nil {
		out = []byte{}
	}
	return out
}

func (r *viewReader) blobs(name string, list []BlobView) [][]byte {
	if list == nil {
		return nil
	}
	out := make([][]byte, len(list))
	for i := range list {
		out[i] = r.blob(fmt.Sprintf("%s[%d]", name, i), &list[i])
	}
	return out
}

func (r *viewReader) suites(list [][][2]int64) []CipherSuite {
	if list == nil {
		return nil
	}
	out := make([]CipherSuite, len(list))
	for i, s := range list {
		out[i] = make(CipherSuite, len(s))
		for j, op := range s {
			if op[0] < 0 {
				r.fail("supported-teep-cipher-suites[%d][%d]: negative COSE type", i, j)
			}
			out[i][j] = Operation{COSEType: uint64(op[0]), Alg: op[1]}
		}
	}
	return out
}

func profiles(list [][4]int64) []SUITCOSEProfile {
	if list == nil {
		return nil
	}
	out := make([]SUITCOSEProfile, len(list))
	for i, p := range list {
		out[i] = p
	}
	return out
}

func freshness(list []uint64) []FreshnessMechanism {
	if list == nil {
		return nil
	}
	out := make([]FreshnessMechanism, len(list))
	for i, f := range list {
		out[i] = FreshnessMechanism(f)
	}
	return out
}

func (r *viewReader) extensions(x map[uint64]CBORView) Extensions {
	if len(x) == 0 {
		return nil
	}
	out := make(Extensions, len(x))
	for k, v := range x {
		out[k] = r.hex(fmt.Sprintf("extension %d", k), &v.CBOR)
	}
	return out
}

func (r *viewReader) claims(i int, c ClaimsView) SystemPropertyClaims {
	name := fmt.Sprintf("tc-list[%d]", i)
	out := SystemPropertyClaims{ComponentID: r.cid(name+" system-component-id", c.SystemComponentID),
		VendorID: r.hex(name+" vendor-id", c.VendorID), ClassID: r.hex(name+" class-id", c.ClassID), ImageSize: c.ImageSize}
	if c.SystemComponentID == nil {
		r.fail("%s: system-component-id is missing", name)
	}
	if d := c.ImageDigest; d != nil {
		out.ImageDigest = &Digest{Alg: d.AlgID, Bytes: r.hex(name+" image-digest", &d.Hex)}
	}
	for k, v := range c.Other {
		if out.Other == nil {
			out.Other = map[int64][]byte{}
		}
		out.Other[k] = r.hex(fmt.Sprintf("%s parameter %d", name, k), &v.CBOR)
	}
	return out
}

func (r *viewReader) errCode(v MessageView, n Numbering) ErrCode {
	if v.ErrCode == nil {
		return 0
	}
	return n.errCodeOf(*v.ErrCode)
}

// MessageFromView rebuilds a message of type t from its view, the err-code
// read in numbering n (its value differs between the numberings). The
// message is validated as Encode would.
func MessageFromView(t Type, v MessageView, n Numbering) (Message, error) {
	r := &viewReader{}
	var m Message
	switch t {
	case TypeQueryRequest:
		q := &QueryRequest{Token: r.hex("token", v.Token), SupportedFreshnessMechanisms: freshness(v.SupportedFreshnessMechanisms),
			Challenge: r.hex("challenge", v.Challenge), Versions: v.Versions, AttestationPayloadFormat: v.AttestationPayloadFormat,
			AttestationPayload: r.blob("attestation-payload", v.AttestationPayload), SUITReports: r.blobs("suit-reports", v.SUITReports),
			SupportedCipherSuites: r.suites(v.SupportedCipherSuites), SupportedSUITCOSEProfiles: profiles(v.SupportedSUITCOSEProfiles),
			Extensions: r.extensions(v.Extensions)}
		if v.DataItemRequested != nil {
			q.DataItemRequested = DataItem(*v.DataItemRequested)
		}
		m = q
	case TypeQueryResponse:
		q := &QueryResponse{Token: r.hex("token", v.Token), SelectedVersion: v.SelectedVersion, AttestationPayloadFormat: v.AttestationPayloadFormat,
			AttestationPayload: r.blob("attestation-payload", v.AttestationPayload), SUITReports: r.blobs("suit-reports", v.SUITReports),
			UnneededManifestList: r.cids("unneeded-manifest-list", v.UnneededManifestList), ExtList: v.ExtList, Extensions: r.extensions(v.Extensions)}
		if v.TCList != nil {
			q.TCList = make([]SystemPropertyClaims, len(v.TCList))
			for i, c := range v.TCList {
				q.TCList[i] = r.claims(i, c)
			}
		}
		if v.RequestedTCList != nil {
			q.RequestedTCList = make([]RequestedTC, len(v.RequestedTCList))
			for i, rq := range v.RequestedTCList {
				q.RequestedTCList[i] = RequestedTC{ComponentID: r.cid(fmt.Sprintf("requested-tc-list[%d]", i), rq.ComponentID),
					SequenceNumber: rq.SequenceNumber, HaveBinary: rq.HaveBinary}
			}
		}
		m = q
	case TypeUpdate:
		u := &Update{Token: r.hex("token", v.Token), UnneededManifestList: r.cids("unneeded-manifest-list", v.UnneededManifestList),
			AttestationPayloadFormat: v.AttestationPayloadFormat, AttestationPayload: r.blob("attestation-payload", v.AttestationPayload),
			ErrCode: r.errCode(v, n), ErrMsg: v.ErrMsg, ErrLang: v.ErrLang, Extensions: r.extensions(v.Extensions)}
		if v.ManifestList != nil {
			u.ManifestList = make([][]byte, len(v.ManifestList))
			for i, mv := range v.ManifestList {
				if mv.Hex == "" {
					r.fail("manifest-list[%d]: no hex (the envelope itself is needed)", i)
				}
				u.ManifestList[i] = r.hex(fmt.Sprintf("manifest-list[%d]", i), &mv.Hex)
			}
		}
		m = u
	case TypeSuccess:
		m = &Success{Token: r.hex("token", v.Token), Msg: v.Msg, SUITReports: r.blobs("suit-reports", v.SUITReports), Extensions: r.extensions(v.Extensions)}
	case TypeError:
		if v.ErrCode == nil {
			r.fail("an error needs err-code")
		}
		m = &Error{Token: r.hex("token", v.Token), ErrMsg: v.ErrMsg, ErrLang: v.ErrLang, SupportedCipherSuites: r.suites(v.SupportedCipherSuites),
			SupportedFreshnessMechanisms: freshness(v.SupportedFreshnessMechanisms), SupportedSUITCOSEProfiles: profiles(v.SupportedSUITCOSEProfiles),
			Challenge: r.hex("challenge", v.Challenge), Versions: v.Versions, SUITReports: r.blobs("suit-reports", v.SUITReports),
			ErrCode: r.errCode(v, n), Extensions: r.extensions(v.Extensions)}
	default:
		return nil, fmt.Errorf("teep: JSON view: unknown message type %v", t)
	}
	if r.err != nil {
		return nil, r.err
	}
	if val, ok := m.(interface{ Validate() error }); ok {
		if err := val.Validate(); err != nil {
			return nil, err
		}
	}
	return m, nil
}

// ParseView reads the JSON of a View (as "teep msg decode --json" prints
// it) and rebuilds its message; signature members are ignored, the
// numbering is the view's own. Limits bound the input.
func ParseView(data []byte) (Message, Numbering, error) {
	if len(data) > 4*DefaultLimits.MaxMessageSize+4096 {
		return nil, 0, fmt.Errorf("teep: JSON view of %d bytes is larger than any message", len(data))
	}
	var v struct {
		Type      string      `json:"type"`
		Numbering string      `json:"numbering"`
		Message   MessageView `json:"message"`
		// Read and ignored: they describe a signature or the encoding.
		Signed     json.RawMessage `json:"signed"`
		Structure  json.RawMessage `json:"structure"`
		Tagged     json.RawMessage `json:"tagged"`
		Alg        json.RawMessage `json:"alg"`
		AlgID      json.RawMessage `json:"alg_id"`
		KID        json.RawMessage `json:"kid"`
		Verified   json.RawMessage `json:"verified"`
		Signatures json.RawMessage `json:"signatures"`
		Size       json.RawMessage `json:"size"`
	}
	if err := strictJSON(data, &v); err != nil {
		return nil, 0, fmt.Errorf("teep: JSON view: %w", err)
	}
	t, err := ParseType(v.Type)
	if err != nil {
		return nil, 0, err
	}
	n, err := ParseNumbering(v.Numbering)
	if err != nil {
		return nil, 0, err
	}
	m, err := MessageFromView(t, v.Message, n)
	return m, n, err
}
