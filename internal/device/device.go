package device

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
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

	TAMKeys    []*cosekey.Key // trusted keys of the default TAM, public halves are stored (persists)
	SignerKeys []*cosekey.Key // Trusted Component signers the default TAM is trusted for (persists)
	// TAMs are named TAMs besides the default one (TAM, TAMKeys,
	// SignerKeys, TAMCA, TAMPSK), each confined to its own trust scope
	// (persist; a known name needs no URL).
	TAMs      []TAMOptions
	AgentKeys map[string]*cosekey.Key // Agent key to import on a TEE's first run; "" is the first TEE
	VendorID  *[16]byte               // SUIT vendor-id of the TEEs (persists)
	ClassID   *[16]byte               // SUIT class-id of the TEEs (persists)
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
	// Progress, when a terminal, shows bars for large transfers: an Update
	// from the TAM, a payload fetched by URI. Quiet otherwise.
	Progress io.Writer

	Once        bool          // Run syncs until the TAM has nothing more to do, then returns
	Interval    time.Duration // daemon: between policy checks (default DefaultInterval, at least MinInterval)
	GracePeriod time.Duration // daemon: for a session in progress at shutdown (default DefaultGracePeriod)
	MetricsAddr string        // daemon: serve Prometheus metrics on this TCP address

	Logger *slog.Logger
	// Events receives every Agent event, besides logging it. TEEs run their
	// sessions concurrently, but Events is called by one goroutine at a
	// time, so a callback needs no lock of its own.
	Events func(agent.Event)

	// SessionTimeout bounds one TEEP session, every attempt included (0:
	// broker.DefaultSessionTimeout; negative: none).
	SessionTimeout time.Duration

	// Hooks for tests.
	Retry     broker.Retry                              // replaces the TAM client's retry policy
	FaultHook func(point string, staged []string) error // handed to every software TEE
	Ready     func(stop func())                         // daemon: called once the local API serves
}

// TAMOptions configure one named TAM.
type TAMOptions struct {
	Name string
	URL  string
	// TAMKeys authenticate the TAM's messages; a key may belong to one TAM
	// only (persists, sealed in the TEEs).
	TAMKeys []*cosekey.Key
	// SignerKeys are the only Trusted Component signers whose manifests
	// this TAM may install (persists, sealed in the TEEs).
	SignerKeys []*cosekey.Key
	CA         string // as Options.TAMCA, for this TAM (persists)
	PSK        string // as Options.TAMPSK, for this TAM (persists)
}

// Device is an opened device: its TEEs are locked until Close.
type Device struct {
	opts     Options
	cfg      *Config
	log      *slog.Logger
	tees     []*TEE
	broker   *broker.Broker
	coap     []*broker.CoAPClient
	registry *prometheus.Registry
	eventsMu sync.Mutex // serialises Options.Events across concurrent TEE sessions
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
	if err := mergeTAMs(cfg, o); err != nil {
		return err
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
	return nil
}

// mergeTAMs merges the TAMs of the options into the configuration: a new
// TAM is added after the known ones, a known one gets what is given.
func mergeTAMs(cfg *Config, o Options) error {
	all := append([]TAMOptions{{Name: DefaultTAM, URL: o.TAM, CA: o.TAMCA, PSK: o.TAMPSK}}, o.TAMs...)
	for i, t := range all {
		if i > 0 && t.Name == DefaultTAM {
			return optionErrorf("TAMs", "the TAM named %q is given by TAM, TAMKeys and SignerKeys", DefaultTAM)
		}
		if !agent.ValidScope.MatchString(t.Name) {
			return optionErrorf("TAMs", "TAM name %q: want lower-case letters, digits, '.', '_' or '-' (up to 63)", t.Name)
		}
		c := cfg.TAM(t.Name)
		if c == nil {
			if t.URL == "" {
				if i == 0 && t.CA == "" && t.PSK == "" {
					continue // no default TAM given, none known
				}
				return optionErrorf("TAM", "TAM %s: a URL is required (on its first run; it is remembered)", t.Name)
			}
			if len(cfg.TAMs) >= MaxTAMs {
				return optionErrorf("TAMs", "more than %d TAMs", MaxTAMs)
			}
			cfg.TAMs = append(cfg.TAMs, TAMConfig{Name: t.Name})
			c = &cfg.TAMs[len(cfg.TAMs)-1]
		}
		if t.URL != "" {
			if _, err := broker.CheckTAMURI(t.URL); err != nil {
				return &OptionError{Option: "TAM", Msg: fmt.Sprintf("TAM %s: %v", t.Name, err)}
			}
			if other := cfg.TAMByURL(t.URL); other != nil && other.Name != t.Name {
				return optionErrorf("TAM", "TAM %s: %s is already TAM %s", t.Name, t.URL, other.Name)
			}
			c.URL = t.URL
		}
		var err error
		if c.CA, err = absIfSet(t.CA, c.CA); err != nil {
			return err
		}
		if c.PSK, err = absIfSet(t.PSK, c.PSK); err != nil {
			return err
		}
	}
	if len(cfg.TAMs) == 0 {
		return optionErrorf("TAM", "a TAM URL is required (on the first run; it is remembered)")
	}
	return nil
}

func absIfSet(path, old string) (string, error) {
	if path == "" {
		return old, nil
	}
	return filepath.Abs(path)
}

// tamURLs are the TAMs' URLs, the default first.
func (d *Device) tamURLs() []string {
	out := make([]string, len(d.cfg.TAMs))
	for i, t := range d.cfg.TAMs {
		out[i] = t.URL
	}
	return out
}

// scopes are the trust anchors of the named TAMs given in the options.
func (d *Device) scopes() []scopeKeys {
	var out []scopeKeys
	for _, t := range d.opts.TAMs {
		out = append(out, scopeKeys{name: t.Name, tamKeys: publicKeys(t.TAMKeys), signerKeys: publicKeys(t.SignerKeys)})
	}
	return out
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
	base := teeOptions{tams: d.tamURLs(), numbering: d.numbering(), vendor: d.opts.VendorID, class: d.opts.ClassID,
		tamKeys: publicKeys(d.opts.TAMKeys), signerKeys: publicKeys(d.opts.SignerKeys), scopes: d.scopes(), fetcher: d.fetcher(), log: d.log,
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

// checkAnchors wants every TAM trusted: the default TAM by an unscoped
// TAM key, a named one by a key of its scope.
func (d *Device) checkAnchors(t *TEE) error {
	st := t.TEE.Storage()
	for _, tam := range d.cfg.TAMs {
		var anchors, signers []*cosekey.Key
		var err error
		if tam.Name == DefaultTAM {
			if anchors, err = agent.TrustAnchors(st, agent.RoleTAM); err == nil {
				signers, err = agent.TrustAnchors(st, agent.RoleSigner)
			}
		} else if anchors, err = agent.ScopedTrustAnchors(st, tam.Name, agent.RoleTAM); err == nil {
			signers, err = agent.ScopedTrustAnchors(st, tam.Name, agent.RoleSigner)
		}
		if err != nil {
			return fmt.Errorf("TEE %s: %w", t.Name, err)
		}
		if len(anchors) == 0 {
			if tam.Name == DefaultTAM {
				return optionErrorf("TAMKeys", "TEE %s trusts no TAM key: give it one (it is remembered)", t.Name)
			}
			return optionErrorf("TAMs", "TEE %s trusts no key of TAM %s: give it one (it is remembered)", t.Name, tam.Name)
		}
		if len(signers) == 0 {
			d.log.Warn("TEE trusts no Trusted Component signer for a TAM: its every manifest will be refused; give it a signer key",
				"tee", t.Name, "tam", tam.Name)
		}
	}
	return nil
}

func (d *Device) event(ev agent.Event) {
	logEvent(d.log, ev)
	if d.opts.Events != nil {
		d.eventsMu.Lock()
		defer d.eventsMu.Unlock()
		d.opts.Events(ev)
	}
}

func (d *Device) fetcher() processor.Fetcher {
	if d.opts.Fetcher != nil {
		return d.opts.Fetcher
	}
	return &fetch.HTTP{AllowHTTPUnsafe: d.opts.FetchHTTPUnsafe, UserAgent: "teep-go-agent", Progress: d.opts.Progress}
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
	perTAM := map[string]broker.Transport{}
	var first broker.Transport
	for i, tam := range d.cfg.TAMs {
		tr, err := d.transport(tam)
		if err != nil {
			return fmt.Errorf("TAM %s: %w", tam.Name, err)
		}
		perTAM[tam.URL] = tr
		if i == 0 {
			first = tr
		}
	}
	d.broker = broker.New(broker.Options{Client: first.Client, CoAP: first.CoAP, PerTAM: perTAM, Logger: d.log,
		Metrics: brokerMetrics, SessionTimeout: d.opts.SessionTimeout})
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

// transport builds the HTTP and CoAP clients of one TAM, with its CA and
// PSK.
func (d *Device) transport(tam TAMConfig) (broker.Transport, error) {
	co := broker.ClientOptions{Logger: d.log.With("tam", tam.Name), Retry: d.opts.Retry, UserAgent: d.opts.UserAgent, Progress: d.opts.Progress}
	var err error
	if tam.CA != "" {
		if co.RootCAs, err = broker.LoadCAFile(tam.CA); err != nil {
			return broker.Transport{}, err
		}
	}
	cc := d.opts.CoAP
	if cc.Logger == nil {
		cc.Logger = co.Logger
	}
	if cc.Retry == (broker.Retry{}) {
		cc.Retry = d.opts.Retry
	}
	if cc.RootCAs == nil {
		cc.RootCAs = co.RootCAs
	}
	if tam.PSK != "" && cc.PSK == nil {
		if cc.PSKIdentity, cc.PSK, err = LoadPSK(tam.PSK); err != nil {
			return broker.Transport{}, err
		}
	}
	c := broker.NewCoAPClient(cc)
	d.coap = append(d.coap, c)
	return broker.Transport{Client: broker.NewClient(co), CoAP: c}, nil
}

// Close closes every TEE.
func (d *Device) Close() error {
	var errs []error
	for _, t := range d.tees {
		errs = append(errs, t.TEE.Close())
	}
	d.tees = nil
	for _, c := range d.coap {
		c.Close()
	}
	d.coap = nil
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
