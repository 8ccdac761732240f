package main

import (
	"context"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"log/slog"
	"net"
	"os"
	"os/signal"
	"slices"
	"syscall"

	"github.com/teep-go/teep/cosekey"
	"github.com/teep-go/teep/eat"
	"github.com/teep-go/teep/internal/httpd"
	"github.com/teep-go/teep/internal/keyfile"
	"github.com/teep-go/teep/internal/verifier"
	"github.com/teep-go/teep/teep"
)

func init() {
	register(&command{path: "verifier serve", summary: "run the Verifier HTTP service (passport model)", run: verifierServe})
	register(&command{path: "verifier appraise", summary: "appraise Evidence against a policy", run: verifierAppraise})
	register(&command{path: "verifier check-result", summary: "check an Attestation Result as a TAM does", run: verifierCheckResult})
}

// verifierServeReady, when set (by tests), is called once the service
// listens, with its address and a function that stops it.
var verifierServeReady func(addr string, stop func())

// verifierPolicy loads --policy, or builds a minimal one from --trust keys.
func verifierPolicy(policyPath string, trust []string) (*verifier.Policy, error) {
	switch {
	case policyPath != "" && len(trust) > 0:
		return nil, usagef("give --policy or --trust, not both")
	case policyPath != "":
		return verifier.LoadPolicy(policyPath)
	case len(trust) > 0:
		keys, err := keyfile.LoadAll(trust)
		if err != nil {
			return nil, err
		}
		// what a policy file naming only these keys gives: the profile's
		// required claims, and the default time windows (filled by New)
		p := &verifier.Policy{RequiredClaims: slices.Clone(eat.RequiredTEEPClaims)}
		for i, k := range keys {
			p.Endorsements = append(p.Endorsements, verifier.Endorsement{Name: trust[i], Key: k.PublicKey()})
		}
		return p, nil
	}
	return nil, usagef("want --policy FILE or at least one --trust KEYFILE")
}

func verifierServe(e *env, args []string) error {
	fs := newFlags(e, "verifier serve", "[--listen 127.0.0.1:8090] [--key FILE] (--policy FILE | --trust KEYFILE...)",
		`Runs the Verifier service: POST /v1/evidence with Evidence (application/eat+cwt) returns
a signed Attestation Result for the Agent to present to the TAM (passport model);
GET /v1/key gives the result-signing public key, /healthz and /metrics the obvious.
Without --key an ephemeral key is generated and its public key logged.
SIGHUP reloads --policy (a bad file is logged and the old policy kept);
SIGINT or SIGTERM stop the service cleanly.`)
	listen := fs.String("listen", "127.0.0.1:8090", "address to listen on")
	keyPath := fs.String("key", "", "result-signing private key file")
	policyPath := fs.String("policy", "", "policy file (endorsements and reference values)")
	var trust listFlag
	fs.Var(&trust, "trust", "trusted attestation public key file (repeatable), instead of --policy")
	issuer := fs.String("issuer", "", "iss claim of issued results (default: the service URL)")
	logFormat := fs.String("log-format", "text", "log format: text or json")
	maxInFlight := fs.Int("max-in-flight", verifier.DefaultMaxInFlight, "concurrent appraisals before answering 503")
	pos, err := parse(fs, args)
	if err != nil {
		return err
	}
	if len(pos) != 0 {
		return usagef("no arguments expected")
	}
	log, err := newLogger(e, "info", *logFormat)
	if err != nil {
		return err
	}
	policy, err := verifierPolicy(*policyPath, trust)
	if err != nil {
		return err
	}
	var key *cosekey.Key
	if *keyPath != "" {
		if key, err = keyfile.Load(*keyPath); err != nil {
			return err
		}
	} else {
		if key, err = cosekey.Generate(cosekey.AlgESP256); err != nil {
			return err
		}
		j, _ := key.MarshalJWK(false)
		log.Warn("no --key: results are signed with an ephemeral key; give TAMs this public key", "jwk", string(j), "kid", hex.EncodeToString(key.KID()))
	}
	s, err := cosekey.NewSigner(key, 0)
	if err != nil {
		return err
	}
	ln, err := net.Listen("tcp", *listen)
	if err != nil {
		return err
	}
	iss := *issuer
	if iss == "" {
		iss = "http://" + ln.Addr().String()
	}
	v, err := verifier.New(verifier.Config{Policy: policy, Key: s, Issuer: iss})
	if err != nil {
		ln.Close()
		return err
	}
	srv, err := verifier.NewServer(verifier.ServerConfig{Verifier: v, Logger: log, Registry: httpd.NewRegistry(), MaxInFlight: *maxInFlight})
	if err != nil {
		ln.Close()
		return err
	}
	hs, err := srv.HTTPServer()
	if err != nil {
		ln.Close()
		return err
	}
	ctx, cancel := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer cancel()
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	defer signal.Stop(hup)
	log.Info("verifier listening", "addr", ln.Addr().String(), "policy", policy.ID, "endorsements", len(policy.Endorsements),
		"result_kid", hex.EncodeToString(key.KID()))
	if verifierServeReady != nil {
		verifierServeReady(ln.Addr().String(), cancel)
	}
	// Serve returns once ctx is done and requests in progress have ended.
	errc := make(chan error, 1)
	go func() { errc <- hs.Serve(ctx, ln) }()
	for {
		select {
		case err := <-errc:
			return err
		case <-hup:
			verifierReload(log, srv, *policyPath, trust, s, iss)
		}
	}
}

// verifierReload re-reads the policy and swaps it in; on any error the
// service keeps the policy it has.
func verifierReload(log *slog.Logger, srv *verifier.Server, policyPath string, trust []string, key *cosekey.Signer, iss string) {
	policy, err := verifierPolicy(policyPath, trust)
	if err == nil {
		var v *verifier.Verifier
		if v, err = verifier.New(verifier.Config{Policy: policy, Key: key, Issuer: iss}); err == nil {
			err = srv.SetVerifier(v)
		}
	}
	if err != nil {
		log.Error("policy reload failed; keeping the current policy", "err", err)
		return
	}
	log.Info("policy reloaded", "policy", policy.ID, "endorsements", len(policy.Endorsements))
}

// verifierAppraisalJSON is how the commands print an appraisal.
type verifierAppraisalJSON struct {
	Status      string          `json:"status"`
	Reasons     []string        `json:"reasons,omitempty"`
	Endorsement string          `json:"endorsement,omitempty"`
	SignerKID   string          `json:"signer_kid,omitempty"`
	PolicyID    string          `json:"policy_id,omitempty"`
	Freshness   string          `json:"freshness,omitempty"`
	Claims      json.RawMessage `json:"claims,omitempty"`
}

func verifierPrint(e *env, a *verifier.Appraisal, aerr error) error {
	if a == nil {
		return aerr
	}
	out := verifierAppraisalJSON{Status: a.Status.String(), Reasons: a.Reasons, Endorsement: a.Endorsement,
		PolicyID: a.PolicyID, Freshness: a.Freshness.String()}
	if a.SignerKey != nil {
		out.SignerKID = hex.EncodeToString(a.SignerKey.KID())
	}
	if a.Claims != nil {
		j, err := json.Marshal(a.Claims)
		if err != nil {
			return err
		}
		out.Claims = j
	}
	j, err := json.MarshalIndent(out, "", "  ")
	if err != nil {
		return err
	}
	fmt.Fprintf(e.stdout, "%s\n", j)
	return aerr
}

// verifierExpectations reads the flags both checking commands share.
func verifierExpectations(nonceHex string, timestamp bool, agentKey string) (verifier.Expectations, error) {
	var exp verifier.Expectations
	if timestamp {
		exp.Freshness = teep.FreshnessTimestamp
	}
	if nonceHex != "" {
		n, err := hex.DecodeString(nonceHex)
		if err != nil {
			return exp, usagef("--nonce: %v", err)
		}
		exp.Nonce = n
	}
	if agentKey != "" {
		k, err := keyfile.Load(agentKey)
		if err != nil {
			return exp, err
		}
		exp.AgentKey = k.PublicKey()
	}
	return exp, nil
}

func verifierAppraise(e *env, args []string) error {
	fs := newFlags(e, "verifier appraise", "(--policy FILE | --trust KEYFILE...) [--nonce HEX | --timestamp] [--agent-key FILE] [--hex] [FILE|-]",
		`Appraises Evidence as the TAM does in the background-check model and prints the
outcome as JSON (status, reasons, claims). Exits 0 for affirming or warning, 1 for
contraindicated. Without --nonce the eat_nonce is only required, not compared.`)
	policyPath := fs.String("policy", "", "policy file")
	var trust listFlag
	fs.Var(&trust, "trust", "trusted attestation public key file (repeatable), instead of --policy")
	nonceHex := fs.String("nonce", "", "expected eat_nonce in hex (the QueryRequest challenge)")
	timestamp := fs.Bool("timestamp", false, "timestamp freshness: iat must be recent")
	agentKey := fs.String("agent-key", "", "the Agent's TEEP key file; cnf must name it")
	asHex := fs.Bool("hex", false, "the input is hex text")
	pos, err := parse(fs, args)
	if err != nil {
		return err
	}
	policy, err := verifierPolicy(*policyPath, trust)
	if err != nil {
		return err
	}
	exp, err := verifierExpectations(*nonceHex, *timestamp, *agentKey)
	if err != nil {
		return err
	}
	in, err := eatReadToken(e, pos, *asHex)
	if err != nil {
		return err
	}
	v, err := verifier.New(verifier.Config{Policy: policy})
	if err != nil {
		return err
	}
	a, aerr := v.AppraiseEvidence(context.Background(), in, exp)
	return verifierPrint(e, a, aerr)
}

func verifierCheckResult(e *env, args []string) error {
	fs := newFlags(e, "verifier check-result", "--key FILE... --agent-key FILE (--nonce HEX | --timestamp) [--hex] [FILE|-]",
		`Checks an Attestation Result as a TAM does in the passport model: signed by one of the
Verifier keys, eat_nonce equal to the QueryRequest token (or a recent iat), not expired,
and cnf naming the Agent key. Prints the outcome as JSON; exits 1 unless trustworthy.`)
	var keyPaths listFlag
	fs.Var(&keyPaths, "key", "trusted Verifier public key file (repeatable, at least one)")
	nonceHex := fs.String("nonce", "", "expected eat_nonce in hex (the QueryRequest token)")
	timestamp := fs.Bool("timestamp", false, "timestamp freshness: iat must be recent")
	maxAge := fs.Duration("max-age", verifier.DefaultMaxAge, "oldest iat accepted with --timestamp")
	agentKey := fs.String("agent-key", "", "the Agent's TEEP key file (required)")
	asHex := fs.Bool("hex", false, "the input is hex text")
	pos, err := parse(fs, args)
	if err != nil {
		return err
	}
	if len(keyPaths) == 0 || *agentKey == "" {
		return usagef("want at least one --key FILE and --agent-key FILE")
	}
	if (*nonceHex == "") == !*timestamp {
		return usagef("want exactly one of --nonce HEX and --timestamp")
	}
	exp, err := verifierExpectations(*nonceHex, *timestamp, *agentKey)
	if err != nil {
		return err
	}
	exp.MaxAge = *maxAge
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
	a, aerr := verifier.VerifyResult(in, keys, exp)
	return verifierPrint(e, a, aerr)
}
