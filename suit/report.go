package suit

import (
	"errors"
	"fmt"

	"github.com/teep-go/teep/cborwire"
	"github.com/teep-go/teep/cosekey"
)

// SUIT_Report (draft-ietf-suit-report-19 §4): the record of one manifest
// processing run, returned by a TEEP Agent in Success/Error suit-reports and
// QueryResponse.

// SUIT_Report map keys.
const (
	reportNonce      = 2
	reportRecords    = 3
	reportResult     = 4
	reportResultCode = 5
	reportResultRec  = 6
	reportResultWhy  = 7
	reportCapability = 8
	reportReference  = 99

	systemComponentID = 0
)

// Reference is SUIT_Reference: the root manifest's reference URI and its
// digest (from the authentication wrapper).
type Reference struct {
	URI    string
	Digest Digest
}

// Record is SUIT_Record: where in which manifest something happened, and
// the parameter values in effect.
type Record struct {
	ManifestID     []uint64 // dependency indices from the root; empty = root
	Section        Section
	Offset         uint64 // byte offset into the section's decoded sequence
	ComponentIndex uint64
	Properties     []Param
}

// SystemProperties is a system-property-claims entry: a component and its
// properties (e.g. its image digest), as used in TEEP tc-list.
type SystemProperties struct {
	ComponentID ComponentID
	Properties  []Param
}

// ReportEntry is one element of suit-report-records: exactly one of Record
// and System is set.
type ReportEntry struct {
	Record *Record
	System *SystemProperties
}

// Failure is the suit-report-result map of a failed run.
type Failure struct {
	Code   int64 // implementation-defined detail (debugging only)
	Record Record
	Reason Reason
}

// Report is SUIT_Report.
type Report struct {
	Reference  Reference
	Nonce      []byte // nil when absent; in TEEP the token of the request answered
	Records    []ReportEntry
	Failure    *Failure // nil: suit-report-result is true (success)
	Capability []byte   // encoded SUIT_Capability_Report, nil when absent
}

// Success reports whether the run succeeded.
func (r *Report) Success() bool { return r.Failure == nil }

// NewParam encodes a parameter value (the types listed on Param).
func NewParam(key int64, v any) (Param, error) {
	var raw []byte
	switch x := v.(type) {
	case []byte:
		raw = cborwire.AppendBytes(nil, x)
	case PEN:
		raw = cborwire.AppendBytes(cborwire.AppendTag(nil, 112), x)
	case string:
		raw = cborwire.AppendText(nil, x)
	case uint64:
		raw = cborwire.AppendUint(nil, x)
	case int64:
		raw = cborwire.AppendInt(nil, x)
	case bool:
		raw = cborwire.AppendBool(nil, x)
	case Digest:
		raw = cborwire.AppendBytes(nil, x.Marshal())
	case *EncryptionInfo:
		raw = cborwire.AppendBytes(nil, x.Raw)
	case RawValue:
		raw = []byte(x)
	default:
		return Param{}, fmt.Errorf("suit: parameter %s: unsupported value type %T", ParamName(key), v)
	}
	return Param{Key: key, Value: v, Raw: raw}, nil
}

func appendParams(b []byte, ps []Param) []byte {
	entries := make([]cborwire.MapEntry, 0, len(ps))
	for _, p := range ps {
		entries = append(entries, cborwire.MapEntry{Key: intKey(p.Key), Val: p.Raw})
	}
	return cborwire.AppendMap(b, entries)
}

func (r *Record) appendTo(b []byte) []byte {
	b = cborwire.AppendArrayHead(b, 5)
	b = cborwire.AppendArrayHead(b, len(r.ManifestID))
	for _, i := range r.ManifestID {
		b = cborwire.AppendUint(b, i)
	}
	b = cborwire.AppendInt(b, int64(r.Section))
	b = cborwire.AppendUint(b, r.Offset)
	b = cborwire.AppendUint(b, r.ComponentIndex)
	return appendParams(b, r.Properties)
}

// Marshal encodes the report (deterministic CBOR, unprotected).
func (r *Report) Marshal() ([]byte, error) {
	ref := cborwire.AppendArrayHead(nil, 2)
	ref = cborwire.AppendText(ref, r.Reference.URI)
	ref = r.Reference.Digest.appendTo(ref)
	recs := cborwire.AppendArrayHead(nil, len(r.Records))
	for i, e := range r.Records {
		switch {
		case e.Record != nil && e.System == nil:
			recs = e.Record.appendTo(recs)
		case e.System != nil && e.Record == nil:
			entries := []cborwire.MapEntry{{Key: intKey(systemComponentID), Val: e.System.ComponentID.appendTo(nil)}}
			for _, p := range e.System.Properties {
				entries = append(entries, cborwire.MapEntry{Key: intKey(p.Key), Val: p.Raw})
			}
			recs = cborwire.AppendMap(recs, entries)
		default:
			return nil, fmt.Errorf("suit: report record %d: set exactly one of Record and System", i)
		}
	}
	var result []byte
	if r.Failure == nil {
		result = cborwire.AppendBool(nil, true)
	} else {
		result = cborwire.AppendMap(nil, []cborwire.MapEntry{
			{Key: intKey(reportResultCode), Val: cborwire.AppendInt(nil, r.Failure.Code)},
			{Key: intKey(reportResultRec), Val: r.Failure.Record.appendTo(nil)},
			{Key: intKey(reportResultWhy), Val: cborwire.AppendInt(nil, int64(r.Failure.Reason))},
		})
	}
	entries := []cborwire.MapEntry{
		{Key: intKey(reportReference), Val: ref},
		{Key: intKey(reportRecords), Val: recs},
		{Key: intKey(reportResult), Val: result},
	}
	if r.Nonce != nil {
		entries = append(entries, cborwire.MapEntry{Key: intKey(reportNonce), Val: cborwire.AppendBytes(nil, r.Nonce)})
	}
	if r.Capability != nil {
		lim := DefaultLimits()
		if err := wellFormed(r.Capability, &lim); err != nil {
			return nil, fmt.Errorf("suit: capability report: %w", err)
		}
		entries = append(entries, cborwire.MapEntry{Key: intKey(reportCapability), Val: r.Capability})
	}
	return cborwire.AppendMap(nil, entries), nil
}

// MaxReportSize bounds ParseReport's input.
const MaxReportSize = 1 << 20

// ParseReport decodes an unprotected SUIT_Report. Reports in the pre-2024
// layout (draft-ietf-teep-protocol Appendix F: keys 1 digest, 2 uri,
// 4 records) are rejected with an error saying so.
func ParseReport(data []byte) (*Report, error) {
	if len(data) > MaxReportSize {
		return nil, errorf(ErrLimit, "report of %d bytes exceeds %d", len(data), MaxReportSize)
	}
	lim := DefaultLimits()
	if err := wellFormed(data, &lim); err != nil {
		return nil, in("report", err)
	}
	c := newCur(data, "report")
	n, err := c.mapLen("SUIT_Report")
	if err != nil {
		return nil, err
	}
	r := &Report{}
	var haveRef, haveRecs, haveResult bool
	for i := 0; i < n; i++ {
		keyOff := c.Off
		key, err := c.int("report key")
		if err != nil {
			return nil, err
		}
		switch key {
		case reportReference:
			haveRef = true
			var k int
			if k, err = c.array("suit-reference"); err == nil && k != 2 {
				err = c.errf(keyOff, "suit-reference has %d elements (want 2)", k)
			}
			if err == nil {
				if r.Reference.URI, err = c.text("manifest uri"); err == nil {
					r.Reference.Digest, err = c.digest("manifest digest")
				}
			}
		case reportNonce:
			r.Nonce, err = c.bytes("suit-report-nonce")
		case reportRecords:
			haveRecs = true
			var k int
			if k, err = c.array("suit-report-records"); err != nil {
				break
			}
			for j := 0; j < k && err == nil; j++ {
				var e ReportEntry
				h, perr := c.peek()
				if perr != nil {
					return nil, perr
				}
				if h.major == cborwire.MajorMap {
					e.System, err = c.systemProperties(&lim)
				} else {
					e.Record, err = c.record(&lim)
				}
				r.Records = append(r.Records, e)
			}
		case reportResult:
			haveResult = true
			if c.isTrue() {
				break
			}
			r.Failure, err = c.failure(&lim)
		case reportCapability:
			r.Capability, err = c.skip()
		case 1:
			return nil, c.errf(keyOff, "SUIT_Report key 1 belongs to the pre-2024 report layout (draft-ietf-teep-protocol Appendix F), which is not supported")
		default:
			return nil, c.errf(keyOff, "unknown SUIT_Report key %d", key)
		}
		if err != nil {
			return nil, err
		}
	}
	if !haveRef {
		return nil, errorf(ErrMalformed, "report has no suit-reference (99); pre-2024 reports (keys 1/2/4) are not supported")
	}
	if !haveRecs || !haveResult {
		return nil, errorf(ErrMalformed, "report lacks suit-report-records (3) or suit-report-result (4)")
	}
	return r, c.end()
}

func (c *cur) record(lim *Limits) (*Record, error) {
	start := c.Off
	n, err := c.array("SUIT_Record")
	if err != nil {
		return nil, err
	}
	if n < 5 {
		return nil, c.errf(start, "SUIT_Record has %d elements (want at least 5)", n)
	}
	r := &Record{}
	k, err := c.array("record manifest id")
	if err != nil {
		return nil, err
	}
	for i := 0; i < k; i++ {
		v, err := c.uint("record manifest id")
		if err != nil {
			return nil, err
		}
		r.ManifestID = append(r.ManifestID, v)
	}
	sec, err := c.int("record section")
	if err != nil {
		return nil, err
	}
	r.Section = Section(sec)
	if r.Offset, err = c.uint("record offset"); err != nil {
		return nil, err
	}
	if r.ComponentIndex, err = c.uint("record component index"); err != nil {
		return nil, err
	}
	if r.Properties, err = c.paramsOrEmpty("record properties", lim); err != nil {
		return nil, err
	}
	for i := 5; i < n; i++ { // $$SUIT_Record_Extensions
		if _, err := c.skip(); err != nil {
			return nil, err
		}
	}
	return r, nil
}

// paramsOrEmpty is params allowing an empty map.
func (c *cur) paramsOrEmpty(name string, lim *Limits) ([]Param, error) {
	if c.Off < len(c.Data) && c.Data[c.Off] == 0xa0 {
		c.Off++
		return nil, nil
	}
	return c.params(name, lim)
}

func (c *cur) systemProperties(lim *Limits) (*SystemProperties, error) {
	start := c.Off
	n, err := c.mapLen("system-property-claims")
	if err != nil {
		return nil, err
	}
	s := &SystemProperties{}
	have := false
	var entries [][]byte
	for i := 0; i < n; i++ {
		ks := c.Off
		key, err := c.int("system property key")
		if err != nil {
			return nil, err
		}
		if key == systemComponentID {
			if s.ComponentID, err = c.componentID("system-component-id", lim); err != nil {
				return nil, err
			}
			have = true
			continue
		}
		if _, err := c.skip(); err != nil {
			return nil, err
		}
		entries = append(entries, c.Data[ks:c.Off])
	}
	if !have {
		return nil, c.errf(start, "system-property-claims without system-component-id (0)")
	}
	if len(entries) == 0 {
		return nil, c.errf(start, "system-property-claims without properties")
	}
	// Re-frame the properties as a map to decode them with the parameter rules.
	rest := cborwire.AppendHead(nil, cborwire.MajorMap, uint64(len(entries)))
	for _, e := range entries {
		rest = append(rest, e...)
	}
	pc := newCur(rest, c.what)
	if s.Properties, err = pc.params("system properties", lim); err != nil {
		return nil, err
	}
	return s, nil
}

func (c *cur) failure(lim *Limits) (*Failure, error) {
	start := c.Off
	n, err := c.mapLen("suit-report-result")
	if err != nil {
		return nil, err
	}
	f := &Failure{}
	var have [3]bool
	for i := 0; i < n; i++ {
		key, err := c.int("result key")
		if err != nil {
			return nil, err
		}
		switch key {
		case reportResultCode:
			f.Code, err = c.int("result code")
			have[0] = true
		case reportResultRec:
			var r *Record
			if r, err = c.record(lim); err == nil {
				f.Record = *r
			}
			have[1] = true
		case reportResultWhy:
			var v int64
			v, err = c.int("result reason")
			f.Reason = Reason(v)
			have[2] = true
		default:
			return nil, c.errf(start, "unknown suit-report-result key %d", key)
		}
		if err != nil {
			return nil, err
		}
	}
	if !have[0] || !have[1] || !have[2] {
		return nil, c.errf(start, "suit-report-result needs code (5), record (6) and reason (7)")
	}
	return f, nil
}

// SignReport wraps the encoded report in a COSE_Sign1 (SUIT_Report_Protected).
// draft-ietf-suit-report: the key must not be the one that signs the TEEP
// message carrying the report.
func (r *Report) Sign(s *cosekey.Signer) ([]byte, error) {
	payload, err := r.Marshal()
	if err != nil {
		return nil, err
	}
	return cosekey.Sign1(payload, s, nil)
}

// VerifyReport checks a COSE_Sign1-protected report and decodes it.
func VerifyReport(data []byte, keys []*cosekey.Key) (*Report, error) {
	signed, _, err := cosekey.Verify(data, cosekey.VerifyOptions{Keys: keys})
	if err != nil {
		return nil, fmt.Errorf("%w: report: %v", ErrUnauthorised, err)
	}
	if signed.Payload == nil {
		return nil, errors.New("suit: protected report has a detached payload")
	}
	return ParseReport(signed.Payload)
}

// CapabilityReport is SUIT_Capability_Report (draft-ietf-suit-report §4.3):
// what a manifest processor supports.
type CapabilityReport struct {
	// Components lists component id prefixes the processor handles; a
	// prefix with Wildcard set matches any longer id.
	Components []ComponentCapability
	Commands   []int64 // suit-command-capabilities
	Parameters []int64 // suit-parameters-capabilities
	CryptAlgs  []int64 // suit-crypt-algo-capabilities (COSE ids)
	Envelope   []int64 // optional: envelope keys
	Manifest   []int64 // optional: manifest keys
	Common     []int64 // optional: SUIT_Common keys
	Dependency []int64 // optional: dependency metadata keys
}

// ComponentCapability is SUIT_Component_Capability = [*bstr, ?true].
type ComponentCapability struct {
	Prefix   ComponentID
	Wildcard bool
}

// Marshal encodes the capability report.
func (c *CapabilityReport) Marshal() ([]byte, error) {
	if len(c.Components) == 0 || len(c.Commands) == 0 || len(c.Parameters) == 0 || len(c.CryptAlgs) == 0 {
		return nil, fmt.Errorf("suit: capability report needs components, commands, parameters and algorithms")
	}
	ints := func(v []int64) []byte {
		b := cborwire.AppendArrayHead(nil, len(v))
		for _, x := range v {
			b = cborwire.AppendInt(b, x)
		}
		return b
	}
	comps := cborwire.AppendArrayHead(nil, len(c.Components))
	for _, cc := range c.Components {
		n := len(cc.Prefix)
		if cc.Wildcard {
			n++
		}
		comps = cborwire.AppendArrayHead(comps, n)
		for _, s := range cc.Prefix {
			comps = cborwire.AppendBytes(comps, s)
		}
		if cc.Wildcard {
			comps = cborwire.AppendBool(comps, true)
		}
	}
	entries := []cborwire.MapEntry{{Key: intKey(1), Val: comps}, {Key: intKey(2), Val: ints(c.Commands)}, {Key: intKey(3), Val: ints(c.Parameters)}, {Key: intKey(4), Val: ints(c.CryptAlgs)}}
	for _, opt := range []struct {
		key int64
		v   []int64
	}{{5, c.Envelope}, {6, c.Manifest}, {7, c.Common}, {10, c.Dependency}} {
		if len(opt.v) > 0 {
			entries = append(entries, cborwire.MapEntry{Key: intKey(opt.key), Val: ints(opt.v)})
		}
	}
	return cborwire.AppendMap(nil, entries), nil
}
