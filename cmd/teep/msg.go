package main

import (
	"bytes"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/teep-go/teep/cosekey"
	"github.com/teep-go/teep/internal/keyfile"
	"github.com/teep-go/teep/suit"
	"github.com/teep-go/teep/teep"
	"github.com/veraison/go-cose"
)

func init() {
	register(&command{path: "msg decode", summary: "decode a TEEP message (bare or signed) to JSON, verifying it with --key", run: msgDecode})
	register(&command{path: "msg sign", summary: "wrap a bare TEEP message in a COSE_Sign1 (or COSE_Sign with several keys)", run: msgSign})
	register(&command{path: "msg encode", summary: "encode a TEEP message from its JSON view (the inverse of msg decode)", run: msgEncode})
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

func msgDecode(e *env, args []string) error {
	fs := newFlags(e, "msg decode", "[--key FILE]... [--legacy-numbering] [--hex] [FILE|-]",
		"Reads one TEEP message - bare, or a COSE_Sign1 (tagged or untagged) or COSE_Sign\n"+
			"carrying one - as raw CBOR or hex text, and prints it as a JSON object: type,\n"+
			"signed, structure, alg, alg_id, kid, verified (only with --key) and message, the\n"+
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
	var m teep.Message
	var opened *teep.Opened
	if teep.IsSigned(data) {
		op, err := teep.Open(data, teep.OpenOptions{Numbering: num, Keys: trusted, SkipVerifyUnsafe: len(trusted) == 0})
		if err != nil {
			if errors.Is(err, cosekey.ErrSignature) || errors.Is(err, cosekey.ErrNoTrustedKey) || errors.Is(err, cosekey.ErrUnsupportedAlg) {
				return fmt.Errorf("signature does not verify with the given key(s): %w", err)
			}
			return err
		}
		m, opened = op.Message, op
	} else {
		if len(trusted) > 0 {
			return errors.New("the message is not signed (no COSE_Sign1 or COSE_Sign), so --key cannot verify it")
		}
		if m, err = teep.Decode(data, teep.DecodeOptions{Numbering: num}); err != nil {
			return err
		}
	}
	return writeJSON(e, teep.NewView(m, opened, len(data), msgViewOptions(num, len(trusted) > 0)))
}

// msgViewOptions lets the TEEP view summarise SUIT envelopes and name digest
// algorithms, which the teep package leaves to the suit package.
func msgViewOptions(num teep.Numbering, verified bool) teep.ViewOptions {
	return teep.ViewOptions{
		Numbering: num, Verified: verified, DigestAlgName: suit.DigestAlgName,
		Envelope: func(envelope []byte) (any, error) { return suit.Summarize(envelope) },
	}
}

// writeJSON prints v as indented JSON, the form of every --json output.
func writeJSON(e *env, v any) error {
	enc := json.NewEncoder(e.stdout)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
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
	signers, err := msgSigners(keys, *algName)
	if err != nil {
		return err
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
	return msgSignAndWrite(e, payload, signers, *untagged, *hexOut, *out)
}

// msgSigners loads private keys for signing; algName applies to one key.
func msgSigners(keys []string, algName string) ([]*cosekey.Signer, error) {
	var alg cose.Algorithm
	var err error
	if algName != "" {
		if len(keys) > 1 {
			return nil, usagef("--alg applies to a single --key; with several keys each signs with its default algorithm")
		}
		if alg, err = cosekey.ParseAlg(algName); err != nil {
			return nil, usageError{err.Error()}
		}
	}
	loaded, err := keyfile.LoadAll(keys)
	if err != nil {
		return nil, err
	}
	signers := make([]*cosekey.Signer, len(loaded))
	for i, k := range loaded {
		if !k.IsPrivate() {
			return nil, fmt.Errorf("key file %s holds a public key; signing needs the private key", keys[i])
		}
		if signers[i], err = cosekey.NewSigner(k, alg); err != nil {
			return nil, fmt.Errorf("key file %s: %w", keys[i], err)
		}
	}
	return signers, nil
}

// msgSignAndWrite signs payload (COSE_Sign1 with one signer, COSE_Sign with
// several, none: the bare message) and writes it raw or as hex.
func msgSignAndWrite(e *env, payload []byte, signers []*cosekey.Signer, untagged, hexOut bool, out string) error {
	o := &cosekey.SignOptions{Untagged: untagged}
	data := payload
	var err error
	switch {
	case len(signers) == 1:
		data, err = cosekey.Sign1(payload, signers[0], o)
	case len(signers) > 1:
		data, err = cosekey.SignMulti(payload, signers, o)
	}
	if err != nil {
		return err
	}
	if hexOut {
		data = []byte(hex.EncodeToString(data) + "\n")
	}
	if out != "" {
		return keyfile.WriteAtomic(out, data, 0o644)
	}
	_, err = e.stdout.Write(data)
	return err
}

// msgMaxJSON bounds the JSON view msg encode reads.
const msgMaxJSON = 64 << 20

func msgEncode(e *env, args []string) error {
	fs := newFlags(e, "msg encode", "[--key FILE]... [--alg ALG] [--hex] [--untagged] [--out FILE] [FILE|-]",
		"Reads the JSON view of a TEEP message, as msg decode --json prints it (type, numbering\n"+
			"and message; the signature members are ignored), and writes the message in the\n"+
			"deterministic CBOR encoding of its numbering: bare, or signed with --key (a COSE_Sign1,\n"+
			"or a COSE_Sign with several keys). The message is validated as the encoder requires;\n"+
			"SUIT envelopes and reports are read from their hex, summaries are ignored. docs/json.md\n"+
			"describes the mapping.")
	var keys listFlag
	fs.Var(&keys, "key", "private key `FILE` to sign with; repeat for a COSE_Sign")
	algName := fs.String("alg", "", "signature algorithm for a single --key")
	hexOut := fs.Bool("hex", false, "write hex text instead of raw CBOR")
	untagged := fs.Bool("untagged", false, "omit the COSE tag (18 / 98)")
	out := fs.String("out", "", "write to `FILE` instead of stdout")
	pos, err := parse(fs, args)
	if err != nil {
		return err
	}
	var signers []*cosekey.Signer
	if len(keys) > 0 {
		if signers, err = msgSigners(keys, *algName); err != nil {
			return err
		}
	}
	in, err := readInput(e, pos, msgMaxJSON)
	if err != nil {
		return err
	}
	m, num, err := teep.ParseView(in)
	if err != nil {
		return err
	}
	payload, err := teep.Encode(m, teep.EncodeOptions{Numbering: num})
	if err != nil {
		return err
	}
	return msgSignAndWrite(e, payload, signers, *untagged, *hexOut, *out)
}
