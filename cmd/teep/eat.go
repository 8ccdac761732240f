package main

import (
	"bytes"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/teep-go/teep/cosekey"
	"github.com/teep-go/teep/eat"
	"github.com/teep-go/teep/internal/keyfile"
)

func init() {
	register(&command{path: "eat create", summary: "sign an EAT (CWT) from JSON claims", run: eatCreate})
	register(&command{path: "eat verify", summary: "verify an EAT and print its claims as JSON", run: eatVerify})
}

// eatMaxClaimsJSON bounds the --claims input.
const eatMaxClaimsJSON = 1 << 20

func eatCreate(e *env, args []string) error {
	fs := newFlags(e, "eat create", "--key FILE [--nonce HEX] [--claims JSON|@FILE] [--hex] [--out FILE]",
		`Signs a CWT (COSE_Sign1, kid = the key's RFC 9679 thumbprint) whose claims come from
--claims: a JSON object keyed by RFC 9711 claim names with byte strings in hex, e.g.
  {"ueid":"01…","oemid":"894823","hwmodel":"736f6674746565","hwversion":["1.0",1],
   "eat_profile":"urn:ietf:rfc:rfcXXXX","cnf":{"kid":"…"},"manifests":[[60,"…"]]}
Unnamed claims are given by number as {"cbor":"HEX"}. The token is written raw to
stdout (or --out FILE); --hex writes hex instead. The TEEP profile uses no CBOR tags, so
the COSE_Sign1 is untagged unless --tagged / --cwt-tag.`)
	keyPath := fs.String("key", "", "signing key file (COSE_Key, PEM or JWK), required")
	nonceHex := fs.String("nonce", "", "eat_nonce in hex (8..64 bytes)")
	claimsArg := fs.String("claims", "", "claims as JSON, or @FILE to read them from a file")
	cnfKey := fs.String("cnf-key", "", "bind the token to this key: cnf kid = its thumbprint")
	iat := fs.Bool("iat", false, "set iat to the current time")
	alg := fs.String("alg", "", "signature algorithm (esp256 or ed25519); default from the key")
	tagged := fs.Bool("tagged", false, "add the COSE_Sign1 tag 18")
	cwtTag := fs.Bool("cwt-tag", false, "wrap in the CWT tag 61")
	asHex := fs.Bool("hex", false, "write hex instead of raw bytes")
	out := fs.String("out", "", "write the token to FILE instead of stdout")
	pos, err := parse(fs, args)
	if err != nil {
		return err
	}
	if len(pos) != 0 || *keyPath == "" {
		return usagef("want --key FILE and no arguments")
	}
	c := &eat.Claims{}
	if *claimsArg != "" {
		data := []byte(*claimsArg)
		if strings.HasPrefix(*claimsArg, "@") {
			if data, err = readInput(e, []string{strings.TrimPrefix(*claimsArg, "@")}, eatMaxClaimsJSON); err != nil {
				return err
			}
		}
		if err := json.Unmarshal(data, c); err != nil {
			return usagef("--claims: %v", err)
		}
	}
	if *nonceHex != "" {
		if c.Nonce != nil || c.Nonces != nil {
			return usagef("eat_nonce given both in --claims and with --nonce")
		}
		if c.Nonce, err = hex.DecodeString(*nonceHex); err != nil {
			return usagef("--nonce: %v", err)
		}
	}
	if *cnfKey != "" {
		k, err := keyfile.Load(*cnfKey)
		if err != nil {
			return err
		}
		if c.CNF != nil {
			return usagef("cnf given both in --claims and with --cnf-key")
		}
		c.CNF = eat.ConfirmKID(k)
	}
	if *iat {
		if c.IssuedAt != nil {
			return usagef("iat given both in --claims and with --iat")
		}
		t := time.Now().Truncate(time.Second).UTC()
		c.IssuedAt = &t
	}
	k, err := keyfile.Load(*keyPath)
	if err != nil {
		return err
	}
	var a = k.Alg()
	if *alg != "" {
		if a, err = cosekey.ParseAlg(*alg); err != nil {
			return usageError{err.Error()}
		}
	}
	s, err := cosekey.NewSigner(k, a)
	if err != nil {
		return err
	}
	tok, err := eat.Sign(c, s, eat.SignOptions{Tagged: *tagged, CWTTag: *cwtTag})
	if err != nil {
		return err
	}
	if *asHex {
		tok = []byte(hex.EncodeToString(tok) + "\n")
	}
	if *out != "" {
		return keyfile.WriteAtomic(*out, tok, 0o644)
	}
	_, err = e.stdout.Write(tok)
	return err
}

func eatVerify(e *env, args []string) error {
	fs := newFlags(e, "eat verify", "--key FILE... [--nonce HEX] [--hex] [FILE|-]",
		`Verifies the COSE_Sign1 signature of an EAT against the given public keys (COSE_Key,
PEM or JWK; --key may repeat; the kid picks the key when it is a thumbprint) and prints
its claims as JSON keyed by RFC 9711 names, byte strings in hex, unnamed claims by number.
Exits 0 only if the signature verifies and, with --nonce, eat_nonce equals HEX.
Departures from the TEEP EAT profile are reported on stderr as warnings.`)
	var keyPaths listFlag
	fs.Var(&keyPaths, "key", "trusted public key file (repeatable, at least one)")
	nonceHex := fs.String("nonce", "", "expected eat_nonce in hex")
	asHex := fs.Bool("hex", false, "the input is hex text")
	lenient := fs.Bool("lenient-unsafe", false, "accept the encodings of draft examples and libteep (listed as warnings)")
	pos, err := parse(fs, args)
	if err != nil {
		return err
	}
	if len(keyPaths) == 0 {
		return usagef("want at least one --key FILE")
	}
	var want []byte
	if *nonceHex != "" {
		if want, err = hex.DecodeString(*nonceHex); err != nil {
			return usagef("--nonce: %v", err)
		}
	}
	keys, err := keyfile.LoadAll(keyPaths)
	if err != nil {
		return err
	}
	for i, k := range keys {
		keys[i] = k.PublicKey()
	}
	in, err := eatReadToken(e, pos, *asHex)
	if err != nil {
		return err
	}
	tok, err := eat.Parse(in, eat.ParseOptions{LenientUnsafe: *lenient})
	if err != nil {
		return err
	}
	if _, err := tok.Verify(keys); err != nil {
		return err
	}
	if want != nil && !bytes.Equal(tok.Claims.Nonce, want) {
		return fmt.Errorf("eat_nonce %x does not match --nonce %x", tok.Claims.Nonce, want)
	}
	j, err := json.MarshalIndent(tok.Claims, "", "  ")
	if err != nil {
		return err
	}
	for _, p := range tok.Claims.ProfileProblems() {
		fmt.Fprintf(e.stderr, "teep eat verify: warning: %s\n", p)
	}
	_, err = fmt.Fprintf(e.stdout, "%s\n", j)
	return err
}

// eatReadToken reads a token from FILE or stdin, as raw bytes or hex text.
func eatReadToken(e *env, pos []string, asHex bool) ([]byte, error) {
	limit := int64(eat.DefaultLimits.MaxTokenSize)
	if asHex {
		limit = 2*limit + 4096 // hex doubles the size; allow line breaks
	}
	in, err := readInput(e, pos, limit)
	if err != nil {
		return nil, err
	}
	if !asHex {
		return in, nil
	}
	b, err := hex.DecodeString(strings.Join(strings.Fields(string(in)), ""))
	if err != nil {
		return nil, fmt.Errorf("--hex input: %w", err)
	}
	if len(b) == 0 {
		return nil, errors.New("--hex input is empty")
	}
	return b, nil
}
