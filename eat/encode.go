package eat

import (
	"fmt"

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
	for i := range claimTable {
		spec := &claimTable[i]
		if !spec.has(c) {
			continue
		}
		v, err := spec.encode(c, level)
		if err != nil {
			return nil, err
		}
		add(spec.key, v)
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
