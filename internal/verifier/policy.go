package verifier

import (
	"bytes"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/teep-go/teep/cosekey"
	"github.com/teep-go/teep/eat"
)

// Policy is the appraisal policy: endorsements (which attestation keys to
// trust, and for which devices) and reference values (what a healthy device
// looks like). It is usually read from a JSON file; docs/attestation.md
// documents the format with an example.
type Policy struct {
	ID string // ear.appraisal-policy-id of issued results

	Endorsements []Endorsement

	// Devices, when not empty, lists the device classes accepted: Evidence
	// whose oemid / hwmodel match no entry is contraindicated.
	Devices []DeviceClass

	// RequireDebugDisabled makes dbgstat mandatory and any value other than
	// a disabled one (1..4) contraindicated.
	RequireDebugDisabled bool

	// RequiredClaims must all be present; missing ones are contraindicated.
	// Defaults to the TEEP profile's required claims (eat.RequiredTEEPClaims).
	RequiredClaims []int64

	// DeniedUEIDs are revoked devices. AllowedUEIDs, when not empty, is the
	// complete list of devices accepted.
	DeniedUEIDs  [][]byte
	AllowedUEIDs [][]byte

	// KnownManifests are reference digests of SUIT manifests by URI. A
	// manifests entry naming a known URI with another digest makes the
	// appraisal a warning (the device runs something else: update needed).
	KnownManifests []eat.SUITReference

	// MaxAge bounds how old iat may be under timestamp freshness; ClockSkew
	// how far in the future it may be. ResultTTL is the lifetime (exp) of
	// issued Attestation Results.
	MaxAge    time.Duration
	ClockSkew time.Duration
	ResultTTL time.Duration

	// LenientDecodingUnsafe decodes Evidence with eat's LenientUnsafe option
	// (draft example encodings, libteep); each deviation becomes a warning.
	LenientDecodingUnsafe bool
}

// Defaults for the time windows.
const (
	DefaultMaxAge    = 5 * time.Minute
	DefaultClockSkew = 30 * time.Second
	DefaultResultTTL = 10 * time.Minute
)

// Endorsement trusts one attestation public key, optionally only for some
// devices (RFC 9334 §3.4: endorsements vouch for an Attester's key).
type Endorsement struct {
	Name     string
	Key      *cosekey.Key
	OEMID    *eat.OEMID // when set, Evidence must carry this oemid
	HWModels [][]byte   // when set, Evidence hwmodel must be one of these
}

// DeviceClass is the reference values of one device class.
type DeviceClass struct {
	OEMID        *eat.OEMID // nil matches any oemid
	HWModel      []byte
	MinHWVersion string // "" means any
	MinSWVersion string // "" means any
}

// Limits of the policy file.
const (
	MaxPolicySize    = 1 << 20
	maxPolicyEntries = 10000
)

// policyJSON is the file format. Byte strings are hex; durations use Go
// syntax ("5m", "30s").
type policyJSON struct {
	ID                    string            `json:"id"`
	Endorsements          []endorsementJSON `json:"endorsements"`
	Devices               []deviceJSON      `json:"devices"`
	RequireDebugDisabled  bool              `json:"require_debug_disabled"`
	RequiredClaims        *[]string         `json:"required_claims"`
	DeniedUEIDs           []string          `json:"denied_ueids"`
	AllowedUEIDs          []string          `json:"allowed_ueids"`
	KnownManifests        []manifestJSON    `json:"known_manifests"`
	MaxAge                string            `json:"max_age"`
	ClockSkew             string            `json:"clock_skew"`
	ResultTTL             string            `json:"result_ttl"`
	LenientDecodingUnsafe bool              `json:"lenient_decoding_unsafe"`
}

type endorsementJSON struct {
	Name     string          `json:"name"`
	Key      json.RawMessage `json:"key"`      // JWK object, PEM text, or hex COSE_Key
	KeyFile  string          `json:"key_file"` // relative to the policy file
	OEMID    json.RawMessage `json:"oemid"`
	HWModels []string        `json:"hwmodels"`
}

type deviceJSON struct {
	OEMID        json.RawMessage `json:"oemid"`
	HWModel      string          `json:"hwmodel"`
	MinHWVersion string          `json:"min_hwversion"`
	MinSWVersion string          `json:"min_swversion"`
}

type manifestJSON struct {
	URI       string `json:"uri"`
	DigestAlg *int64 `json:"digest_alg"` // default -16 (SHA-256)
	Digest    string `json:"digest"`
}

// ParsePolicy reads a policy from JSON. Keys must be inline ("key");
// "key_file" entries need LoadPolicy, which can read them.
func ParsePolicy(data []byte) (*Policy, error) {
	return parsePolicy(data, nil)
}

// LoadPolicy reads a policy file; "key_file" paths are relative to it.
func LoadPolicy(path string) (*Policy, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("policy: %w", err)
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, MaxPolicySize+1))
	if err != nil {
		return nil, fmt.Errorf("policy %s: %w", path, err)
	}
	dir := filepath.Dir(path)
	p, err := parsePolicy(data, func(name string) ([]byte, error) {
		if !filepath.IsAbs(name) {
			name = filepath.Join(dir, name)
		}
		f, err := os.Open(name)
		if err != nil {
			return nil, err
		}
		defer f.Close()
		return io.ReadAll(io.LimitReader(f, cosekey.MaxKeyFileSize+1))
	})
	if err != nil {
		return nil, fmt.Errorf("policy %s: %w", path, err)
	}
	return p, nil
}

func parsePolicy(data []byte, readFile func(string) ([]byte, error)) (*Policy, error) {
	if len(data) > MaxPolicySize {
		return nil, fmt.Errorf("policy: %d bytes, limit %d", len(data), MaxPolicySize)
	}
	if err := checkJSON(data); err != nil {
		return nil, fmt.Errorf("policy: %w", err)
	}
	var pj policyJSON
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&pj); err != nil {
		return nil, fmt.Errorf("policy: %w", err)
	}
	for _, n := range []int{len(pj.Endorsements), len(pj.Devices), len(pj.DeniedUEIDs), len(pj.AllowedUEIDs), len(pj.KnownManifests)} {
		if n > maxPolicyEntries {
			return nil, fmt.Errorf("policy: a list has %d entries, limit %d", n, maxPolicyEntries)
		}
	}
	p := &Policy{ID: pj.ID, RequireDebugDisabled: pj.RequireDebugDisabled, LenientDecodingUnsafe: pj.LenientDecodingUnsafe}
	var err error
	for i, ej := range pj.Endorsements {
		e, err := ej.endorsement(readFile)
		if err != nil {
			return nil, fmt.Errorf("policy: endorsements[%d]: %w", i, err)
		}
		if e.Name == "" {
			e.Name = fmt.Sprintf("endorsement-%d", i)
		}
		p.Endorsements = append(p.Endorsements, e)
	}
	for i, dj := range pj.Devices {
		var d DeviceClass
		if d.OEMID, err = oemidJSON(dj.OEMID); err != nil {
			return nil, fmt.Errorf("policy: devices[%d].oemid: %w", i, err)
		}
		if d.HWModel, err = hexString(dj.HWModel, 1, 32); err != nil {
			return nil, fmt.Errorf("policy: devices[%d].hwmodel: %w", i, err)
		}
		for _, v := range []string{dj.MinHWVersion, dj.MinSWVersion} {
			if v == "" {
				continue
			}
			if _, err := compareVersions(v, v); err != nil {
				return nil, fmt.Errorf("policy: devices[%d]: %w", i, err)
			}
		}
		d.MinHWVersion, d.MinSWVersion = dj.MinHWVersion, dj.MinSWVersion
		p.Devices = append(p.Devices, d)
	}
	if pj.RequiredClaims == nil {
		p.RequiredClaims = append([]int64(nil), eat.RequiredTEEPClaims...)
	} else {
		p.RequiredClaims = []int64{}
		for _, name := range *pj.RequiredClaims {
			k, ok := eat.ClaimKey(name)
			if !ok {
				return nil, fmt.Errorf("policy: required_claims: unknown claim %q", name)
			}
			p.RequiredClaims = append(p.RequiredClaims, k)
		}
	}
	for field, list := range map[string]struct {
		in  []string
		out *[][]byte
	}{"denied_ueids": {pj.DeniedUEIDs, &p.DeniedUEIDs}, "allowed_ueids": {pj.AllowedUEIDs, &p.AllowedUEIDs}} {
		for i, s := range list.in {
			u, err := hexString(s, 7, 33)
			if err != nil {
				return nil, fmt.Errorf("policy: %s[%d]: %w", field, i, err)
			}
			*list.out = append(*list.out, u)
		}
	}
	for i, mj := range pj.KnownManifests {
		if mj.URI == "" {
			return nil, fmt.Errorf("policy: known_manifests[%d]: uri missing", i)
		}
		r := eat.SUITReference{URI: mj.URI, DigestAlg: eat.AlgSHA256}
		if mj.DigestAlg != nil {
			r.DigestAlg = *mj.DigestAlg
		}
		if r.Digest, err = hexString(mj.Digest, 1, 64); err != nil {
			return nil, fmt.Errorf("policy: known_manifests[%d].digest: %w", i, err)
		}
		p.KnownManifests = append(p.KnownManifests, r)
	}
	for _, d := range []struct {
		name string
		in   string
		out  *time.Duration
		def  time.Duration
	}{{"max_age", pj.MaxAge, &p.MaxAge, DefaultMaxAge}, {"clock_skew", pj.ClockSkew, &p.ClockSkew, DefaultClockSkew}, {"result_ttl", pj.ResultTTL, &p.ResultTTL, DefaultResultTTL}} {
		*d.out = d.def
		if d.in == "" {
			continue
		}
		v, err := time.ParseDuration(d.in)
		if err != nil || v < 0 {
			return nil, fmt.Errorf("policy: %s: want a non-negative duration such as \"5m\", got %q", d.name, d.in)
		}
		*d.out = v
	}
	return p, nil
}

func (ej endorsementJSON) endorsement(readFile func(string) ([]byte, error)) (Endorsement, error) {
	e := Endorsement{Name: ej.Name}
	var keyData []byte
	switch {
	case len(ej.Key) > 0 && ej.KeyFile != "":
		return e, errors.New("both key and key_file given")
	case ej.KeyFile != "":
		if readFile == nil {
			return e, errors.New("key_file needs LoadPolicy (the policy was parsed without a file system)")
		}
		var err error
		if keyData, err = readFile(ej.KeyFile); err != nil {
			return e, fmt.Errorf("key_file: %w", err)
		}
	case len(ej.Key) > 0 && ej.Key[0] == '{':
		keyData = ej.Key
	case len(ej.Key) > 0:
		var s string
		if err := json.Unmarshal(ej.Key, &s); err != nil {
			return e, errors.New("key: want a JWK object, PEM text or hex COSE_Key")
		}
		if strings.HasPrefix(strings.TrimSpace(s), "-----BEGIN") {
			keyData = []byte(s)
		} else {
			b, err := hex.DecodeString(s)
			if err != nil {
				return e, errors.New("key: want a JWK object, PEM text or hex COSE_Key")
			}
			keyData = b
		}
	default:
		return e, errors.New("key or key_file required")
	}
	k, err := cosekey.Parse(keyData)
	if err != nil {
		return e, fmt.Errorf("key: %w", err)
	}
	e.Key = k.PublicKey()
	if e.OEMID, err = oemidJSON(ej.OEMID); err != nil {
		return e, fmt.Errorf("oemid: %w", err)
	}
	for i, h := range ej.HWModels {
		m, err := hexString(h, 1, 32)
		if err != nil {
			return e, fmt.Errorf("hwmodels[%d]: %w", i, err)
		}
		e.HWModels = append(e.HWModels, m)
	}
	return e, nil
}

// oemidJSON reads an oemid as a PEN number or a hex string (3 or 16 bytes).
func oemidJSON(raw json.RawMessage) (*eat.OEMID, error) {
	if len(raw) == 0 || string(raw) == "null" {
		return nil, nil
	}
	if raw[0] == '"' {
		var s string
		if err := json.Unmarshal(raw, &s); err != nil {
			return nil, err
		}
		b, err := hexString(s, 3, 16)
		if err != nil {
			return nil, err
		}
		if len(b) != 3 && len(b) != 16 {
			return nil, fmt.Errorf("%d bytes, want 3 (IEEE OUI) or 16 (random)", len(b))
		}
		return eat.OEMIDBytes(b), nil
	}
	var pen uint64
	if err := json.Unmarshal(raw, &pen); err != nil {
		return nil, errors.New("want a Private Enterprise Number or a hex string")
	}
	return eat.OEMIDPEN(pen), nil
}

func hexString(s string, minLen, maxLen int) ([]byte, error) {
	b, err := hex.DecodeString(s)
	if err != nil {
		return nil, fmt.Errorf("bad hex %q", s)
	}
	if len(b) < minLen || len(b) > maxLen {
		return nil, fmt.Errorf("%d bytes, want %d..%d", len(b), minLen, maxLen)
	}
	return b, nil
}

// checkJSON rejects duplicate object members anywhere (encoding/json keeps
// the last one silently, which in a security policy hides mistakes) and
// nesting deeper than any valid policy needs.
func checkJSON(data []byte) error {
	dec := json.NewDecoder(bytes.NewReader(data))
	type frame struct {
		seen   map[string]bool
		object bool
		key    bool // the next token is a member name
	}
	var stack []*frame
	for {
		tok, err := dec.Token()
		if err == io.EOF {
			if len(stack) != 0 {
				return errors.New("unexpected end of JSON")
			}
			return nil
		}
		if err != nil {
			return err
		}
		var top *frame
		if len(stack) > 0 {
			top = stack[len(stack)-1]
		}
		if top != nil && top.object && top.key {
			if d, ok := tok.(json.Delim); ok && d == '}' {
				stack = stack[:len(stack)-1]
				if len(stack) > 0 && stack[len(stack)-1].object {
					stack[len(stack)-1].key = true
				}
				if len(stack) == 0 && dec.More() {
					return errors.New("trailing data after the policy object")
				}
				continue
			}
			name := tok.(string)
			if top.seen[name] {
				return fmt.Errorf("duplicate member %q", name)
			}
			top.seen[name] = true
			top.key = false
			continue
		}
		switch tok {
		case json.Delim('{'):
			stack = append(stack, &frame{seen: map[string]bool{}, object: true, key: true})
		case json.Delim('['):
			stack = append(stack, &frame{})
		case json.Delim(']'), json.Delim('}'):
			stack = stack[:len(stack)-1]
			if len(stack) > 0 && stack[len(stack)-1].object {
				stack[len(stack)-1].key = true
			}
		default:
			if top != nil && top.object {
				top.key = true
			}
		}
		if len(stack) > 16 {
			return errors.New("JSON nested deeper than 16 levels")
		}
		if len(stack) == 0 && dec.More() {
			return errors.New("trailing data after the policy object")
		}
	}
}
