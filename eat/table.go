package eat

import (
	"encoding/json"
	"fmt"
	"maps"
	"slices"
	"time"

	"github.com/teep-go/teep/cborwire"
)

// claimSpec describes one modelled claim once: whether a claims-set has it,
// how it is encoded and how it is decoded. Claims.encode, decoder.claim and
// Claims.Has are derived from claimTable.
type claimSpec struct {
	key int64
	has func(c *Claims) bool
	// encode returns the encoded value; has(c) is true.
	encode func(c *Claims, level int) ([]byte, error)
	// decode reads the value at d.r into c; what names it in errors.
	decode func(d *decoder, c *Claims, what string, level int, path string) error
	// toJSON returns the JSON value (has(c) is true); fromJSON sets the
	// claim from one.
	toJSON   func(c *Claims) (any, error)
	fromJSON func(c *Claims, v json.RawMessage, level int) error
}

// Field kinds shared by several claims.

func textClaim(key int64, f func(*Claims) *string) claimSpec {
	return claimSpec{key: key,
		has:    func(c *Claims) bool { return *f(c) != "" },
		encode: func(c *Claims, _ int) ([]byte, error) { return cborwire.AppendText(nil, *f(c)), nil },
		decode: func(d *decoder, c *Claims, what string, _ int, _ string) (err error) {
			*f(c), err = d.r.text(what, d.lim.MaxText)
			return err
		},
		toJSON: func(c *Claims) (any, error) { return *f(c), nil },
		fromJSON: func(c *Claims, v json.RawMessage, _ int) (err error) {
			*f(c), err = textField(v)
			return err
		}}
}

func dateClaim(key int64, f func(*Claims) **time.Time) claimSpec {
	return claimSpec{key: key,
		has:    func(c *Claims) bool { return *f(c) != nil },
		encode: func(c *Claims, _ int) ([]byte, error) { return appendNumericDate(nil, **f(c)), nil },
		decode: func(d *decoder, c *Claims, what string, _ int, _ string) error {
			t, err := d.r.numericDate(what)
			if err == nil {
				*f(c) = &t
			}
			return err
		},
		toJSON: func(c *Claims) (any, error) { return dateJSON(**f(c)), nil },
		fromJSON: func(c *Claims, v json.RawMessage, _ int) (err error) {
			*f(c), err = dateField(v)
			return err
		}}
}

// bytesClaim is a byte string of minLen..maxLen bytes; maxLen < 0 means the
// MaxText limit.
func bytesClaim(key int64, f func(*Claims) *[]byte, minLen, maxLen int) claimSpec {
	return claimSpec{key: key,
		has:    func(c *Claims) bool { return *f(c) != nil },
		encode: func(c *Claims, _ int) ([]byte, error) { return cborwire.AppendBytes(nil, *f(c)), nil },
		decode: func(d *decoder, c *Claims, what string, _ int, _ string) (err error) {
			hi := maxLen
			if hi < 0 {
				hi = d.lim.MaxText
			}
			*f(c), err = d.r.bytes(what, minLen, hi)
			return err
		},
		toJSON: func(c *Claims) (any, error) { return hexs(*f(c)), nil },
		fromJSON: func(c *Claims, v json.RawMessage, _ int) (err error) {
			*f(c), err = hexField(v)
			return err
		}}
}

func uintClaim(key int64, f func(*Claims) **uint64) claimSpec {
	return claimSpec{key: key,
		has:    func(c *Claims) bool { return *f(c) != nil },
		encode: func(c *Claims, _ int) ([]byte, error) { return cborwire.AppendUint(nil, **f(c)), nil },
		decode: func(d *decoder, c *Claims, what string, _ int, _ string) error {
			v, err := d.r.uint(what)
			*f(c) = &v
			return err
		},
		toJSON: func(c *Claims) (any, error) { return **f(c), nil },
		fromJSON: func(c *Claims, v json.RawMessage, _ int) error {
			n, err := uintField(v)
			*f(c) = &n
			return err
		}}
}

// rangeClaim is an integer in lo..hi stored as a named integer type;
// unsigned claims are read as CBOR unsigned integers only.
func rangeClaim[T ~int64 | ~uint8](key int64, f func(*Claims) **T, unsigned bool, lo, hi int64, msg string) claimSpec {
	return claimSpec{key: key,
		has:    func(c *Claims) bool { return *f(c) != nil },
		encode: func(c *Claims, _ int) ([]byte, error) { return cborwire.AppendInt(nil, int64(**f(c))), nil },
		decode: func(d *decoder, c *Claims, what string, _ int, _ string) error {
			off := d.r.Off
			var v int64
			if unsigned {
				u, err := d.r.uint(what)
				if err != nil {
					return err
				}
				if u > uint64(hi) {
					return d.r.errf(off, "%s: "+msg, what, u)
				}
				v = int64(u)
			} else {
				var err error
				if v, err = d.r.int(what); err != nil {
					return err
				}
			}
			if v < lo || v > hi {
				return d.r.errf(off, "%s: "+msg, what, v)
			}
			t := T(v)
			*f(c) = &t
			return nil
		},
		toJSON: func(c *Claims) (any, error) { return int64(**f(c)), nil },
		fromJSON: func(c *Claims, v json.RawMessage, _ int) error {
			n, err := intField(v)
			t := T(n)
			*f(c) = &t
			return err
		}}
}

func versionClaim(key int64, f func(*Claims) **Version) claimSpec {
	return claimSpec{key: key,
		has:    func(c *Claims) bool { return *f(c) != nil },
		encode: func(c *Claims, _ int) ([]byte, error) { return (*f(c)).encode(), nil },
		decode: func(d *decoder, c *Claims, what string, _ int, _ string) (err error) {
			*f(c), err = d.version(what)
			return err
		},
		toJSON: func(c *Claims) (any, error) { return (*f(c)).jsonValue(), nil },
		fromJSON: func(c *Claims, v json.RawMessage, _ int) (err error) {
			*f(c), err = versionField(v)
			return err
		}}
}

func manifestsClaim(key int64, f func(*Claims) *[]Manifest) claimSpec {
	return claimSpec{key: key,
		has:    func(c *Claims) bool { return *f(c) != nil },
		encode: func(c *Claims, _ int) ([]byte, error) { return encodeManifests(*f(c)), nil },
		decode: func(d *decoder, c *Claims, what string, _ int, _ string) (err error) {
			*f(c), err = d.manifests(what)
			return err
		},
		toJSON: func(c *Claims) (any, error) { return manifestsJSON(*f(c)), nil },
		fromJSON: func(c *Claims, v json.RawMessage, _ int) (err error) {
			*f(c), err = manifestsField(v)
			return err
		}}
}

// claimTable lists the modelled claims in key order; claimSpecs indexes it
// by key. Both are set in init: the submods entry refers back to the
// claims-set codec, which uses them.
var (
	claimTable []claimSpec
	claimSpecs map[int64]*claimSpec
)

func init() {
	claimTable = modelledClaims()
	claimSpecs = make(map[int64]*claimSpec, len(claimTable))
	for i := range claimTable {
		claimSpecs[claimTable[i].key] = &claimTable[i]
	}
}

func modelledClaims() []claimSpec {
	return []claimSpec{
		textClaim(ClaimIss, func(c *Claims) *string { return &c.Issuer }),
		textClaim(ClaimSub, func(c *Claims) *string { return &c.Subject }),
		textClaim(ClaimAud, func(c *Claims) *string { return &c.Audience }),
		dateClaim(ClaimExp, func(c *Claims) **time.Time { return &c.Expiry }),
		dateClaim(ClaimNbf, func(c *Claims) **time.Time { return &c.NotBefore }),
		dateClaim(ClaimIat, func(c *Claims) **time.Time { return &c.IssuedAt }),
		bytesClaim(ClaimCti, func(c *Claims) *[]byte { return &c.CWTID }, 0, -1),
		{key: ClaimCnf, has: func(c *Claims) bool { return c.CNF != nil },
			encode: func(c *Claims, _ int) ([]byte, error) { return c.CNF.encode() },
			decode: func(d *decoder, c *Claims, what string, _ int, _ string) (err error) {
				c.CNF, err = d.confirmation(what)
				return err
			},
			toJSON: cnfJSON,
			fromJSON: func(c *Claims, v json.RawMessage, _ int) (err error) {
				c.CNF, err = cnfField(v)
				return err
			}},
		{key: ClaimNonce, has: func(c *Claims) bool { return c.Nonce != nil || c.Nonces != nil },
			encode: encodeNonce, decode: decodeNonce, toJSON: nonceJSON, fromJSON: nonceFromJSON},
		{key: ClaimUEID, has: func(c *Claims) bool { return c.UEID != nil },
			encode: func(c *Claims, _ int) ([]byte, error) { return cborwire.AppendBytes(nil, c.UEID), nil },
			decode: decodeUEID,
			toJSON: func(c *Claims) (any, error) { return hexs(c.UEID), nil },
			fromJSON: func(c *Claims, v json.RawMessage, _ int) (err error) {
				c.UEID, err = hexField(v)
				return err
			}},
		{key: ClaimSUEIDs, has: func(c *Claims) bool { return c.SUEIDs != nil },
			encode: encodeSUEIDs, decode: decodeSUEIDs, toJSON: sueidsJSON, fromJSON: sueidsFromJSON},
		{key: ClaimOEMID, has: func(c *Claims) bool { return c.OEMID != nil },
			encode: encodeOEMID, decode: decodeOEMID, toJSON: oemidJSON, fromJSON: oemidFromJSON},
		bytesClaim(ClaimHWModel, func(c *Claims) *[]byte { return &c.HWModel }, 1, 32),
		versionClaim(ClaimHWVersion, func(c *Claims) **Version { return &c.HWVersion }),
		uintClaim(ClaimUptime, func(c *Claims) **uint64 { return &c.Uptime }),
		{key: ClaimOEMBoot, has: func(c *Claims) bool { return c.OEMBoot != nil },
			encode: func(c *Claims, _ int) ([]byte, error) { return cborwire.AppendBool(nil, *c.OEMBoot), nil },
			decode: func(d *decoder, c *Claims, what string, _ int, _ string) error {
				v, err := d.r.bool(what)
				c.OEMBoot = &v
				return err
			},
			toJSON:   func(c *Claims) (any, error) { return *c.OEMBoot, nil },
			fromJSON: oembootFromJSON},
		withJSONIn(rangeClaim(ClaimDbgStat, func(c *Claims) **DebugStatus { return &c.DbgStat }, true,
			0, int64(DebugDisabledFullyAndPermanently), "unknown debug status %d"), dbgstatFromJSON),
		{key: ClaimProfile, has: func(c *Claims) bool { return c.Profile != "" || c.ProfileOID != nil },
			encode: encodeProfile, decode: decodeProfile, toJSON: profileJSON, fromJSON: profileFromJSON},
		{key: ClaimSubmods, has: func(c *Claims) bool { return c.Submods != nil },
			encode: encodeSubmods,
			decode: func(d *decoder, c *Claims, what string, level int, path string) (err error) {
				c.Submods, err = d.submods(what, level, path)
				return err
			},
			toJSON: submodsJSON, fromJSON: submodsFromJSON},
		uintClaim(ClaimBootCount, func(c *Claims) **uint64 { return &c.BootCount }),
		bytesClaim(ClaimBootSeed, func(c *Claims) *[]byte { return &c.BootSeed }, 32, 64),
		textClaim(ClaimSWName, func(c *Claims) *string { return &c.SWName }),
		versionClaim(ClaimSWVersion, func(c *Claims) **Version { return &c.SWVersion }),
		manifestsClaim(ClaimManifests, func(c *Claims) *[]Manifest { return &c.Manifests }),
		manifestsClaim(ClaimMeasurements, func(c *Claims) *[]Manifest { return &c.Measurements }),
		rangeClaim(ClaimIntUse, func(c *Claims) **IntendedUse { return &c.IntUse }, false,
			int64(IntUseGeneric), int64(IntUseProofOfPossession), "unknown intended use %d"),
		rangeClaim(ClaimEARStatus, func(c *Claims) **TrustTier { return &c.EARStatus }, false,
			-128, 127, "trust tier %d outside -128..127"),
		textClaim(ClaimEARPolicyID, func(c *Claims) *string { return &c.EARPolicyID }),
	}
}

func encodeNonce(c *Claims, _ int) ([]byte, error) {
	if c.Nonce != nil && c.Nonces != nil {
		return nil, fmt.Errorf("eat: both Nonce and Nonces set")
	}
	if c.Nonce != nil {
		return cborwire.AppendBytes(nil, c.Nonce), nil
	}
	v := cborwire.AppendArrayHead(nil, len(c.Nonces))
	for _, n := range c.Nonces {
		v = cborwire.AppendBytes(v, n)
	}
	return v, nil
}

func decodeNonce(d *decoder, c *Claims, what string, _ int, _ string) (err error) {
	r := &d.r
	if r.peekMajor() != cborwire.MajorArray {
		c.Nonce, err = r.bytes(what, 8, 64)
		return err
	}
	n, err := r.array(what, 1, d.lim.MaxEntries)
	if err != nil {
		return err
	}
	c.Nonces = make([][]byte, n)
	for i := range c.Nonces {
		if c.Nonces[i], err = r.bytes(fmt.Sprintf("%s[%d]", what, i), 8, 64); err != nil {
			return err
		}
	}
	return nil
}

func decodeUEID(d *decoder, c *Claims, what string, _ int, _ string) (err error) {
	r := &d.r
	off := r.Off
	if c.UEID, err = r.bytes(what, 7, 33); err != nil {
		return err
	}
	if msg := checkUEID(c.UEID); msg != "" {
		if !d.lenient {
			return r.errf(off, "%s: %s", what, msg)
		}
		d.deviate("%s: %s", what, msg)
	}
	return nil
}

func encodeSUEIDs(c *Claims, _ int) ([]byte, error) {
	var m []cborwire.MapEntry
	for _, k := range slices.Sorted(maps.Keys(c.SUEIDs)) {
		m = append(m, cborwire.MapEntry{Key: cborwire.AppendText(nil, k), Val: cborwire.AppendBytes(nil, c.SUEIDs[k])})
	}
	return cborwire.AppendMap(nil, m), nil
}

func decodeSUEIDs(d *decoder, c *Claims, what string, _ int, _ string) error {
	r := &d.r
	n, err := r.mapHead(what, d.lim.MaxClaims)
	if err != nil {
		return err
	}
	if n == 0 {
		return r.errf(r.Off-1, "%s: empty map", what)
	}
	c.SUEIDs = make(map[string][]byte, n)
	for i := 0; i < n; i++ {
		off := r.Off
		name, err := r.text(what+" name", d.lim.MaxText)
		if err != nil {
			return err
		}
		if _, dup := c.SUEIDs[name]; dup {
			return r.errf(off, "%s: duplicate name %q", what, name)
		}
		if c.SUEIDs[name], err = r.bytes(what+" "+name, 7, 33); err != nil {
			return err
		}
	}
	return nil
}

func encodeOEMID(c *Claims, _ int) ([]byte, error) {
	if c.OEMID.Bytes != nil {
		return cborwire.AppendBytes(nil, c.OEMID.Bytes), nil
	}
	return cborwire.AppendUint(nil, c.OEMID.PEN), nil
}

func decodeOEMID(d *decoder, c *Claims, what string, _ int, _ string) error {
	r := &d.r
	off := r.Off
	switch r.peekMajor() {
	case cborwire.MajorUint:
		pen, err := r.uint(what)
		c.OEMID = &OEMID{PEN: pen}
		return err
	case cborwire.MajorBytes:
		b, err := r.bytes(what, 3, 16)
		if err != nil {
			return err
		}
		if len(b) != 3 && len(b) != 16 {
			return r.errf(off, "%s: %d bytes, want 3 (IEEE OUI) or 16 (random)", what, len(b))
		}
		c.OEMID = &OEMID{Bytes: b}
		return nil
	}
	return r.errf(off, "%s: want a Private Enterprise Number or a byte string, got %s", what, cborwire.MajorName(r.peekMajor()))
}

func encodeProfile(c *Claims, _ int) ([]byte, error) {
	switch {
	case c.Profile != "" && c.ProfileOID != nil:
		return nil, fmt.Errorf("eat: both Profile and ProfileOID set")
	case c.Profile != "":
		return cborwire.AppendText(nil, c.Profile), nil
	}
	return cborwire.AppendBytes(nil, c.ProfileOID), nil
}

func decodeProfile(d *decoder, c *Claims, what string, _ int, _ string) (err error) {
	r := &d.r
	off := r.Off
	switch r.peekMajor() {
	case cborwire.MajorText:
		if c.Profile, err = r.text(what, d.lim.MaxText); err == nil && c.Profile == "" {
			return r.errf(off, "%s: empty URI", what)
		}
		return err
	case cborwire.MajorBytes:
		c.ProfileOID, err = r.bytes(what, 1, d.lim.MaxText)
		return err
	}
	return r.errf(off, "%s: want a URI or an OID, got %s", what, cborwire.MajorName(r.peekMajor()))
}

func encodeSubmods(c *Claims, level int) ([]byte, error) {
	var m []cborwire.MapEntry
	for _, name := range slices.Sorted(maps.Keys(c.Submods)) {
		v, err := c.Submods[name].encode(level + 1)
		if err != nil {
			return nil, fmt.Errorf("eat: submodule %q: %w", name, err)
		}
		m = append(m, cborwire.MapEntry{Key: cborwire.AppendText(nil, name), Val: v})
	}
	return cborwire.AppendMap(nil, m), nil
}

// withJSONIn replaces the JSON reader of a claim.
func withJSONIn(s claimSpec, in func(c *Claims, v json.RawMessage, level int) error) claimSpec {
	s.fromJSON = in
	return s
}
