package main

import (
	"context"
	"crypto/tls"
	"encoding/hex"
	"errors"
	"flag"
	"fmt"
	"io"
	iofs "io/fs"
	"net"
	"net/http"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"text/tabwriter"
	"time"

	"github.com/teep-go/teep/cosekey"
	"github.com/teep-go/teep/internal/httpd"
	"github.com/teep-go/teep/internal/keyfile"
	"github.com/teep-go/teep/internal/progress"
	"github.com/teep-go/teep/internal/tam"
	"github.com/teep-go/teep/internal/tam/admin"
	"github.com/teep-go/teep/internal/tam/tamserver"
	"github.com/teep-go/teep/internal/tam/teepcoap"
	"github.com/teep-go/teep/suit"
)

func init() {
	for _, c := range []*command{
		{path: "tam serve", summary: "run the TAM (TEEP over HTTP, admin API, metrics)", run: tamServe},
		{path: "tam key", summary: "print the TAM's public key", run: tamKey},
		{path: "tam token", summary: "print the admin token of a data directory", run: tamToken},
		{path: "tam status", summary: "check a running TAM and show its keys", run: tamStatus},
		{path: "tam tc add", summary: "register a Trusted Component version from a signed SUIT envelope", run: tamTCAdd},
		{path: "tam tc list", summary: "list registered Trusted Components", run: tamTCList},
		{path: "tam tc show", summary: "show a component's versions and policies", run: tamTCShow},
		{path: "tam tc get", summary: "download a stored envelope", run: tamTCGet},
		{path: "tam tc delete", summary: "forget a component (devices have it removed)", run: tamTCDelete},
		{path: "tam policy require", summary: "require (or offer) a component on devices", run: tamPolicyRequire},
		{path: "tam policy remove", summary: "remove policies of a component", run: tamPolicyRemove},
		{path: "tam policy list", summary: "list policies", run: tamPolicyList},
		{path: "tam trust add-signer", summary: "trust a Trusted Component signer key", run: tamTrustAddSigner},
		{path: "tam trust add-agent", summary: "pre-register an Agent key (trusted without attestation)", run: tamTrustAddAgent},
		{path: "tam trust add-verifier", summary: "trust a Verifier's Attestation Result key", run: tamTrustAddVerifier},
		{path: "tam trust remove", summary: "stop trusting a signer or Verifier key", run: tamTrustRemove},
		{path: "tam trust list", summary: "list trusted keys", run: tamTrustList},
		{path: "tam device list", summary: "list devices with their components", run: tamDeviceList},
		{path: "tam device show", summary: "show one device: inventory, failures, reports", run: tamDeviceShow},
		{path: "tam device label", summary: "set a device's labels", run: tamDeviceLabel},
		{path: "tam device reattest", summary: "make a device attest again at its next session", run: tamDeviceReattest},
		{path: "tam device reset", summary: "clear a device's failures and flagged status", run: tamDeviceReset},
		{path: "tam device delete", summary: "forget a device", run: tamDeviceDelete},
		{path: "tam personalize set", summary: "store per-device data, delivered encrypted to the device", run: tamPersonalizeSet},
		{path: "tam personalize list", summary: "list a device's personalization data", run: tamPersonalizeList},
		{path: "tam personalize delete", summary: "delete a device's personalization data", run: tamPersonalizeDelete},
	} {
		register(c)
	}
}

const (
	tamDefaultData   = "./teep-data"
	tamDefaultListen = "127.0.0.1:8080"
	tamDefaultServer = "http://127.0.0.1:8080"
)

// tamServeReady, when set (tests), is called once the TAM listens, with its
// base URL and a function that stops it.
var tamServeReady func(baseURL string, stop func())

// tamServeOptions, when set (tests), adjusts the server options, e.g. a fixed
// clock and random source for byte-exact golden output.
var tamServeOptions func(*tamserver.Options)

func tamServe(e *env, args []string) error {
	fs := newFlags(e, "tam serve", "[--listen 127.0.0.1:8080] [--data DIR] [flags]",
		`Runs the Trusted Application Manager. On first start it creates, in the data directory,
the TAM's signing keys (P-256 and Ed25519), the session key, the admin token (printed once)
and the SQLite database. Agents reach it with TEEP over HTTP (POST --path, default /tam);
operators with the admin API under /admin/v1/ (bearer token), /metrics and /healthz.

Attestation of unknown Agents needs a Verifier: --verifier-policy (in process, background-check),
--verifier-url with --verifier-key (remote Verifier), or --verifier-key alone (passport model:
Agents present Attestation Results). Without one, only Agent keys added with
"teep tam trust add-agent" are served. SIGINT or SIGTERM stop the TAM gracefully.`)
	listen := fs.String("listen", tamDefaultListen, "address for TEEP, admin API and metrics")
	data := fs.String("data", tamDefaultData, "data directory")
	db := fs.String("db", "", "database: a postgres:// URL shared by replicas (or set TEEP_TAM_DB); default SQLite in --data")
	path := fs.String("path", "/tam", "TEEP endpoint path (draft-26 numbering)")
	legacyPath := fs.String("legacy-path", "", "also serve the numbering of drafts 18-25 on this path (e.g. /tam/legacy)")
	adminListen := fs.String("admin-listen", "", "also serve the admin API and metrics here (e.g. a loopback address)")
	tlsCert := fs.String("tls-cert", "", "TLS certificate (PEM); with --tls-key, serve HTTPS")
	tlsKey := fs.String("tls-key", "", "TLS private key (PEM)")
	clientCA := fs.String("client-ca", "", "PEM CA certificates: verify client certificates chaining to them")
	requireClient := fs.Bool("require-client-cert", false, "refuse TEEP clients without a certificate from --client-ca")
	vPolicy := fs.String("verifier-policy", "", "Verifier policy file: appraise Evidence in process (background-check)")
	vURL := fs.String("verifier-url", "", "remote Verifier service (teep verifier serve) to appraise Evidence")
	var vKeys listFlag
	fs.Var(&vKeys, "verifier-key", "trusted Verifier result-signing public key file (repeatable)")
	attest := fs.String("attest", "unknown", "when to ask for attestation: unknown (new Agents), always, or never")
	reattest := fs.Duration("reattest-after", 0, "attest devices again when their last attestation is older (0: never)")
	passport := fs.Bool("passport", false, "ask Agents for Attestation Results (passport model) instead of Evidence")
	timestamp := fs.Bool("allow-timestamp", false, "also offer FRESHNESS_TIMESTAMP")
	tokenLife := fs.Duration("token-lifetime", tam.DefaultTokenLifetime, "how long tokens and challenges stay valid")
	maxPending := fs.Int("max-pending-per-device", tam.DefaultMaxPendingPerDevice, "outstanding Updates per device; a session beyond gets 503 (retry later)")
	purgeEvery := fs.Duration("purge-interval", tamserver.DefaultPurgeInterval, "how often expired tokens and pending Updates are deleted and the SQLite WAL truncated")
	maxBody := fs.Int64("max-body", 4<<20, "largest TEEP request body in bytes")
	pzCipher := fs.String("personalization-cipher", "a128ctr", "personalization data encryption: a128ctr or a128gcm")
	coapAddr := fs.String("coap", "", "also serve TEEP over CoAP/UDP here (e.g. 127.0.0.1:5683)")
	coapsAddr := fs.String("coaps", "", "also serve TEEP over CoAP/DTLS here (e.g. 127.0.0.1:5684; certificate and/or PSKs)")
	coapTCPAddr := fs.String("coap-tcp", "", "also serve TEEP over CoAP/TCP here (e.g. 127.0.0.1:5683)")
	coapsTCPAddr := fs.String("coaps-tcp", "", "also serve TEEP over CoAP/TLS here (e.g. 127.0.0.1:5684)")
	coapCert := fs.String("coap-cert", "", "certificate (PEM) for --coaps and --coaps-tcp (default: --tls-cert, else coap-cert.pem in the data directory)")
	coapKey := fs.String("coap-key", "", "private key (PEM) of --coap-cert")
	coapPSK := fs.String("coap-psk", "", `DTLS PSK file, lines "identity hex-key" (default: coap-psk in the data directory, if present)`)
	logLevel := fs.String("log-level", "info", "log level: debug, info, warn or error")
	logFormat := fs.String("log-format", "text", "log format: text or json")
	consoleOn := fs.Bool("console", true, "serve the web console at /console/ where the admin API is (the --admin-listen address when given)")
	pprofAddr := fs.String("pprof", "", "serve Go profiles (/debug/pprof/) on this loopback address (e.g. 127.0.0.1:6060)")
	pos, err := parse(fs, args)
	if err != nil {
		return err
	}
	if len(pos) != 0 {
		return usagef("no arguments expected")
	}
	log, err := newLogger(e, *logLevel, *logFormat)
	if err != nil {
		return err
	}
	if *db == "" {
		*db = e.getenv("TEEP_TAM_DB")
	}
	o := tamserver.Options{DataDir: *data, DB: *db, Path: *path, LegacyPath: *legacyPath, TLSCert: *tlsCert, TLSKey: *tlsKey,
		ClientCA: *clientCA, RequireClientCert: *requireClient, VerifierPolicy: *vPolicy, VerifierURL: *vURL,
		ReattestAfter: *reattest, Passport: *passport, AllowTimestamp: *timestamp, TokenLifetime: *tokenLife,
		MaxBodyBytes: *maxBody, MaxPendingPerDevice: *maxPending, PurgeInterval: *purgeEvery, Logger: log, Version: tamVersion(),
		CoAPAddr: *coapAddr, CoAPSAddr: *coapsAddr, CoAPTCPAddr: *coapTCPAddr, CoAPSTCPAddr: *coapsTCPAddr,
		CoAPCert: *coapCert, CoAPKey: *coapKey, CoAPPSKFile: *coapPSK, PprofAddr: *pprofAddr, DisableConsole: !*consoleOn}
	if tamServeOptions != nil {
		tamServeOptions(&o)
	}
	switch *attest {
	case "unknown":
		o.Attestation = tam.AttestUnknown
	case "always":
		o.Attestation = tam.AttestAlways
	case "never":
		o.Attestation = tam.AttestNever
	default:
		return usagef("--attest: want unknown, always or never")
	}
	switch strings.ToLower(*pzCipher) {
	case "a128ctr":
		o.PersonalizationContentAlg = suit.AlgA128CTR
	case "a128gcm":
		o.PersonalizationContentAlg = suit.AlgA128GCM
	default:
		return usagef("--personalization-cipher: want a128ctr or a128gcm")
	}
	if *purgeEvery <= 0 {
		return usagef("--purge-interval: want a positive duration")
	}
	if *maxPending < 1 {
		return usagef("--max-pending-per-device: want at least 1")
	}
	if (*tlsCert == "") != (*tlsKey == "") {
		return usagef("--tls-cert and --tls-key go together")
	}
	if o.VerifierKeys, err = keyfile.LoadAll(vKeys); err != nil {
		return err
	}
	ctx, cancel := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer cancel()
	srv, err := tamserver.Open(ctx, o)
	if err != nil {
		return err
	}
	defer srv.Close()
	ln, err := net.Listen("tcp", *listen)
	if err != nil {
		return err
	}
	var adminLn net.Listener
	if *adminListen != "" {
		if adminLn, err = net.Listen("tcp", *adminListen); err != nil {
			ln.Close()
			return err
		}
	}
	scheme := "http"
	if *tlsCert != "" {
		scheme = "https"
	}
	base := scheme + "://" + ln.Addr().String()
	if srv.NewToken {
		fmt.Fprintf(e.stdout, "admin token: %s\n(stored in %s; shown only on first start)\n",
			srv.Token, filepath.Join(*data, tamserver.FileToken))
	}
	fmt.Fprintf(e.stdout, "TEEP endpoint: %s%s\n", base, *path)
	if *legacyPath != "" {
		fmt.Fprintf(e.stdout, "TEEP endpoint (legacy numbering): %s%s\n", base, *legacyPath)
	}
	if adminLn != nil {
		fmt.Fprintf(e.stdout, "admin API: %s://%s%s\n", scheme, adminLn.Addr(), admin.Prefix)
	} else {
		fmt.Fprintf(e.stdout, "admin API: %s%s\n", base, admin.Prefix)
	}
	if !o.DisableConsole {
		if adminLn != nil {
			fmt.Fprintf(e.stdout, "web console: %s://%s/console/\n", scheme, adminLn.Addr())
		} else {
			fmt.Fprintf(e.stdout, "web console: %s/console/\n", base)
		}
	}
	if srv.CoAP != nil {
		for _, tr := range []struct{ name, scheme string }{{teepcoap.TransportUDP, "coap"}, {teepcoap.TransportDTLS, "coaps"},
			{teepcoap.TransportTCP, "coap+tcp"}, {teepcoap.TransportTLS, "coaps+tcp"}} {
			if a := srv.CoAP.Addr(tr.name); a != nil {
				fmt.Fprintf(e.stdout, "TEEP endpoint: %s://%s%s\n", tr.scheme, a, *path)
			}
		}
	}
	if srv.Pprof != nil {
		fmt.Fprintf(e.stdout, "profiles: http://%s/debug/pprof/\n", srv.Pprof.Addr())
	}
	keys := srv.Engine.PublicKeys()
	log.Info("TAM started", "listen", ln.Addr().String(), "data", *data, "kid_esp256", hex.EncodeToString(keys[0].KID()),
		"kid_ed25519", hex.EncodeToString(keys[1].KID()), "tls", *tlsCert != "")
	if tamServeReady != nil {
		tamServeReady(base, cancel)
	}
	if err := srv.Serve(ctx, ln, adminLn); err != nil {
		return err
	}
	log.Info("TAM stopped")
	return nil
}

func tamVersion() string { return "dev" }

func tamKey(e *env, args []string) error {
	fs := newFlags(e, "tam key", "[--data DIR] [--format pem|cose|jwk] [--alg esp256|ed25519]",
		"Prints a public key of the TAM in the data directory: the trust anchor Agents need\n(and the key that signs personalization manifests). COSE output is raw CBOR.")
	data := fs.String("data", tamDefaultData, "data directory")
	format := fs.String("format", "pem", "output format: pem, cose or jwk")
	alg := fs.String("alg", "esp256", "which key: esp256 (P-256) or ed25519")
	pos, err := parse(fs, args)
	if err != nil {
		return err
	}
	if len(pos) != 0 {
		return usagef("no arguments expected")
	}
	t := cosekey.KeyTypeP256
	switch strings.ToLower(*alg) {
	case "esp256", "es256", "p-256", "p256":
	case "ed25519", "eddsa":
		t = cosekey.KeyTypeEd25519
	default:
		return usagef("--alg: want esp256 or ed25519")
	}
	switch cosekey.Format(*format) {
	case cosekey.FormatPEM, cosekey.FormatCOSE, cosekey.FormatJWK:
	default:
		return usagef("--format: want pem, cose or jwk")
	}
	k, err := tamserver.PublicKey(*data, t)
	if err != nil {
		if errors.Is(err, iofs.ErrNotExist) {
			return fmt.Errorf("no TAM key in %s (run \"teep tam serve --data %s\" once to create it)", *data, *data)
		}
		return err
	}
	out, err := k.Marshal(cosekey.Format(*format), false)
	if err != nil {
		return err
	}
	_, err = e.stdout.Write(out)
	return err
}

func tamToken(e *env, args []string) error {
	fs := newFlags(e, "tam token", "[--data DIR] [--rotate]",
		"Prints the admin API bearer token stored in the data directory. --rotate replaces it with\na new random token (printed); a running TAM uses the new one after a restart.")
	data := fs.String("data", tamDefaultData, "data directory")
	rotate := fs.Bool("rotate", false, "replace the token with a new one")
	pos, err := parse(fs, args)
	if err != nil {
		return err
	}
	if len(pos) != 0 {
		return usagef("no arguments expected")
	}
	if *rotate {
		if _, err := os.Stat(filepath.Join(*data, tamserver.FileToken)); err != nil {
			return fmt.Errorf("admin token: %w", err)
		}
		tok, err := admin.NewToken()
		if err != nil {
			return err
		}
		if err := keyfile.WriteAtomic(filepath.Join(*data, tamserver.FileToken), []byte(tok+"\n"), 0o600); err != nil {
			return err
		}
		fmt.Fprintln(e.stdout, tok)
		return nil
	}
	tok, err := tamserver.ReadToken(*data)
	if err != nil {
		return fmt.Errorf("admin token: %w", err)
	}
	fmt.Fprintln(e.stdout, tok)
	return nil
}

// tamAdminFlags are the flags every admin command takes.
type tamAdminFlags struct {
	server, data, ca *string
	dataSet          func() bool
}

func tamAdmin(fs *flag.FlagSet) *tamAdminFlags {
	a := &tamAdminFlags{
		server: fs.String("server", tamDefaultServer, "base URL of the running TAM"),
		data:   fs.String("data", tamDefaultData, "data directory holding the admin token (or set TEEP_ADMIN_TOKEN)"),
		ca:     fs.String("ca", "", "PEM CA certificates to verify an HTTPS --server"),
	}
	a.dataSet = func() bool {
		set := false
		fs.Visit(func(f *flag.Flag) {
			if f.Name == "data" {
				set = true
			}
		})
		return set
	}
	return a
}

// client builds the admin client: the token comes from --data when given,
// else from TEEP_ADMIN_TOKEN, else from the default data directory.
func (a *tamAdminFlags) client(e *env) (*admin.Client, error) {
	tok := ""
	if env := strings.TrimSpace(e.getenv("TEEP_ADMIN_TOKEN")); env != "" && !a.dataSet() {
		tok = env
	} else {
		t, err := tamserver.ReadToken(*a.data)
		if err != nil {
			return nil, fmt.Errorf("admin token: %w (give --data DIR of the TAM, or set TEEP_ADMIN_TOKEN)", err)
		}
		tok = t
	}
	hc := &http.Client{Timeout: 60 * time.Second, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	if *a.ca != "" {
		pool, err := httpd.LoadCertPool(*a.ca)
		if err != nil {
			return nil, fmt.Errorf("--ca: %w", err)
		}
		hc.Transport = &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}}
	}
	return &admin.Client{BaseURL: strings.TrimSuffix(*a.server, "/"), Token: tok, HTTP: hc}, nil
}

func tamCtx() (context.Context, context.CancelFunc) {
	return context.WithTimeout(context.Background(), 2*time.Minute)
}

func tamJSON(e *env, v any) error { return writeJSON(e, v) }

// tamSimple parses a command taking the admin flags and exactly n
// positional arguments; check (optional) validates the other flags before
// the token is looked up, so usage errors come first.
func tamSimple(e *env, path, synopsis, about string, n int, args []string, extra func(fs *flag.FlagSet), check ...func() error) (*admin.Client, []string, error) {
	fs := newFlags(e, path, synopsis, about)
	a := tamAdmin(fs)
	if extra != nil {
		extra(fs)
	}
	pos, err := parse(fs, args)
	if err != nil {
		return nil, nil, err
	}
	if len(pos) != n {
		return nil, nil, usagef("want %d argument(s): %s", n, synopsis)
	}
	for _, c := range check {
		if err := c(); err != nil {
			return nil, nil, err
		}
	}
	c, err := a.client(e)
	return c, pos, err
}

func tamStatus(e *env, args []string) error {
	c, _, err := tamSimple(e, "tam status", "[--server URL] [--data DIR]", "Checks that the TAM answers and prints its version and keys.", 0, args, nil)
	if err != nil {
		return err
	}
	ctx, cancel := tamCtx()
	defer cancel()
	h, err := c.Health(ctx)
	if err != nil {
		return err
	}
	in, err := c.Info(ctx)
	if err != nil {
		return err
	}
	fmt.Fprintf(e.stdout, "status: %s (database %s)\nversion: %s\n", h.Status, h.Database, in.Version)
	for _, k := range in.Keys {
		fmt.Fprintf(e.stdout, "key %s kid %s\n", k.Type, k.KID)
	}
	return nil
}

// ---- components

func tamTCAdd(e *env, args []string) error {
	const synopsis = "ENVELOPE... [--server URL] [--data DIR]"
	fs := newFlags(e, "tam tc add", synopsis,
		"Uploads signed SUIT envelopes (a file, several for a bulk import, or - for stdin). Each must\n"+
			"verify with a trusted TC signer key, and its sequence number must exceed the stored versions'.\n"+
			"Prints each component's id. Each upload is atomic; the first failure stops the import and\n"+
			"says how many were added. A bulk import shows progress when stderr is a terminal.")
	a := tamAdmin(fs)
	pos, err := parse(fs, args)
	if err != nil {
		return err
	}
	if len(pos) == 0 {
		return usagef("want at least one envelope: %s", synopsis)
	}
	c, err := a.client(e)
	if err != nil {
		return err
	}
	var bar *progress.Bar
	if len(pos) > 1 {
		bar = progress.New(e.stderr, "components", int64(len(pos)), progress.Options{})
		defer bar.Done()
	}
	for i, file := range pos {
		env, err := readInput(e, []string{file}, tam.DefaultMaxEnvelopeSize)
		if err == nil {
			ctx, cancel := tamCtx()
			var v admin.Version
			v, err = c.AddComponent(ctx, env)
			cancel()
			if err == nil {
				fmt.Fprintln(e.stdout, v.ComponentID)
				bar.Add(1)
				continue
			}
		}
		if len(pos) > 1 {
			return fmt.Errorf("%s: %w (%d of %d added before it)", file, err, i, len(pos))
		}
		return err
	}
	return nil
}

func tamTCList(e *env, args []string) error {
	var asJSON *bool
	c, _, err := tamSimple(e, "tam tc list", "[--json] [--server URL] [--data DIR]", "Lists registered Trusted Components.", 0, args,
		func(fs *flag.FlagSet) { asJSON = fs.Bool("json", false, "print JSON") })
	if err != nil {
		return err
	}
	ctx, cancel := tamCtx()
	defer cancel()
	cs, err := c.Components(ctx)
	if err != nil {
		return err
	}
	if *asJSON {
		return tamJSON(e, cs)
	}
	tw := tabwriter.NewWriter(e.stdout, 2, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "ID\tNAME\tLATEST\tVERSIONS")
	for _, x := range cs {
		fmt.Fprintf(tw, "%s\t%s\t%d\t%d\n", x.ID, x.Name, x.LatestSequence, x.Versions)
	}
	return tw.Flush()
}

func tamTCShow(e *env, args []string) error {
	var asJSON *bool
	c, pos, err := tamSimple(e, "tam tc show", "ID [--json] [--server URL] [--data DIR]", "Shows a component (by id or name): versions and policies.", 1, args,
		func(fs *flag.FlagSet) { asJSON = fs.Bool("json", false, "print JSON") })
	if err != nil {
		return err
	}
	ctx, cancel := tamCtx()
	defer cancel()
	d, err := c.Component(ctx, pos[0])
	if err != nil {
		return err
	}
	if *asJSON {
		return tamJSON(e, d)
	}
	fmt.Fprintf(e.stdout, "id: %s\nname: %s\nlatest sequence: %d\n", d.ID, d.Name, d.LatestSequence)
	for _, v := range d.VersionList {
		fmt.Fprintf(e.stdout, "version %d: digest %s, %d bytes, signer %s, uploaded %s\n", v.Sequence, v.Digest, v.Size, v.SignerKID, v.CreatedAt.Format(time.RFC3339))
		for _, dep := range v.Dependencies {
			fmt.Fprintf(e.stdout, "  depends on %s\n", dep)
		}
	}
	for _, p := range d.Policies {
		fmt.Fprintf(e.stdout, "policy %d: %s on %s\n", p.ID, p.Mode, tamScope(p))
	}
	return nil
}

func tamScope(p admin.Policy) string {
	if p.Value == "" {
		return p.Scope
	}
	return p.Scope + " " + p.Value
}

func tamTCGet(e *env, args []string) error {
	var seq *uint64
	var out *string
	c, pos, err := tamSimple(e, "tam tc get", "ID --sequence N [--out FILE] [--server URL] [--data DIR]",
		"Downloads a stored envelope (untagged, as sent to devices).", 1, args,
		func(fs *flag.FlagSet) {
			seq = fs.Uint64("sequence", 0, "sequence number (default: latest)")
			out = fs.String("out", "", "output file (default: stdout)")
		})
	if err != nil {
		return err
	}
	ctx, cancel := tamCtx()
	defer cancel()
	n := *seq
	if n == 0 {
		d, err := c.Component(ctx, pos[0])
		if err != nil {
			return err
		}
		n = d.LatestSequence
	}
	env, err := c.Envelope(ctx, pos[0], n)
	if err != nil {
		return err
	}
	if *out == "" {
		_, err = e.stdout.Write(env)
		return err
	}
	return keyfile.WriteAtomic(*out, env, 0o644)
}

func tamTCDelete(e *env, args []string) error {
	c, pos, err := tamSimple(e, "tam tc delete", "ID [--server URL] [--data DIR]",
		"Forgets a component, all its versions and policies. Devices that got it from this TAM\nhave it removed at their next session.", 1, args, nil)
	if err != nil {
		return err
	}
	ctx, cancel := tamCtx()
	defer cancel()
	return c.DeleteComponent(ctx, pos[0])
}

// ---- policies

type tamScopeFlags struct {
	device, label, hwmodel *string
	all                    *bool
}

func tamScopeOf(fs *flag.FlagSet) *tamScopeFlags {
	return &tamScopeFlags{
		device:  fs.String("device", "", "one device, by kid (hex, or a unique prefix)"),
		label:   fs.String("label", "", "devices with this label"),
		hwmodel: fs.String("hwmodel", "", "devices whose attested hwmodel is this (text, or hex)"),
		all:     fs.Bool("all", false, "every device"),
	}
}

// scope returns the chosen scope; none chosen is "all" when dflt, else "".
func (s *tamScopeFlags) scope(dflt bool) (string, string, error) {
	n := 0
	kind, value := "", ""
	if *s.all {
		n, kind = n+1, "all"
	}
	if *s.device != "" {
		n, kind, value = n+1, "device", *s.device
	}
	if *s.label != "" {
		n, kind, value = n+1, "label", *s.label
	}
	if *s.hwmodel != "" {
		n, kind, value = n+1, "hwmodel", *s.hwmodel
	}
	if n > 1 {
		return "", "", usagef("give one of --device, --label, --hwmodel and --all")
	}
	if n == 0 && dflt {
		kind = "all"
	}
	return kind, value, nil
}

func tamPolicyRequire(e *env, args []string) error {
	var sc *tamScopeFlags
	var optional *bool
	var kind, value string
	c, pos, err := tamSimple(e, "tam policy require", "ID [--device KID|--label L|--hwmodel M|--all] [--optional] [--server URL] [--data DIR]",
		"Requires a component (by id or name) on devices (default --all): they get its latest\nversion at their next session. With --optional it is only offered: installed on\ndevices that request it.", 1, args,
		func(fs *flag.FlagSet) {
			sc = tamScopeOf(fs)
			optional = fs.Bool("optional", false, "offer instead of require")
		}, func() (err error) { kind, value, err = sc.scope(true); return err })
	if err != nil {
		return err
	}
	mode := "required"
	if *optional {
		mode = "optional"
	}
	ctx, cancel := tamCtx()
	defer cancel()
	p, err := c.SetPolicy(ctx, admin.Policy{Component: pos[0], Mode: mode, Scope: kind, Value: value})
	if err != nil {
		return err
	}
	fmt.Fprintf(e.stdout, "policy %d: %s %s on %s\n", p.ID, p.ComponentName, p.Mode, tamScope(p))
	return nil
}

func tamPolicyRemove(e *env, args []string) error {
	var sc *tamScopeFlags
	var kind, value string
	c, pos, err := tamSimple(e, "tam policy remove", "ID [--device KID|--label L|--hwmodel M|--all] [--server URL] [--data DIR]",
		"Removes the component's policies (all of them, or those of the given scope). Devices\nthat no policy covers any more have the component removed at their next session.", 1, args,
		func(fs *flag.FlagSet) { sc = tamScopeOf(fs) }, func() (err error) { kind, value, err = sc.scope(false); return err })
	if err != nil {
		return err
	}
	ctx, cancel := tamCtx()
	defer cancel()
	if kind == "device" {
		if d, err := c.Device(ctx, value, 0); err == nil {
			value = d.KID
		}
	}
	n, err := c.RemovePolicies(ctx, pos[0], kind, value)
	if err != nil {
		return err
	}
	fmt.Fprintf(e.stdout, "removed %d policies\n", n)
	return nil
}

func tamPolicyList(e *env, args []string) error {
	var asJSON *bool
	c, _, err := tamSimple(e, "tam policy list", "[--json] [--server URL] [--data DIR]", "Lists policies.", 0, args,
		func(fs *flag.FlagSet) { asJSON = fs.Bool("json", false, "print JSON") })
	if err != nil {
		return err
	}
	ctx, cancel := tamCtx()
	defer cancel()
	ps, err := c.Policies(ctx)
	if err != nil {
		return err
	}
	if *asJSON {
		return tamJSON(e, ps)
	}
	tw := tabwriter.NewWriter(e.stdout, 2, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "ID\tCOMPONENT\tMODE\tSCOPE")
	for _, p := range ps {
		fmt.Fprintf(tw, "%d\t%s\t%s\t%s\n", p.ID, p.ComponentName, p.Mode, tamScope(p))
	}
	return tw.Flush()
}

// ---- trust

func tamReadKey(e *env, file string) ([]byte, error) {
	b, err := readInput(e, []string{file}, cosekey.MaxKeyFileSize)
	if err != nil {
		return nil, err
	}
	if _, err := cosekey.Parse(b); err != nil {
		return nil, fmt.Errorf("%s: %w", file, err)
	}
	return b, nil
}

func tamTrustAdd(e *env, args []string, path, role, about string) error {
	var comment *string
	c, pos, err := tamSimple(e, path, "FILE [--comment TEXT] [--server URL] [--data DIR]", about, 1, args,
		func(fs *flag.FlagSet) { comment = fs.String("comment", "", "note kept with the key") })
	if err != nil {
		return err
	}
	key, err := tamReadKey(e, pos[0])
	if err != nil {
		return err
	}
	ctx, cancel := tamCtx()
	defer cancel()
	k, err := c.AddTrustedKey(ctx, role, key, *comment)
	if err != nil {
		return err
	}
	fmt.Fprintln(e.stdout, k.KID)
	return nil
}

func tamTrustAddSigner(e *env, args []string) error {
	return tamTrustAdd(e, args, "tam trust add-signer", admin.TrustSigners,
		"Trusts a Trusted Component signer's public key (COSE_Key, PEM or JWK): uploaded envelopes\nmust verify with one of these keys. Prints the key's kid.")
}

func tamTrustAddVerifier(e *env, args []string) error {
	return tamTrustAdd(e, args, "tam trust add-verifier", admin.TrustVerifiers,
		"Trusts a Verifier's result-signing key: Attestation Results it signs are accepted\n(passport model). Prints the key's kid.")
}

func tamTrustAddAgent(e *env, args []string) error {
	var labels listFlag
	c, pos, err := tamSimple(e, "tam trust add-agent", "FILE [--label L]... [--server URL] [--data DIR]",
		"Pre-registers an Agent public key: the device is trusted without attestation. Prints its kid.", 1, args,
		func(fs *flag.FlagSet) { fs.Var(&labels, "label", "label for policies (repeatable)") })
	if err != nil {
		return err
	}
	key, err := tamReadKey(e, pos[0])
	if err != nil {
		return err
	}
	ctx, cancel := tamCtx()
	defer cancel()
	d, err := c.AddAgent(ctx, key, labels)
	if err != nil {
		return err
	}
	fmt.Fprintln(e.stdout, d.KID)
	return nil
}

func tamTrustRemove(e *env, args []string) error {
	var verifierRole *bool
	c, pos, err := tamSimple(e, "tam trust remove", "KID [--verifier] [--server URL] [--data DIR]",
		"Stops trusting a TC signer key (or, with --verifier, a Verifier key). Registered versions stay.\nTo forget an Agent key use \"teep tam device delete\".", 1, args,
		func(fs *flag.FlagSet) { verifierRole = fs.Bool("verifier", false, "the key is a Verifier key") })
	if err != nil {
		return err
	}
	role := admin.TrustSigners
	if *verifierRole {
		role = admin.TrustVerifiers
	}
	ctx, cancel := tamCtx()
	defer cancel()
	return c.RemoveTrustedKey(ctx, role, pos[0])
}

func tamTrustList(e *env, args []string) error {
	var asJSON *bool
	c, _, err := tamSimple(e, "tam trust list", "[--json] [--server URL] [--data DIR]", "Lists trusted TC signer and Verifier keys.", 0, args,
		func(fs *flag.FlagSet) { asJSON = fs.Bool("json", false, "print JSON") })
	if err != nil {
		return err
	}
	ctx, cancel := tamCtx()
	defer cancel()
	var all []admin.TrustedKey
	for _, r := range []string{admin.TrustSigners, admin.TrustVerifiers} {
		ks, err := c.TrustedKeys(ctx, r)
		if err != nil {
			return err
		}
		all = append(all, ks...)
	}
	if all == nil {
		all = []admin.TrustedKey{}
	}
	if *asJSON {
		return tamJSON(e, all)
	}
	tw := tabwriter.NewWriter(e.stdout, 2, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "ROLE\tKID\tTYPE\tCOMMENT")
	for _, k := range all {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", k.Role, k.KID, k.Type, k.Comment)
	}
	return tw.Flush()
}

// ---- devices

func tamTime(t *time.Time) string {
	if t == nil {
		return "never"
	}
	return t.Format(time.RFC3339)
}

func tamPrintDevice(w io.Writer, d admin.Device) {
	labels := strings.Join(d.Labels, ",")
	if labels == "" {
		labels = "-"
	}
	ueid := d.UEID
	if ueid == "" {
		ueid = "-"
	}
	fmt.Fprintf(w, "device %s\n  status: %s\n  ueid: %s\n  labels: %s\n  last-seen: %s\n  attestation: %s\n",
		d.KID, d.Status, ueid, labels, tamTime(d.LastSeen), d.Attestation.Status)
	if d.HWModel != "" {
		fmt.Fprintf(w, "  hwmodel: %s\n", d.HWModel)
	}
	if d.LastError != "" {
		fmt.Fprintf(w, "  last-error: %s\n", d.LastError)
	}
	if len(d.Components) == 0 {
		fmt.Fprintf(w, "  components: none\n")
	}
	for _, c := range d.Components {
		managed := ""
		if !c.Managed {
			managed = " (not installed by this TAM)"
		}
		fmt.Fprintf(w, "  component %s (%s) sequence %d%s\n", c.ID, c.Name, c.Sequence, managed)
	}
}

func tamDeviceList(e *env, args []string) error {
	var asJSON *bool
	c, _, err := tamSimple(e, "tam device list", "[--json] [--server URL] [--data DIR]",
		"Lists devices: kid, ueid, labels, last-seen, status, and components with id and sequence number.", 0, args,
		func(fs *flag.FlagSet) { asJSON = fs.Bool("json", false, "print JSON") })
	if err != nil {
		return err
	}
	ctx, cancel := tamCtx()
	defer cancel()
	ds, err := c.Devices(ctx)
	if err != nil {
		return err
	}
	if *asJSON {
		return tamJSON(e, ds)
	}
	for _, d := range ds {
		tamPrintDevice(e.stdout, d)
	}
	return nil
}

func tamDeviceShow(e *env, args []string) error {
	var asJSON *bool
	var reports *int
	c, pos, err := tamSimple(e, "tam device show", "KID [--json] [--reports N] [--server URL] [--data DIR]",
		"Shows a device (kid or a unique prefix): inventory, failures, personalization data,\noutstanding Updates and recent reports.", 1, args,
		func(fs *flag.FlagSet) {
			asJSON = fs.Bool("json", false, "print JSON")
			reports = fs.Int("reports", admin.DefaultReports, "how many recent reports")
		})
	if err != nil {
		return err
	}
	ctx, cancel := tamCtx()
	defer cancel()
	d, err := c.Device(ctx, pos[0], *reports)
	if err != nil {
		return err
	}
	if *asJSON {
		return tamJSON(e, d)
	}
	tamPrintDevice(e.stdout, d.Device)
	for _, f := range d.Failures {
		fmt.Fprintf(e.stdout, "  failure %s sequence %d: %d attempts, last: %s\n", f.Name, f.Sequence, f.Attempts, f.LastError)
	}
	for _, p := range d.Personalization {
		fmt.Fprintf(e.stdout, "  personalization %q sequence %d, %d bytes\n", p.Name, p.Sequence, p.Size)
	}
	for _, p := range d.Pending {
		if len(p.Install)+len(p.Remove) == 0 {
			fmt.Fprintf(e.stdout, "  pending: an Update carrying an error awaits acknowledgement, expires %s\n", p.ExpiresAt.Format(time.RFC3339))
			continue
		}
		fmt.Fprintf(e.stdout, "  pending Update: %d to install, %d to remove, expires %s\n", len(p.Install), len(p.Remove), p.ExpiresAt.Format(time.RFC3339))
	}
	for _, r := range d.Reports {
		line := fmt.Sprintf("  report %s %s", r.At.Format(time.RFC3339), r.Kind)
		if r.ErrName != "" {
			line += " " + r.ErrName
		}
		if r.Message != "" {
			line += fmt.Sprintf(" %q", r.Message)
		}
		fmt.Fprintf(e.stdout, "%s (%d SUIT reports)\n", line, len(r.SUITReports))
	}
	return nil
}

func tamDeviceLabel(e *env, args []string) error {
	var labels listFlag
	c, pos, err := tamSimple(e, "tam device label", "KID [--label L]... [--server URL] [--data DIR]",
		"Replaces the device's labels (none given: clears them).", 1, args,
		func(fs *flag.FlagSet) { fs.Var(&labels, "label", "label (repeatable)") })
	if err != nil {
		return err
	}
	ctx, cancel := tamCtx()
	defer cancel()
	d, err := c.SetLabels(ctx, pos[0], labels)
	if err != nil {
		return err
	}
	fmt.Fprintf(e.stdout, "%s labels: %s\n", d.KID, strings.Join(d.Labels, ","))
	return nil
}

func tamDeviceAction(e *env, args []string, path, about string, f func(c *admin.Client, ctx context.Context, kid string) (admin.Device, error)) error {
	c, pos, err := tamSimple(e, path, "KID [--server URL] [--data DIR]", about, 1, args, nil)
	if err != nil {
		return err
	}
	ctx, cancel := tamCtx()
	defer cancel()
	d, err := f(c, ctx, pos[0])
	if err != nil {
		return err
	}
	fmt.Fprintf(e.stdout, "%s status: %s\n", d.KID, d.Status)
	return nil
}

func tamDeviceReattest(e *env, args []string) error {
	return tamDeviceAction(e, args, "tam device reattest", "Makes the device attest again at its next session.",
		func(c *admin.Client, ctx context.Context, kid string) (admin.Device, error) {
			return c.Reattest(ctx, kid)
		})
}

func tamDeviceReset(e *env, args []string) error {
	return tamDeviceAction(e, args, "tam device reset", "Clears the device's install failures and flagged status: failed versions are offered again.",
		func(c *admin.Client, ctx context.Context, kid string) (admin.Device, error) { return c.Reset(ctx, kid) })
}

func tamDeviceDelete(e *env, args []string) error {
	c, pos, err := tamSimple(e, "tam device delete", "KID [--server URL] [--data DIR]",
		"Forgets a device and everything kept about it; its key is no longer trusted.", 1, args, nil)
	if err != nil {
		return err
	}
	ctx, cancel := tamCtx()
	defer cancel()
	return c.DeleteDevice(ctx, pos[0])
}

// ---- personalization

func tamPersonalizeSet(e *env, args []string) error {
	var deps listFlag
	c, pos, err := tamSimple(e, "tam personalize set", "KID NAME FILE [--depends-on ID]... [--server URL] [--data DIR]",
		`Stores FILE as personalization data NAME of a device. The TAM builds a SUIT manifest that
writes it, encrypted to the device's P-256 Agent key (ECDH-ES+A128KW) and signed by the TAM;
the device gets it at its next session and must trust the TAM key as a TC signer.
Devices with an Ed25519 Agent key cannot receive encrypted data.`, 3, args,
		func(fs *flag.FlagSet) { fs.Var(&deps, "depends-on", "component the data depends on (repeatable)") })
	if err != nil {
		return err
	}
	data, err := readInput(e, pos[2:], tam.DefaultMaxPersonalization)
	if err != nil {
		return err
	}
	ctx, cancel := tamCtx()
	defer cancel()
	p, err := c.SetPersonalization(ctx, pos[0], pos[1], data, deps)
	if err != nil {
		return err
	}
	fmt.Fprintf(e.stdout, "personalization %q sequence %d (%s)\n", p.Name, p.Sequence, p.ComponentID)
	return nil
}

func tamPersonalizeList(e *env, args []string) error {
	var asJSON *bool
	c, pos, err := tamSimple(e, "tam personalize list", "KID [--json] [--server URL] [--data DIR]", "Lists a device's personalization data (metadata only).", 1, args,
		func(fs *flag.FlagSet) { asJSON = fs.Bool("json", false, "print JSON") })
	if err != nil {
		return err
	}
	ctx, cancel := tamCtx()
	defer cancel()
	ps, err := c.Personalization(ctx, pos[0])
	if err != nil {
		return err
	}
	if *asJSON {
		return tamJSON(e, ps)
	}
	for _, p := range ps {
		fmt.Fprintf(e.stdout, "%s sequence %d, %d bytes, %s\n", p.Name, p.Sequence, p.Size, p.CreatedAt.Format(time.RFC3339))
	}
	return nil
}

func tamPersonalizeDelete(e *env, args []string) error {
	c, pos, err := tamSimple(e, "tam personalize delete", "KID NAME [--server URL] [--data DIR]",
		"Deletes personalization data; the device has it removed at its next session.", 2, args, nil)
	if err != nil {
		return err
	}
	ctx, cancel := tamCtx()
	defer cancel()
	return c.DeletePersonalization(ctx, pos[0], pos[1])
}
