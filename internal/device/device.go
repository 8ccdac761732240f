package device

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/teep-go/teep/cosekey"
	"github.com/teep-go/teep/internal/agent"
	"github.com/teep-go/teep/internal/broker"
	"github.com/teep-go/teep/internal/fetch"
	"github.com/teep-go/teep/internal/httpd"
	"github.com/teep-go/teep/internal/suitmetrics"
	"github.com/teep-go/teep/internal/verifier"
	"github.com/teep-go/teep/suit/processor"
	"github.com/teep-go/teep/teep"
)

// Daemon timing defaults.
const (
	DefaultInterval = time.Hour
	MinInterval     = time.Second
	// DefaultGracePeriod is how long a session in progress at shutdown may
	// go on (its installs are atomic either way).
	DefaultGracePeriod = 30 * time.Second
	// apiShutdown bounds the local API's and metrics' graceful shutdown.
	apiShutdown     = 5 * time.Second
	metricsShutdown = time.Second
)

// RemoteAgent routes a TEE to an Agent serving in another process
// (ServeAgent).
type RemoteAgent struct {
	Name, Socket string
}

// Options configure a device. Only StateDir is required, and a TAM URL on
// the first run (device.json remembers it). Settings marked "persists" are
// kept in device.json or sealed in the TEEs.
type Options struct {
	StateDir string
	TAM      string   // TAM URL (persists)
	TEEs     []string // TEEs to run; default: those of the state directory, else DefaultTEE (persists)
	Remote   []RemoteAgent

	TAMKeys    []*cosekey.Key          // trusted TAM keys, public halves are stored (persists)
	SignerKeys []*cosekey.Key          // trusted Trusted Component signers (persists)
	AgentKeys  map[string]*cosekey.Key // Agent key to import on a TEE's first run; "" is the first TEE
	VendorID   *[16]byte               // SUIT vendor-id of the TEEs (persists)
	ClassID    *[16]byte               // SUIT class-id of the TEEs (persists)
	// LegacyNumbering, when set, chooses the numbering of drafts -18 to -25
	// (true) or draft-26 (false); nil keeps device.json's (persists).
	LegacyNumbering *bool
	TAMCA           string // PEM CA file for the TAM's TLS (and DTLS) certificate (persists, as an absolute path)
	// TAMPSK is a file holding "IDENTITY HEX-KEY", the DTLS pre-shared key
	// for a coaps:// TAM (persists, as an absolute path; the file, not the
	// key, is recorded).
	TAMPSK string
	// CoAP configures the client for coap, coaps, coap+tcp and coaps+tcp
	// TAM URLs; TAMCA and TAMPSK fill its roots and key when it has none.
	CoAP     broker.CoAPOptions
	Verifier string // Verifier URL for the passport model (persists)

	FetchHTTPUnsafe bool              // allow http:// payload URIs
	Fetcher         processor.Fetcher // replaces the HTTPS fetcher
	UserAgent       string            // User-Agent towards the TAM (default: the broker's)

	Once        bool          // Run syncs until the TAM has nothing more to do, then returns
	Interval    time.Duration // daemon: between policy checks (default DefaultInterval, at least MinInterval)
	GracePeriod time.Duration // daemon: for a session in progress at shutdown (default DefaultGracePeriod)
	MetricsAddr string        // daemon: serve Prometheus metrics on this TCP address

	Logger *slog.Logger
	Events func(agent.Event) // every Agent event, besides logging it

	// SessionTimeout bounds one TEEP session, every attempt included (0:
	// broker.DefaultSessionTimeout; negative: none).
	SessionTimeout time.Duration

	// Hooks for tests.
	Retry     broker.Retry                              // replaces the TAM client's retry policy
	FaultHook func(point string, staged []string) error // handed to every software TEE
	Ready     func(stop func())                         // daemon: called once the local API serves
}

// Device is an opened device: its TEEs are locked until Close.
type Device struct {
	opts     Options
	cfg      *Config
	log      *slog.Logger
	tees     []*TEE
	broker   *broker.Broker
	coap     *broker.CoAPClient
	registry *prometheus.Registry
}

// Open prepares the state directory, opens (creating on first use) the
// TEEs with their Agents, records the configuration in device.json and
// wires the Broker.
func Open(ctx context.Context, o Options) (_ *Device, err error) {
	d, err := newDevice(o)
	if err != nil {
		return nil, err
	}
	defer func() {
		if err != nil {
			d.Close()
		}
	}()
	names, err := d.teeNames()
	if err != nil {
		return nil, err
	}
	agentKeys, err := d.agentKeys(names)
	if err != nil {
		return nil, err
	}
	if err := d.openTEEs(names, agentKeys); err != nil {
		return nil, err
	}
	if err := SaveConfig(d.opts.StateDir, d.cfg); err != nil {
		return nil, err
	}
	if err := d.wireBroker(); err != nil {
		return nil, err
	}
	if d.cfg.LegacyNumbering {
		d.log.Info("speaking the legacy TEEP numbering (drafts -18 to -25)")
	}
	return d, nil
}

// newDevice checks the options and merges them into device.json's
// configuration.
func newDevice(o Options) (*Device, error) {
	if o.StateDir == "" {
		return nil, optionErrorf("StateDir", "no state directory")
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.Interval == 0 {
		o.Interval = DefaultInterval
	}
	if o.Interval < MinInterval {
		return nil, optionErrorf("Interval", "the interval must be at least %v", MinInterval)
	}
	if o.GracePeriod <= 0 {
		o.GracePeriod = DefaultGracePeriod
	}
	if err := os.MkdirAll(o.StateDir, 0o700); err != nil {
		return nil, err
	}
	cfg, err := LoadConfig(o.StateDir)
	if err != nil {
		return nil, err
	}
	if err := mergeConfig(cfg, o); err != nil {
		return nil, err
	}
	return &Device{opts: o, cfg: cfg, log: o.Logger}, nil
}

func mergeConfig(cfg *Config, o Options) error {
	if o.TAM != "" {
		cfg.TAM = o.TAM
	}
	if cfg.TAM == "" {
		return optionErrorf("TAM", "a TAM URL is required (on the first run; it is remembered)")
	}
	if _, err := broker.CheckTAMURI(cfg.TAM); err != nil {
		return &OptionError{Option: "TAM", Msg: err.Error()}
	}
	if o.LegacyNumbering != nil {
		cfg.LegacyNumbering = *o.LegacyNumbering
	}
	if o.Verifier != "" {
		if _, err := broker.CheckTAMURI(o.Verifier); err != nil {
			return &OptionError{Option: "Verifier", Msg: strings.TrimPrefix(err.Error(), "TAM ")}
		}
		cfg.Verifier = o.Verifier
	}
	if o.TAMCA != "" {
		abs, err := filepath.Abs(o.TAMCA)
		if err != nil {
			return err
		}
		cfg.TAMCA = abs
	}
	if o.TAMPSK != "" {
		abs, err := filepath.Abs(o.TAMPSK)
		if err != nil {
			return err
		}
		cfg.TAMPSK = abs
	}
	return nil
}

// teeNames are the TEEs to run: those named, else every TEE the device
// has, else DefaultTEE. device.json remembers every TEE ever run.
func (d *Device) teeNames() ([]string, error) {
	names := dedupe(d.opts.TEEs)
	if len(names) == 0 {
		if names = TEENames(d.opts.StateDir, d.cfg); len(names) == 0 && len(d.opts.Remote) == 0 {
			names = []string{DefaultTEE}
		}
	}
	d.cfg.TEEs = dedupe(append(append([]string(nil), d.cfg.TEEs...), names...))
	return names, nil
}

// agentKeys resolves AgentKeys' "" (the first TEE) and refuses keys for
// TEEs not run.
func (d *Device) agentKeys(names []string) (map[string]*cosekey.Key, error) {
	out := map[string]*cosekey.Key{}
	for name, k := range d.opts.AgentKeys {
		if name == "" {
			if len(names) == 0 {
				return nil, optionErrorf("AgentKeys", "an Agent key for the first TEE, and no TEE is run")
			}
			name = names[0]
		}
		if _, dup := out[name]; dup {
			return nil, optionErrorf("AgentKeys", "two Agent keys for TEE %s", name)
		}
		if !k.IsPrivate() {
			return nil, optionErrorf("AgentKeys", "the Agent key for TEE %s is not a private key", name)
		}
		out[name] = k
	}
	run := map[string]bool{}
	for _, n := range names {
		run[n] = true
	}
	for name := range out {
		if !run[name] {
			return nil, optionErrorf("AgentKeys", "an Agent key for TEE %s, which is not run", name)
		}
	}
	return out, nil
}

func (d *Device) numbering() teep.Numbering {
	if d.cfg.LegacyNumbering {
		return teep.Legacy
	}
	return teep.Draft26
}

// openTEEs opens every TEE run in this process; each must trust a TAM.
func (d *Device) openTEEs(names []string, agentKeys map[string]*cosekey.Key) error {
	d.registry = httpd.NewRegistry()
	procMetrics, err := suitmetrics.New(d.registry)
	if err != nil {
		return err
	}
	base := teeOptions{tams: []string{d.cfg.TAM}, numbering: d.numbering(), vendor: d.opts.VendorID, class: d.opts.ClassID,
		tamKeys: publicKeys(d.opts.TAMKeys), signerKeys: publicKeys(d.opts.SignerKeys), fetcher: d.fetcher(), log: d.log,
		metrics: procMetrics, passport: d.passport(), events: d.event, faultHook: d.opts.FaultHook}
	for _, name := range names {
		o := base
		o.agentKey = agentKeys[name]
		t, err := openTEE(d.opts.StateDir, name, o)
		if err != nil {
			return err
		}
		d.tees = append(d.tees, t)
		if err := d.checkAnchors(t); err != nil {
			return err
		}
	}
	return nil
}

func (d *Device) checkAnchors(t *TEE) error {
	anchors, err := agent.TrustAnchors(t.TEE.Storage(), agent.RoleTAM)
	if err != nil {
		return fmt.Errorf("TEE %s: %w", t.Name, err)
	}
	if len(anchors) == 0 {
		return optionErrorf("TAMKeys", "TEE %s trusts no TAM key: give it one (it is remembered)", t.Name)
	}
	if s, _ := agent.TrustAnchors(t.TEE.Storage(), agent.RoleSigner); len(s) == 0 {
		d.log.Warn("TEE trusts no Trusted Component signer: every manifest will be refused; give it a signer key", "tee", t.Name)
	}
	return nil
}

func (d *Device) event(ev agent.Event) {
	logEvent(d.log, ev)
	if d.opts.Events != nil {
		d.opts.Events(ev)
	}
}

func (d *Device) fetcher() processor.Fetcher {
	if d.opts.Fetcher != nil {
		return d.opts.Fetcher
	}
	return &fetch.HTTP{AllowHTTPUnsafe: d.opts.FetchHTTPUnsafe, UserAgent: "teep-go-agent"}
}

func (d *Device) passport() agent.Verifier {
	if d.cfg.Verifier == "" {
		return nil
	}
	return &verifier.Client{URL: d.cfg.Verifier}
}

// publicKeys keeps only the public halves: trust anchors never hold more.
func publicKeys(keys []*cosekey.Key) []*cosekey.Key {
	out := make([]*cosekey.Key, len(keys))
	for i, k := range keys {
		out[i] = k.PublicKey()
	}
	return out
}

func (d *Device) wireBroker() error {
	brokerMetrics, err := broker.NewMetrics(d.registry)
	if err != nil {
		return err
	}
	co := broker.ClientOptions{Logger: d.log, Retry: d.opts.Retry, UserAgent: d.opts.UserAgent}
	if d.cfg.TAMCA != "" {
		if co.RootCAs, err = broker.LoadCAFile(d.cfg.TAMCA); err != nil {
			return err
		}
	}
	cc := d.opts.CoAP
	if cc.Logger == nil {
		cc.Logger = d.log
	}
	if cc.Retry == (broker.Retry{}) {
		cc.Retry = d.opts.Retry
	}
	if cc.RootCAs == nil {
		cc.RootCAs = co.RootCAs
	}
	if d.cfg.TAMPSK != "" && cc.PSK == nil {
		if cc.PSKIdentity, cc.PSK, err = LoadPSK(d.cfg.TAMPSK); err != nil {
			return err
		}
	}
	d.coap = broker.NewCoAPClient(cc)
	d.broker = broker.New(broker.Options{Client: broker.NewClient(co), CoAP: d.coap, Logger: d.log, Metrics: brokerMetrics, SessionTimeout: d.opts.SessionTimeout})
	for _, t := range d.tees {
		if err := d.broker.AddAgent(t.Name, broker.InProcess(t.Agent)); err != nil {
			return err
		}
	}
	for _, r := range d.opts.Remote {
		if r.Name == "" || r.Socket == "" {
			return optionErrorf("Remote", "a remote Agent needs a TEE name and a socket")
		}
		if err := d.broker.AddAgent(r.Name, broker.DialAgent(r.Socket)); err != nil {
			return &OptionError{Option: "Remote", Msg: err.Error()}
		}
	}
	return nil
}

// Close closes every TEE.
func (d *Device) Close() error {
	var errs []error
	for _, t := range d.tees {
		errs = append(errs, t.TEE.Close())
	}
	d.tees = nil
	if d.coap != nil {
		d.coap.Close()
		d.coap = nil
	}
	return errors.Join(errs...)
}

// Broker is the device's TEEP Broker.
func (d *Device) Broker() *broker.Broker { return d.broker }

// TEEs are the TEEs run in this process, in order.
func (d *Device) TEEs() []*TEE { return d.tees }

// TEE returns the TEE of that name run in this process, or nil.
func (d *Device) TEE(name string) *TEE {
	for _, t := range d.tees {
		if t.Name == name {
			return t
		}
	}
	return nil
}

// Config is the configuration in effect (what device.json now holds).
func (d *Device) Config() Config { return *d.cfg }

// Registry is the Prometheus registry of the device's metrics.
func (d *Device) Registry() *prometheus.Registry { return d.registry }

// Status is every TEE's status, local and remote.
func (d *Device) Status(ctx context.Context) []broker.TEEStatus { return d.broker.Status(ctx) }
