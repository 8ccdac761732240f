package eat

import (
	"bytes"
	"errors"
	"fmt"
	"unicode/utf8"

	"github.com/fxamacker/cbor/v2"
	"github.com/teep-go/teep/cborwire"
	"github.com/teep-go/teep/cosekey"
	"github.com/veraison/go-cose"
)

// Limits bound what the decoder accepts. The defaults fit any realistic TEEP
// Evidence or Attestation Result with room to spare.
type Limits struct {
	MaxTokenSize   int // bytes of a whole token
	MaxDepth       int // CBOR nesting levels
	MaxItems       int // CBOR data items in one token
	MaxClaims      int // entries in one claims-set (and in sueids, submods, cnf)
	MaxSubmodDepth int // claims-sets nested through submods
	MaxEntries     int // entries in manifests, measurements, and nonce arrays
	MaxText        int // bytes of a text claim (iss, swname, URIs, ...)
	MaxBody        int // bytes of one manifest / measurement / nested token
}

// DefaultLimits are used when ParseOptions.Limits is nil.
var DefaultLimits = Limits{
	MaxTokenSize:   64 << 10,
	MaxDepth:       16,
	MaxItems:       4096,
	MaxClaims:      128,
	MaxSubmodDepth: 4,
	MaxEntries:     64,
	MaxText:        2048,
	MaxBody:        32 << 10,
}

// ParseOptions adjust decoding. The zero value is strict RFC 9711 decoding
// with DefaultLimits and every signature algorithm cosekey accepts.
type ParseOptions struct {
	Limits *Limits

	// Algorithms restricts the COSE algorithms Token.Verify accepts; nil means
	// cosekey.AcceptedAlgorithms (ESP256, Ed25519 and their legacy ids).
	Algorithms []cose.Algorithm

	// LenientUnsafe accepts encodings seen in draft examples and early
	// implementations that RFC 9711 does not allow, and lists each in
	// Claims.Deviations: manifest / measurement bodies that are not byte or
	// text strings (draft-ietf-teep-protocol-26 Appendix D.2 writes the
	// SUIT_Reference map bare), UEIDs whose length does not fit their type
	// (D.2's 16-byte RAND UEID), and hwversion / swversion as a byte string
	// (libteep). Encoding-level strictness (definite lengths, preferred
	// serialization, no duplicate keys, limits) is never relaxed.
	LenientUnsafe bool
}

func (o *ParseOptions) limits() *Limits {
	if o == nil || o.Limits == nil {
		return &DefaultLimits
	}
	return o.Limits
}

// ErrMalformed is wrapped by every decoding error.
var ErrMalformed = errors.New("eat: malformed")

// DecodeError says what is wrong and at which byte offset of the claims-set
// (or, for token framing, of the token).
type DecodeError struct {
	Offset int
	Msg    string
}

func (e *DecodeError) Error() string { return fmt.Sprintf("eat: offset %d: %s", e.Offset, e.Msg) }

func (e *DecodeError) Unwrap() error { return ErrMalformed }

// DecodeClaims decodes an encoded claims-set (the payload of a CWT).
func DecodeClaims(b []byte, o ParseOptions) (*Claims, error) {
	lim := o.limits()
	if len(b) > lim.MaxTokenSize {
		return nil, &DecodeError{Msg: fmt.Sprintf("claims-set of %d bytes exceeds the limit of %d", len(b), lim.MaxTokenSize)}
	}
	if err := wellFormed(b, lim, 0); err != nil {
		return nil, err
	}
	d := &decoder{r: newReader(b, 0), lim: lim, lenient: o.LenientUnsafe}
	c, err := d.claimsSet(0, "")
	if err != nil {
		return nil, err
	}
	return c, nil
}

// UnmarshalCBOR decodes with default, strict options.
func (c *Claims) UnmarshalCBOR(b []byte) error {
	d, err := DecodeClaims(b, ParseOptions{})
	if err != nil {
		return err
	}
	*c = *d
	return nil
}

type decoder struct {
	r       reader
	lim     *Limits
	lenient bool
	devs    *[]string
}

func (d *decoder) deviate(format string, a ...any) {
	*d.devs = append(*d.devs, fmt.Sprintf(format, a...))
}

// claimsSet decodes one claims map; path names the enclosing submodule in
// messages ("" at the top).
func (d *decoder) claimsSet(level int, path string) (*Claims, error) {
	r := &d.r
	where := "claims-set"
	if path != "" {
		where = "submodule " + path
	}
	n, err := r.mapHead(where, d.lim.MaxClaims)
	if err != nil {
		return nil, err
	}
	c := &Claims{}
	if level == 0 {
		d.devs = &c.Deviations
	}
	seen := make(map[int64]bool, n)
	for i := 0; i < n; i++ {
		keyOff := r.Off
		if r.peekMajor() == cborwire.MajorText {
			name, _ := r.text("claim label", d.lim.MaxText)
			return nil, r.errf(keyOff, "%s: text claim label %q: CBOR tokens of the TEEP profile use integer labels only", where, name)
		}
		key, err := r.int(where + " claim label")
		if err != nil {
			return nil, err
		}
		if seen[key] {
			return nil, r.errf(keyOff, "%s: duplicate claim %s", where, claimLabel(key))
		}
		seen[key] = true
		what := claimLabel(key)
		if path != "" {
			what = "submodule " + path + ": " + what
		}
		if err := d.claim(c, key, what, level, path); err != nil {
			return nil, err
		}
	}
	return c, nil
}

// claim decodes the value of claim key into c, from claimTable or, for a
// claim without a field, verbatim into Unknown.
func (d *decoder) claim(c *Claims, key int64, what string, level int, path string) error {
	if spec, ok := claimSpecs[key]; ok {
		return spec.decode(d, c, what, level, path)
	}
	if c.Unknown == nil {
		c.Unknown = make(map[int64]cbor.RawMessage)
	}
	c.Unknown[key] = bytes.Clone(d.r.raw())
	return nil
}

// ValidUEID checks a UEID's length against its type (RFC 9711 §4.2.1).
func ValidUEID(u []byte) error {
	if len(u) < 7 || len(u) > 33 {
		return fmt.Errorf("eat: UEID of %d bytes, want 7..33", len(u))
	}
	if msg := checkUEID(u); msg != "" {
		return errors.New("eat: " + msg)
	}
	return nil
}

// checkUEID applies the per-type lengths of RFC 9711 §4.2.1.
func checkUEID(u []byte) string {
	switch u[0] {
	case 0x01:
		if n := len(u) - 1; n != 16 && n != 24 && n != 32 {
			return fmt.Sprintf("RAND UEID with %d random bytes, want 16, 24 or 32 (RFC 9711 §4.2.1)", n)
		}
	case 0x02:
		if n := len(u) - 1; n != 6 && n != 8 {
			return fmt.Sprintf("EUI UEID with %d bytes, want 6 or 8 (RFC 9711 §4.2.1)", n)
		}
	case 0x03:
		if n := len(u) - 1; n != 14 {
			return fmt.Sprintf("IMEI UEID with %d bytes, want 14 (RFC 9711 §4.2.1)", n)
		}
	default:
		return fmt.Sprintf("unknown UEID type 0x%02x (want 0x01 RAND, 0x02 EUI or 0x03 IMEI)", u[0])
	}
	return ""
}

func (d *decoder) version(what string) (*Version, error) {
	r := &d.r
	if d.lenient && r.peekMajor() == cborwire.MajorBytes {
		text, err := d.bytesVersion(what)
		if err != nil {
			return nil, err
		}
		d.deviate("%s: version as a byte string, not [text, ? scheme] (libteep form)", what)
		return &Version{Version: text}, nil
	}
	n, err := r.array(what, 1, 2)
	if err != nil {
		return nil, err
	}
	v := &Version{}
	if d.lenient && r.peekMajor() == cborwire.MajorBytes {
		if v.Version, err = d.bytesVersion(what + " version"); err != nil {
			return nil, err
		}
		d.deviate("%s: version text as a byte string inside [version, scheme]", what)
	} else if v.Version, err = r.text(what+" version", d.lim.MaxText); err != nil {
		return nil, err
	}
	if n == 2 {
		off := r.Off
		s, err := r.int(what + " version-scheme")
		if err != nil {
			return nil, err
		}
		if s == 0 {
			return nil, r.errf(off, "%s: version-scheme 0 is not assigned (RFC 9393 §4.1)", what)
		}
		v.Scheme = VersionScheme(s)
	}
	return v, nil
}

// bytesVersion reads a version string sent as a byte string, which some
// Attesters do; only LenientUnsafe decoding calls it.
func (d *decoder) bytesVersion(what string) (string, error) {
	r := &d.r
	off := r.Off
	b, err := r.bytes(what, 1, d.lim.MaxText)
	if err != nil {
		return "", err
	}
	if !utf8.Valid(b) {
		return "", r.errf(off, "%s: byte-string version is not UTF-8 text", what)
	}
	return string(b), nil
}

func (d *decoder) manifests(what string) ([]Manifest, error) {
	r := &d.r
	n, err := r.array(what, 1, d.lim.MaxEntries)
	if err != nil {
		return nil, err
	}
	out := make([]Manifest, n)
	for i := range out {
		bare, err := d.manifest(&out[i])
		if err != nil {
			return nil, prefixError(err, fmt.Sprintf("%s[%d]", what, i))
		}
		if bare != "" {
			d.deviate("%s[%d]: body is a bare %s, not byte-wrapped (draft-ietf-teep-protocol-26 Appendix D.2 form)", what, i, bare)
		}
	}
	return out, nil
}

// manifest reads one [content-format, body]. Messages leave the entry's name
// to the caller, which only builds it on error. bare names the major type of
// a body lenient decoding let through ("" for a conforming body; a name, not
// the major type, because an unsigned integer's major type is 0).
func (d *decoder) manifest(m *Manifest) (bare string, err error) {
	r := &d.r
	if _, err := r.array("entry", 2, 2); err != nil {
		return "", err
	}
	if m.ContentFormat, err = r.uint("content-format"); err != nil {
		return "", err
	}
	if m.ContentFormat > 65535 {
		return "", r.errf(r.Off, "content-format %d above 65535", m.ContentFormat)
	}
	off := r.Off
	major := r.peekMajor()
	body := r.raw()
	if len(body) > d.lim.MaxBody+9 {
		return "", r.errf(off, "body of %d bytes exceeds the limit of %d", len(body), d.lim.MaxBody)
	}
	if major != cborwire.MajorBytes && major != cborwire.MajorText {
		if !d.lenient {
			return "", r.errf(off, "body is a %s; RFC 9711 wants a byte string (CBOR formats, byte-wrapped) or a text string", cborwire.MajorName(major))
		}
		bare = cborwire.MajorName(major)
	}
	m.Body = bytes.Clone(body)
	return bare, nil
}

// prefixError puts the name of the enclosing item in front of a message.
func prefixError(err error, prefix string) error {
	var de *DecodeError
	if errors.As(err, &de) {
		return &DecodeError{Offset: de.Offset, Msg: prefix + ": " + de.Msg}
	}
	return err
}

func (d *decoder) confirmation(what string) (*Confirmation, error) {
	r := &d.r
	off := r.Off
	n, err := r.mapHead(what, d.lim.MaxClaims)
	if err != nil {
		return nil, err
	}
	if n == 0 {
		return nil, r.errf(off, "%s: empty map", what)
	}
	c := &Confirmation{}
	seen := map[int64]bool{}
	for i := 0; i < n; i++ {
		koff := r.Off
		k, err := r.int(what + " member label")
		if err != nil {
			return nil, err
		}
		if seen[k] {
			return nil, r.errf(koff, "%s: duplicate member %d", what, k)
		}
		seen[k] = true
		voff := r.Off
		switch k {
		case 1:
			if r.peekMajor() != cborwire.MajorMap {
				return nil, r.errf(voff, "%s COSE_Key: want a map, got %s", what, cborwire.MajorName(r.peekMajor()))
			}
			raw := r.raw()
			key, err := cosekey.ParseCOSEKey(raw)
			if err != nil {
				return nil, r.errf(voff, "%s COSE_Key: %v", what, err)
			}
			if key.IsPrivate() {
				return nil, r.errf(voff, "%s COSE_Key carries a private key", what)
			}
			c.Key, c.keyFrom, c.keyRaw = key, key, bytes.Clone(raw)
		case 2:
			c.EncryptedKey = bytes.Clone(r.raw())
		case 3:
			if c.KID, err = r.bytes(what+" kid", 1, 64); err != nil {
				return nil, err
			}
		default:
			if c.Other == nil {
				c.Other = make(map[int64]cbor.RawMessage)
			}
			c.Other[k] = bytes.Clone(r.raw())
		}
	}
	return c, nil
}

func (d *decoder) submods(what string, level int, path string) (map[string]*Submodule, error) {
	r := &d.r
	off := r.Off
	n, err := r.mapHead(what, d.lim.MaxClaims)
	if err != nil {
		return nil, err
	}
	if n == 0 {
		return nil, r.errf(off, "%s: empty map", what)
	}
	out := make(map[string]*Submodule, n)
	for i := 0; i < n; i++ {
		noff := r.Off
		name, err := r.text(what+" name", d.lim.MaxText)
		if err != nil {
			return nil, err
		}
		if _, dup := out[name]; dup {
			return nil, r.errf(noff, "%s: duplicate submodule %q", what, name)
		}
		sub := &Submodule{}
		voff := r.Off
		sp := name
		if path != "" {
			sp = path + "/" + name
		}
		switch r.peekMajor() {
		case cborwire.MajorMap:
			if level+1 > d.lim.MaxSubmodDepth {
				return nil, r.errf(voff, "submodule %s: nested deeper than %d levels", sp, d.lim.MaxSubmodDepth)
			}
			if sub.Claims, err = d.claimsSet(level+1, sp); err != nil {
				return nil, err
			}
		case cborwire.MajorBytes:
			if sub.Token, err = r.bytes("submodule "+sp+" token", 1, d.lim.MaxBody); err != nil {
				return nil, err
			}
		case cborwire.MajorText:
			if sub.JSONToken, err = r.text("submodule "+sp+" JSON token", d.lim.MaxBody); err != nil {
				return nil, err
			}
		case cborwire.MajorArray:
			if _, err := r.array("submodule "+sp+" digest", 2, 2); err != nil {
				return nil, err
			}
			dd := &DetachedDigest{}
			if r.peekMajor() == cborwire.MajorText {
				dd.AlgName, err = r.text("submodule "+sp+" digest algorithm", d.lim.MaxText)
			} else {
				dd.Alg, err = r.int("submodule " + sp + " digest algorithm")
			}
			if err != nil {
				return nil, err
			}
			if dd.Value, err = r.bytes("submodule "+sp+" digest", 1, 64); err != nil {
				return nil, err
			}
			sub.Digest = dd
		default:
			return nil, r.errf(voff, "submodule %s: want a claims-set, a nested token or a digest, got %s", sp, cborwire.MajorName(r.peekMajor()))
		}
		out[name] = sub
	}
	return out, nil
}
