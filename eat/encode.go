package eat

import (
	"fmt"
	"maps"
	"slices"

	"github.com/teep-go/teep/cborwire"
)

// MarshalCBOR encodes the claims-set with core deterministic encoding (RFC
// 8949 §4.2.1: preferred serialization, keys sorted bytewise), which is also
// what the TEEP profile asks for. The result is checked with the strict
// decoder, so what this package writes it also reads; claims that were
// decoded with LenientUnsafe (Deviations set) are checked leniently.
func (c *Claims) MarshalCBOR() ([]byte, error) {
	b, err := c.encode(nil, 0)
	if err != nil {
		return nil, err
	}
	if _, err := DecodeClaims(b, ParseOptions{LenientUnsafe: len(c.Deviations) > 0}); err != nil {
		return nil, fmt.Errorf("eat: claims do not encode to a valid claims-set: %w", err)
	}
	return b, nil
}

func (c *Claims) encode(b []byte, level int) ([]byte, error) {
	if level > DefaultLimits.MaxSubmodDepth {
		return nil, fmt.Errorf("eat: submodules nested deeper than %d levels", DefaultLimits.MaxSubmodDepth)
	}
	var e []cborwire.MapEntry
	add := func(key int64, val []byte) {
		e = append(e, cborwire.MapEntry{Key: cborwire.AppendInt(nil, key), Val: val})
	}
	if c.Issuer != "" {
		add(ClaimIss, cborwire.AppendText(nil, c.Issuer))
	}
	if c.Subject != "" {
		add(ClaimSub, cborwire.AppendText(nil, c.Subject))
	}
	if c.Audience != "" {
		add(ClaimAud, cborwire.AppendText(nil, c.Audience))
	}
	if c.Expiry != nil {
		add(ClaimExp, appendNumericDate(nil, *c.Expiry))
	}
	if c.NotBefore != nil {
		add(ClaimNbf, appendNumericDate(nil, *c.NotBefore))
	}
	if c.IssuedAt != nil {
		add(ClaimIat, appendNumericDate(nil, *c.IssuedAt))
	}
	if c.CWTID != nil {
		add(ClaimCti, cborwire.AppendBytes(nil, c.CWTID))
	}
	if c.CNF != nil {
		v, err := c.CNF.encode()
		if err != nil {
			return nil, err
		}
		add(ClaimCnf, v)
	}
	switch {
	case c.Nonce != nil && c.Nonces != nil:
		return nil, fmt.Errorf("eat: both Nonce and Nonces set")
	case c.Nonce != nil:
		add(ClaimNonce, cborwire.AppendBytes(nil, c.Nonce))
	case c.Nonces != nil:
		v := cborwire.AppendHead(nil, cborwire.MajorArray, uint64(len(c.Nonces)))
		for _, n := range c.Nonces {
			v = cborwire.AppendBytes(v, n)
		}
		add(ClaimNonce, v)
	}
	if c.UEID != nil {
		add(ClaimUEID, cborwire.AppendBytes(nil, c.UEID))
	}
	if c.SUEIDs != nil {
		var m []cborwire.MapEntry
		for _, k := range slices.Sorted(maps.Keys(c.SUEIDs)) {
			m = append(m, cborwire.MapEntry{Key: cborwire.AppendText(nil, k), Val: cborwire.AppendBytes(nil, c.SUEIDs[k])})
		}
		add(ClaimSUEIDs, cborwire.AppendMap(nil, m))
	}
	if c.OEMID != nil {
		if c.OEMID.Bytes != nil {
			add(ClaimOEMID, cborwire.AppendBytes(nil, c.OEMID.Bytes))
		} else {
			add(ClaimOEMID, cborwire.AppendHead(nil, cborwire.MajorUint, c.OEMID.PEN))
		}
	}
	if c.HWModel != nil {
		add(ClaimHWModel, cborwire.AppendBytes(nil, c.HWModel))
	}
	if c.HWVersion != nil {
		add(ClaimHWVersion, c.HWVersion.encode())
	}
	if c.Uptime != nil {
		add(ClaimUptime, cborwire.AppendHead(nil, cborwire.MajorUint, *c.Uptime))
	}
	if c.OEMBoot != nil {
		add(ClaimOEMBoot, cborwire.AppendBool(nil, *c.OEMBoot))
	}
	if c.DbgStat != nil {
		add(ClaimDbgStat, cborwire.AppendHead(nil, cborwire.MajorUint, uint64(*c.DbgStat)))
	}
	switch {
	case c.Profile != "" && c.ProfileOID != nil:
		return nil, fmt.Errorf("eat: both Profile and ProfileOID set")
	case c.Profile != "":
		add(ClaimProfile, cborwire.AppendText(nil, c.Profile))
	case c.ProfileOID != nil:
		add(ClaimProfile, cborwire.AppendBytes(nil, c.ProfileOID))
	}
	if c.Submods != nil {
		var m []cborwire.MapEntry
		for _, name := range slices.Sorted(maps.Keys(c.Submods)) {
			v, err := c.Submods[name].encode(level + 1)
			if err != nil {
				return nil, fmt.Errorf("eat: submodule %q: %w", name, err)
			}
			m = append(m, cborwire.MapEntry{Key: cborwire.AppendText(nil, name), Val: v})
		}
		add(ClaimSubmods, cborwire.AppendMap(nil, m))
	}
	if c.BootCount != nil {
		add(ClaimBootCount, cborwire.AppendHead(nil, cborwire.MajorUint, *c.BootCount))
	}
	if c.BootSeed != nil {
		add(ClaimBootSeed, cborwire.AppendBytes(nil, c.BootSeed))
	}
	if c.SWName != "" {
		add(ClaimSWName, cborwire.AppendText(nil, c.SWName))
	}
	if c.SWVersion != nil {
		add(ClaimSWVersion, c.SWVersion.encode())
	}
	if c.Manifests != nil {
		add(ClaimManifests, encodeManifests(c.Manifests))
	}
	if c.Measurements != nil {
		add(ClaimMeasurements, encodeManifests(c.Measurements))
	}
	if c.IntUse != nil {
		add(ClaimIntUse, cborwire.AppendInt(nil, int64(*c.IntUse)))
	}
	if c.EARStatus != nil {
		add(ClaimEARStatus, cborwire.AppendInt(nil, int64(*c.EARStatus)))
	}
	if c.EARPolicyID != "" {
		add(ClaimEARPolicyID, cborwire.AppendText(nil, c.EARPolicyID))
	}
	for k, v := range c.Unknown {
		if _, modelled := claimNames[k]; modelled && !unmodelled[k] {
			return nil, fmt.Errorf("eat: Unknown holds %s, which has its own field", claimLabel(k))
		}
		if len(v) == 0 {
			return nil, fmt.Errorf("eat: Unknown %s is empty", claimLabel(k))
		}
		add(k, v)
	}
	return cborwire.AppendMap(b, e), nil
}

// unmodelled are named claims without a field; they live in Unknown.
var unmodelled = map[int64]bool{ClaimLocation: true, ClaimDLOAs: true, ClaimMeasRes: true}

func (v *Version) encode() []byte {
	if v.Scheme == 0 {
		return cborwire.AppendText(cborwire.AppendHead(nil, cborwire.MajorArray, 1), v.Version)
	}
	b := cborwire.AppendText(cborwire.AppendHead(nil, cborwire.MajorArray, 2), v.Version)
	return cborwire.AppendInt(b, int64(v.Scheme))
}

func encodeManifests(ms []Manifest) []byte {
	b := cborwire.AppendHead(nil, cborwire.MajorArray, uint64(len(ms)))
	for _, m := range ms {
		b = cborwire.AppendHead(b, cborwire.MajorArray, 2)
		b = cborwire.AppendHead(b, cborwire.MajorUint, m.ContentFormat)
		b = append(b, m.Body...)
	}
	return b
}

func (c *Confirmation) encode() ([]byte, error) {
	var e []cborwire.MapEntry
	if c.Key != nil {
		raw := c.keyRaw
		if c.Key != c.keyFrom || raw == nil {
			var err error
			if raw, err = c.Key.MarshalCOSEKey(false); err != nil {
				return nil, fmt.Errorf("eat: cnf COSE_Key: %w", err)
			}
		}
		e = append(e, cborwire.MapEntry{Key: cborwire.AppendInt(nil, 1), Val: raw})
	}
	if c.EncryptedKey != nil {
		e = append(e, cborwire.MapEntry{Key: cborwire.AppendInt(nil, 2), Val: c.EncryptedKey})
	}
	if c.KID != nil {
		e = append(e, cborwire.MapEntry{Key: cborwire.AppendInt(nil, 3), Val: cborwire.AppendBytes(nil, c.KID)})
	}
	for k, v := range c.Other {
		if k >= 1 && k <= 3 {
			return nil, fmt.Errorf("eat: cnf Other holds member %d, which has its own field", k)
		}
		e = append(e, cborwire.MapEntry{Key: cborwire.AppendInt(nil, k), Val: v})
	}
	return cborwire.AppendMap(nil, e), nil
}

func (s *Submodule) encode(level int) ([]byte, error) {
	set := 0
	var out []byte
	if s.Claims != nil {
		set++
		var err error
		if out, err = s.Claims.encode(nil, level); err != nil {
			return nil, err
		}
	}
	if s.Token != nil {
		set++
		out = cborwire.AppendBytes(nil, s.Token)
	}
	if s.JSONToken != "" {
		set++
		out = cborwire.AppendText(nil, s.JSONToken)
	}
	if s.Digest != nil {
		set++
		out = cborwire.AppendHead(nil, cborwire.MajorArray, 2)
		if s.Digest.AlgName != "" {
			out = cborwire.AppendText(out, s.Digest.AlgName)
		} else {
			out = cborwire.AppendInt(out, s.Digest.Alg)
		}
		out = cborwire.AppendBytes(out, s.Digest.Value)
	}
	if set != 1 {
		return nil, fmt.Errorf("want exactly one of Claims, Token, JSONToken, Digest; %d set", set)
	}
	return out, nil
}
