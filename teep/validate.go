package teep

import (
	"fmt"
	"math"
	"unicode/utf8"
)

// Validation: the CDDL sizes and the MUST rules of draft-ietf-teep-protocol-26
// that span fields. Decode and Encode both call Validate, so an invalid
// message is neither accepted nor produced. Rules the draft's own examples
// break (a QueryRequest token together with the attestation bit, §4.2 vs
// Appendix D.1) are not enforced.

func invalid(t Type, format string, a ...any) error {
	return &ProtocolError{Code: ErrPermanentError, Msg: t.goName() + ": " + fmt.Sprintf(format, a...), Err: ErrInvalid}
}

func checkToken(t Type, tok []byte) error {
	if tok != nil && (len(tok) < MinTokenSize || len(tok) > MaxTokenSize) {
		return invalid(t, "token: %d bytes, want %d..%d", len(tok), MinTokenSize, MaxTokenSize)
	}
	return nil
}

func checkChallenge(t Type, c []byte) error {
	if c != nil && (len(c) < MinChallengeSize || len(c) > MaxChallengeSize) {
		return invalid(t, "challenge: %d bytes, want %d..%d", len(c), MinChallengeSize, MaxChallengeSize)
	}
	return nil
}

// checkText checks an optional text field: "" means absent, otherwise
// 1..max bytes of UTF-8.
func checkText(t Type, name, s string, max int) error {
	if len(s) > max {
		return invalid(t, "%s: %d bytes, want at most %d", name, len(s), max)
	}
	if !utf8.ValidString(s) {
		return invalid(t, "%s: not valid UTF-8", name)
	}
	return nil
}

// checkLang checks err-lang: an RFC 5646 language tag of 1..35 bytes, which
// consists of letters, digits and hyphens.
func checkLang(t Type, s string) error {
	if len(s) > MaxErrLangSize {
		return invalid(t, "err-lang: %d bytes, want at most %d", len(s), MaxErrLangSize)
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-') {
			return invalid(t, "err-lang: %q is not a language tag (RFC 5646)", s)
		}
	}
	return nil
}

// nonEmpty checks a "[ + x ]" list: nil is absent, present must have one entry.
func nonEmpty[E any](t Type, name string, list []E) error {
	if list != nil && len(list) == 0 {
		return invalid(t, "%s: present but empty (want at least one entry)", name)
	}
	return nil
}

func checkSuites(t Type, name string, suites []CipherSuite) error {
	if err := nonEmpty(t, name, suites); err != nil {
		return err
	}
	for i, s := range suites {
		if len(s) == 0 {
			return invalid(t, "%s[%d]: cipher suite has no operations", name, i)
		}
	}
	return nil
}

func checkReports(t Type, reports [][]byte) error {
	if err := nonEmpty(t, "suit-reports", reports); err != nil {
		return err
	}
	for i, r := range reports {
		if len(r) == 0 {
			return invalid(t, "suit-reports[%d]: empty", i)
		}
	}
	return nil
}

func first(errs ...error) error {
	for _, err := range errs {
		if err != nil {
			return err
		}
	}
	return nil
}

// Validate checks the CDDL sizes and the cross-field rules of §4.2:
// challenge and supported-freshness-mechanisms only with the attestation bit
// (the token rule is not enforced: Appendix D.1 itself breaks it).
func (m *QueryRequest) Validate() error {
	t := TypeQueryRequest
	if err := first(
		checkToken(t, m.Token),
		checkChallenge(t, m.Challenge),
		nonEmpty(t, "supported-freshness-mechanisms", m.SupportedFreshnessMechanisms),
		nonEmpty(t, "versions", m.Versions),
		checkText(t, "attestation-payload-format", m.AttestationPayloadFormat, math.MaxInt),
		checkReports(t, m.SUITReports),
		checkSuites(t, "supported-teep-cipher-suites", m.SupportedCipherSuites),
		nonEmpty(t, "supported-suit-cose-profiles", m.SupportedSUITCOSEProfiles),
	); err != nil {
		return err
	}
	if len(m.SupportedCipherSuites) == 0 {
		return invalid(t, "supported-teep-cipher-suites: at least one cipher suite is required")
	}
	if len(m.SupportedSUITCOSEProfiles) == 0 {
		return invalid(t, "supported-suit-cose-profiles: at least one profile is required")
	}
	if !m.DataItemRequested.Has(DataItemAttestation) {
		if m.Challenge != nil {
			return invalid(t, "challenge present but the attestation bit of data-item-requested is clear")
		}
		if m.SupportedFreshnessMechanisms != nil {
			return invalid(t, "supported-freshness-mechanisms present but the attestation bit of data-item-requested is clear")
		}
	}
	return nil
}

// Validate checks the CDDL sizes and that have-binary comes with a
// tc-manifest-sequence-number (§4.3).
func (m *QueryResponse) Validate() error { return m.validate(false) }

// validateInput is Validate for a decoded QueryResponse. It accepts an
// empty tc-list: draft-ietf-teep-protocol-26 §4.2 says tc-list MUST be
// present when requested, and an Agent with nothing installed can only
// meet that with [], although the CDDL asks for one entry. We read it as
// "nothing installed"; our own Encode stays strict.
func (m *QueryResponse) validateInput() error { return m.validate(true) }

func (m *QueryResponse) validate(input bool) error {
	t := TypeQueryResponse
	tcList := nonEmpty(t, "tc-list", m.TCList)
	if input {
		tcList = nil
	}
	if err := first(
		checkToken(t, m.Token),
		checkText(t, "attestation-payload-format", m.AttestationPayloadFormat, math.MaxInt),
		checkReports(t, m.SUITReports),
		tcList,
		nonEmpty(t, "requested-tc-list", m.RequestedTCList),
		nonEmpty(t, "unneeded-manifest-list", m.UnneededManifestList),
		nonEmpty(t, "ext-list", m.ExtList),
	); err != nil {
		return err
	}
	for i, c := range m.TCList {
		if c.ComponentID == nil {
			return invalid(t, "tc-list[%d]: system-component-id is missing", i)
		}
		if c.ImageDigest != nil && c.ImageDigest.Bytes == nil {
			return invalid(t, "tc-list[%d]: image-digest has no digest bytes", i)
		}
		for k := range c.Other {
			if k == claimSystemComponentID || k == SUITParamVendorID || k == SUITParamClassID ||
				k == SUITParamImageDigest || k == SUITParamImageSize {
				return invalid(t, "tc-list[%d]: Other holds parameter %d, which has its own field", i, k)
			}
		}
	}
	for i, r := range m.RequestedTCList {
		if r.ComponentID == nil {
			return invalid(t, "requested-tc-list[%d]: component-id is missing", i)
		}
		if r.HaveBinary != nil && *r.HaveBinary && r.SequenceNumber == nil {
			return invalid(t, "requested-tc-list[%d]: have-binary is true but tc-manifest-sequence-number is absent", i)
		}
	}
	return nil
}

// Validate checks the CDDL sizes of an Update. ErrCode 0 means absent, so the
// reserved value 0 can never be sent.
func (m *Update) Validate() error {
	t := TypeUpdate
	if err := first(
		checkToken(t, m.Token),
		nonEmpty(t, "unneeded-manifest-list", m.UnneededManifestList),
		nonEmpty(t, "manifest-list", m.ManifestList),
		checkText(t, "attestation-payload-format", m.AttestationPayloadFormat, math.MaxInt),
		checkText(t, "err-msg", m.ErrMsg, MaxErrMsgSize),
		checkLang(t, m.ErrLang),
	); err != nil {
		return err
	}
	for i, e := range m.ManifestList {
		if len(e) == 0 {
			return invalid(t, "manifest-list[%d]: empty SUIT envelope", i)
		}
	}
	return nil
}

// Validate checks the CDDL sizes of a Success.
func (m *Success) Validate() error {
	t := TypeSuccess
	return first(
		checkToken(t, m.Token),
		checkText(t, "msg", m.Msg, MaxMsgSize),
		checkReports(t, m.SUITReports),
	)
}

// Validate checks the CDDL sizes of an Error and the §4.6 rules: err-code is
// never 0, and the capability list that goes with an "unsupported" code is
// present (supported-teep-cipher-suites with ERR_UNSUPPORTED_CIPHER_SUITES,
// supported-freshness-mechanisms with ERR_UNSUPPORTED_FRESHNESS_MECHANISMS,
// supported-suit-cose-profiles with ERR_UNSUPPORTED_SUIT_REPORT, versions with
// ERR_UNSUPPORTED_MSG_VERSION).
func (m *Error) Validate() error {
	t := TypeError
	if err := first(
		checkToken(t, m.Token),
		checkText(t, "err-msg", m.ErrMsg, MaxErrMsgSize),
		checkLang(t, m.ErrLang),
		checkSuites(t, "supported-teep-cipher-suites", m.SupportedCipherSuites),
		nonEmpty(t, "supported-freshness-mechanisms", m.SupportedFreshnessMechanisms),
		nonEmpty(t, "supported-suit-cose-profiles", m.SupportedSUITCOSEProfiles),
		checkChallenge(t, m.Challenge),
		nonEmpty(t, "versions", m.Versions),
		checkReports(t, m.SUITReports),
	); err != nil {
		return err
	}
	var name string
	var present bool
	switch m.ErrCode {
	case 0:
		return invalid(t, "err-code is missing (0 is reserved)")
	case ErrUnsupportedCipherSuites:
		name, present = "supported-teep-cipher-suites", m.SupportedCipherSuites != nil
	case ErrUnsupportedFreshnessMechanisms:
		name, present = "supported-freshness-mechanisms", m.SupportedFreshnessMechanisms != nil
	case ErrUnsupportedSUITReport:
		name, present = "supported-suit-cose-profiles", m.SupportedSUITCOSEProfiles != nil
	case ErrUnsupportedMsgVersion:
		name, present = "versions", m.Versions != nil
	default:
		present = true
	}
	if !present {
		return invalid(t, "%s requires %s", m.ErrCode, name)
	}
	return nil
}
