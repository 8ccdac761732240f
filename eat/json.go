package eat

import (
	"bytes"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"strconv"
	"time"

	"github.com/fxamacker/cbor/v2"
	"github.com/teep-go/teep/cborwire"
	"github.com/teep-go/teep/cosekey"
)

// The JSON form keys claims by their RFC 9711 / RFC 8392 JSON names and
// writes byte strings in hex. It is meant for people and tools (the `teep
// eat` commands, logs, admin APIs), not as a JWT claims-set. Shapes:
//
//	eat_nonce            "hex" (or ["hex", ...] for the array form)
//	ueid, hwmodel, cti,  "hex"
//	bootseed
//	oemid                PEN as a number, or "hex" (3 or 16 bytes)
//	hwversion, swversion ["1.3.4", 1] (scheme optional)
//	iat, exp, nbf        NumericDate (seconds since the epoch)
//	dbgstat              0..4 (names such as "disabled" accepted on input)
//	eat_profile          "uri", or {"oid": "hex"}
//	cnf                  {"kid": "hex", "jwk": {...}, "cose_key": "hex"}
//	manifests,           [[content-format, body], ...] with body "hex" for a
//	measurements         byte string, {"text": "..."} for a text string, or
//	                     {"cbor": "hex"} for any other item (lenient decoding)
//	submods              {"name": {claims} | {"token": "hex"} |
//	                     {"json_token": "..."} | {"digest": [alg, "hex"]}}
//	anything else        "<name or number>": {"cbor": "hex"} (the encoded value)

var claimsByName = func() map[string]int64 {
	m := make(map[string]int64, len(claimNames))
	for k, n := range claimNames {
		m[n] = k
	}
	return m
}()

type rawCBOR struct {
	CBOR string `json:"cbor"`
}

// MarshalJSON writes the JSON form described above.
func (c *Claims) MarshalJSON() ([]byte, error) {
	m, err := c.jsonMap()
	if err != nil {
		return nil, err
	}
	return json.Marshal(m)
}

func hexs(b []byte) string { return hex.EncodeToString(b) }

func (c *Claims) jsonMap() (map[string]any, error) {
	m := map[string]any{}
	for i := range claimTable {
		spec := &claimTable[i]
		if !spec.has(c) {
			continue
		}
		v, err := spec.toJSON(c)
		if err != nil {
			return nil, err
		}
		m[ClaimName(spec.key)] = v
	}
	for k, v := range c.Unknown {
		m[ClaimName(k)] = rawCBOR{hexs(v)}
	}
	return m, nil
}

// dateJSON is a NumericDate in JSON: whole seconds as an integer.
func dateJSON(t time.Time) any {
	if t.Nanosecond() == 0 {
		return t.Unix()
	}
	return dateFloat(t)
}

// cnfJWK renders the cnf COSE_Key as a JWK carrying the kid that is on the
// wire (none when the COSE_Key has none), not the thumbprint MarshalJWK
// would put there: the output shows the token, and a mismatch is a warning
// of ProfileProblems.
func cnfJWK(c *Confirmation) (map[string]any, error) {
	j, err := c.Key.MarshalJWK(false)
	if err != nil {
		return nil, err
	}
	var m map[string]any
	if err := json.Unmarshal(j, &m); err != nil {
		return nil, err
	}
	delete(m, "kid")
	if kid := c.COSEKeyKID(); kid != nil {
		m["kid"] = base64.RawURLEncoding.EncodeToString(kid)
	}
	return m, nil
}

func cnfJSON(c *Claims) (any, error) {
	cnf := map[string]any{}
	if c.CNF.Key != nil {
		jwk, err := cnfJWK(c.CNF)
		if err != nil {
			return nil, err
		}
		cnf["jwk"] = jwk
	}
	if c.CNF.KID != nil {
		cnf["kid"] = hexs(c.CNF.KID)
	}
	if c.CNF.EncryptedKey != nil {
		cnf["encrypted_key"] = rawCBOR{hexs(c.CNF.EncryptedKey)}
	}
	for k, v := range c.CNF.Other {
		cnf[strconv.FormatInt(k, 10)] = rawCBOR{hexs(v)}
	}
	return cnf, nil
}

func nonceJSON(c *Claims) (any, error) {
	if c.Nonces == nil {
		return hexs(c.Nonce), nil
	}
	l := make([]string, len(c.Nonces))
	for i, n := range c.Nonces {
		l[i] = hexs(n)
	}
	return l, nil
}

func sueidsJSON(c *Claims) (any, error) {
	s := map[string]string{}
	for k, v := range c.SUEIDs {
		s[k] = hexs(v)
	}
	return s, nil
}

func oemidJSON(c *Claims) (any, error) {
	if c.OEMID.Bytes != nil {
		return hexs(c.OEMID.Bytes), nil
	}
	return c.OEMID.PEN, nil
}

func profileJSON(c *Claims) (any, error) {
	if c.ProfileOID != nil {
		return map[string]string{"oid": hexs(c.ProfileOID)}, nil
	}
	return c.Profile, nil
}

func submodsJSON(c *Claims) (any, error) {
	s := map[string]any{}
	for name, sub := range c.Submods {
		switch {
		case sub.Claims != nil:
			v, err := sub.Claims.jsonMap()
			if err != nil {
				return nil, err
			}
			s[name] = v
		case sub.Token != nil:
			s[name] = map[string]string{"token": hexs(sub.Token)}
		case sub.Digest != nil:
			var alg any = sub.Digest.Alg
			if sub.Digest.AlgName != "" {
				alg = sub.Digest.AlgName
			}
			s[name] = map[string]any{"digest": []any{alg, hexs(sub.Digest.Value)}}
		default:
			s[name] = map[string]string{"json_token": sub.JSONToken}
		}
	}
	return s, nil
}

func (v *Version) jsonValue() []any {
	if v.Scheme == 0 {
		return []any{v.Version}
	}
	return []any{v.Version, int64(v.Scheme)}
}

func manifestsJSON(ms []Manifest) [][2]any {
	out := make([][2]any, len(ms))
	for i, m := range ms {
		out[i][0] = m.ContentFormat
		if b, ok := m.Bytes(); ok {
			out[i][1] = hexs(b)
		} else if t, ok := m.Text(); ok {
			out[i][1] = map[string]string{"text": t}
		} else {
			out[i][1] = rawCBOR{hexs(m.Body)}
		}
	}
	return out
}

// UnmarshalJSON reads the JSON form described above. Claim names are those
// of RFC 9711 / RFC 8392; unnamed claims are given by number with a
// {"cbor": "hex"} value.
func (c *Claims) UnmarshalJSON(data []byte) error {
	n, err := claimsFromJSON(data, 0)
	if err != nil {
		return err
	}
	*c = *n
	return nil
}

func claimsFromJSON(data []byte, level int) (*Claims, error) {
	if level > DefaultLimits.MaxSubmodDepth {
		return nil, fmt.Errorf("eat: submodules nested deeper than %d levels", DefaultLimits.MaxSubmodDepth)
	}
	fields, err := jsonObject(data)
	if err != nil {
		return nil, fmt.Errorf("eat: claims JSON: %w", err)
	}
	c := &Claims{}
	for _, f := range fields {
		key, ok := ClaimKey(f.name)
		if !ok {
			return nil, fmt.Errorf("eat: claims JSON: unknown claim name %q", f.name)
		}
		if err := c.setJSON(key, f.value, level); err != nil {
			return nil, fmt.Errorf("eat: claims JSON: %s: %w", ClaimName(key), err)
		}
	}
	return c, nil
}

type jsonField struct {
	name  string
	value json.RawMessage
}

// jsonObject splits a JSON object into its members in order, rejecting
// duplicate names (encoding/json would silently keep the last).
func jsonObject(data []byte) ([]jsonField, error) {
	dec := json.NewDecoder(bytes.NewReader(data))
	tok, err := dec.Token()
	if err != nil {
		return nil, err
	}
	if d, ok := tok.(json.Delim); !ok || d != '{' {
		return nil, errors.New("want an object")
	}
	var out []jsonField
	seen := map[string]bool{}
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return nil, err
		}
		name := tok.(string)
		if seen[name] {
			return nil, fmt.Errorf("duplicate member %q", name)
		}
		seen[name] = true
		var v json.RawMessage
		if err := dec.Decode(&v); err != nil {
			return nil, fmt.Errorf("%s: %w", name, err)
		}
		out = append(out, jsonField{name, v})
	}
	if _, err := dec.Token(); err != nil {
		return nil, err
	}
	if dec.More() {
		return nil, errors.New("trailing data after the object")
	}
	if _, err := dec.Token(); err == nil {
		return nil, errors.New("trailing data after the object")
	}
	return out, nil
}

func strictUnmarshal(data []byte, v any) error {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	dec.UseNumber()
	return dec.Decode(v)
}

func hexField(data []byte) ([]byte, error) {
	var s string
	if err := json.Unmarshal(data, &s); err != nil {
		return nil, errors.New("want a hex string")
	}
	b, err := hex.DecodeString(s)
	if err != nil {
		return nil, fmt.Errorf("bad hex: %w", err)
	}
	return b, nil
}

func rawField(data []byte) (cbor.RawMessage, error) {
	var r rawCBOR
	if err := strictUnmarshal(data, &r); err != nil || r.CBOR == "" {
		return nil, errors.New(`want {"cbor": "hex"}`)
	}
	b, err := hex.DecodeString(r.CBOR)
	if err != nil {
		return nil, fmt.Errorf("bad hex: %w", err)
	}
	if err := wellFormed(b, &DefaultLimits, 0); err != nil {
		return nil, err
	}
	return b, nil
}

func uintField(data []byte) (uint64, error) {
	var v uint64
	if err := json.Unmarshal(data, &v); err != nil {
		return 0, errors.New("want a non-negative integer")
	}
	return v, nil
}

func intField(data []byte) (int64, error) {
	var v int64
	if err := json.Unmarshal(data, &v); err != nil {
		return 0, errors.New("want an integer")
	}
	return v, nil
}

func textField(data []byte) (string, error) {
	var s string
	if err := json.Unmarshal(data, &s); err != nil {
		return "", errors.New("want a string")
	}
	return s, nil
}

func dateField(data []byte) (*time.Time, error) {
	var n json.Number
	if err := strictUnmarshal(data, &n); err != nil {
		return nil, errors.New("want a NumericDate (seconds since the epoch)")
	}
	if i, err := n.Int64(); err == nil {
		t := time.Unix(i, 0).UTC()
		return &t, nil
	}
	f, err := n.Float64()
	if err != nil || math.IsNaN(f) || math.Abs(f) > maxNumericDate {
		return nil, errors.New("want a NumericDate (seconds since the epoch)")
	}
	t := floatDate(f)
	return &t, nil
}

func versionField(data []byte) (*Version, error) {
	var l []json.RawMessage
	if err := json.Unmarshal(data, &l); err != nil || len(l) < 1 || len(l) > 2 {
		return nil, errors.New(`want ["version", scheme] with the scheme optional`)
	}
	v := &Version{}
	var err error
	if v.Version, err = textField(l[0]); err != nil {
		return nil, err
	}
	if len(l) == 2 {
		s, err := intField(l[1])
		if err != nil {
			return nil, fmt.Errorf("version-scheme: %w", err)
		}
		v.Scheme = VersionScheme(s)
	}
	return v, nil
}

func manifestsField(data []byte) ([]Manifest, error) {
	var l [][]json.RawMessage
	if err := json.Unmarshal(data, &l); err != nil {
		return nil, errors.New("want [[content-format, body], ...]")
	}
	out := make([]Manifest, len(l))
	for i, e := range l {
		if len(e) != 2 {
			return nil, fmt.Errorf("entry %d: want [content-format, body]", i)
		}
		cf, err := uintField(e[0])
		if err != nil {
			return nil, fmt.Errorf("entry %d content-format: %w", i, err)
		}
		out[i].ContentFormat = cf
		switch {
		case len(e[1]) > 0 && e[1][0] == '"':
			b, err := hexField(e[1])
			if err != nil {
				return nil, fmt.Errorf("entry %d body: %w", i, err)
			}
			out[i].Body = cborwire.AppendBytes(nil, b)
		default:
			var t struct {
				Text *string `json:"text"`
				CBOR *string `json:"cbor"`
			}
			if err := strictUnmarshal(e[1], &t); err != nil || (t.Text == nil) == (t.CBOR == nil) {
				return nil, fmt.Errorf(`entry %d body: want "hex", {"text": "..."} or {"cbor": "hex"}`, i)
			}
			if t.Text != nil {
				out[i].Body = cborwire.AppendText(nil, *t.Text)
			} else if out[i].Body, err = rawField(e[1]); err != nil {
				return nil, fmt.Errorf("entry %d body: %w", i, err)
			}
		}
	}
	return out, nil
}

// setJSON sets claim key from its JSON value, from claimTable or, for a
// claim without a field, as {"cbor": "hex"} into Unknown.
func (c *Claims) setJSON(key int64, v json.RawMessage, level int) error {
	if spec, ok := claimSpecs[key]; ok {
		return spec.fromJSON(c, v, level)
	}
	raw, err := rawField(v)
	if err != nil {
		return err
	}
	if c.Unknown == nil {
		c.Unknown = map[int64]cbor.RawMessage{}
	}
	c.Unknown[key] = raw
	return nil
}

func nonceFromJSON(c *Claims, v json.RawMessage, _ int) (err error) {
	if len(v) == 0 || v[0] != '[' {
		c.Nonce, err = hexField(v)
		return err
	}
	var l []json.RawMessage
	if err := json.Unmarshal(v, &l); err != nil {
		return err
	}
	c.Nonces = make([][]byte, len(l))
	for i := range l {
		if c.Nonces[i], err = hexField(l[i]); err != nil {
			return err
		}
	}
	return nil
}

func sueidsFromJSON(c *Claims, v json.RawMessage, _ int) (err error) {
	var m map[string]string
	if err := json.Unmarshal(v, &m); err != nil {
		return errors.New(`want {"name": "hex"}`)
	}
	c.SUEIDs = map[string][]byte{}
	for k, s := range m {
		if c.SUEIDs[k], err = hex.DecodeString(s); err != nil {
			return fmt.Errorf("%s: bad hex: %w", k, err)
		}
	}
	return nil
}

func oemidFromJSON(c *Claims, v json.RawMessage, _ int) error {
	if len(v) > 0 && v[0] == '"' {
		b, err := hexField(v)
		c.OEMID = &OEMID{Bytes: b}
		return err
	}
	pen, err := uintField(v)
	c.OEMID = &OEMID{PEN: pen}
	return err
}

func oembootFromJSON(c *Claims, v json.RawMessage, _ int) error {
	var b bool
	if err := json.Unmarshal(v, &b); err != nil {
		return errors.New("want true or false")
	}
	c.OEMBoot = &b
	return nil
}

func dbgstatFromJSON(c *Claims, v json.RawMessage, _ int) (err error) {
	var ds DebugStatus
	if s, e := textField(v); e == nil {
		ds, err = ParseDebugStatus(s)
	} else {
		var n uint64
		n, err = uintField(v)
		ds = DebugStatus(n)
		if err == nil && n > uint64(DebugDisabledFullyAndPermanently) {
			err = fmt.Errorf("unknown debug status %d", n)
		}
	}
	c.DbgStat = &ds
	return err
}

func profileFromJSON(c *Claims, v json.RawMessage, _ int) (err error) {
	if len(v) == 0 || v[0] != '{' {
		c.Profile, err = textField(v)
		return err
	}
	var o struct {
		OID string `json:"oid"`
	}
	if err := strictUnmarshal(v, &o); err != nil {
		return errors.New(`want "uri" or {"oid": "hex"}`)
	}
	c.ProfileOID, err = hex.DecodeString(o.OID)
	return err
}

func submodsFromJSON(c *Claims, v json.RawMessage, level int) error {
	fields, err := jsonObject(v)
	if err != nil {
		return err
	}
	c.Submods = map[string]*Submodule{}
	for _, f := range fields {
		sub, err := submodField(f.value, level)
		if err != nil {
			return fmt.Errorf("%s: %w", f.name, err)
		}
		c.Submods[f.name] = sub
	}
	return nil
}

func cnfField(v json.RawMessage) (*Confirmation, error) {
	fields, err := jsonObject(v)
	if err != nil {
		return nil, err
	}
	c := &Confirmation{}
	for _, f := range fields {
		switch f.name {
		case "kid":
			if c.KID, err = hexField(f.value); err != nil {
				return nil, fmt.Errorf("kid: %w", err)
			}
		case "jwk", "cose_key":
			var k *cosekey.Key
			if f.name == "jwk" {
				k, err = cosekey.ParseJWK(f.value)
			} else {
				var b []byte
				if b, err = hexField(f.value); err == nil {
					k, err = cosekey.ParseCOSEKey(b)
				}
			}
			if err != nil {
				return nil, fmt.Errorf("%s: %w", f.name, err)
			}
			if c.Key != nil {
				return nil, errors.New("both jwk and cose_key given")
			}
			c.Key = k.PublicKey()
		case "encrypted_key":
			if c.EncryptedKey, err = rawField(f.value); err != nil {
				return nil, fmt.Errorf("encrypted_key: %w", err)
			}
		default:
			n, perr := strconv.ParseInt(f.name, 10, 64)
			if perr != nil || (n >= 1 && n <= 3) {
				return nil, fmt.Errorf("unknown cnf member %q (want kid, jwk, cose_key, encrypted_key or a number)", f.name)
			}
			raw, err := rawField(f.value)
			if err != nil {
				return nil, fmt.Errorf("%s: %w", f.name, err)
			}
			if c.Other == nil {
				c.Other = map[int64]cbor.RawMessage{}
			}
			c.Other[n] = raw
		}
	}
	return c, nil
}

func submodField(v json.RawMessage, level int) (*Submodule, error) {
	fields, err := jsonObject(v)
	if err != nil {
		return nil, err
	}
	if len(fields) == 1 {
		f := fields[0]
		switch f.name {
		case "token":
			b, err := hexField(f.value)
			return &Submodule{Token: b}, err
		case "json_token":
			s, err := textField(f.value)
			return &Submodule{JSONToken: s}, err
		case "digest":
			var l []json.RawMessage
			if err := json.Unmarshal(f.value, &l); err != nil || len(l) != 2 {
				return nil, errors.New(`digest: want [alg, "hex"]`)
			}
			d := &DetachedDigest{}
			if s, err := textField(l[0]); err == nil {
				d.AlgName = s
			} else if d.Alg, err = intField(l[0]); err != nil {
				return nil, fmt.Errorf("digest algorithm: %w", err)
			}
			if d.Value, err = hexField(l[1]); err != nil {
				return nil, fmt.Errorf("digest: %w", err)
			}
			return &Submodule{Digest: d}, nil
		}
	}
	c, err := claimsFromJSON(v, level+1)
	if err != nil {
		return nil, err
	}
	return &Submodule{Claims: c}, nil
}
