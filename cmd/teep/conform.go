package main

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"time"

	"github.com/teep-go/teep/cosekey"
	"github.com/teep-go/teep/internal/conform"
	"github.com/teep-go/teep/internal/device"
	"github.com/teep-go/teep/internal/httpd"
	"github.com/teep-go/teep/internal/keyfile"
	"github.com/teep-go/teep/teep"
)

func init() {
	register(&command{path: "conform tam", summary: "run the conformance checks against a TAM", run: conformTAM})
}

func conformTAM(e *env, args []string) error {
	fs := newFlags(e, "conform tam", "[--numbering draft-26|legacy|auto] [--agent-key FILE] [--tam-key FILE] [--tam-ca FILE] [--tam-psk FILE] [--json] [--allow-remote] URL",
		`Runs the catalogue of conformance checks (docs/conformance.md) against the TAM at URL,
a TAM this command did not start, over HTTP or CoAP (coap://, coaps://, coap+tcp://, coaps+tcp://):
transport (draft-ietf-teep-otrp-over-http-15, or docs/coap-binding.md), the
QueryRequest, refusals of bad sessions, and, with --agent-key (an Agent key the TAM
trusts), a valid session and its Update. Prints pass / fail / skip per check with its
section; exits 0 only if every required (MUST) check passed. It sends malformed and
oversized requests, so only a loopback URL is accepted unless --allow-remote is given.`)
	numbering := fs.String("numbering", "auto", "message numbering: draft-26, legacy, or auto (from the TAM's QueryRequest)")
	agentKey := fs.String("agent-key", "", "private Agent key the TAM trusts (enables the session and Update checks)")
	tamKey := fs.String("tam-key", "", "the TAM's public key (verifies its signatures)")
	tamCA := fs.String("tam-ca", "", "PEM CA file for an https, coaps or coaps+tcp TAM URL")
	tamPSK := fs.String("tam-psk", "", "file with \"IDENTITY HEX-KEY\": DTLS pre-shared key for a coaps TAM URL")
	asJSON := fs.Bool("json", false, "print the report as JSON")
	allowRemote := fs.Bool("allow-remote", false, "allow a TAM URL that is not on a loopback address")
	timeout := fs.Duration("timeout", 5*time.Minute, "bound on the whole run")
	pos, err := parse(fs, args)
	if err != nil {
		return err
	}
	if len(pos) != 1 {
		return usagef("want exactly one TAM URL")
	}
	o := conform.TAMOptions{URL: pos[0], AllowRemote: *allowRemote}
	switch *numbering {
	case "draft-26":
		o.Numbering = teep.Draft26
	case "legacy":
		o.Numbering = teep.Legacy
	case "auto":
		o.Numbering = conform.NumberingAuto
	default:
		return usagef("--numbering: want draft-26, legacy or auto, not %q", *numbering)
	}
	if *agentKey != "" {
		if o.AgentKey, err = keyfile.Load(*agentKey); err != nil {
			return err
		}
		if o.AgentKey.PrivateSigner() == nil {
			return usagef("--agent-key: %s holds no private key", *agentKey)
		}
	}
	if *tamKey != "" {
		var k *cosekey.Key
		if k, err = keyfile.Load(*tamKey); err != nil {
			return err
		}
		o.TAMKey = k.PublicKey()
	}
	if *tamCA != "" {
		pool, err := httpd.LoadCertPool(*tamCA)
		if err != nil {
			return err
		}
		o.Client = &http.Client{Timeout: conform.DefaultRequestTimeout,
			Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}}}
		o.TLSConfig = &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}
	}
	if *tamPSK != "" {
		if o.PSKIdentity, o.PSK, err = device.LoadPSK(*tamPSK); err != nil {
			return err
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), *timeout)
	defer cancel()
	rep, err := conform.RunTAM(ctx, o)
	if err != nil {
		return err
	}
	if err := conformPrint(e, rep, *asJSON); err != nil {
		return err
	}
	if !rep.OK() {
		return fmt.Errorf("%d required check(s) failed", rep.RequiredFailed)
	}
	return nil
}

func init() {
	register(&command{path: "conform agent", summary: "serve a scripted TAM that checks the device connecting to it", run: conformAgent})
}

func conformAgent(e *env, args []string) error {
	fs := newFlags(e, "conform agent", "--keys DIR [--listen ADDR] [--numbering draft-26|legacy] [--json] [--timeout D]",
		`Serves a scripted TAM at http://ADDR/tam for a device under test: each session the device
starts runs the next scenario (unsupported version, unsupported cipher suite, untrusted TAM
key, an install, a tampered manifest, an untrusted TC signer, another device class, a
rollback, a bad token) and records what the Agent answered against what
draft-ietf-teep-protocol-26 requires. Writes DIR/tam.pub and DIR/signer.pub first: the
device must trust them as TAM key and TC signer key. Keep the device syncing (e.g.
teep device run --interval) until the report prints; exits 0 only if every required
scenario passed.`)
	keys := fs.String("keys", "", "directory for tam.pub and signer.pub (required)")
	listen := fs.String("listen", "127.0.0.1:0", "address to serve on (loopback by default)")
	numbering := fs.String("numbering", "draft-26", "message numbering: draft-26 or legacy")
	asJSON := fs.Bool("json", false, "print the report as JSON")
	timeout := fs.Duration("timeout", 10*time.Minute, "stop waiting for the device after this long")
	if _, err := parse(fs, args); err != nil {
		return err
	}
	if *keys == "" {
		return usagef("--keys DIR is required")
	}
	o := conform.AgentOptions{Numbering: teep.Draft26}
	switch *numbering {
	case "draft-26":
	case "legacy":
		o.Numbering = teep.Legacy
	default:
		return usagef("--numbering: want draft-26 or legacy, not %q", *numbering)
	}
	s, err := conform.NewAgentSuite(o)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(*keys, 0o755); err != nil {
		return err
	}
	if err := keyfile.Save(filepath.Join(*keys, "tam.pub"), s.TAMPublicKey(), cosekey.FormatCOSE, false); err != nil {
		return err
	}
	if err := keyfile.Save(filepath.Join(*keys, "signer.pub"), s.SignerPublicKey(), cosekey.FormatCOSE, false); err != nil {
		return err
	}
	ln, err := net.Listen("tcp", *listen)
	if err != nil {
		return err
	}
	srv := &http.Server{Handler: s, ReadHeaderTimeout: 10 * time.Second}
	go srv.Serve(ln)
	defer srv.Close()
	url := "http://" + ln.Addr().String() + "/tam"
	fmt.Fprintf(e.stderr, "teep conform agent: serving %s; trust %s/tam.pub and %s/signer.pub on the device\n", url, *keys, *keys)
	select {
	case <-s.Done():
	case <-time.After(*timeout):
		fmt.Fprintf(e.stderr, "teep conform agent: timed out; scenarios not run are skipped\n")
	}
	rep := s.Report(url)
	if err := conformPrint(e, rep, *asJSON); err != nil {
		return err
	}
	if !rep.OK() || rep.Skipped > 0 {
		return fmt.Errorf("%d required scenario(s) failed, %d not run", rep.RequiredFailed, rep.Skipped)
	}
	return nil
}

// conformPrint writes a report as JSON or for a terminal.
func conformPrint(e *env, rep *conform.Report, asJSON bool) error {
	if !asJSON {
		return rep.WriteText(e.stdout)
	}
	b, err := json.MarshalIndent(rep, "", "  ")
	if err != nil {
		return err
	}
	_, err = fmt.Fprintf(e.stdout, "%s\n", b)
	return err
}
