package teep

import "strings"

// Negotiation helpers for §4.2 / §4.6: an Agent picks what it supports from a
// QueryRequest's offer; failing that it answers with the Error code these
// return (via CodeOf), carrying its own list.

// SupportedVersions lists the protocol versions this implementation speaks.
func SupportedVersions() []uint32 { return []uint32{Version} }

// SelectVersion returns the first of ours (in our order of preference) that
// the peer offers. An absent offer (nil) means [0]. No match is
// ERR_UNSUPPORTED_MSG_VERSION.
func SelectVersion(offered, ours []uint32) (uint32, error) {
	if offered == nil {
		offered = []uint32{Version}
	}
	for _, v := range ours {
		for _, w := range offered {
			if v == w {
				return v, nil
			}
		}
	}
	return 0, &ProtocolError{Code: ErrUnsupportedMsgVersion, Msg: "no common TEEP version", Err: ErrNoCommon}
}

// SelectCipherSuite returns the first of ours (in our order of preference)
// that the peer offers. No match is ERR_UNSUPPORTED_CIPHER_SUITES.
func SelectCipherSuite(offered, ours []CipherSuite) (CipherSuite, error) {
	for _, s := range ours {
		for _, t := range offered {
			if s.Equal(t) {
				return s, nil
			}
		}
	}
	return nil, &ProtocolError{Code: ErrUnsupportedCipherSuites, Msg: "no common cipher suite", Err: ErrNoCommon}
}

// SelectFreshness returns the first of ours that the peer offers; an absent
// offer (nil) means nonce only. No match is
// ERR_UNSUPPORTED_FRESHNESS_MECHANISMS.
func SelectFreshness(offered, ours []FreshnessMechanism) (FreshnessMechanism, error) {
	if offered == nil {
		offered = []FreshnessMechanism{FreshnessNonce}
	}
	for _, f := range ours {
		for _, g := range offered {
			if f == g {
				return f, nil
			}
		}
	}
	return 0, &ProtocolError{Code: ErrUnsupportedFreshnessMechanisms, Msg: "no common freshness mechanism", Err: ErrNoCommon}
}

// SelectSUITCOSEProfile returns the first of ours that the peer offers. No
// match is ERR_UNSUPPORTED_SUIT_REPORT.
func SelectSUITCOSEProfile(offered, ours []SUITCOSEProfile) (SUITCOSEProfile, error) {
	for _, p := range ours {
		for _, q := range offered {
			if p == q {
				return p, nil
			}
		}
	}
	return SUITCOSEProfile{}, &ProtocolError{Code: ErrUnsupportedSUITReport, Msg: "no common SUIT COSE profile", Err: ErrNoCommon}
}

// ErrorFor builds the Error message an Agent sends for err (code from
// CodeOf), answering token, with err-msg from the error text (cut to 128
// bytes at a UTF-8 boundary) and the capability list the code requires
// taken from caps. It never returns an invalid Error.
func ErrorFor(err error, token []byte, caps Capabilities) *Error {
	code := CodeOf(err)
	if code == 0 {
		code = ErrTemporaryError
	}
	m := &Error{Token: token, ErrCode: code}
	if checkToken(TypeError, m.Token) != nil {
		m.Token = nil
	}
	if err != nil {
		m.ErrMsg = truncateUTF8(strings.ToValidUTF8(err.Error(), "?"), MaxErrMsgSize)
	}
	switch code {
	case ErrUnsupportedCipherSuites:
		m.SupportedCipherSuites = caps.CipherSuites
	case ErrUnsupportedFreshnessMechanisms:
		m.SupportedFreshnessMechanisms = caps.FreshnessMechanisms
	case ErrUnsupportedSUITReport:
		m.SupportedSUITCOSEProfiles = caps.SUITCOSEProfiles
	case ErrUnsupportedMsgVersion:
		m.Versions = caps.Versions
	}
	// An empty capability list would make the Error invalid; fall back to
	// the permanent error rather than send something a peer rejects.
	if m.Validate() != nil {
		m.SupportedCipherSuites, m.SupportedFreshnessMechanisms, m.SupportedSUITCOSEProfiles, m.Versions = nil, nil, nil, nil
		m.ErrCode = ErrPermanentError
	}
	return m
}

// Capabilities are what an endpoint supports, used to fill Error messages.
type Capabilities struct {
	CipherSuites        []CipherSuite
	FreshnessMechanisms []FreshnessMechanism
	SUITCOSEProfiles    []SUITCOSEProfile
	Versions            []uint32
}

func truncateUTF8(s string, max int) string {
	if len(s) <= max {
		return s
	}
	s = s[:max]
	for len(s) > 0 && !utf8ValidSuffix(s) {
		s = s[:len(s)-1]
	}
	return s
}

// utf8ValidSuffix reports whether s does not end inside a multi-byte rune.
func utf8ValidSuffix(s string) bool {
	for i := len(s) - 1; i >= 0 && i >= len(s)-4; i-- {
		c := s[i]
		if c < 0x80 {
			return true
		}
		if c >= 0xc0 { // lead byte: is the rune complete?
			need := 2
			switch {
			case c >= 0xf0:
				need = 4
			case c >= 0xe0:
				need = 3
			}
			return len(s)-i == need
		}
	}
	return false
}
