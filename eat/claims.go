package eat

import (
	"bytes"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/fxamacker/cbor/v2"
	"github.com/teep-go/teep/cborwire"
	"github.com/teep-go/teep/cosekey"
)

// Claim keys: CWT (RFC 8392 §4), cnf (RFC 8747 §3.1), EAT (RFC 9711 §4 and
// the IANA "CBOR Web Token (CWT) Claims" registry), and the two EAT
// Attestation Result claims (draft-ietf-rats-ear) an Attestation Result uses.
const (
	ClaimIss          = 1
	ClaimSub          = 2
	ClaimAud          = 3
	ClaimExp          = 4
	ClaimNbf          = 5
	ClaimIat          = 6
	ClaimCti          = 7
	ClaimCnf          = 8
	ClaimNonce        = 10
	ClaimUEID         = 256
	ClaimSUEIDs       = 257
	ClaimOEMID        = 258
	ClaimHWModel      = 259
	ClaimHWVersion    = 260
	ClaimUptime       = 261
	ClaimOEMBoot      = 262
	ClaimDbgStat      = 263
	ClaimLocation     = 264
	ClaimProfile      = 265
	ClaimSubmods      = 266
	ClaimBootCount    = 267
	ClaimBootSeed     = 268
	ClaimDLOAs        = 269
	ClaimSWName       = 270
	ClaimSWVersion    = 271
	ClaimManifests    = 272
	ClaimMeasurements = 273
	ClaimMeasRes      = 274
	ClaimIntUse       = 275
	ClaimEARStatus    = 1000
	ClaimEARPolicyID  = 1003
)

// claimNames are the JSON claim names (RFC 9711 §4, RFC 7519, RFC 7800,
// draft-ietf-rats-ear) used in errors and in the JSON form of a claims-set.
var claimNames = map[int64]string{
	ClaimIss: "iss", ClaimSub: "sub", ClaimAud: "aud", ClaimExp: "exp", ClaimNbf: "nbf",
	ClaimIat: "iat", ClaimCti: "cti", ClaimCnf: "cnf", ClaimNonce: "eat_nonce",
	ClaimUEID: "ueid", ClaimSUEIDs: "sueids", ClaimOEMID: "oemid", ClaimHWModel: "hwmodel",
	ClaimHWVersion: "hwversion", ClaimUptime: "uptime", ClaimOEMBoot: "oemboot",
	ClaimDbgStat: "dbgstat", ClaimLocation: "location", ClaimProfile: "eat_profile",
	ClaimSubmods: "submods", ClaimBootCount: "bootcount", ClaimBootSeed: "bootseed",
	ClaimDLOAs: "dloas", ClaimSWName: "swname", ClaimSWVersion: "swversion",
	ClaimManifests: "manifests", ClaimMeasurements: "measurements", ClaimMeasRes: "measres",
	ClaimIntUse: "intuse", ClaimEARStatus: "ear.status", ClaimEARPolicyID: "ear.appraisal-policy-id",
}

// ClaimName returns the JSON name of a claim key, or its number as text.
func ClaimName(key int64) string {
	if n, ok := claimNames[key]; ok {
		return n
	}
	return fmt.Sprint(key)
}

// ClaimKey returns the integer key of a claim given its JSON name ("ueid")
// or its number as text ("-70000").
func ClaimKey(name string) (int64, bool) {
	if k, ok := claimsByName[name]; ok {
		return k, true
	}
	k, err := strconv.ParseInt(name, 10, 64)
	return k, err == nil
}

// claimLabels are the names used in messages, built once: decoding names
// every claim it reads, and formatting them per token would dominate its cost.
var claimLabels = func() map[int64]string {
	m := make(map[int64]string, len(claimNames))
	for k, n := range claimNames {
		m[k] = fmt.Sprintf("%s (%d)", n, k)
	}
	return m
}()

func claimLabel(key int64) string {
	if l, ok := claimLabels[key]; ok {
		return l
	}
	return fmt.Sprintf("claim %d", key)
}

// Claims is an EAT claims-set (RFC 9711) with the claims of the TEEP EAT
// profile (draft-ietf-teep-protocol-26 §5) modelled as fields. Optional
// claims are nil / empty when absent. Claims this package does not model
// (location, dloas, measres, private claims, ...) are kept verbatim in
// Unknown and written back unchanged, so a verifier never drops what an
// attester said.
type Claims struct {
	Issuer    string     // iss (1)
	Subject   string     // sub (2)
	Audience  string     // aud (3)
	Expiry    *time.Time // exp (4)
	NotBefore *time.Time // nbf (5)
	IssuedAt  *time.Time // iat (6): the timestamp freshness mechanism
	CWTID     []byte     // cti (7)

	// CNF (8, RFC 8747) binds the token to the TEEP Agent's message-signing
	// key: Evidence and Attestation Results name it so one Agent cannot
	// present another's attestation.
	CNF *Confirmation

	// Nonce (10) is the single-bstr eat_nonce the TEEP profile uses: the
	// QueryRequest challenge (background-check) or token (passport).
	Nonce []byte
	// Nonces holds the array form of eat_nonce RFC 9711 also allows; the
	// TEEP profile does not use it. At most one of Nonce and Nonces is set.
	Nonces [][]byte

	UEID      []byte            // ueid (256): 0x01 RAND, 0x02 EUI, 0x03 IMEI + value
	SUEIDs    map[string][]byte // sueids (257)
	OEMID     *OEMID            // oemid (258)
	HWModel   []byte            // hwmodel (259), 1..32 bytes
	HWVersion *Version          // hwversion (260)
	Uptime    *uint64           // uptime (261), seconds
	OEMBoot   *bool             // oemboot (262)
	DbgStat   *DebugStatus      // dbgstat (263)

	// Profile (265) is the eat_profile as a URI; ProfileOID the OID form.
	Profile    string
	ProfileOID []byte

	Submods   map[string]*Submodule // submods (266)
	BootCount *uint64               // bootcount (267)
	BootSeed  []byte                // bootseed (268)
	SWName    string                // swname (270); for a TC the URI of its SUIT manifest
	SWVersion *Version              // swversion (271)

	// Manifests (272) lists the software manifests of the TEE, the Agent and
	// the installed components; in TEEP each body is a SUIT_Reference.
	Manifests []Manifest
	// Measurements (273) has the same shape and carries measured evidence,
	// e.g. SUIT_Reports.
	Measurements []Manifest

	IntUse *IntendedUse // intuse (275)

	// EARStatus (1000) and EARPolicyID (1003) appear in Attestation Results
	// issued by a Verifier: the AR4SI trust tier and the appraisal policy.
	EARStatus   *TrustTier
	EARPolicyID string

	// Unknown holds every other claim, keyed by its integer label, as the
	// encoded CBOR value.
	Unknown map[int64]cbor.RawMessage

	// Deviations lists departures from RFC 9711 accepted because decoding
	// used ParseOptions.LenientUnsafe. It is never encoded.
	Deviations []string
}

// DebugStatus is the dbgstat claim (RFC 9711 §4.2.9).
type DebugStatus uint8

const (
	DebugEnabled                     DebugStatus = 0
	DebugDisabled                    DebugStatus = 1
	DebugDisabledSinceBoot           DebugStatus = 2
	DebugDisabledPermanently         DebugStatus = 3
	DebugDisabledFullyAndPermanently DebugStatus = 4
)

var debugNames = []string{"enabled", "disabled", "disabled-since-boot", "disabled-permanently", "disabled-fully-and-permanently"}

func (d DebugStatus) String() string {
	if int(d) < len(debugNames) {
		return debugNames[d]
	}
	return fmt.Sprintf("dbgstat(%d)", uint8(d))
}

// ParseDebugStatus accepts the RFC 9711 names ("disabled", ...) or numbers.
func ParseDebugStatus(s string) (DebugStatus, error) {
	for i, n := range debugNames {
		if s == n || s == fmt.Sprint(i) {
			return DebugStatus(i), nil
		}
	}
	return 0, fmt.Errorf("eat: unknown debug status %q (want one of %v)", s, debugNames)
}

// IntendedUse is the intuse claim (RFC 9711 §4.3.3).
type IntendedUse int64

const (
	IntUseGeneric           IntendedUse = 1
	IntUseRegistration      IntendedUse = 2
	IntUseProvisioning      IntendedUse = 3
	IntUseCertIssuance      IntendedUse = 4
	IntUseProofOfPossession IntendedUse = 5
)

// TrustTier is an AR4SI trustworthiness tier (draft-ietf-rats-ar4si §2.3.1),
// as carried by the ear.status claim.
type TrustTier int64

const (
	TierNone            TrustTier = 0
	TierAffirming       TrustTier = 2
	TierWarning         TrustTier = 32
	TierContraindicated TrustTier = 96
)

func (t TrustTier) String() string {
	switch t {
	case TierNone:
		return "none"
	case TierAffirming:
		return "affirming"
	case TierWarning:
		return "warning"
	case TierContraindicated:
		return "contraindicated"
	}
	return fmt.Sprintf("tier(%d)", int64(t))
}

// Version is hwversion / swversion: [version, ? scheme] (RFC 9711 §4.2.5).
type Version struct {
	Version string
	Scheme  VersionScheme // 0 when absent
}

// VersionScheme is a CoSWID version scheme (RFC 9393 §4.1).
type VersionScheme int64

const (
	SchemeMultipartNumeric       VersionScheme = 1
	SchemeMultipartNumericSuffix VersionScheme = 2
	SchemeAlphaNumeric           VersionScheme = 3
	SchemeDecimal                VersionScheme = 4
	SchemeSemVer                 VersionScheme = 16384
)

// OEMID is the oemid claim (RFC 9711 §4.2.3) in one of its three forms: an
// IANA Private Enterprise Number, a 3-byte IEEE OUI, or 16 random bytes.
// Bytes is nil for the PEN form.
type OEMID struct {
	PEN   uint64
	Bytes []byte
}

// OEMIDPEN and OEMIDBytes build the two encodings of an OEM ID.
func OEMIDPEN(pen uint64) *OEMID { return &OEMID{PEN: pen} }

func OEMIDBytes(b []byte) *OEMID { return &OEMID{Bytes: bytes.Clone(b)} }

// Equal reports whether two OEM IDs are the same value in the same form.
func (o *OEMID) Equal(p *OEMID) bool {
	if o == nil || p == nil {
		return o == p
	}
	if (o.Bytes == nil) != (p.Bytes == nil) {
		return false
	}
	return o.PEN == p.PEN && bytes.Equal(o.Bytes, p.Bytes)
}

func (o *OEMID) String() string {
	if o.Bytes == nil {
		return fmt.Sprintf("pen:%d", o.PEN)
	}
	return fmt.Sprintf("%x", o.Bytes)
}

// Confirmation is the cnf claim (RFC 8747 §3.1). TEEP uses it to name the
// Agent's TEEP message-signing key, by COSE_Key or by kid (its RFC 9679
// thumbprint, draft-ietf-teep-protocol-26 §5).
type Confirmation struct {
	Key          *cosekey.Key              // COSE_Key (1), public only
	KID          []byte                    // kid (3)
	EncryptedKey cbor.RawMessage           // Encrypted_COSE_Key (2), verbatim
	Other        map[int64]cbor.RawMessage // other confirmation methods, verbatim

	// keyRaw is the COSE_Key encoding seen when decoding; it is written back
	// while Key is still the key it decoded to, so re-encoding is exact.
	keyRaw  []byte
	keyFrom *cosekey.Key
}

// ConfirmKID returns a cnf naming k by its RFC 9679 thumbprint, the form
// the TEEP profile uses.
func ConfirmKID(k *cosekey.Key) *Confirmation { return &Confirmation{KID: k.KID()} }

// ConfirmKey returns a cnf carrying the public key itself.
func ConfirmKey(k *cosekey.Key) *Confirmation { return &Confirmation{Key: k.PublicKey()} }

// COSEKeyKID returns the kid parameter (label 2) of the COSE_Key as it was
// on the wire, or nil: a decoded cnf keeps the key's encoding, and a key
// built in memory has no kid other than its thumbprint.
func (c *Confirmation) COSEKeyKID() []byte {
	if c == nil || c.keyRaw == nil {
		return nil
	}
	var m map[int64]cbor.RawMessage
	if cbor.Unmarshal(c.keyRaw, &m) != nil {
		return nil
	}
	var kid []byte
	if raw, ok := m[2]; !ok || cbor.Unmarshal(raw, &kid) != nil {
		return nil
	}
	return kid
}

// kidMismatches lists the kids of c that are not the RFC 9679 thumbprint
// of the key c carries. Such a cnf still binds by the key, but a Verifier
// that looks keys up by kid would find another one (or none).
func (c *Confirmation) kidMismatches() []string {
	if c.Key == nil {
		return nil
	}
	var p []string
	tp := c.Key.Thumbprint()
	if c.KID != nil && !bytes.Equal(c.KID, tp) {
		p = append(p, fmt.Sprintf("cnf kid %x is not the thumbprint %x of the cnf COSE_Key", c.KID, tp))
	}
	if k := c.COSEKeyKID(); k != nil && !bytes.Equal(k, tp) {
		p = append(p, fmt.Sprintf("cnf COSE_Key kid %x is not its thumbprint %x", k, tp))
	}
	return p
}

// ErrNotBound is returned by Confirmation.Binds when the cnf names another key.
var ErrNotBound = errors.New("eat: cnf does not name the key")

// Binds checks that the cnf names k: every key form present (COSE_Key, kid)
// must match it, and at least one must be present.
func (c *Confirmation) Binds(k *cosekey.Key) error {
	if c == nil {
		return fmt.Errorf("%w: no cnf claim", ErrNotBound)
	}
	if k == nil {
		return fmt.Errorf("%w: no key to compare with", ErrNotBound)
	}
	if c.Key == nil && c.KID == nil {
		return fmt.Errorf("%w: cnf has neither a COSE_Key nor a kid", ErrNotBound)
	}
	if c.Key != nil && !c.Key.Equal(k) {
		return fmt.Errorf("%w: cnf COSE_Key (kid %x) is not key %x", ErrNotBound, c.Key.KID(), k.KID())
	}
	if c.KID != nil && !bytes.Equal(c.KID, k.KID()) {
		return fmt.Errorf("%w: cnf kid %x is not the thumbprint %x", ErrNotBound, c.KID, k.KID())
	}
	return nil
}

// Submodule is one entry of submods (RFC 9711 §4.2.18): a nested claims-set,
// a nested token (kept as bytes; verify it separately), or a detached digest.
// Exactly one field is set.
type Submodule struct {
	Claims    *Claims
	Token     []byte // CBOR-Token-Inside-CBOR-Token: the encoded nested token
	JSONToken string // JSON-Token-Inside-CBOR-Token
	Digest    *DetachedDigest
}

// DetachedDigest is a Detached-Submodule-Digest: [hash-algorithm, digest].
// The algorithm is a COSE algorithm id, or text when AlgName is set.
type DetachedDigest struct {
	Alg     int64
	AlgName string
	Value   []byte
}

// Manifest is one entry of manifests (272) or measurements (273):
// [content-format, body]. Body is the encoded CBOR item: a byte string
// (e.g. an encoded SUIT_Reference or SUIT_Envelope) or a text string (JSON
// SBOMs) per RFC 9711; LenientUnsafe decoding also admits other items, such
// as the bare SUIT_Reference map of draft-ietf-teep-protocol-26 Appendix D.2.
type Manifest struct {
	ContentFormat uint64
	Body          cbor.RawMessage
}

// ContentFormatCBOR (60, application/cbor) is what draft-ietf-teep-protocol-26
// Appendix D.2 uses for SUIT_Reference bodies as a placeholder until
// draft-ietf-suit-report has a CoAP content-format allocated.
const ContentFormatCBOR = 60

// NewManifest returns an entry whose body is the byte string b.
func NewManifest(contentFormat uint64, b []byte) Manifest {
	return Manifest{ContentFormat: contentFormat, Body: cborwire.AppendBytes(nil, b)}
}

// NewTextManifest returns an entry whose body is the text string s.
func NewTextManifest(contentFormat uint64, s string) Manifest {
	return Manifest{ContentFormat: contentFormat, Body: cborwire.AppendText(nil, s)}
}

// Bytes returns the content of a byte-string body.
func (m Manifest) Bytes() ([]byte, bool) {
	if len(m.Body) == 0 || m.Body[0]>>5 != cborwire.MajorBytes {
		return nil, false
	}
	_, n, hl, err := readHead(m.Body)
	if err != nil || int(n) != len(m.Body)-hl {
		return nil, false
	}
	return m.Body[hl:], true
}

// Text returns the content of a text-string body.
func (m Manifest) Text() (string, bool) {
	if len(m.Body) == 0 || m.Body[0]>>5 != cborwire.MajorText {
		return "", false
	}
	_, n, hl, err := readHead(m.Body)
	if err != nil || int(n) != len(m.Body)-hl {
		return "", false
	}
	return string(m.Body[hl:]), true
}

// SUITReference names a SUIT manifest by URI and digest
// (draft-ietf-suit-report: SUIT_Reference = [uri, SUIT_Digest]).
type SUITReference struct {
	URI       string
	DigestAlg int64 // COSE algorithm id, e.g. -16 SHA-256
	Digest    []byte
}

// AlgSHA256 is the COSE algorithm id of SHA-256 (RFC 9054).
const AlgSHA256 = -16

// Manifest encodes r as a manifests entry: the SUIT_Reference array wrapped
// in a byte string, as RFC 9711 wraps CBOR manifest bodies.
func (r SUITReference) Manifest(contentFormat uint64) Manifest {
	var b []byte
	b = cborwire.AppendHead(b, cborwire.MajorArray, 2)
	b = cborwire.AppendText(b, r.URI)
	b = cborwire.AppendHead(b, cborwire.MajorArray, 2)
	b = cborwire.AppendInt(b, r.DigestAlg)
	b = cborwire.AppendBytes(b, r.Digest)
	return NewManifest(contentFormat, b)
}

// SUITReference decodes a SUIT_Reference body: the byte-wrapped array, or
// the bare map {1: uri, 0: digest} of draft-ietf-teep-protocol-26 Appendix D.2
// (only admitted by LenientUnsafe decoding).
func (m Manifest) SUITReference() (*SUITReference, error) {
	lim := DefaultLimits
	body, wrapped := m.Bytes()
	if !wrapped {
		if len(m.Body) == 0 || m.Body[0]>>5 != cborwire.MajorMap {
			return nil, fmt.Errorf("eat: manifest body is neither a byte string nor a map")
		}
		body = m.Body
	}
	if err := wellFormed(body, &lim, 0); err != nil {
		return nil, fmt.Errorf("eat: SUIT_Reference: %w", err)
	}
	rd := newReader(body, 0)
	r := &rd
	ref := &SUITReference{}
	readDigest := func() error {
		if _, err := r.array("SUIT_Digest", 2, 2); err != nil {
			return err
		}
		var err error
		if ref.DigestAlg, err = r.int("SUIT_Digest algorithm"); err != nil {
			return err
		}
		ref.Digest, err = r.bytes("SUIT_Digest bytes", 1, 64)
		return err
	}
	var err error
	if wrapped {
		if _, err = r.array("SUIT_Reference", 2, 2); err != nil {
			return nil, err
		}
		if ref.URI, err = r.text("SUIT_Reference uri", lim.MaxText); err != nil {
			return nil, err
		}
		if err = readDigest(); err != nil {
			return nil, err
		}
		return ref, nil
	}
	n, err := r.mapHead("SUIT_Reference", 2)
	if err != nil {
		return nil, err
	}
	seen := map[int64]bool{}
	for i := 0; i < n; i++ {
		k, err := r.int("SUIT_Reference key")
		if err != nil {
			return nil, err
		}
		if seen[k] {
			return nil, fmt.Errorf("eat: SUIT_Reference: duplicate key %d", k)
		}
		seen[k] = true
		switch k {
		case 1:
			if ref.URI, err = r.text("SUIT_Reference uri", lim.MaxText); err != nil {
				return nil, err
			}
		case 0:
			if err = readDigest(); err != nil {
				return nil, err
			}
		default:
			return nil, fmt.Errorf("eat: SUIT_Reference: unknown key %d", k)
		}
	}
	if !seen[0] || !seen[1] {
		return nil, fmt.Errorf("eat: SUIT_Reference map needs keys 0 (digest) and 1 (uri)")
	}
	return ref, nil
}
