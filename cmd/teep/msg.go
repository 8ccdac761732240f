package main

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"

	"github.com/teep-go/teep/cosekey"
	"github.com/teep-go/teep/internal/keyfile"
	"github.com/teep-go/teep/suit"
	"github.com/teep-go/teep/teep"
	"github.com/veraison/go-cose"
)

func init() {
	register(&command{path: "msg decode", summary: "decode a TEEP message (bare or signed) to JSON, verifying it with --key", run: msgDecode})
	register(&command{path: "msg sign", summary: "wrap a bare TEEP message in a COSE_Sign1 (or COSE_Sign with several keys)", run: msgSign})
}

// msgInputLimit bounds what the msg commands read: the largest signed
// message the codec accepts, doubled (plus slack) for hex text.
var msgInputLimit = int64(2*(teep.DefaultLimits.MaxMessageSize+teep.DefaultLimits.MaxCOSEOverhead) + 4096)

// msgReadMessage reads FILE or stdin: raw CBOR, or hex text. A TEEP message
// or COSE structure never starts with a byte that is an ASCII hex digit or
// white space, so hex text is recognised without --hex; --hex insists on it.
func msgReadMessage(e *env, args []string, forceHex bool) ([]byte, error) {
	data, err := readInput(e, args, msgInputLimit)
	if err != nil {
		return nil, err
	}
	trimmed := bytes.TrimSpace(data)
	if len(trimmed) == 0 {
		return nil, errors.New("input is empty")
	}
	if !forceHex && !msgIsHexDigit(trimmed[0]) {
		return data, nil
	}
	digits := make([]byte, 0, len(trimmed))
	for _, c := range trimmed {
		switch {
		case c == ' ' || c == '\n' || c == '\r' || c == '\t':
		case msgIsHexDigit(c):
			digits = append(digits, c)
		default:
			return nil, fmt.Errorf("input is not hex text: unexpected byte 0x%02x", c)
		}
	}
	out := make([]byte, hex.DecodedLen(len(digits)))
	if _, err := hex.Decode(out, digits); err != nil {
		return nil, fmt.Errorf("input is not hex text: %v", err)
	}
	return out, nil
}

func msgIsHexDigit(c byte) bool {
	return c >= '0' && c <= '9' || c >= 'a' && c <= 'f' || c >= 'A' && c <= 'F'
}

func msgNumbering(legacy bool) teep.Numbering {
	if legacy {
		return teep.Legacy
	}
	return teep.Draft26
}

// msgDecodeOut is the JSON document of "msg decode".
type msgDecodeOut struct {
	Type       string           `json:"type"`
	Numbering  string           `json:"numbering"`
	Signed     bool             `json:"signed"`
	Structure  string           `json:"structure,omitempty"`
	Tagged     *bool            `json:"tagged,omitempty"`
	Alg        string           `json:"alg,omitempty"`
	AlgID      *int64           `json:"alg-id,omitempty"`
	KID        string           `json:"kid,omitempty"`
	Verified   *bool            `json:"verified,omitempty"`
	Signatures []msgSignatureJS `json:"signatures,omitempty"`
	Size       int              `json:"size"`
	Message    map[string]any   `json:"message"`
}

type msgSignatureJS struct {
	Alg   string `json:"alg"`
	AlgID int64  `json:"alg-id"`
	KID   string `json:"kid,omitempty"`
}

func msgDecode(e *env, args []string) error {
	fs := newFlags(e, "msg decode", "[--key FILE]... [--legacy-numbering] [--hex] [FILE|-]",
		"Reads one TEEP message - bare, or a COSE_Sign1 (tagged or untagged) or COSE_Sign\n"+
			"carrying one - as raw CBOR or hex text, and prints it as a JSON object: type,\n"+
			"signed, structure, alg, alg-id, kid, verified (only with --key) and message, the\n"+
			"options by their IANA label names (unknown labels by number), byte strings in\n"+
			"lower-case hex, SUIT envelopes and reports summarised by size and SHA-256.\n"+
			"With --key the signature must verify with one of the keys (COSE_Key, PEM or\n"+
			"JWK); otherwise the command fails. Without --key signatures are NOT checked.")
	var keys listFlag
	fs.Var(&keys, "key", "trusted public key `FILE`; repeat for several")
	legacy := fs.Bool("legacy-numbering", false, "use the numbering of drafts -18 to -25 (success=5, error=6, token=20, ...)")
	forceHex := fs.Bool("hex", false, "input is hex text (detected automatically otherwise)")
	pos, err := parse(fs, args)
	if err != nil {
		return err
	}
	var trusted []*cosekey.Key
	if len(keys) > 0 {
		if trusted, err = keyfile.LoadAll(keys); err != nil {
			return err
		}
	}
	data, err := msgReadMessage(e, pos, *forceHex)
	if err != nil {
		return err
	}
	num := msgNumbering(*legacy)
	out := msgDecodeOut{Numbering: num.String(), Size: len(data)}
	var m teep.Message
	if teep.IsSigned(data) {
		op, err := teep.Open(data, teep.OpenOptions{Numbering: num, Keys: trusted, SkipVerifyUnsafe: len(trusted) == 0})
		if err != nil {
			if errors.Is(err, cosekey.ErrSignature) || errors.Is(err, cosekey.ErrNoTrustedKey) || errors.Is(err, cosekey.ErrUnsupportedAlg) {
				return fmt.Errorf("signature does not verify with the given key(s): %w", err)
			}
			return err
		}
		m = op.Message
		algID := int64(op.Alg)
		out.Signed, out.Structure, out.Tagged = true, op.Structure.String(), &op.Tagged
		out.Alg, out.AlgID, out.KID = cosekey.AlgName(op.Alg), &algID, hex.EncodeToString(op.KID)
		if len(trusted) > 0 {
			out.Verified = &op.Verified
		}
		if op.Structure == cosekey.StructureSign {
			for _, s := range op.Signatures {
				out.Signatures = append(out.Signatures, msgSignatureJS{Alg: cosekey.AlgName(s.Alg), AlgID: int64(s.Alg), KID: hex.EncodeToString(s.KID)})
			}
		}
	} else {
		if len(trusted) > 0 {
			return errors.New("the message is not signed (no COSE_Sign1 or COSE_Sign), so --key cannot verify it")
		}
		if m, err = teep.Decode(data, teep.DecodeOptions{Numbering: num}); err != nil {
			return err
		}
	}
	out.Type = m.Type().String()
	out.Message = msgJSON(m, num)
	enc := json.NewEncoder(e.stdout)
	enc.SetIndent("", "  ")
	return enc.Encode(out)
}

func msgHex(b []byte) string { return hex.EncodeToString(b) }

func msgCIDJSON(c suit.ComponentID) []string {
	out := make([]string, len(c))
	for i, s := range c {
		out[i] = hex.EncodeToString(s)
	}
	return out
}

func msgCIDsJSON(list []suit.ComponentID) [][]string {
	out := make([][]string, len(list))
	for i, c := range list {
		out[i] = msgCIDJSON(c)
	}
	return out
}

func msgSuitesJSON(suites []teep.CipherSuite) [][][2]int64 {
	out := make([][][2]int64, len(suites))
	for i, s := range suites {
		out[i] = make([][2]int64, len(s))
		for j, op := range s {
			out[i][j] = [2]int64{int64(op.COSEType), op.Alg}
		}
	}
	return out
}

func msgProfilesJSON(profiles []teep.SUITCOSEProfile) [][4]int64 {
	out := make([][4]int64, len(profiles))
	for i, p := range profiles {
		out[i] = p
	}
	return out
}

func msgBlobJSON(b []byte) map[string]any {
	sum := sha256.Sum256(b)
	return map[string]any{"size": len(b), "sha256": hex.EncodeToString(sum[:]), "hex": hex.EncodeToString(b)}
}

func msgBlobsJSON(list [][]byte) []map[string]any {
	out := make([]map[string]any, len(list))
	for i, b := range list {
		out[i] = msgBlobJSON(b)
	}
	return out
}

// msgManifestJSON summarises one manifest-list entry; what the suit package
// can parse adds the manifest's identity, anything else is reported as
// suit-error without failing the decode (the TEEP message itself is valid).
func msgManifestJSON(envelope []byte) map[string]any {
	sum := sha256.Sum256(envelope)
	out := map[string]any{"size": len(envelope), "sha256": hex.EncodeToString(sum[:])}
	env, err := suit.ParseEnvelope(envelope, suit.ParseOptions{})
	if err != nil {
		out["suit-error"] = err.Error()
		return out
	}
	man := env.Manifest()
	out["manifest-sequence-number"] = man.SequenceNumber
	if man.ComponentID != nil {
		out["manifest-component-id"] = man.ComponentID.Hex()
	}
	d := env.Digest()
	out["manifest-digest"] = map[string]any{"alg": d.Alg, "alg-name": suit.DigestAlgName(d.Alg), "bytes": hex.EncodeToString(d.Bytes)}
	return out
}

func msgClaimsJSON(c teep.SystemPropertyClaims) map[string]any {
	out := map[string]any{"system-component-id": msgCIDJSON(c.ComponentID)}
	if c.VendorID != nil {
		out["vendor-id"] = msgHex(c.VendorID)
	}
	if c.ClassID != nil {
		out["class-id"] = msgHex(c.ClassID)
	}
	if c.ImageDigest != nil {
		out["image-digest"] = map[string]any{"alg": c.ImageDigest.Alg, "alg-name": suit.DigestAlgName(c.ImageDigest.Alg), "bytes": msgHex(c.ImageDigest.Bytes)}
	}
	if c.ImageSize != nil {
		out["image-size"] = *c.ImageSize
	}
	for k, v := range c.Other {
		out[suit.ParamName(k)] = map[string]any{"label": k, "cbor": msgHex(v)}
	}
	return out
}

// msgJSON renders a message's options by IANA label name, with the values
// they have on the wire in numbering n (err-code differs between the two).
func msgJSON(m teep.Message, n teep.Numbering) map[string]any {
	out := map[string]any{}
	set := func(l teep.Label, present bool, v any) {
		if present {
			out[l.String()] = v
		}
	}
	ext := func(x teep.Extensions) {
		for k, v := range x {
			out[strconv.FormatUint(k, 10)] = map[string]any{"cbor": msgHex(v)}
		}
	}
	payload := func(format string, p []byte) {
		set(teep.LabelAttestationPayloadFormat, format != "", format)
		if p != nil {
			out[teep.LabelAttestationPayload.String()] = map[string]any{"size": len(p), "hex": msgHex(p)}
		}
	}
	errCode := func(c teep.ErrCode) {
		out[teep.LabelErrCode.String()] = n.WireErrCode(c)
		out["err-code-name"] = c.String()
	}
	switch m := m.(type) {
	case *teep.QueryRequest:
		set(teep.LabelToken, m.Token != nil, msgHex(m.Token))
		set(teep.LabelSupportedFreshnessMechanisms, m.SupportedFreshnessMechanisms != nil, m.SupportedFreshnessMechanisms)
		set(teep.LabelChallenge, m.Challenge != nil, msgHex(m.Challenge))
		set(teep.LabelVersions, m.Versions != nil, m.Versions)
		payload(m.AttestationPayloadFormat, m.AttestationPayload)
		set(teep.LabelSUITReports, m.SUITReports != nil, msgBlobsJSON(m.SUITReports))
		out[teep.LabelSupportedCipherSuites.String()] = msgSuitesJSON(m.SupportedCipherSuites)
		out[teep.LabelSupportedSUITCOSEProfiles.String()] = msgProfilesJSON(m.SupportedSUITCOSEProfiles)
		out["data-item-requested"] = uint64(m.DataItemRequested)
		ext(m.Extensions)
	case *teep.QueryResponse:
		set(teep.LabelToken, m.Token != nil, msgHex(m.Token))
		if m.SelectedVersion != nil {
			out[teep.LabelSelectedVersion.String()] = *m.SelectedVersion
		}
		payload(m.AttestationPayloadFormat, m.AttestationPayload)
		set(teep.LabelSUITReports, m.SUITReports != nil, msgBlobsJSON(m.SUITReports))
		if m.TCList != nil {
			list := make([]map[string]any, len(m.TCList))
			for i, c := range m.TCList {
				list[i] = msgClaimsJSON(c)
			}
			out[teep.LabelTCList.String()] = list
		}
		if m.RequestedTCList != nil {
			list := make([]map[string]any, len(m.RequestedTCList))
			for i, r := range m.RequestedTCList {
				e := map[string]any{teep.LabelComponentID.String(): msgCIDJSON(r.ComponentID)}
				if r.SequenceNumber != nil {
					e[teep.LabelTCManifestSequenceNumber.String()] = *r.SequenceNumber
				}
				if r.HaveBinary != nil {
					e[teep.LabelHaveBinary.String()] = *r.HaveBinary
				}
				list[i] = e
			}
			out[teep.LabelRequestedTCList.String()] = list
		}
		set(teep.LabelUnneededManifestList, m.UnneededManifestList != nil, msgCIDsJSON(m.UnneededManifestList))
		set(teep.LabelExtList, m.ExtList != nil, m.ExtList)
		ext(m.Extensions)
	case *teep.Update:
		set(teep.LabelToken, m.Token != nil, msgHex(m.Token))
		set(teep.LabelUnneededManifestList, m.UnneededManifestList != nil, msgCIDsJSON(m.UnneededManifestList))
		if m.ManifestList != nil {
			list := make([]map[string]any, len(m.ManifestList))
			for i, env := range m.ManifestList {
				list[i] = msgManifestJSON(env)
			}
			out[teep.LabelManifestList.String()] = list
		}
		payload(m.AttestationPayloadFormat, m.AttestationPayload)
		if m.ErrCode != 0 {
			errCode(m.ErrCode)
		}
		set(teep.LabelErrMsg, m.ErrMsg != "", m.ErrMsg)
		set(teep.LabelErrLang, m.ErrLang != "", m.ErrLang)
		ext(m.Extensions)
	case *teep.Success:
		set(teep.LabelToken, m.Token != nil, msgHex(m.Token))
		set(teep.LabelMsg, m.Msg != "", m.Msg)
		set(teep.LabelSUITReports, m.SUITReports != nil, msgBlobsJSON(m.SUITReports))
		ext(m.Extensions)
	case *teep.Error:
		set(teep.LabelToken, m.Token != nil, msgHex(m.Token))
		set(teep.LabelErrMsg, m.ErrMsg != "", m.ErrMsg)
		set(teep.LabelErrLang, m.ErrLang != "", m.ErrLang)
		set(teep.LabelSupportedCipherSuites, m.SupportedCipherSuites != nil, msgSuitesJSON(m.SupportedCipherSuites))
		set(teep.LabelSupportedFreshnessMechanisms, m.SupportedFreshnessMechanisms != nil, m.SupportedFreshnessMechanisms)
		set(teep.LabelSupportedSUITCOSEProfiles, m.SupportedSUITCOSEProfiles != nil, msgProfilesJSON(m.SupportedSUITCOSEProfiles))
		set(teep.LabelChallenge, m.Challenge != nil, msgHex(m.Challenge))
		set(teep.LabelVersions, m.Versions != nil, m.Versions)
		set(teep.LabelSUITReports, m.SUITReports != nil, msgBlobsJSON(m.SUITReports))
		errCode(m.ErrCode)
		ext(m.Extensions)
	}
	return out
}

func msgSign(e *env, args []string) error {
	fs := newFlags(e, "msg sign", "--key FILE [--key FILE]... [--alg esp256|ed25519|es256|eddsa] [--legacy-numbering] [--hex] [--untagged] [--out FILE] [FILE|-]",
		"Wraps a bare TEEP message (raw CBOR or hex text) in a tagged COSE_Sign1 signed\n"+
			"with the private key FILE, kid = its RFC 9679 thumbprint in the unprotected\n"+
			"header. With several --key flags the result is a COSE_Sign with one signature\n"+
			"per key, the form of an initial QueryRequest. The message must decode in the\n"+
			"chosen numbering; its bytes are signed exactly as given. Output is raw CBOR,\n"+
			"or hex text with --hex, to stdout or --out FILE.")
	var keys listFlag
	fs.Var(&keys, "key", "private key `FILE` (COSE_Key, PEM or JWK); repeat for a COSE_Sign")
	algName := fs.String("alg", "", "signature algorithm (default: ESP256 for P-256, Ed25519 for Ed25519 keys)")
	legacy := fs.Bool("legacy-numbering", false, "the message uses the numbering of drafts -18 to -25")
	hexOut := fs.Bool("hex", false, "write hex text instead of raw CBOR")
	untagged := fs.Bool("untagged", false, "omit the COSE tag (18 / 98)")
	out := fs.String("out", "", "write to `FILE` instead of stdout")
	pos, err := parse(fs, args)
	if err != nil {
		return err
	}
	if len(keys) == 0 {
		return usagef("want --key FILE")
	}
	var alg cose.Algorithm
	if *algName != "" {
		if len(keys) > 1 {
			return usagef("--alg applies to a single --key; with several keys each signs with its default algorithm")
		}
		if alg, err = cosekey.ParseAlg(*algName); err != nil {
			return usageError{err.Error()}
		}
	}
	loaded, err := keyfile.LoadAll(keys)
	if err != nil {
		return err
	}
	signers := make([]*cosekey.Signer, len(loaded))
	for i, k := range loaded {
		if !k.IsPrivate() {
			return fmt.Errorf("key file %s holds a public key; signing needs the private key", keys[i])
		}
		if signers[i], err = cosekey.NewSigner(k, alg); err != nil {
			return fmt.Errorf("key file %s: %w", keys[i], err)
		}
	}
	payload, err := msgReadMessage(e, pos, false)
	if err != nil {
		return err
	}
	if teep.IsSigned(payload) {
		return errors.New("the input is already a COSE structure; msg sign wants a bare TEEP message")
	}
	if _, err := teep.Decode(payload, teep.DecodeOptions{Numbering: msgNumbering(*legacy)}); err != nil {
		return err
	}
	o := &cosekey.SignOptions{Untagged: *untagged}
	var signed []byte
	if len(signers) == 1 {
		signed, err = cosekey.Sign1(payload, signers[0], o)
	} else {
		signed, err = cosekey.SignMulti(payload, signers, o)
	}
	if err != nil {
		return err
	}
	if *hexOut {
		signed = []byte(hex.EncodeToString(signed) + "\n")
	}
	if *out != "" {
		return keyfile.WriteAtomic(*out, signed, 0o644)
	}
	_, err = e.stdout.Write(signed)
	return err
}
