package main

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strconv"
	"strings"

	"github.com/teep-go/teep/cosekey"
	"github.com/teep-go/teep/internal/fetch"
	"github.com/teep-go/teep/internal/keyfile"
	"github.com/teep-go/teep/internal/suitstore"
	"github.com/teep-go/teep/suit"
	"github.com/teep-go/teep/suit/processor"
)

func init() {
	register(&command{path: "suit create", summary: "build and sign a SUIT manifest for a Trusted Component", run: suitCreate})
	register(&command{path: "suit sign", summary: "add an authentication block to a SUIT envelope", run: suitSign})
	register(&command{path: "suit inspect", summary: "show what a SUIT envelope contains", run: suitInspect})
	register(&command{path: "suit verify", summary: "check a SUIT envelope's signature and digests", run: suitVerify})
	register(&command{path: "suit process", summary: "install SUIT envelopes into a directory component store", run: suitProcess})
	register(&command{path: "suit uninstall", summary: "unlink installed manifests from a directory component store", run: suitUninstall})
	register(&command{path: "suit list", summary: "list manifests and components in a directory component store", run: suitList})
	register(&command{path: "suit report", summary: "decode a SUIT_Report", run: suitReportCmd})
}

// suitMaxInput bounds envelopes and payloads read whole.
const suitMaxInput = suit.DefaultMaxEnvelopeSize

// suitReadFile reads a file whole (bounded); "-" is stdin.
func suitReadFile(e *env, name string, limit int64) ([]byte, error) {
	return readInput(e, []string{name}, limit)
}

// suitDecodeInput accepts raw CBOR or hex text (as in testdata/*.hex).
func suitDecodeInput(data []byte) []byte {
	t := bytes.Join(bytes.Fields(data), nil)
	out := make([]byte, hex.DecodedLen(len(t)))
	if _, err := hex.Decode(out, t); err != nil || len(t) == 0 {
		return data
	}
	return out
}

func suitReadEnvelope(e *env, name string) ([]byte, *suit.Envelope, error) {
	return suitReadEnvelopeWith(e, name, suit.ParseOptions{})
}

// suitReadEnvelopeWith reads an envelope with parse options o (inspect keeps
// members it does not know; everything else refuses them).
func suitReadEnvelopeWith(e *env, name string, o suit.ParseOptions) ([]byte, *suit.Envelope, error) {
	data, err := suitReadFile(e, name, suitMaxInput)
	if err != nil {
		return nil, nil, err
	}
	data = suitDecodeInput(data)
	env, err := suit.ParseEnvelope(data, o)
	if err != nil {
		return nil, nil, fmt.Errorf("%s: %w", name, err)
	}
	return data, env, nil
}

// suitComponentID joins repeated --component-id (or --manifest-id) values
// into one id. Each value is a component id in the text form of package suit
// (docs/suit.md, "Component ids"): one segment ("hex:8d82", "ta") or several
// joined by "/".
func suitComponentID(vals []string) (suit.ComponentID, error) {
	var id suit.ComponentID
	for _, v := range vals {
		part, err := suit.ParseComponentID(v)
		if err != nil {
			return nil, usagef("component id %q: %v", v, err)
		}
		id = append(id, part...)
	}
	if err := id.Check(); err != nil {
		return nil, usagef("component id: %v", err)
	}
	return id, nil
}

// suitUUID parses 8-4-4-4-12 or 32 hex digits.
func suitUUID(s string) ([]byte, error) {
	b, err := hex.DecodeString(strings.ReplaceAll(s, "-", ""))
	if err != nil || len(b) != 16 {
		return nil, usagef("bad UUID %q (want 8-4-4-4-12 hex)", s)
	}
	return b, nil
}

// suitSecret reads a MAC key or KEK in one of keyfile.ParseSecret's forms.
func suitSecret(e *env, name string) ([]byte, error) {
	data, err := suitReadFile(e, name, 4096)
	if err != nil {
		return nil, err
	}
	key, err := keyfile.ParseSecret(data)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	return key, nil
}

// suitMACKeys parses [KID=]FILE entries.
func suitMACKeys(e *env, specs []string) ([]suit.MACKey, error) {
	var out []suit.MACKey
	for _, s := range specs {
		var kid []byte
		file := s
		if k, f, ok := strings.Cut(s, "="); ok {
			kid, file = []byte(k), f
		}
		key, err := suitSecret(e, file)
		if err != nil {
			return nil, err
		}
		out = append(out, suit.MACKey{KID: kid, Key: key})
	}
	return out, nil
}

func suitSigners(keys []string) ([]*cosekey.Signer, error) {
	var out []*cosekey.Signer
	for _, f := range keys {
		k, err := keyfile.Load(f)
		if err != nil {
			return nil, err
		}
		s, err := cosekey.NewSigner(k, 0)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", f, err)
		}
		out = append(out, s)
	}
	return out, nil
}

func suitWriteOut(e *env, out string, data []byte) error {
	if out == "" || out == "-" {
		_, err := e.stdout.Write(data)
		return err
	}
	return keyfile.WriteAtomic(out, data, 0o644)
}

var suitContentAlgs = map[string]int64{
	"a128gcm": suit.AlgA128GCM, "a192gcm": suit.AlgA192GCM, "a256gcm": suit.AlgA256GCM,
	"a128ctr": suit.AlgA128CTR, "a192ctr": suit.AlgA192CTR, "a256ctr": suit.AlgA256CTR,
	"chacha20-poly1305": suit.AlgChaCha20Poly1305,
}

func suitCreate(e *env, args []string) error {
	fs := newFlags(e, "suit create",
		"--component-id ID [--component-id ID]... --payload FILE (--integrated | --uri URL | --inline) --sequence N [--vendor-id UUID] [--class-id UUID] [--depends-on ENVELOPE]... --key FILE --out FILE",
		`Builds a SUIT envelope for one component and signs it (COSE_Sign1, ESP256 or
Ed25519 by key type; kid = RFC 9679 thumbprint). ID is a component id:
segments joined by "/", each text or hex after "hex:" (docs/suit.md); repeated
values are joined. Without --vendor-id and --class-id the manifest has no identity
conditions. The image digest (SHA-256) and size are computed from the payload;
with --uri a large payload is hashed as a stream and never loaded whole.

Sections generated: shared (identity checks, digest, size), dependency-resolution
and process-dependency per --depends-on, install (fetch or write, image-match),
validate (image-match) and, with a manifest component id, uninstall (unlink).
Text (--description) is severed. Encrypted payloads (--encrypt-to, --encrypt-kek)
keep the digest over the plaintext; with --uri the ciphertext is written to
--encrypted-out for publishing.`)
	var comp, mcid, deps, keys, macKeys, sever listFlag
	fs.Var(&comp, "component-id", "component id: segments joined by \"/\", each text or hex:HEX (repeat to append segments; required)")
	fs.Var(&mcid, "manifest-component-id", "manifest component id, in the --component-id syntax (repeatable; default: the component id with a final 'ta' segment replaced by 'suit', as TEEP does, else with 'suit' appended)")
	payload := fs.String("payload", "", "payload file (required)")
	integrated := fs.Bool("integrated", false, "carry the payload in the envelope")
	integratedKey := fs.String("integrated-key", "", `envelope key of an integrated payload (default "#payload")`)
	uri := fs.String("uri", "", "URI the device fetches the payload from")
	inline := fs.Bool("inline", false, "write the payload from the manifest itself (small data such as personalization)")
	seq := fs.String("sequence", "", "manifest sequence number (required)")
	vendor := fs.String("vendor-id", "", "vendor UUID (adds a vendor-identifier condition)")
	class := fs.String("class-id", "", "class UUID (adds a class-identifier condition; needs --vendor-id)")
	fs.Var(&deps, "depends-on", "envelope this manifest depends on (repeatable)")
	depURI := fs.String("depends-on-uri", "", "URI the device fetches the dependency from (default: integrated in the envelope)")
	fs.Var(&keys, "key", "signing key file (repeatable: one block per key)")
	fs.Var(&macKeys, "mac-key", "[KID=]FILE with an HMAC-256 key: adds a COSE_Mac0 block (repeatable)")
	out := fs.String("out", "", "output file (required)")
	encryptTo := fs.String("encrypt-to", "", "device public key (P-256) to encrypt the payload to (ECDH-ES+A128KW)")
	encryptKEK := fs.String("encrypt-kek", "", "[KID=]FILE with an AES key-encryption key (A128KW/A256KW)")
	contentAlg := fs.String("content-alg", "a128gcm", "payload encryption: a128gcm, a256gcm, a128ctr, a256ctr, chacha20-poly1305")
	encOut := fs.String("encrypted-out", "", "where to write the encrypted payload to publish at --uri")
	tagged := fs.Bool("tagged", false, "emit SUIT_Envelope_Tagged (tag 107); TEEP uses untagged envelopes")
	refURI := fs.String("reference-uri", "", "suit-reference-uri")
	desc := fs.String("description", "", "manifest description (severed suit-text)")
	noValidate := fs.Bool("no-validate", false, "omit the validate section")
	noUninstall := fs.Bool("no-uninstall", false, "omit the uninstall section")
	fs.Var(&sever, "sever", "sever a member: install, dependency-resolution (repeatable)")
	pos, err := parse(fs, args)
	if err != nil {
		return err
	}
	modes := 0
	for _, on := range []bool{*integrated, *uri != "", *inline} {
		if on {
			modes++
		}
	}
	switch {
	case len(pos) != 0:
		return usagef("unexpected arguments %v", pos)
	case len(comp) == 0 || *payload == "" || *seq == "" || *out == "":
		return usagef("--component-id, --payload, --sequence and --out are required")
	case modes != 1:
		return usagef("give exactly one of --integrated, --uri and --inline")
	case len(keys) == 0 && len(macKeys) == 0:
		return usagef("--key (or --mac-key) is required")
	case *encryptTo != "" && *encryptKEK != "":
		return usagef("give at most one of --encrypt-to and --encrypt-kek")
	case *encOut != "" && (*uri == "" || (*encryptTo == "" && *encryptKEK == "")):
		return usagef("--encrypted-out goes with --uri and encryption")
	}
	seqNum, err := strconv.ParseUint(*seq, 10, 64)
	if err != nil {
		return usagef("bad --sequence %q", *seq)
	}
	spec := suit.ManifestSpec{SequenceNumber: seqNum, Tagged: *tagged, ReferenceURI: *refURI, Description: *desc,
		NoValidate: *noValidate, NoUninstall: *noUninstall}
	cid, err := suitComponentID(comp)
	if err != nil {
		return err
	}
	if len(mcid) > 0 {
		if spec.ManifestComponentID, err = suitComponentID(mcid); err != nil {
			return err
		}
	} else {
		spec.ManifestComponentID = suitDefaultManifestID(cid)
	}
	if *vendor != "" {
		if spec.VendorID, err = suitUUID(*vendor); err != nil {
			return err
		}
	}
	if *class != "" {
		if spec.ClassID, err = suitUUID(*class); err != nil {
			return err
		}
	}
	for _, s := range sever {
		switch s {
		case "install":
			spec.Sever = append(spec.Sever, suit.SectionInstall)
		case "dependency-resolution":
			spec.Sever = append(spec.Sever, suit.SectionDependencyResolution)
		default:
			return usagef("cannot sever %q", s)
		}
	}
	cs := suit.ComponentSpec{ID: cid, URI: *uri, Integrated: *integrated, IntegratedKey: *integratedKey, Inline: *inline}
	encrypt := *encryptTo != "" || *encryptKEK != ""
	if *uri != "" && !encrypt {
		// Hash the payload as a stream: it may be far larger than memory.
		d, n, err := suitHashFile(*payload)
		if err != nil {
			return err
		}
		cs.Digest, cs.Size = &d, uint64(n)
	} else if cs.Payload, err = suitReadFile(e, *payload, suitMaxInput); err != nil {
		return err
	}
	if encrypt {
		alg, ok := suitContentAlgs[strings.ToLower(*contentAlg)]
		if !ok {
			return usagef("unknown --content-alg %q", *contentAlg)
		}
		o := &suit.EncryptOptions{ContentAlg: alg}
		if *encryptTo != "" {
			k, err := keyfile.Load(*encryptTo)
			if err != nil {
				return err
			}
			if o.RecipientKey, err = k.ECDHPublic(); err != nil {
				return fmt.Errorf("--encrypt-to: %w", err)
			}
			o.KID = k.KID()
		} else {
			mk, err := suitMACKeys(e, []string{*encryptKEK})
			if err != nil {
				return err
			}
			o.KEK, o.KID = mk[0].Key, mk[0].KID
		}
		cs.Encrypt = o
	}
	spec.Components = []suit.ComponentSpec{cs}
	for _, d := range deps {
		data, _, err := suitReadEnvelope(e, d)
		if err != nil {
			return err
		}
		spec.Dependencies = append(spec.Dependencies, suit.DependencySpec{Envelope: data, URI: *depURI})
	}
	signers, err := suitSigners(keys)
	if err != nil {
		return err
	}
	macs, err := suitMACKeys(e, macKeys)
	if err != nil {
		return err
	}
	env, detached, err := suit.BuildDetached(spec)
	if err != nil {
		return err
	}
	if len(detached) > 0 && *encOut == "" {
		return usagef("the encrypted payload must be published at %s: give --encrypted-out FILE", *uri)
	}
	raw, err := suitAuthenticate(env, signers, macs)
	if err != nil {
		return err
	}
	if len(detached) > 0 {
		if err := keyfile.WriteAtomic(*encOut, detached[0].Data, 0o644); err != nil {
			return err
		}
	}
	if err := keyfile.WriteAtomic(*out, raw, 0o644); err != nil {
		return err
	}
	fmt.Fprintf(e.stderr, "wrote %s (%d bytes), manifest digest %s\n", *out, len(raw), hex.EncodeToString(env.Digest().Bytes))
	return nil
}

func suitHashFile(name string) (suit.Digest, int64, error) {
	f, err := os.Open(name)
	if err != nil {
		return suit.Digest{}, 0, err
	}
	defer f.Close()
	h := sha256.New()
	n, err := io.Copy(h, bufio.NewReaderSize(f, 1<<20))
	if err != nil {
		return suit.Digest{}, 0, fmt.Errorf("read %s: %w", name, err)
	}
	return suit.Digest{Alg: suit.AlgSHA256, Bytes: h.Sum(nil)}, n, nil
}

func suitSign(e *env, args []string) error {
	fs := newFlags(e, "suit sign", "--key FILE [--key FILE]... [--mac-key [KID=]FILE] [--out FILE] ENVELOPE",
		"Adds a COSE_Sign1 authentication block per key (and a COSE_Mac0 block per MAC key)\n"+
			"over the envelope's manifest digest, after re-checking the digest. The\n"+
			"envelope goes to --out, or to stdout.")
	var keys, macKeys listFlag
	fs.Var(&keys, "key", "signing key file (repeatable)")
	fs.Var(&macKeys, "mac-key", "[KID=]FILE with an HMAC-256 key (repeatable)")
	out := fs.String("out", "", "output file (default stdout)")
	strip := fs.Bool("replace", false, "drop the existing authentication blocks first (re-signing intermediary)")
	pos, err := parse(fs, args)
	if err != nil {
		return err
	}
	if len(pos) != 1 || (len(keys) == 0 && len(macKeys) == 0) {
		return usagef("want --key FILE and one ENVELOPE")
	}
	_, env, err := suitReadEnvelope(e, pos[0])
	if err != nil {
		return err
	}
	signers, err := suitSigners(keys)
	if err != nil {
		return err
	}
	macs, err := suitMACKeys(e, macKeys)
	if err != nil {
		return err
	}
	if *strip {
		if err := env.StripAuth(); err != nil {
			return err
		}
	}
	raw, err := suitAuthenticate(env, signers, macs)
	if err != nil {
		return err
	}
	return suitWriteOut(e, *out, raw)
}

// suitAuthenticate adds a COSE_Sign1 block per signer and a COSE_Mac0 block
// per MAC key, and returns the envelope.
func suitAuthenticate(env *suit.Envelope, signers []*cosekey.Signer, macs []suit.MACKey) ([]byte, error) {
	if len(signers) > 0 {
		if err := env.Sign(signers...); err != nil {
			return nil, err
		}
	}
	for _, m := range macs {
		if err := env.SignMAC(m, 0); err != nil {
			return nil, err
		}
	}
	return env.Marshal(suit.MarshalOptions{})
}

// ---- inspect ----

func suitAlgName(alg int64) string { return suit.AuthAlgName(alg) }

func suitInspect(e *env, args []string) error {
	fs := newFlags(e, "suit inspect", "[--json] FILE",
		"Prints the envelope: sequence number, manifest component id, components and\n"+
			"dependencies (each as a list of hex segments), the manifest digest, each\n"+
			"authentication block's algorithm and kid, and the severable members. FILE may be\n"+
			"raw CBOR or hex; \"-\" reads stdin. Signatures are not checked (use suit verify).\n"+
			"Members it does not know (e.g. suit-coswid, 14) are listed by key and size; verify\n"+
			"and process refuse such an envelope, naming the member.")
	asJSON := fs.Bool("json", false, "print JSON")
	pos, err := parse(fs, args)
	if err != nil {
		return err
	}
	if len(pos) != 1 {
		return usagef("want exactly one FILE")
	}
	_, env, err := suitReadEnvelopeWith(e, pos[0], suit.ParseOptions{KeepUnknownUnsafe: true})
	if err != nil {
		return err
	}
	d := suit.Inspect(env)
	if *asJSON {
		return writeJSON(e, d)
	}
	w := e.stdout
	m := env.Manifest()
	fmt.Fprintf(w, "manifest-sequence-number: %d\n", d.SequenceNumber)
	if m.ComponentID != nil {
		fmt.Fprintf(w, "manifest-component-id: [%s]  %s\n", strings.Join(d.ManifestComponentID, " "), m.ComponentID)
	} else {
		fmt.Fprintln(w, "manifest-component-id: (none)")
	}
	fmt.Fprintf(w, "manifest-digest: %s (%s)\n", d.ManifestDigest.Hex, d.ManifestDigest.Alg)
	fmt.Fprintf(w, "tagged: %v\n", d.Tagged)
	if d.ReferenceURI != nil {
		fmt.Fprintf(w, "reference-uri: %s\n", *d.ReferenceURI)
	}
	fmt.Fprintln(w, "components:")
	for i, c := range m.Common.Components {
		fmt.Fprintf(w, "  [%d] [%s]  %s\n", i, strings.Join(c.Hex(), " "), c)
	}
	fmt.Fprintln(w, "dependencies:")
	for _, dep := range m.Common.Dependencies {
		fmt.Fprintf(w, "  [%d] prefix [%s]  %s\n", dep.Index, strings.Join(dep.Prefix.Hex(), " "), dep.Prefix)
	}
	fmt.Fprintln(w, "authentication:")
	if len(d.Authentication) == 0 {
		fmt.Fprintln(w, "  (none: digest only, not authentic)")
	}
	for i, a := range d.Authentication {
		kid := a.KID
		if kid == "" {
			kid = "(none)"
		}
		fmt.Fprintf(w, "  [%d] %s alg %s (%d) kid %s\n", i, a.Type, a.Alg, a.AlgID, kid)
	}
	fmt.Fprintf(w, "sections: %s\n", strings.Join(d.Sections, ", "))
	fmt.Fprintln(w, "severable-members:")
	for _, s := range d.SeverableMembers {
		state := "inline"
		switch {
		case s.Severed && s.Present:
			state = "severed, present in envelope"
		case s.Severed:
			state = "severed, missing"
		}
		fmt.Fprintf(w, "  %s: %s\n", s.Name, state)
	}
	if len(d.Integrated) > 0 {
		fmt.Fprintln(w, "integrated:")
		for _, p := range d.Integrated {
			fmt.Fprintf(w, "  %q: %d bytes\n", p.Key, p.Size)
		}
	}
	if d.Description != "" {
		fmt.Fprintf(w, "description: %s\n", d.Description)
	}
	if len(d.Unknown) > 0 {
		fmt.Fprintln(w, "unknown members (not interpreted; verify and process refuse them):")
		for _, u := range d.Unknown {
			fmt.Fprintf(w, "  %s member %d: %d bytes\n", u.In, u.Key, u.Size)
		}
	}
	return nil
}

func suitVerify(e *env, args []string) error {
	fs := newFlags(e, "suit verify", "--key FILE [--key FILE]... [--mac-key [KID=]FILE]... ENVELOPE",
		"Exits 0 iff the manifest digest matches the manifest, every severed member present\n"+
			"matches its digest, and an authentication block verifies with one of the keys.")
	var keys, macKeys listFlag
	fs.Var(&keys, "key", "trusted public key file (repeatable)")
	fs.Var(&macKeys, "mac-key", "[KID=]FILE with an HMAC key (repeatable)")
	pos, err := parse(fs, args)
	if err != nil {
		return err
	}
	if len(pos) != 1 || (len(keys) == 0 && len(macKeys) == 0) {
		return usagef("want --key FILE and one ENVELOPE")
	}
	trust, err := keyfile.LoadAll(keys)
	if err != nil {
		return err
	}
	macs, err := suitMACKeys(e, macKeys)
	if err != nil {
		return err
	}
	_, env, err := suitReadEnvelope(e, pos[0])
	if err != nil {
		return err
	}
	v, err := env.Verify(trust, macs...)
	if err != nil {
		return err
	}
	b := env.AuthBlocks()[v.Index]
	fmt.Fprintf(e.stdout, "authentic: block %d (%s, %s, kid %s), manifest digest %s\n",
		v.Index, b.Kind, suitAlgName(int64(v.Alg)), suitKIDText(v.KID), hex.EncodeToString(env.Digest().Bytes))
	return nil
}

// ---- process ----

// suitProcessJSON is what suit process and suit uninstall print: the
// overall result, every component changed, the last run's report and each
// run.
type suitProcessJSON struct {
	Result     string                    `json:"result"`
	Components []processor.ComponentView `json:"components"`
	Report     suit.ReportView           `json:"report"`
	Runs       []processor.ResultView    `json:"runs"`
}

// suitProcessorFlags are the flags shared by process and uninstall.
type suitProcessorFlags struct {
	trust, macKeys, vendor, class, device, kek, fetchMap, slots listFlag
	store, deviceKey, fetchDir, nonce                           *string
	offline, allowHTTP, text                                    *bool
}

func suitAddProcessorFlags(fs *flag.FlagSet, f *suitProcessorFlags) {
	fs.Var(&f.trust, "trust", "trusted signer public key (repeatable)")
	fs.Var(&f.macKeys, "mac-key", "[KID=]FILE with a trusted HMAC key (repeatable)")
	f.store = fs.String("store", "", "component store directory (required)")
	f.deviceKey = fs.String("device-key", "", "device P-256 private key for ECDH-ES encrypted payloads")
	fs.Var(&f.kek, "kek", "[KID=]FILE with an AES key-encryption key (repeatable)")
	fs.Var(&f.vendor, "vendor-id", "vendor UUID the device asserts (repeatable)")
	fs.Var(&f.class, "class-id", "class UUID the device asserts (repeatable)")
	fs.Var(&f.device, "device-id", "device UUID the device asserts (repeatable)")
	fs.Var(&f.slots, "slot", "COMPONENT=N: the component slot the device has for COMPONENT (text form of docs/suit.md), for condition-component-slot (repeatable)")
	f.fetchDir = fs.String("fetch-dir", "", "serve URIs from DIR/<last path segment> before the network")
	fs.Var(&f.fetchMap, "fetch-map", "URI=FILE served from a local file (repeatable)")
	f.offline = fs.Bool("offline", false, "never use the network (only integrated payloads and --fetch-dir/--fetch-map)")
	f.allowHTTP = fs.Bool("allow-http", false, "permit plain http:// URIs (insecure)")
	f.nonce = fs.String("nonce", "", "hex suit-report-nonce (TEEP token)")
	f.text = fs.Bool("text", false, "print a human summary instead of JSON")
}

func suitOpenProcessor(e *env, f *suitProcessorFlags, needTrust bool) (*processor.Processor, *suitstore.Store, error) {
	if *f.store == "" {
		return nil, nil, usagef("--store DIR is required")
	}
	if needTrust && len(f.trust) == 0 && len(f.macKeys) == 0 {
		return nil, nil, usagef("--trust FILE (or --mac-key) is required")
	}
	cfg := processor.Config{SkipFetchIfPresent: true}
	var err error
	if cfg.Slot, err = suitSlots(f.slots); err != nil {
		return nil, nil, err
	}
	if cfg.Trust, err = keyfile.LoadAll(f.trust); err != nil {
		return nil, nil, err
	}
	if cfg.MACKeys, err = suitMACKeys(e, f.macKeys); err != nil {
		return nil, nil, err
	}
	if *f.deviceKey != "" {
		if cfg.DeviceKey, err = keyfile.Load(*f.deviceKey); err != nil {
			return nil, nil, err
		}
	}
	keks, err := suitMACKeys(e, f.kek)
	if err != nil {
		return nil, nil, err
	}
	for _, k := range keks {
		cfg.Decryption.KEKs = append(cfg.Decryption.KEKs, suit.KEK(k))
	}
	for _, set := range []struct {
		in  []string
		out *[][]byte
	}{{f.vendor, &cfg.Identity.VendorIDs}, {f.class, &cfg.Identity.ClassIDs}, {f.device, &cfg.Identity.DeviceIDs}} {
		for _, s := range set.in {
			u, err := suitUUID(s)
			if err != nil {
				return nil, nil, err
			}
			*set.out = append(*set.out, u)
		}
	}
	files := &fetch.Files{Dir: *f.fetchDir, Map: map[string]string{}}
	for _, m := range f.fetchMap {
		u, file, ok := strings.Cut(m, "=")
		if !ok {
			return nil, nil, usagef("bad --fetch-map %q (want URI=FILE)", m)
		}
		files.Map[u] = file
	}
	chain := fetch.Chain{files}
	if !*f.offline {
		chain = append(chain, &fetch.HTTP{AllowHTTPUnsafe: *f.allowHTTP, UserAgent: "teep-suit"})
	}
	cfg.Fetcher = chain
	store, err := suitstore.Open(*f.store)
	if err != nil {
		return nil, nil, err
	}
	cfg.Store = store
	p, err := processor.New(cfg)
	if err != nil {
		store.Close()
		return nil, nil, err
	}
	return p, store, nil
}

func suitRunOptions(f *suitProcessorFlags) (processor.RunOptions, error) {
	var o processor.RunOptions
	if *f.nonce != "" {
		n, err := hex.DecodeString(*f.nonce)
		if err != nil {
			return o, usagef("bad --nonce: %v", err)
		}
		o.Nonce = n
	}
	return o, nil
}

func suitProcess(e *env, args []string) error {
	fs := newFlags(e, "suit process", "--trust FILE... --store DIR [--device-key FILE] [--json] ENVELOPE...",
		`Runs the SUIT Update procedure (dependencies included) for each envelope into a
directory-backed component store: authenticate, check identity and rollback,
fetch, decrypt, check digests, and commit atomically. Envelopes are processed in
order; processing stops at the first failure (nothing of the failed envelope is
installed). Prints JSON: "result" ("success" or "failure"), "components"
installed or removed ("id" as hex segments, "sha256", "size"), "report" (the
SUIT_Report of the last run, also as CBOR hex) and "runs" (one entry per
envelope). Exits 1 on failure with the reason on stderr.`)
	var f suitProcessorFlags
	suitAddProcessorFlags(fs, &f)
	fs.Bool("json", true, "print JSON (the default)")
	pos, err := parse(fs, args)
	if err != nil {
		return err
	}
	if len(pos) == 0 {
		return usagef("want at least one ENVELOPE")
	}
	o, err := suitRunOptions(&f)
	if err != nil {
		return err
	}
	envelopes := make([][]byte, len(pos))
	for i, name := range pos {
		data, err := suitReadFile(e, name, suitMaxInput)
		if err != nil {
			return err
		}
		envelopes[i] = suitDecodeInput(data)
	}
	p, store, err := suitOpenProcessor(e, &f, true)
	if err != nil {
		return err
	}
	defer store.Close()
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	out := suitProcessJSON{Result: "success", Components: []processor.ComponentView{}}
	var failure error
	for i, data := range envelopes {
		res, err := p.Install(ctx, data, o)
		run := processor.NewResultView(res)
		run.Envelope = pos[i]
		out.Runs = append(out.Runs, run)
		out.Components = append(out.Components, run.Components...)
		out.Report = run.Report
		if err != nil {
			out.Result = "failure"
			failure = fmt.Errorf("%s: %s: %w", pos[i], res.Failure.Reason, err)
			break
		}
	}
	if err := suitPrintRuns(e, out, *f.text); err != nil {
		return err
	}
	return failure
}

func suitPrintRuns(e *env, out suitProcessJSON, text bool) error {
	if !text {
		return writeJSON(e, out)
	}
	for _, r := range out.Runs {
		fmt.Fprintf(e.stdout, "%s: %s (manifest [%s], sequence %d)\n", r.Envelope, r.Result, strings.Join(r.ManifestComponentID, " "), r.SequenceNumber)
		for _, c := range r.Components {
			fmt.Fprintf(e.stdout, "  %s [%s] %d bytes sha256 %s\n", c.Action, strings.Join(c.ID, " "), c.Size, c.SHA256)
		}
		if r.Error != "" {
			fmt.Fprintf(e.stdout, "  %s: %s\n", r.Reason, r.Error)
		}
	}
	return nil
}

func suitUninstall(e *env, args []string) error {
	fs := newFlags(e, "suit uninstall", "--store DIR --manifest-id ID [--manifest-id ID]... [--next --manifest-id ID...]...",
		`Removes the root reference to an installed manifest (TEEP unneeded-manifest-list).
When nothing else references it, its suit-uninstall sequence runs and what only it
linked is removed. Give the manifest component id with --manifest-id
(segments joined by "/", each text or hex after "hex:"; repeat the flag to
append segments); separate several manifests with --next.
The device identity flags matter: the shared sequence (with its identity
checks) runs before the uninstall sequence. Prints JSON like suit process.`)
	var f suitProcessorFlags
	suitAddProcessorFlags(fs, &f)
	var segs listFlag
	fs.Var(&segs, "manifest-id", "manifest component id, in the --component-id syntax (repeatable)")
	fs.BoolFunc("next", "start the next manifest component id", func(string) error {
		segs = append(segs, "\x00next")
		return nil
	})
	pos, err := parse(fs, args)
	if err != nil {
		return err
	}
	if len(pos) != 0 || len(segs) == 0 {
		return usagef("want --manifest-id ID and no arguments")
	}
	o, err := suitRunOptions(&f)
	if err != nil {
		return err
	}
	var ids []suit.ComponentID
	var cur []string
	for _, s := range append(append([]string{}, segs...), "\x00next") {
		if s == "\x00next" {
			if len(cur) > 0 {
				id, err := suitComponentID(cur)
				if err != nil {
					return err
				}
				ids = append(ids, id)
			}
			cur = nil
			continue
		}
		cur = append(cur, s)
	}
	p, store, err := suitOpenProcessor(e, &f, false)
	if err != nil {
		return err
	}
	defer store.Close()
	out := suitProcessJSON{Result: "success", Components: []processor.ComponentView{}}
	var failure error
	for _, id := range ids {
		res, err := p.Uninstall(context.Background(), id, o)
		run := processor.NewResultView(res)
		out.Runs = append(out.Runs, run)
		out.Components = append(out.Components, run.Components...)
		out.Report = run.Report
		if err != nil {
			out.Result = "failure"
			failure = fmt.Errorf("%s: %s: %w", id, res.Failure.Reason, err)
			break
		}
	}
	if err := suitPrintRuns(e, out, *f.text); err != nil {
		return err
	}
	return failure
}

func suitList(e *env, args []string) error {
	fs := newFlags(e, "suit list", "--store DIR", "Prints the installed manifests and components as JSON.")
	dir := fs.String("store", "", "component store directory (required)")
	pos, err := parse(fs, args)
	if err != nil {
		return err
	}
	if len(pos) != 0 || *dir == "" {
		return usagef("want --store DIR")
	}
	store, err := suitstore.Open(*dir)
	if err != nil {
		return err
	}
	defer store.Close()
	ctx := context.Background()
	recs, err := store.Manifests(ctx)
	if err != nil {
		return err
	}
	comps, err := store.Components(ctx)
	if err != nil {
		return err
	}
	out := struct {
		Manifests  []processor.ManifestView  `json:"manifests"`
		Components []processor.ComponentView `json:"components"`
	}{Manifests: []processor.ManifestView{}, Components: []processor.ComponentView{}}
	for _, r := range recs {
		out.Manifests = append(out.Manifests, processor.NewManifestView(r))
	}
	for _, c := range comps {
		out.Components = append(out.Components, processor.ComponentView{ID: c.ID.Hex(), Size: c.Size})
	}
	return writeJSON(e, out)
}

func suitReportCmd(e *env, args []string) error {
	fs := newFlags(e, "suit report", "[--key FILE]... FILE",
		"Decodes a SUIT_Report (raw CBOR or hex) and prints it as JSON. With --key the\n"+
			"report must be a COSE_Sign1-protected report signed by one of the keys.")
	var keys listFlag
	fs.Var(&keys, "key", "public key of a protected report (repeatable)")
	pos, err := parse(fs, args)
	if err != nil {
		return err
	}
	if len(pos) != 1 {
		return usagef("want exactly one FILE")
	}
	data, err := suitReadFile(e, pos[0], suit.MaxReportSize)
	if err != nil {
		return err
	}
	data = suitDecodeInput(data)
	var r *suit.Report
	if len(keys) > 0 {
		trust, err := keyfile.LoadAll(keys)
		if err != nil {
			return err
		}
		r, err = suit.VerifyReport(data, trust)
		if err != nil {
			return err
		}
	} else if r, err = suit.ParseReport(data); err != nil {
		return err
	}
	raw, err := r.Marshal()
	if err != nil {
		return err
	}
	return writeJSON(e, suit.NewReportView(r, raw))
}

func suitKIDText(kid []byte) string {
	if kid == nil {
		return "(none)"
	}
	return hex.EncodeToString(kid)
}

// suitDefaultManifestID follows the TEEP convention [..., tc-uuid, 'ta'] ->
// [..., tc-uuid, 'suit']. Any other id gets a 'suit' segment appended, so
// two components never share a manifest id by default.
func suitDefaultManifestID(cid suit.ComponentID) suit.ComponentID {
	out := cid.Clone()
	if len(out) > 1 && string(out[len(out)-1]) == "ta" {
		out[len(out)-1] = []byte("suit")
		return out
	}
	return append(out, []byte("suit"))
}

// suitSlots reads --slot COMPONENT=N flags into the processor's answer to
// condition-component-slot; without any, the condition fails as on a device
// that has no slots.
func suitSlots(specs []string) (func(suit.ComponentID) (uint64, bool), error) {
	if len(specs) == 0 {
		return nil, nil
	}
	slots := map[string]uint64{}
	for _, s := range specs {
		comp, n, ok := strings.Cut(s, "=")
		if !ok {
			return nil, usagef("--slot %q: want COMPONENT=N", s)
		}
		id, err := suit.ParseComponentID(comp)
		if err != nil {
			return nil, usagef("--slot %q: %v", s, err)
		}
		v, err := strconv.ParseUint(n, 10, 64)
		if err != nil {
			return nil, usagef("--slot %q: slot %q is not a number", s, n)
		}
		if _, dup := slots[id.Key()]; dup {
			return nil, usagef("--slot: %s given twice", id)
		}
		slots[id.Key()] = v
	}
	return func(id suit.ComponentID) (uint64, bool) {
		v, ok := slots[id.Key()]
		return v, ok
	}, nil
}
