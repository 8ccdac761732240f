package teep

// Sizes fixed by the draft-26 CDDL (Appendix C). They are rules, not
// tunables, and are checked by Validate.
const (
	MinTokenSize     = 8   // token => bstr .size (8..64)
	MaxTokenSize     = 64  //
	MinChallengeSize = 8   // challenge => bstr .size (8..512)
	MaxChallengeSize = 512 //
	MaxErrMsgSize    = 128 // err-msg => text .size (1..128)
	MaxMsgSize       = 128 // msg => text .size (1..128)
	MaxErrLangSize   = 35  // err-lang => text .size (1..35)
)

// Limits bound what the decoder accepts, so that no input can make it use
// unbounded memory or time. Zero fields take the value from DefaultLimits.
type Limits struct {
	MaxMessageSize            int // encoded TEEP message (the COSE payload)
	MaxOptions                int // entries in an options map
	MaxListLength             int // entries of any list other than manifest-list and suit-reports
	MaxManifests              int // manifest-list entries
	MaxEnvelopeSize           int // one manifest-list entry (encoded SUIT_Envelope)
	MaxSUITReports            int // suit-reports entries
	MaxSUITReportSize         int // one suit-reports entry
	MaxAttestationPayloadSize int // attestation-payload
	MaxTextSize               int // attestation-payload-format and other text without a CDDL size
	MaxExtensionSize          int // one unknown option or unknown claim value
	MaxNesting                int // array/map/tag nesting depth of any CBOR item
	MaxCOSEOverhead           int // bytes a COSE_Sign1/COSE_Sign may add around the payload (Open)
	MaxSignatures             int // signatures in a COSE_Sign (each may cost a verification)
}

// DefaultLimits suit a TAM or Agent exchanging ordinary messages: Updates
// may carry integrated payloads of several MiB; everything else is small.
var DefaultLimits = Limits{
	MaxMessageSize:            16 << 20,
	MaxOptions:                64,
	MaxListLength:             1024,
	MaxManifests:              256,
	MaxEnvelopeSize:           16 << 20,
	MaxSUITReports:            256,
	MaxSUITReportSize:         256 << 10,
	MaxAttestationPayloadSize: 256 << 10,
	MaxTextSize:               1024,
	MaxExtensionSize:          64 << 10,
	MaxNesting:                16,
	MaxCOSEOverhead:           16 << 10,
	MaxSignatures:             8,
}

// withDefaults fills zero (or negative) fields from DefaultLimits.
func (l Limits) withDefaults() Limits {
	d := DefaultLimits
	pick := func(v *int, def int) {
		if *v <= 0 {
			*v = def
		}
	}
	pick(&l.MaxMessageSize, d.MaxMessageSize)
	pick(&l.MaxOptions, d.MaxOptions)
	pick(&l.MaxListLength, d.MaxListLength)
	pick(&l.MaxManifests, d.MaxManifests)
	pick(&l.MaxEnvelopeSize, d.MaxEnvelopeSize)
	pick(&l.MaxSUITReports, d.MaxSUITReports)
	pick(&l.MaxSUITReportSize, d.MaxSUITReportSize)
	pick(&l.MaxAttestationPayloadSize, d.MaxAttestationPayloadSize)
	pick(&l.MaxTextSize, d.MaxTextSize)
	pick(&l.MaxExtensionSize, d.MaxExtensionSize)
	pick(&l.MaxNesting, d.MaxNesting)
	pick(&l.MaxCOSEOverhead, d.MaxCOSEOverhead)
	pick(&l.MaxSignatures, d.MaxSignatures)
	return l
}

// maxClassIDSize bounds vendor-id and class-id (RFC 9124 uses 16-byte UUIDs;
// the margin admits other identifiers).
const maxClassIDSize = 1024
