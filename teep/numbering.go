package teep

import (
	"fmt"
	"strings"
)

// Numbering selects the set of integers used on the wire for message types,
// option labels and ERR_MANIFEST_PROCESSING_FAILED.
//
// draft-ietf-teep-protocol-26 renumbered them (and IANA registered the new
// values); drafts -18 to -25 and the implementations written for them use the
// Legacy set. In memory every value is the -26 one; only the wire differs.
// A message is always encoded entirely in one numbering.
type Numbering int

const (
	Draft26 Numbering = iota // draft-ietf-teep-protocol-26 / IANA (default)
	Legacy                   // drafts -18 … -25: success=5, error=6, labels >= 5 shifted by one
)

func (n Numbering) String() string {
	switch n {
	case Draft26:
		return "draft-26"
	case Legacy:
		return "legacy"
	}
	return fmt.Sprintf("Numbering(%d)", int(n))
}

// ParseNumbering maps "draft-26" (also "26", "iana", "") and "legacy" (also
// "pre-26") to a Numbering.
func ParseNumbering(s string) (Numbering, error) {
	switch strings.ToLower(strings.TrimSpace(s)) {
	case "", "draft-26", "26", "iana":
		return Draft26, nil
	case "legacy", "pre-26":
		return Legacy, nil
	}
	return 0, fmt.Errorf("teep: unknown numbering %q (want draft-26 or legacy)", s)
}

func (n Numbering) valid() bool { return n == Draft26 || n == Legacy }

// Type is the logical message type, independent of the numbering.
type Type int

const (
	TypeQueryRequest Type = iota + 1
	TypeQueryResponse
	TypeUpdate
	TypeSuccess
	TypeError
)

// String returns the CDDL rule name: "query-request", "query-response",
// "update", "success" or "error".
func (t Type) String() string {
	switch t {
	case TypeQueryRequest:
		return "query-request"
	case TypeQueryResponse:
		return "query-response"
	case TypeUpdate:
		return "update"
	case TypeSuccess:
		return "success"
	case TypeError:
		return "error"
	}
	return fmt.Sprintf("Type(%d)", int(t))
}

// goName is the name used in error messages ("QueryResponse").
func (t Type) goName() string {
	switch t {
	case TypeQueryRequest:
		return "QueryRequest"
	case TypeQueryResponse:
		return "QueryResponse"
	case TypeUpdate:
		return "Update"
	case TypeSuccess:
		return "Success"
	case TypeError:
		return "Error"
	}
	return t.String()
}

// Wire returns the TEEP-TYPE value of t in numbering n (0 for an invalid t).
func (t Type) Wire(n Numbering) uint64 {
	switch t {
	case TypeQueryRequest, TypeQueryResponse, TypeUpdate:
		return uint64(t)
	case TypeSuccess, TypeError:
		if n == Legacy {
			return uint64(t) + 1
		}
		return uint64(t)
	}
	return 0
}

// TypeOf maps a wire TEEP-TYPE value to a Type in numbering n.
func TypeOf(wire uint64, n Numbering) (Type, bool) {
	switch {
	case wire >= 1 && wire <= 3:
		return Type(wire), true
	case n == Legacy && (wire == 5 || wire == 6):
		return Type(wire - 1), true
	case n != Legacy && (wire == 4 || wire == 5):
		return Type(wire), true
	}
	return 0, false
}

// Label is a logical TEEP CBOR label, named by its draft-26 (IANA) value.
type Label uint64

// TEEP CBOR labels (draft-ietf-teep-protocol-26 Appendix C, IANA "TEEP CBOR
// Labels"). Use Numbering.Wire to get the value for the wire.
const (
	LabelSupportedCipherSuites        Label = 1
	LabelChallenge                    Label = 2
	LabelVersions                     Label = 3
	LabelSupportedSUITCOSEProfiles    Label = 4
	LabelSelectedVersion              Label = 5
	LabelAttestationPayload           Label = 6
	LabelTCList                       Label = 7
	LabelExtList                      Label = 8
	LabelManifestList                 Label = 9
	LabelMsg                          Label = 10
	LabelErrMsg                       Label = 11
	LabelAttestationPayloadFormat     Label = 12
	LabelRequestedTCList              Label = 13
	LabelUnneededManifestList         Label = 14
	LabelComponentID                  Label = 15
	LabelTCManifestSequenceNumber     Label = 16
	LabelHaveBinary                   Label = 17
	LabelSUITReports                  Label = 18
	LabelToken                        Label = 19
	LabelSupportedFreshnessMechanisms Label = 20
	LabelErrLang                      Label = 21
	LabelErrCode                      Label = 22

	maxLabel = LabelErrCode
)

var labelNames = [...]string{
	LabelSupportedCipherSuites:        "supported-teep-cipher-suites",
	LabelChallenge:                    "challenge",
	LabelVersions:                     "versions",
	LabelSupportedSUITCOSEProfiles:    "supported-suit-cose-profiles",
	LabelSelectedVersion:              "selected-version",
	LabelAttestationPayload:           "attestation-payload",
	LabelTCList:                       "tc-list",
	LabelExtList:                      "ext-list",
	LabelManifestList:                 "manifest-list",
	LabelMsg:                          "msg",
	LabelErrMsg:                       "err-msg",
	LabelAttestationPayloadFormat:     "attestation-payload-format",
	LabelRequestedTCList:              "requested-tc-list",
	LabelUnneededManifestList:         "unneeded-manifest-list",
	LabelComponentID:                  "component-id",
	LabelTCManifestSequenceNumber:     "tc-manifest-sequence-number",
	LabelHaveBinary:                   "have-binary",
	LabelSUITReports:                  "suit-reports",
	LabelToken:                        "token",
	LabelSupportedFreshnessMechanisms: "supported-freshness-mechanisms",
	LabelErrLang:                      "err-lang",
	LabelErrCode:                      "err-code",
}

// String returns the IANA name of the label ("token", "tc-list", ...).
func (l Label) String() string {
	if l >= 1 && l <= maxLabel {
		return labelNames[l]
	}
	return fmt.Sprintf("label(%d)", uint64(l))
}

// Wire returns the value of label l in numbering n. Legacy shifts every label
// from 5 (selected-version) up by one.
func (n Numbering) Wire(l Label) uint64 {
	if n == Legacy && l >= LabelSelectedVersion {
		return uint64(l) + 1
	}
	return uint64(l)
}

// Label maps a wire label to the logical label it means in numbering n; ok is
// false for labels that numbering does not assign.
func (n Numbering) Label(wire uint64) (Label, bool) {
	if n == Legacy {
		switch {
		case wire >= 1 && wire <= 4:
			return Label(wire), true
		case wire >= 6 && wire <= uint64(maxLabel)+1:
			return Label(wire - 1), true
		}
		return 0, false
	}
	if wire >= 1 && wire <= uint64(maxLabel) {
		return Label(wire), true
	}
	return 0, false
}

// wireErrCode / errCodeOf translate ERR_MANIFEST_PROCESSING_FAILED, which is 11
// in draft-26 and 17 in the legacy set. The translation is a swap (legacy 11,
// unassigned there, maps to 17, unassigned in draft-26) so every code survives
// a round trip unchanged.
func (n Numbering) wireErrCode(c ErrCode) uint64 {
	if n == Legacy {
		switch c {
		case ErrManifestProcessingFailed:
			return legacyManifestProcessingFailed
		case legacyManifestProcessingFailed:
			return uint64(ErrManifestProcessingFailed)
		}
	}
	return uint64(c)
}

// WireErrCode is the value err-code c has on the wire in numbering n.
func (n Numbering) WireErrCode(c ErrCode) uint64 { return n.wireErrCode(c) }

func (n Numbering) errCodeOf(wire uint64) ErrCode {
	if n == Legacy {
		switch wire {
		case legacyManifestProcessingFailed:
			return ErrManifestProcessingFailed
		case uint64(ErrManifestProcessingFailed):
			return legacyManifestProcessingFailed
		}
	}
	return ErrCode(wire)
}

const legacyManifestProcessingFailed = 17
