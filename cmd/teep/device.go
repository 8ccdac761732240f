package main

import (
	"context"
	"encoding/hex"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"text/tabwriter"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/teep-go/teep/cosekey"
	"github.com/teep-go/teep/internal/agent"
	"github.com/teep-go/teep/internal/broker"
	"github.com/teep-go/teep/internal/fetch"
	"github.com/teep-go/teep/internal/keyfile"
	"github.com/teep-go/teep/internal/suitmetrics"
	"github.com/teep-go/teep/internal/tee"
	"github.com/teep-go/teep/internal/tee/softtee"
	"github.com/teep-go/teep/internal/verifier"
	"github.com/teep-go/teep/suit"
	"github.com/teep-go/teep/suit/processor"
	"github.com/teep-go/teep/teep"
)

func init() {
	register(&command{path: "device run", summary: "run a device: the TEEP Broker and one Agent per software TEE", run: deviceRun})
	register(&command{path: "device status", summary: "list each TEE's installed Trusted Components", run: deviceStatus})
	register(&command{path: "device request", summary: "ask for a Trusted Component (RequestTA)", run: deviceRequest})
	register(&command{path: "device release", summary: "say a Trusted Component is no longer needed (UnrequestTA)", run: deviceRelease})
	register(&command{path: "device sync", summary: "make the running daemon check with the TAM now", run: deviceSync})
	register(&command{path: "device key", summary: "print a TEE's public Agent or attestation key, to register it with a TAM", run: deviceKey})
	register(&command{path: "device agent", summary: "serve one TEE's Agent on a local socket for a Broker in another process", run: deviceAgent})
}

// Files of a device state directory (docs/device.md).
const (
	deviceConfigFile  = "device.json"
	deviceSocketFile  = "broker.sock"
	deviceTEEDir      = "tee"
	deviceDefaultTEE  = "default"
	deviceAgentPubPEM = "agent-key.pem"
	deviceAttestPEM   = "attestation-key.pem"
)

// deviceRunReady, when set (tests), is called once the daemon serves its
// local API, with a function that stops it.
var deviceRunReady func(stop func())

// deviceFaultHook, when set (tests), is handed to every software TEE.
var deviceFaultHook func(point string, staged []string) error

// deviceRetry, when set (tests), replaces the TAM client's retry policy.
var deviceRetry broker.Retry

// deviceConfig is the rich-OS side configuration kept in device.json. Trust
// anchors and identity are not here: they are sealed in each TEE.
type deviceConfig struct {
	TAM             string   `json:"tam"`
	TEEs            []string `json:"tees"`
	LegacyNumbering bool     `json:"legacy_numbering,omitempty"`
	TAMCA           string   `json:"tam_ca,omitempty"`
	Verifier        string   `json:"verifier,omitempty"`
}

func deviceDefaultState(e *env) string {
	if d := e.getenv("TEEP_DEVICE_STATE"); d != "" {
		return d
	}
	if d := e.getenv("XDG_STATE_HOME"); d != "" {
		return filepath.Join(d, "teep", "device")
	}
	if h := e.getenv("HOME"); h != "" {
		return filepath.Join(h, ".local", "state", "teep", "device")
	}
	return "teep-device"
}

func deviceLoadConfig(state string) (*deviceConfig, error) {
	data, err := os.ReadFile(filepath.Join(state, deviceConfigFile))
	if errors.Is(err, fs.ErrNotExist) {
		return &deviceConfig{}, nil
	}
	if err != nil {
		return nil, err
	}
	var c deviceConfig
	dec := json.NewDecoder(strings.NewReader(string(data)))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&c); err != nil {
		return nil, fmt.Errorf("%s: %w", filepath.Join(state, deviceConfigFile), err)
	}
	if dec.More() {
		return nil, fmt.Errorf("%s: data after the JSON object", filepath.Join(state, deviceConfigFile))
	}
	return &c, nil
}

func deviceSaveConfig(state string, c *deviceConfig) error {
	data, err := json.MarshalIndent(c, "", "  ")
	if err != nil {
		return err
	}
	return keyfile.WriteAtomic(filepath.Join(state, deviceConfigFile), append(data, '\n'), 0o600)
}

// deviceTEEs lists the TEEs of a state directory: device.json's list (its
// order: the first is the default TEE), then any other TEE directory.
func deviceTEEs(state string, c *deviceConfig) []string {
	out := append([]string(nil), c.TEEs...)
	entries, _ := os.ReadDir(filepath.Join(state, deviceTEEDir))
	for _, en := range entries {
		if en.IsDir() && softtee.ValidName.MatchString(en.Name()) {
			out = append(out, en.Name())
		}
	}
	return deviceDedupe(out)
}

func deviceParseUUID(s string) (*[16]byte, error) {
	h := strings.ReplaceAll(s, "-", "")
	b, err := hex.DecodeString(h)
	if err != nil || len(b) != 16 || (strings.Contains(s, "-") && len(s) != 36) {
		return nil, fmt.Errorf("%q is not a UUID (want 8-4-4-4-12 hex digits)", s)
	}
	var u [16]byte
	copy(u[:], b)
	return &u, nil
}

// deviceTEE is one opened software TEE with its Agent.
type deviceTEE struct {
	name  string
	tee   *softtee.TEE
	agent *agent.Agent
}

type deviceOpenOptions struct {
	tams       []string
	numbering  teep.Numbering
	agentKey   *cosekey.Key
	vendor     *[16]byte
	class      *[16]byte
	tamKeys    []*cosekey.Key
	signerKeys []*cosekey.Key
	fetcher    processor.Fetcher
	log        *slog.Logger
	events     func(agent.Event)
	metrics    processor.Observer
	passport   agent.Verifier
}

// deviceOpen opens (creating on first use) the software TEE name under
// state, adds trust anchors and builds its Agent.
func deviceOpen(state, name string, o deviceOpenOptions) (*deviceTEE, error) {
	if !softtee.ValidName.MatchString(name) {
		return nil, usagef("TEE name %q: want lower-case letters, digits, '.', '_' or '-' (up to 63)", name)
	}
	dir := filepath.Join(state, deviceTEEDir, name)
	t, err := softtee.Open(dir, softtee.Options{Name: name, AgentKey: o.agentKey, VendorID: o.vendor, ClassID: o.class,
		FaultHook: deviceFaultHook})
	if errors.Is(err, tee.ErrBusy) {
		return nil, fmt.Errorf("%w (is `teep device run` already running on %s?)", err, state)
	}
	if err != nil {
		return nil, err
	}
	ok := false
	defer func() {
		if !ok {
			t.Close()
		}
	}()
	for _, k := range o.tamKeys {
		if err := agent.AddTrustAnchor(t.Storage(), agent.RoleTAM, k); err != nil {
			return nil, fmt.Errorf("TEE %s: trust TAM key: %w", name, err)
		}
	}
	for _, k := range o.signerKeys {
		if err := agent.AddTrustAnchor(t.Storage(), agent.RoleSigner, k); err != nil {
			return nil, fmt.Errorf("TEE %s: trust signer key: %w", name, err)
		}
	}
	// Public keys in the clear next to the sealed state, so `teep device
	// key` works while the daemon holds the TEE.
	for file, k := range map[string]*cosekey.Key{deviceAgentPubPEM: t.AgentPublicKey(), deviceAttestPEM: t.AttestationPublicKey()} {
		if err := keyfile.Save(filepath.Join(dir, file), k, cosekey.FormatPEM, false); err != nil {
			return nil, err
		}
	}
	s, err := agent.NewSUIT(agent.SUITConfig{TEE: t, Fetcher: o.fetcher, Logger: o.log, Observer: o.metrics})
	if err != nil {
		return nil, err
	}
	log := o.log
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	a, err := agent.New(agent.Config{TEE: t, Installer: s, TAMs: o.tams, Numbering: o.numbering, Logger: log, Events: o.events,
		Passport: o.passport})
	if err != nil {
		return nil, err
	}
	ok = true
	return &deviceTEE{name: name, tee: t, agent: a}, nil
}

func deviceLoadKeys(paths []string) ([]*cosekey.Key, error) {
	keys, err := keyfile.LoadAll(paths)
	if err != nil {
		return nil, err
	}
	for i, k := range keys {
		keys[i] = k.PublicKey() // only the public half is ever stored
	}
	return keys, nil
}

func deviceRun(e *env, args []string) error {
	fs := newFlags(e, "device run", "--tam URL [--state DIR] [--tee NAME]... [--once] [--interval D] [--tam-key FILE]... [--signer-key FILE]... [--agent-key FILE] [--vendor-id UUID] [--class-id UUID] [--legacy-numbering]",
		"Runs a device: one software TEE with its TEEP Agent per --tee (default \"default\"), and the\n"+
			"TEEP Broker that connects them to the TAM over HTTP(S) (draft-ietf-teep-otrp-over-http-15).\n"+
			"With --once it runs sessions until the TAM has nothing more to do and exits (0 on success,\n"+
			"1 with the reason otherwise). Without it, it keeps checking every --interval and serves the\n"+
			"local API on DIR/broker.sock (teep device status/request/release use it) until SIGINT or\n"+
			"SIGTERM. Trust anchors, keys and identity persist (sealed) in the state directory; the\n"+
			"TAM URL and TEE list in DIR/device.json.")
	tamURL := fs.String("tam", "", "TAM URL (remembered in the state directory)")
	state := fs.String("state", deviceDefaultState(e), "device state directory")
	var tees, tamKeys, signerKeys, agentKeys, remotes listFlag
	fs.Var(&tees, "tee", "software TEE to run (repeatable; default: those of the state directory, or \"default\")")
	once := fs.Bool("once", false, "run until the TAM has nothing more to do, then exit")
	interval := fs.Duration("interval", time.Hour, "time between policy checks of the daemon")
	fs.Var(&tamKeys, "tam-key", "trust this TAM public key (COSE_Key, PEM or JWK; repeatable; persists)")
	fs.Var(&signerKeys, "signer-key", "trust this Trusted Component signer key for SUIT manifests (repeatable; persists)")
	fs.Var(&agentKeys, "agent-key", "import the Agent key from FILE into the first TEE on its first run, or NAME=FILE for TEE NAME (repeatable)")
	vendor := fs.String("vendor-id", "", "the TEEs' SUIT vendor-id UUID (persists)")
	class := fs.String("class-id", "", "the TEEs' SUIT class-id UUID (persists)")
	legacy := fs.Bool("legacy-numbering", false, "speak the TEEP numbering of drafts -18 to -25 (persists)")
	tamCA := fs.String("tam-ca", "", "PEM CA certificates for the TAM's TLS certificate (default: system roots; persists)")
	verifierURL := fs.String("verifier", "", "Verifier service URL (teep verifier serve) for the passport model: Evidence is exchanged for an Attestation Result when a TAM asks without a challenge (persists)")
	fs.Var(&remotes, "remote-agent", "NAME=SOCKET: route TEE NAME to an Agent process serving on SOCKET (teep device agent)")
	fetchHTTP := fs.Bool("fetch-http-unsafe", false, "allow plain http:// payload URIs in SUIT manifests")
	metricsAddr := fs.String("metrics", "", "serve Prometheus metrics on this address (e.g. 127.0.0.1:9465)")
	logLevel := fs.String("log-level", "info", "debug, info, warn or error")
	logFormat := fs.String("log-format", "text", "text or json")
	pos, err := parse(fs, args)
	if err != nil {
		return err
	}
	if len(pos) != 0 {
		return usagef("no arguments expected")
	}
	if *interval < time.Second {
		return usagef("--interval must be at least 1s")
	}
	log, err := newLogger(e, *logLevel, *logFormat)
	if err != nil {
		return err
	}
	set := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { set[f.Name] = true })

	if err := os.MkdirAll(*state, 0o700); err != nil {
		return err
	}
	cfg, err := deviceLoadConfig(*state)
	if err != nil {
		return err
	}
	if *tamURL != "" {
		cfg.TAM = *tamURL
	}
	if cfg.TAM == "" {
		return usagef("--tam URL is required (on the first run; it is remembered)")
	}
	if _, err := broker.CheckTAMURI(cfg.TAM); err != nil {
		return usageError{err.Error()}
	}
	if set["legacy-numbering"] {
		cfg.LegacyNumbering = *legacy
	}
	if *verifierURL != "" {
		if _, err := broker.CheckTAMURI(*verifierURL); err != nil {
			return usagef("--verifier: %v", strings.TrimPrefix(err.Error(), "TAM "))
		}
		cfg.Verifier = *verifierURL
	}
	var passport agent.Verifier
	if cfg.Verifier != "" {
		passport = &verifier.Client{URL: cfg.Verifier}
	}
	if *tamCA != "" {
		abs, err := filepath.Abs(*tamCA)
		if err != nil {
			return err
		}
		cfg.TAMCA = abs
	}
	// The TEEs to run: those named, else every TEE the device has, else
	// "default". device.json remembers every TEE ever run.
	runTEEs := deviceDedupe(tees)
	if len(runTEEs) == 0 {
		if runTEEs = deviceTEEs(*state, cfg); len(runTEEs) == 0 && len(remotes) == 0 {
			runTEEs = []string{deviceDefaultTEE}
		}
	}
	cfg.TEEs = deviceDedupe(append(append([]string(nil), cfg.TEEs...), runTEEs...))
	num := teep.Draft26
	if cfg.LegacyNumbering {
		num = teep.Legacy
	}
	var vid, cid *[16]byte
	if *vendor != "" {
		if vid, err = deviceParseUUID(*vendor); err != nil {
			return usagef("--vendor-id: %v", err)
		}
	}
	if *class != "" {
		if cid, err = deviceParseUUID(*class); err != nil {
			return usagef("--class-id: %v", err)
		}
	}
	tk, err := deviceLoadKeys(tamKeys)
	if err != nil {
		return err
	}
	sk, err := deviceLoadKeys(signerKeys)
	if err != nil {
		return err
	}
	agentKeyFor := map[string]*cosekey.Key{}
	for _, spec := range agentKeys {
		name, file, ok := strings.Cut(spec, "=")
		if !ok {
			if len(runTEEs) == 0 {
				return usagef("--agent-key FILE needs a TEE")
			}
			name, file = runTEEs[0], spec
		}
		if _, dup := agentKeyFor[name]; dup {
			return usagef("--agent-key given twice for TEE %s", name)
		}
		k, err := keyfile.Load(file)
		if err != nil {
			return err
		}
		if !k.IsPrivate() {
			return fmt.Errorf("--agent-key %s: not a private key", file)
		}
		agentKeyFor[name] = k
	}

	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	procMetrics, err := suitmetrics.New(reg)
	if err != nil {
		return err
	}
	brokerMetrics, err := broker.NewMetrics(reg)
	if err != nil {
		return err
	}
	fetcher := &fetch.HTTP{AllowHTTPUnsafe: *fetchHTTP, UserAgent: "teep-go-agent"}
	var opened []*deviceTEE
	defer func() {
		for _, d := range opened {
			d.tee.Close()
		}
	}()
	for _, name := range runTEEs {
		d, err := deviceOpen(*state, name, deviceOpenOptions{
			tams: []string{cfg.TAM}, numbering: num, agentKey: agentKeyFor[name], vendor: vid, class: cid,
			tamKeys: tk, signerKeys: sk, fetcher: fetcher, log: log, metrics: procMetrics, passport: passport,
			events: func(ev agent.Event) { deviceLogEvent(log, ev) },
		})
		if err != nil {
			return err
		}
		opened = append(opened, d)
		anchors, err := agent.TrustAnchors(d.tee.Storage(), agent.RoleTAM)
		if err != nil {
			return fmt.Errorf("TEE %s: %w", name, err)
		}
		if len(anchors) == 0 {
			return usagef("TEE %s trusts no TAM key: pass --tam-key FILE (it is remembered)", name)
		}
		if s, _ := agent.TrustAnchors(d.tee.Storage(), agent.RoleSigner); len(s) == 0 {
			log.Warn("TEE trusts no Trusted Component signer: every manifest will be refused; pass --signer-key FILE", "tee", name)
		}
		delete(agentKeyFor, name)
	}
	for name := range agentKeyFor {
		return usagef("--agent-key for TEE %s, which is not run", name)
	}
	if err := deviceSaveConfig(*state, cfg); err != nil {
		return err
	}
	co := broker.ClientOptions{Logger: log, Retry: deviceRetry}
	if cfg.TAMCA != "" {
		if co.RootCAs, err = broker.LoadCAFile(cfg.TAMCA); err != nil {
			return err
		}
	}
	b := broker.New(broker.Options{Client: broker.NewClient(co), Logger: log, Metrics: brokerMetrics})
	for _, d := range opened {
		if err := b.AddAgent(d.name, broker.InProcess(d.agent)); err != nil {
			return err
		}
	}
	for _, spec := range remotes {
		name, sock, ok := strings.Cut(spec, "=")
		if !ok || name == "" || sock == "" {
			return usagef("--remote-agent: want NAME=SOCKET")
		}
		if err := b.AddAgent(name, broker.DialAgent(sock)); err != nil {
			return usageError{err.Error()}
		}
	}
	if cfg.LegacyNumbering {
		log.Info("speaking the legacy TEEP numbering (drafts -18 to -25)")
	}

	ctx, cancel := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer cancel()
	if *once {
		err := b.Sync(ctx, "")
		deviceWriteStatus(e.stdout, b.Status(context.Background()))
		return err
	}
	return deviceDaemon(ctx, cancel, e, log, b, *state, *interval, *metricsAddr, reg)
}

func deviceDedupe(in []string) []string {
	seen := map[string]bool{}
	var out []string
	for _, s := range in {
		if !seen[s] {
			seen[s] = true
			out = append(out, s)
		}
	}
	return out
}

// deviceDaemon serves the local API and runs a policy check every interval
// until ctx ends; a round in progress at shutdown gets a grace period to
// finish (its installs are atomic either way).
func deviceDaemon(ctx context.Context, stop context.CancelFunc, e *env, log *slog.Logger, b *broker.Broker,
	state string, interval time.Duration, metricsAddr string, reg *prometheus.Registry) error {
	sock := filepath.Join(state, deviceSocketFile)
	ln, err := broker.ListenUnix(sock)
	if err != nil {
		return fmt.Errorf("local API socket: %w", err)
	}
	defer os.Remove(sock)
	// Sessions run on work, which outlives ctx by a grace period.
	work, cancelWork := context.WithCancel(context.Background())
	defer cancelWork()
	go func() {
		<-ctx.Done()
		t := time.NewTimer(30 * time.Second)
		defer t.Stop()
		select {
		case <-t.C:
			log.Warn("shutdown grace period over; aborting the session in progress")
			cancelWork()
		case <-work.Done():
		}
	}()
	served := make(chan error, 1)
	go func() { served <- broker.Serve(ctx, ln, b.LocalHandler(), 5*time.Second, log) }()
	if metricsAddr != "" {
		mln, err := net.Listen("tcp", metricsAddr)
		if err != nil {
			return fmt.Errorf("--metrics: %w", err)
		}
		mux := http.NewServeMux()
		mux.Handle("GET /metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
		go broker.Serve(ctx, mln, mux, time.Second, log)
		log.Info("metrics", "addr", mln.Addr().String())
	}
	log.Info("device running", "tees", strings.Join(b.TEEs(), ","), "socket", sock, "interval", interval)
	if deviceRunReady != nil {
		deviceRunReady(stop)
	}
	for {
		if err := b.Sync(work, ""); err != nil {
			log.Warn("policy check failed", "err", err)
		} else {
			log.Info("policy check complete", "next", time.Now().Add(interval).Format(time.RFC3339))
		}
		t := time.NewTimer(broker.Jitter(interval))
		select {
		case <-ctx.Done():
			t.Stop()
			log.Info("device shutting down")
			cancelWork()
			return <-served
		case <-t.C:
		}
	}
}

func deviceLogEvent(log *slog.Logger, ev agent.Event) {
	attrs := []any{"tee", ev.TEE, "event", string(ev.Kind)}
	if ev.Component != nil {
		attrs = append(attrs, "component", ev.Component.String())
	}
	if ev.Sequence != 0 {
		attrs = append(attrs, "sequence", ev.Sequence)
	}
	if ev.Kind == agent.EventFailure || ev.Kind == agent.EventTAMError {
		log.Warn(ev.Detail, attrs...)
		return
	}
	log.Info(ev.Detail, attrs...)
}

// deviceWriteStatus prints TEE statuses as a table per TEE.
func deviceWriteStatus(w io.Writer, sts []broker.TEEStatus) {
	for i, st := range sts {
		if i > 0 {
			fmt.Fprintln(w)
		}
		fmt.Fprintf(w, "TEE %s", st.Name)
		if len(st.AgentKID) > 0 {
			fmt.Fprintf(w, " (agent kid %x)", []byte(st.AgentKID))
		}
		fmt.Fprintln(w)
		if st.Error != "" {
			fmt.Fprintf(w, "  ERROR: %s\n", st.Error)
			continue
		}
		if len(st.Components) == 0 {
			fmt.Fprintln(w, "  no Trusted Components installed")
		} else {
			tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
			fmt.Fprintln(tw, "  ID\tSEQUENCE\tSIZE\tSHA256\tNAME")
			for _, c := range st.Components {
				fmt.Fprintf(tw, "  %s\t%d\t%d\t%x\t%s\n", c.ID, c.SequenceNumber, c.Size, []byte(c.SHA256), deviceReadable(c.ID))
			}
			tw.Flush()
		}
		for _, id := range st.Requested {
			fmt.Fprintf(w, "  requested: %s\n", id)
		}
		for _, id := range st.Unneeded {
			fmt.Fprintf(w, "  released:  %s\n", id)
		}
	}
}

// deviceReadable shows a component id's segments as text when they all
// are printable ("TEEP-Device/SecureFS/app/ta"), else "-".
func deviceReadable(id suit.ComponentID) string {
	parts := make([]string, len(id))
	for i, p := range id {
		if len(p) == 0 || strings.IndexFunc(string(p), func(r rune) bool { return r < 0x21 || r > 0x7e || r == '/' }) >= 0 {
			return "-"
		}
		parts[i] = string(p)
	}
	return strings.Join(parts, "/")
}

// deviceTEEOrFirst returns name, or when it is empty the first TEE of the
// state directory.
func deviceTEEOrFirst(state, name string) (string, error) {
	if name != "" {
		return name, nil
	}
	cfg, err := deviceLoadConfig(state)
	if err != nil {
		return "", err
	}
	names := deviceTEEs(state, cfg)
	if len(names) == 0 {
		return "", fmt.Errorf("%s holds no TEEs (run `teep device run` first)", state)
	}
	return names[0], nil
}

// deviceOpenOffline opens the TEE name of the state directory for a command
// run while no daemon holds it.
func deviceOpenOffline(state, name string) (*deviceTEE, error) {
	cfg, err := deviceLoadConfig(state)
	if err != nil {
		return nil, err
	}
	if _, err := os.Stat(filepath.Join(state, deviceTEEDir, name)); err != nil {
		return nil, fmt.Errorf("no TEE %q in %s", name, state)
	}
	var tams []string
	if cfg.TAM != "" {
		tams = []string{cfg.TAM}
	}
	num := teep.Draft26
	if cfg.LegacyNumbering {
		num = teep.Legacy
	}
	d, err := deviceOpen(state, name, deviceOpenOptions{tams: tams, numbering: num})
	if err != nil {
		return nil, fmt.Errorf("TEE %s: %w", name, err)
	}
	return d, nil
}

func deviceStatus(e *env, args []string) error {
	fs := newFlags(e, "device status", "--state DIR [--json]",
		"Lists, per TEE, the installed Trusted Components: id (docs/suit.md text form), sequence number,\n"+
			"size and SHA-256, and pending requests and releases. It asks the running daemon, or reads\n"+
			"the sealed state directly when none runs; a TEE whose state was tampered with is reported\n"+
			"and the command fails.")
	state := fs.String("state", deviceDefaultState(e), "device state directory")
	asJSON := fs.Bool("json", false, "print JSON: {\"tees\": [...]}")
	pos, err := parse(fs, args)
	if err != nil {
		return err
	}
	if len(pos) != 0 {
		return usagef("no arguments expected")
	}
	ctx := context.Background()
	sts, err := broker.NewLocalClient(filepath.Join(*state, deviceSocketFile)).Status(ctx)
	if errors.Is(err, broker.ErrNotRunning) {
		sts, err = deviceOfflineStatus(ctx, *state)
	}
	if err != nil {
		return err
	}
	if *asJSON {
		enc := json.NewEncoder(e.stdout)
		enc.SetIndent("", "  ")
		if err := enc.Encode(map[string]any{"tees": sts}); err != nil {
			return err
		}
	} else {
		deviceWriteStatus(e.stdout, sts)
	}
	var bad []string
	for _, st := range sts {
		if st.Error != "" {
			bad = append(bad, st.Name)
		}
	}
	if len(bad) > 0 {
		return fmt.Errorf("TEE %s: state unusable (see above)", strings.Join(bad, ", "))
	}
	return nil
}

// deviceOfflineStatus reads each TEE directly; a TEE that fails to open
// (tampered, locked) is reported in its entry rather than hiding the rest.
func deviceOfflineStatus(ctx context.Context, state string) ([]broker.TEEStatus, error) {
	cfg, err := deviceLoadConfig(state)
	if err != nil {
		return nil, err
	}
	names := deviceTEEs(state, cfg)
	if len(names) == 0 {
		if _, err := os.Stat(state); err != nil {
			return nil, fmt.Errorf("state directory: %w", err)
		}
	}
	out := []broker.TEEStatus{}
	for _, n := range names {
		if _, err := os.Stat(filepath.Join(state, deviceTEEDir, n, "index")); err != nil {
			// Listed but absent (deleted, or never got state): report it
			// rather than create an empty TEE as a side effect.
			out = append(out, broker.TEEStatus{Name: n, Components: []broker.Component{}, Error: "no sealed state in " + filepath.Join(state, deviceTEEDir, n)})
			continue
		}
		d, err := deviceOpen(state, n, deviceOpenOptions{tams: []string{"http://unused.invalid/"}})
		if err != nil {
			out = append(out, broker.TEEStatus{Name: n, Components: []broker.Component{}, Error: err.Error()})
			continue
		}
		st, err := d.agent.Status(ctx)
		d.tee.Close()
		if err != nil {
			out = append(out, broker.TEEStatus{Name: n, Components: []broker.Component{}, Error: err.Error()})
			continue
		}
		out = append(out, *broker.StatusOf(n, st))
	}
	return out, nil
}

func deviceRequest(e *env, args []string) error { return deviceRequestOrRelease(e, args, true) }
func deviceRelease(e *env, args []string) error { return deviceRequestOrRelease(e, args, false) }

func deviceRequestOrRelease(e *env, args []string, want bool) error {
	path, verb := "device request", "requested"
	about := "Asks for a Trusted Component (RFC 9397 RequestTA). With the daemon running, the session with\n" +
		"the TAM runs at once and the command reports its outcome; otherwise the request is recorded\n" +
		"in the TEE and sent at the next session."
	if !want {
		path, verb = "device release", "released"
		about = "Says a Trusted Component is no longer needed (RFC 9397 UnrequestTA): its manifest is listed\n" +
			"as unneeded to the TAM, at once when the daemon runs, else at the next session."
	}
	fs := newFlags(e, path, "--state DIR [--tee NAME] [--tam URL] ID",
		about+"\n\nID is a SUIT component id as `teep device status` prints it (TEEP-Device/SecureFS/app/ta:\nsegments joined by \"/\", each text or hex:HEX; docs/suit.md); [\"hex\",...] and hex parts\nseparated by commas are read too.")
	state := fs.String("state", deviceDefaultState(e), "device state directory")
	teeName := fs.String("tee", "", "the TEE (default: the device's first)")
	tam := fs.String("tam", "", "TAM URL hint (used if it is one the device trusts)")
	timeout := fs.Duration("timeout", 10*time.Minute, "how long to wait for the session")
	pos, err := parse(fs, args)
	if err != nil {
		return err
	}
	if len(pos) != 1 {
		return usagef("want exactly one component ID")
	}
	id, err := suit.ParseComponentID(pos[0])
	if err != nil {
		return usagef("component ID: %v", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), *timeout)
	defer cancel()
	c := broker.NewLocalClient(filepath.Join(*state, deviceSocketFile))
	var name string
	if want {
		name, err = c.Request(ctx, *teeName, id, *tam)
	} else {
		name, err = c.Release(ctx, *teeName, id, *tam)
	}
	if err == nil {
		fmt.Fprintf(e.stdout, "%s %s on TEE %s; the TAM session completed\n", verb, id, name)
		return nil
	}
	if !errors.Is(err, broker.ErrNotRunning) {
		return err
	}
	// No daemon: record it in the TEE for the next session.
	only, err := deviceTEEOrFirst(*state, *teeName)
	if err != nil {
		return err
	}
	d, err := deviceOpenOffline(*state, only)
	if err != nil {
		return err
	}
	defer d.tee.Close()
	var r agent.Result
	if want {
		r, err = d.agent.RequestTA(ctx, id, *tam)
	} else {
		r, err = d.agent.UnrequestTA(ctx, id, *tam)
	}
	if err != nil {
		return err
	}
	if r.TAMURI == "" {
		if want {
			fmt.Fprintf(e.stdout, "%s is already installed on TEE %s\n", id, only)
		} else {
			fmt.Fprintf(e.stdout, "%s is not installed on TEE %s; nothing to release\n", id, only)
		}
		return nil
	}
	fmt.Fprintf(e.stdout, "%s %s on TEE %s; recorded for the next session (no daemon is running)\n", verb, id, only)
	return nil
}

func deviceSync(e *env, args []string) error {
	fs := newFlags(e, "device sync", "--state DIR [--tee NAME]",
		"Makes the running daemon run a policy check now (RequestPolicyCheck) and waits for it: the\n"+
			"sessions with the TAM run until it has nothing more to do. Without a daemon, use\n"+
			"`teep device run --once`.")
	state := fs.String("state", deviceDefaultState(e), "device state directory")
	teeName := fs.String("tee", "", "only this TEE (default: all)")
	timeout := fs.Duration("timeout", 10*time.Minute, "how long to wait")
	pos, err := parse(fs, args)
	if err != nil {
		return err
	}
	if len(pos) != 0 {
		return usagef("no arguments expected")
	}
	ctx, cancel := context.WithTimeout(context.Background(), *timeout)
	defer cancel()
	c := broker.NewLocalClient(filepath.Join(*state, deviceSocketFile))
	if err := c.Sync(ctx, *teeName); err != nil {
		if errors.Is(err, broker.ErrNotRunning) {
			return fmt.Errorf("no daemon runs on %s; use `teep device run --state %s --once`", *state, *state)
		}
		return err
	}
	sts, err := c.Status(ctx)
	if err != nil {
		return err
	}
	deviceWriteStatus(e.stdout, sts)
	return nil
}

func deviceKey(e *env, args []string) error {
	fs := newFlags(e, "device key", "--state DIR [--tee NAME] [--attestation] [--format pem|cose|jwk]",
		"Prints a TEE's public Agent key (its kid names the device to a TAM; register it in advance\n"+
			"with the TAM to skip attestation), or with --attestation the key Evidence is signed with\n"+
			"(for a Verifier's endorsements).")
	state := fs.String("state", deviceDefaultState(e), "device state directory")
	teeName := fs.String("tee", "", "the TEE (default: the device's first)")
	attest := fs.Bool("attestation", false, "print the attestation key instead of the Agent key")
	format := fs.String("format", "pem", "pem, cose or jwk")
	pos, err := parse(fs, args)
	if err != nil {
		return err
	}
	if len(pos) != 0 {
		return usagef("no arguments expected")
	}
	name, err := deviceTEEOrFirst(*state, *teeName)
	if err != nil {
		return err
	}
	file := deviceAgentPubPEM
	if *attest {
		file = deviceAttestPEM
	}
	k, err := keyfile.Load(filepath.Join(*state, deviceTEEDir, name, file))
	if errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("no TEE %q in %s", name, *state)
	}
	if err != nil {
		return err
	}
	out, err := k.Marshal(cosekey.Format(*format), false)
	if err != nil {
		return usageError{err.Error()}
	}
	_, err = e.stdout.Write(out)
	return err
}

func deviceAgent(e *env, args []string) error {
	fs := newFlags(e, "device agent", "--state DIR --tee NAME --listen SOCKET [--tam URL] [--tam-key FILE]... [--signer-key FILE]... [--agent-key FILE] [--legacy-numbering]",
		"Runs one TEE's TEEP Agent in this process and serves the Broker/Agent API (RFC 9397 §6.2.1)\n"+
			"on a Unix socket, for `teep device run --remote-agent NAME=SOCKET` in another process.")
	state := fs.String("state", deviceDefaultState(e), "device state directory")
	teeName := fs.String("tee", deviceDefaultTEE, "the TEE")
	listen := fs.String("listen", "", "Unix socket to serve on (required)")
	tamURL := fs.String("tam", "", "TAM URL (default: the state directory's)")
	var tamKeys, signerKeys listFlag
	fs.Var(&tamKeys, "tam-key", "trust this TAM public key (repeatable; persists)")
	fs.Var(&signerKeys, "signer-key", "trust this Trusted Component signer key (repeatable; persists)")
	agentKeyFile := fs.String("agent-key", "", "import the Agent key from FILE on the TEE's first run")
	legacy := fs.Bool("legacy-numbering", false, "speak the TEEP numbering of drafts -18 to -25")
	fetchHTTP := fs.Bool("fetch-http-unsafe", false, "allow plain http:// payload URIs in SUIT manifests")
	logLevel := fs.String("log-level", "info", "debug, info, warn or error")
	logFormat := fs.String("log-format", "text", "text or json")
	pos, err := parse(fs, args)
	if err != nil {
		return err
	}
	if len(pos) != 0 || *listen == "" {
		return usagef("want --listen SOCKET and no arguments")
	}
	log, err := newLogger(e, *logLevel, *logFormat)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(*state, 0o700); err != nil {
		return err
	}
	cfg, err := deviceLoadConfig(*state)
	if err != nil {
		return err
	}
	tam := cfg.TAM
	if *tamURL != "" {
		tam = *tamURL
	}
	if tam == "" {
		return usagef("--tam URL is required (the state directory has none)")
	}
	if _, err := broker.CheckTAMURI(tam); err != nil {
		return usageError{err.Error()}
	}
	num := teep.Draft26
	if *legacy || cfg.LegacyNumbering {
		num = teep.Legacy
	}
	tk, err := deviceLoadKeys(tamKeys)
	if err != nil {
		return err
	}
	sk, err := deviceLoadKeys(signerKeys)
	if err != nil {
		return err
	}
	var ak *cosekey.Key
	if *agentKeyFile != "" {
		if ak, err = keyfile.Load(*agentKeyFile); err != nil {
			return err
		}
		if !ak.IsPrivate() {
			return fmt.Errorf("--agent-key %s: not a private key", *agentKeyFile)
		}
	}
	d, err := deviceOpen(*state, *teeName, deviceOpenOptions{tams: []string{tam}, numbering: num, tamKeys: tk, signerKeys: sk, agentKey: ak,
		fetcher: &fetch.HTTP{AllowHTTPUnsafe: *fetchHTTP}, log: log, events: func(ev agent.Event) { deviceLogEvent(log, ev) }})
	if err != nil {
		return err
	}
	defer d.tee.Close()
	ln, err := broker.ListenUnix(*listen)
	if err != nil {
		return err
	}
	defer os.Remove(*listen)
	ctx, cancel := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer cancel()
	log.Info("agent serving", "tee", d.name, "socket", *listen)
	if deviceRunReady != nil {
		deviceRunReady(cancel)
	}
	return broker.Serve(ctx, ln, broker.AgentHandler(broker.InProcess(d.agent)), 30*time.Second, log)
}
