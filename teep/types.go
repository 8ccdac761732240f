package teep

import (
	"fmt"
	"strings"

	"github.com/teep-go/teep/suit"
)

// Version is the TEEP protocol version defined by draft-ietf-teep-protocol-26
// (§4.1: "versions" absent means [0]).
const Version uint32 = 0

// Message is one of *QueryRequest, *QueryResponse, *Update, *Success, *Error
// (or the same types as values).
type Message interface {
	Type() Type
}

// Extensions holds option labels the numbering does not assign, keyed by wire
// label, each value one encoded CBOR data item. The draft asks receivers to
// ignore unknown optional parameters; we keep them so a message re-encodes
// unchanged. A key that is a known label in the encoding numbering is an
// error, never silently overwritten.
type Extensions map[uint64][]byte

// wireInfo remembers how a decoded message looked on the wire, so that
// EncodeOptions.PreserveOrder can reproduce it.
type wireInfo struct {
	numbering Numbering
	order     []uint64 // option labels in wire order
}

// QueryRequest is sent by a TAM to learn an Agent's capabilities and ask for
// attestation and other data items (draft-ietf-teep-protocol-26 §4.2).
// Wire: [1, {options}, supported-teep-cipher-suites,
// supported-suit-cose-profiles, data-item-requested].
type QueryRequest struct {
	Token                        []byte               // label 19, 8..64 bytes; nil = absent
	SupportedFreshnessMechanisms []FreshnessMechanism // label 20; nil = absent (nonce only)
	Challenge                    []byte               // label 2, 8..512 bytes; nil = absent
	Versions                     []uint32             // label 3; nil = absent ([0])
	AttestationPayloadFormat     string               // label 12; "" = absent
	AttestationPayload           []byte               // label 6; nil = absent
	SUITReports                  [][]byte             // label 18; each an encoded SUIT_Report_Protected / _Unprotected
	SupportedCipherSuites        []CipherSuite        // positional, at least one
	SupportedSUITCOSEProfiles    []SUITCOSEProfile    // positional, at least one
	DataItemRequested            DataItem             // positional bitmap
	Extensions                   Extensions

	wire *wireInfo
}

// QueryResponse is the Agent's answer to a QueryRequest (§4.3).
// Wire: [2, {options}].
type QueryResponse struct {
	Token                    []byte  // label 19; echo of the QueryRequest token
	SelectedVersion          *uint32 // label 5; nil = absent (0)
	AttestationPayloadFormat string  // label 12; "" = absent (TEEP EAT profile)
	// AttestationPayload is label 6: nil = absent, a non-nil empty slice is
	// present and empty (Appendix D.3 carries h'').
	AttestationPayload   []byte
	SUITReports          [][]byte               // label 18
	TCList               []SystemPropertyClaims // label 7
	RequestedTCList      []RequestedTC          // label 13
	UnneededManifestList []suit.ComponentID     // label 14
	ExtList              []uint32               // label 8
	Extensions           Extensions

	wire *wireInfo
}

// Update carries SUIT manifests to install and manifests to unlink, an
// Attestation Result for the Agent, or a TAM-side error (§4.4).
// Wire: [3, {options}].
type Update struct {
	Token                []byte             // label 19
	UnneededManifestList []suit.ComponentID // label 14
	// ManifestList is label 9: each entry is the content of the bstr, an
	// encoded (untagged) SUIT_Envelope.
	ManifestList             [][]byte
	AttestationPayloadFormat string  // label 12
	AttestationPayload       []byte  // label 6; nil = absent
	ErrCode                  ErrCode // label 22; 0 = absent (0 is never valid on the wire)
	ErrMsg                   string  // label 11; "" = absent; 1..128 bytes
	ErrLang                  string  // label 21; "" = absent; RFC 5646 tag, 1..35 bytes
	Extensions               Extensions

	wire *wireInfo
}

// Success reports that an Update was processed (§4.5). Wire: [4, {options}].
type Success struct {
	Token       []byte   // label 19
	Msg         string   // label 10; "" = absent; 1..128 bytes
	SUITReports [][]byte // label 18
	Extensions  Extensions

	wire *wireInfo
}

// Error reports a failure to process a TAM message (§4.6).
// Wire: [5, {options}, err-code].
type Error struct {
	Token                        []byte               // label 19
	ErrMsg                       string               // label 11
	ErrLang                      string               // label 21
	SupportedCipherSuites        []CipherSuite        // label 1; required with ERR_UNSUPPORTED_CIPHER_SUITES
	SupportedFreshnessMechanisms []FreshnessMechanism // label 20; required with ERR_UNSUPPORTED_FRESHNESS_MECHANISMS
	SupportedSUITCOSEProfiles    []SUITCOSEProfile    // label 4; required with ERR_UNSUPPORTED_SUIT_REPORT
	Challenge                    []byte               // label 2
	Versions                     []uint32             // label 3; required with ERR_UNSUPPORTED_MSG_VERSION
	SUITReports                  [][]byte             // label 18
	ErrCode                      ErrCode              // positional, never 0
	Extensions                   Extensions

	wire *wireInfo
}

func (QueryRequest) Type() Type  { return TypeQueryRequest }
func (QueryResponse) Type() Type { return TypeQueryResponse }
func (Update) Type() Type        { return TypeUpdate }
func (Success) Type() Type       { return TypeSuccess }
func (Error) Type() Type         { return TypeError }

// COSE structure types used in cipher-suite operations (the CBOR tags).
const (
	COSETypeSign1 uint64 = 18 // COSE_Sign1
	COSETypeSign  uint64 = 98 // COSE_Sign
)

// Operation is one [COSE type, COSE algorithm] pair of a cipher suite.
type Operation struct {
	COSEType uint64
	Alg      int64
}

// CipherSuite is an ordered list of operations (§8.2); the two suites of the
// draft have a single COSE_Sign1 operation each.
type CipherSuite []Operation

// The mandatory-to-implement cipher suites (§8.2): a TAM supports both, an
// Agent at least one.
var (
	CipherSuiteESP256  = CipherSuite{{COSETypeSign1, -9}}  // teep-cipher-suite-sign1-esp256
	CipherSuiteEd25519 = CipherSuite{{COSETypeSign1, -19}} // teep-cipher-suite-sign1-ed25519
)

// MandatoryCipherSuites lists the suites every TAM supports, in the order
// the Appendix D.1 QueryRequest offers them.
func MandatoryCipherSuites() []CipherSuite {
	return []CipherSuite{CipherSuiteESP256, CipherSuiteEd25519}
}

// Sign1Suite is the single-operation COSE_Sign1 suite for alg.
func Sign1Suite(alg int64) CipherSuite { return CipherSuite{{COSETypeSign1, alg}} }

// Equal reports whether c and d list the same operations in the same order.
func (c CipherSuite) Equal(d CipherSuite) bool {
	if len(c) != len(d) {
		return false
	}
	for i := range c {
		if c[i] != d[i] {
			return false
		}
	}
	return true
}

// Sign1Alg returns the algorithm if c is a single COSE_Sign1 operation.
func (c CipherSuite) Sign1Alg() (int64, bool) {
	if len(c) == 1 && c[0].COSEType == COSETypeSign1 {
		return c[0].Alg, true
	}
	return 0, false
}

func (c CipherSuite) String() string {
	parts := make([]string, len(c))
	for i, op := range c {
		parts[i] = fmt.Sprintf("[%d, %d]", op.COSEType, op.Alg)
	}
	return "[" + strings.Join(parts, ", ") + "]"
}

// SUITCOSEProfile is [digest alg, auth alg, key-exchange alg, content
// encryption alg] as defined by draft-ietf-suit-mti.
type SUITCOSEProfile [4]int64

// The four SUIT COSE profiles named by draft-ietf-teep-protocol-26 §8.3; a TAM
// supports all four, an Agent at least one.
var (
	SUITProfileSHA256ESP256ECDHA128CTR     = SUITCOSEProfile{-16, -9, -29, -65534}
	SUITProfileSHA256Ed25519ECDHA128CTR    = SUITCOSEProfile{-16, -19, -29, -65534}
	SUITProfileSHA256ESP256ECDHA128GCM     = SUITCOSEProfile{-16, -9, -29, 1}
	SUITProfileSHA256Ed25519ECDHChaChaPoly = SUITCOSEProfile{-16, -19, -29, 24}
)

// MandatorySUITCOSEProfiles lists the four profiles in Appendix D.1 order.
func MandatorySUITCOSEProfiles() []SUITCOSEProfile {
	return []SUITCOSEProfile{
		SUITProfileSHA256ESP256ECDHA128CTR, SUITProfileSHA256Ed25519ECDHA128CTR,
		SUITProfileSHA256ESP256ECDHA128GCM, SUITProfileSHA256Ed25519ECDHChaChaPoly,
	}
}

// String returns the suit-mti name of a known profile, the array otherwise.
func (p SUITCOSEProfile) String() string {
	switch p {
	case SUITProfileSHA256ESP256ECDHA128CTR:
		return "suit-sha256-esp256-ecdh-a128ctr"
	case SUITProfileSHA256Ed25519ECDHA128CTR:
		return "suit-sha256-ed25519-ecdh-a128ctr"
	case SUITProfileSHA256ESP256ECDHA128GCM:
		return "suit-sha256-esp256-ecdh-a128gcm"
	case SUITProfileSHA256Ed25519ECDHChaChaPoly:
		return "suit-sha256-ed25519-ecdh-chacha-poly"
	}
	return fmt.Sprintf("[%d, %d, %d, %d]", p[0], p[1], p[2], p[3])
}

// DataItem is the data-item-requested bitmap of a QueryRequest.
type DataItem uint64

const (
	DataItemAttestation       DataItem = 1 << 0 // Agent returns attestation-payload
	DataItemTrustedComponents DataItem = 1 << 1 // Agent returns tc-list
	DataItemExtensions        DataItem = 1 << 2 // Agent returns ext-list
	DataItemSUITReports       DataItem = 1 << 3 // Agent returns suit-reports
)

// Has reports whether every bit of x is set in d.
func (d DataItem) Has(x DataItem) bool { return d&x == x }

// Names lists the IANA names of the set bits; unassigned bits as "bit-N".
func (d DataItem) Names() []string {
	names := []string{"attestation", "trusted-components", "extensions", "suit-reports"}
	var out []string
	for i := 0; i < 64; i++ {
		if d&(1<<i) == 0 {
			continue
		}
		if i < len(names) {
			out = append(out, names[i])
		} else {
			out = append(out, fmt.Sprintf("bit-%d", i))
		}
	}
	return out
}

// FreshnessMechanism is a value of the TEEP Freshness Mechanisms registry.
type FreshnessMechanism uint64

const (
	FreshnessNonce     FreshnessMechanism = 0 // FRESHNESS_NONCE (mandatory)
	FreshnessTimestamp FreshnessMechanism = 1 // FRESHNESS_TIMESTAMP
)

func (f FreshnessMechanism) String() string {
	switch f {
	case FreshnessNonce:
		return "FRESHNESS_NONCE"
	case FreshnessTimestamp:
		return "FRESHNESS_TIMESTAMP"
	}
	return fmt.Sprintf("freshness(%d)", uint64(f))
}

// ErrCode is a TEEP error code (§4.6.1), always the draft-26 value in memory.
type ErrCode uint64

const (
	ErrPermanentError                 ErrCode = 1
	ErrUnsupportedExtension           ErrCode = 2
	ErrUnsupportedFreshnessMechanisms ErrCode = 3
	ErrUnsupportedMsgVersion          ErrCode = 4
	ErrUnsupportedCipherSuites        ErrCode = 5
	ErrBadCertificate                 ErrCode = 6
	ErrAttestationRequired            ErrCode = 7
	ErrUnsupportedSUITReport          ErrCode = 8
	ErrCertificateExpired             ErrCode = 9
	ErrTemporaryError                 ErrCode = 10
	ErrManifestProcessingFailed       ErrCode = 11 // 17 on the legacy wire
)

var errCodeNames = [...]string{
	ErrPermanentError:                 "ERR_PERMANENT_ERROR",
	ErrUnsupportedExtension:           "ERR_UNSUPPORTED_EXTENSION",
	ErrUnsupportedFreshnessMechanisms: "ERR_UNSUPPORTED_FRESHNESS_MECHANISMS",
	ErrUnsupportedMsgVersion:          "ERR_UNSUPPORTED_MSG_VERSION",
	ErrUnsupportedCipherSuites:        "ERR_UNSUPPORTED_CIPHER_SUITES",
	ErrBadCertificate:                 "ERR_BAD_CERTIFICATE",
	ErrAttestationRequired:            "ERR_ATTESTATION_REQUIRED",
	ErrUnsupportedSUITReport:          "ERR_UNSUPPORTED_SUIT_REPORT",
	ErrCertificateExpired:             "ERR_CERTIFICATE_EXPIRED",
	ErrTemporaryError:                 "ERR_TEMPORARY_ERROR",
	ErrManifestProcessingFailed:       "ERR_MANIFEST_PROCESSING_FAILED",
}

// String returns the IANA name ("ERR_PERMANENT_ERROR"), or "ERR_<n>" for a
// code this implementation does not know (receivers treat those gracefully).
func (c ErrCode) String() string {
	if c >= 1 && int(c) < len(errCodeNames) {
		return errCodeNames[c]
	}
	return fmt.Sprintf("ERR_%d", uint64(c))
}

// Known reports whether c is assigned by draft-26.
func (c ErrCode) Known() bool { return c >= 1 && int(c) < len(errCodeNames) }

// Digest is a SUIT_Digest: [algorithm id, digest bytes].
type Digest struct {
	Alg   int64 // COSE hash algorithm, e.g. -16 (SHA-256)
	Bytes []byte
}

// SUIT parameter labels that SystemPropertyClaims gives typed access to
// (draft-ietf-suit-manifest §8.4.8).
const (
	SUITParamVendorID    int64 = 1
	SUITParamClassID     int64 = 2
	SUITParamImageDigest int64 = 3
	SUITParamImageSize   int64 = 14

	claimSystemComponentID int64 = 0
)

// SystemPropertyClaims is one tc-list entry: the system-property-claims map
// of draft-ietf-suit-report, {0: system-component-id, + SUIT parameters}.
// The common parameters are typed; every other parameter is kept as encoded
// CBOR in Other, keyed by its label.
type SystemPropertyClaims struct {
	ComponentID suit.ComponentID // key 0, required
	VendorID    []byte           // parameter 1 (RFC 9562 UUID); nil = absent
	ClassID     []byte           // parameter 2; nil = absent
	ImageDigest *Digest          // parameter 3, bstr-wrapped SUIT_Digest
	ImageSize   *uint64          // parameter 14
	Other       map[int64][]byte // other parameters, each one encoded CBOR item

	order []int64 // key order on the wire, for PreserveOrder
}

// RequestedTC is one requested-tc-list entry (requested-tc-info).
type RequestedTC struct {
	ComponentID    suit.ComponentID // label 15
	SequenceNumber *uint64          // label 16: minimum acceptable manifest sequence number; nil = any
	HaveBinary     *bool            // label 17: Agent already has the binary; needs SequenceNumber

	order []uint64 // wire labels in order, for PreserveOrder
}
