package fleetsim

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/teep-go/teep/cosekey"
	"github.com/teep-go/teep/eat"
	"github.com/teep-go/teep/internal/attester"
	"github.com/teep-go/teep/internal/fleet"
	"github.com/teep-go/teep/internal/httpd"
	"github.com/teep-go/teep/internal/progress"
	"github.com/teep-go/teep/internal/tam"
	"github.com/teep-go/teep/internal/tam/admin"
	"github.com/teep-go/teep/internal/tam/appraiser"
	"github.com/teep-go/teep/internal/tam/tamserver"
	"github.com/teep-go/teep/internal/verifier"
	"github.com/teep-go/teep/suit"
)

// Scenarios.
const (
	// ScenarioSteady: devices are up to date (a warm-up round, not
	// measured, installs the required component); each measured round is
	// QueryRequest, QueryResponse, 204.
	ScenarioSteady = "steady"
	// ScenarioRollout: each device's measured round installs one
	// component of Options.Size bytes: QueryRequest, QueryResponse,
	// Update, Success, 204.
	ScenarioRollout = "rollout"
	// ScenarioAttest: devices are not pre-registered; each device's
	// measured round is its first contact: the TAM asks for attestation,
	// the device answers with Evidence (RFC 9711 EAT, signed with its
	// attestation key) that the TAM's Verifier appraises (background-check
	// model, RFC 9334 §5.2), and installs the component: QueryRequest,
	// QueryResponse with Evidence, Update, Success, 204.
	ScenarioAttest = "attest"
)

// Device models (see the package comment).
const (
	ModelLight = "light"
	ModelFull  = "full"
)

// Defaults and bounds.
const (
	DefaultDevices     = 1000
	DefaultConcurrency = 16
	DefaultRounds      = 20 // the default fleet's steady run lasts seconds: shorter ones moved by ±20% between runs
	DefaultSize        = 1024
	DefaultDuration    = 10 * time.Minute
	MaxDevices         = 1_000_000
	// MaxFullDevices bounds the full model: each device is a software TEE
	// with its state on disk.
	MaxFullDevices = 10_000
	MaxConcurrency = 4096
	MaxSize        = 16 << 20
	MaxRate        = 1_000_000 // rounds/s
	// MaxHistoryRounds bounds Options.HistoryRounds.
	MaxHistoryRounds = tam.MaxHistoryRounds
	// The floor is timed in floorBatches batches of floorBatch rounds'
	// signature work, before the load and again after it.
	floorBatches = 10
	floorBatch   = 20
)

// Options configure Run. Zero fields take the defaults.
type Options struct {
	// Devices registered in the TAM; Active of them (default all) run
	// rounds. The others are pre-registered keys only (light model), the
	// population of a large fleet.
	Devices     int
	Active      int
	Concurrency int
	// Rounds per device (steady); a rollout measures one install round
	// per device.
	Rounds   int
	Duration time.Duration // the run stops when it is over (rounds not run are not counted)
	Scenario string
	Model    string
	Size     int    // component payload bytes (rollout)
	DB       string // "" for SQLite in a temporary directory, or a postgres:// URL (in-process TAM)

	// Rate, when positive, drives the rounds open-loop at this many
	// rounds per second (latency counts from each round's scheduled
	// start, so that a TAM falling behind shows as latency); 0 is closed
	// loop (Concurrency rounds in flight). HalfPeak measures the
	// closed-loop peak first, then reruns at half of it and reports that
	// second run (steady and rollout).
	Rate     float64
	HalfPeak bool

	// HistoryRounds, in-process TAM only: before the run, the rows this
	// many completed rounds leave (consumed tokens, reports, last-seen)
	// are written through the store, spread over the registered devices.
	HistoryRounds int

	// TAM, when set, is the TEEP URL of a running TAM (http, https, coap,
	// coaps, coap+tcp, coaps+tcp) to drive instead of the in-process one;
	// AdminURL (default: TAM's scheme, host and port, for http and https)
	// and AdminToken reach its admin API. The hosts must be loopback
	// addresses unless NonLoopbackUnsafe. TAMCA is a PEM file verifying
	// its TLS or DTLS certificate. TAMPID, when set, is the TAM's process
	// id: its CPU time and peak RSS are read from /proc.
	TAM               string
	AdminURL          string
	AdminToken        string
	TAMCA             string
	TAMPID            int
	NonLoopbackUnsafe bool
	// AttestationKey, when set, signs every light device's Evidence
	// (scenario attest) instead of a key per device: a running TAM's
	// Verifier endorses this one key.
	AttestationKey *cosekey.Key

	// Progress receives a progress bar when it is a terminal.
	Progress io.Writer
	// Keep, when set, is called with the TAM after the run, before it is
	// closed (tests check the store through it); t is nil for a running
	// TAM (Options.TAM).
	Keep func(ctx context.Context, t *tamserver.TAM, devices []*cosekey.Key, component suit.ComponentID) error
}

func (o *Options) defaults() error {
	def := func(v *int, d int) {
		if *v == 0 {
			*v = d
		}
	}
	def(&o.Devices, DefaultDevices)
	def(&o.Concurrency, DefaultConcurrency)
	def(&o.Rounds, DefaultRounds)
	def(&o.Size, DefaultSize)
	def(&o.Active, o.Devices)
	if o.Duration == 0 {
		o.Duration = DefaultDuration
	}
	if o.Scenario == "" {
		o.Scenario = ScenarioSteady
	}
	if o.Model == "" {
		o.Model = ModelLight
	}
	switch {
	case o.Devices < 1 || o.Devices > MaxDevices:
		return fmt.Errorf("fleetsim: devices %d outside 1..%d", o.Devices, MaxDevices)
	case o.Active < 1 || o.Active > o.Devices:
		return fmt.Errorf("fleetsim: active devices %d outside 1..%d (the registered devices)", o.Active, o.Devices)
	case o.Concurrency < 1 || o.Concurrency > MaxConcurrency:
		return fmt.Errorf("fleetsim: concurrency %d outside 1..%d", o.Concurrency, MaxConcurrency)
	case o.Rounds < 1:
		return fmt.Errorf("fleetsim: rounds must be positive")
	case o.Size < 1 || o.Size > MaxSize:
		return fmt.Errorf("fleetsim: size %d outside 1..%d", o.Size, MaxSize)
	case o.Duration < 0:
		return fmt.Errorf("fleetsim: negative duration")
	case o.Scenario != ScenarioSteady && o.Scenario != ScenarioRollout && o.Scenario != ScenarioAttest:
		return fmt.Errorf("fleetsim: unknown scenario %q (want %s, %s or %s)", o.Scenario, ScenarioSteady, ScenarioRollout, ScenarioAttest)
	case o.Model != ModelLight && o.Model != ModelFull:
		return fmt.Errorf("fleetsim: unknown device model %q (want %s or %s)", o.Model, ModelLight, ModelFull)
	case o.Model == ModelFull && o.Devices > MaxFullDevices:
		return fmt.Errorf("fleetsim: %d full devices: at most %d", o.Devices, MaxFullDevices)
	case o.Model == ModelFull && o.Active != o.Devices:
		return fmt.Errorf("fleetsim: the full model runs every device (no inactive ones)")
	case o.Rate < 0 || o.Rate > MaxRate:
		return fmt.Errorf("fleetsim: rate %g outside 0..%d rounds/s", o.Rate, MaxRate)
	case o.HalfPeak && o.Rate > 0:
		return fmt.Errorf("fleetsim: half-peak measures its own rate (no rate with it)")
	case o.HalfPeak && o.Scenario == ScenarioAttest:
		return fmt.Errorf("fleetsim: half-peak reruns steady or rollout rounds (a first contact happens once)")
	case o.HistoryRounds < 0 || o.HistoryRounds > MaxHistoryRounds:
		return fmt.Errorf("fleetsim: history rounds %d outside 0..%d", o.HistoryRounds, MaxHistoryRounds)
	case o.HistoryRounds > 0 && o.TAM != "":
		return fmt.Errorf("fleetsim: history rounds are written into the in-process TAM's store (not with a running TAM)")
	case o.TAM != "" && o.DB != "":
		return fmt.Errorf("fleetsim: a running TAM has its own database (no database with it)")
	case o.Scenario == ScenarioAttest && o.Devices != o.Active:
		return fmt.Errorf("fleetsim: attesting devices are not pre-registered (no inactive ones)")
	case o.Scenario == ScenarioAttest && o.TAM != "" && o.Model == ModelLight && o.AttestationKey == nil:
		return fmt.Errorf("fleetsim: attesting light devices against a running TAM need the attestation key its Verifier endorses")
	case o.Scenario == ScenarioAttest && o.TAM != "" && o.Model == ModelFull:
		return fmt.Errorf("fleetsim: full devices attest with keys of their own, which a running TAM's Verifier does not endorse")
	}
	if o.TAM != "" {
		if o.AdminURL == "" {
			u, err := url.Parse(o.TAM)
			if err != nil || (u.Scheme != "http" && u.Scheme != "https") {
				return fmt.Errorf("fleetsim: a CoAP TAM needs the URL of its admin API")
			}
			o.AdminURL = u.Scheme + "://" + u.Host
		}
		if !o.NonLoopbackUnsafe {
			for _, u := range []string{o.TAM, o.AdminURL} {
				if err := checkLoopback(u); err != nil {
					return err
				}
			}
		}
	}
	return nil
}

// Result is what a run measured. Durations are in milliseconds, rates per
// second.
type Result struct {
	Scenario      string `json:"scenario"`
	Model         string `json:"model"`
	TAM           string `json:"tam"`       // in-process, or external (Options.TAM)
	Transport     string `json:"transport"` // the TAM URL's scheme
	Database      string `json:"database"`  // sqlite or postgresql; "" for an external TAM
	Devices       int    `json:"devices"`   // registered
	ActiveDevices int    `json:"active_devices"`
	Concurrency   int    `json:"concurrency"`
	Cores         int    `json:"cores"` // GOMAXPROCS
	SizeBytes     int    `json:"size_bytes"`

	RegisterSeconds    float64 `json:"register_seconds"` // pre-registering the devices
	HistoryRounds      int     `json:"history_rounds"`
	HistoryFillSeconds float64 `json:"history_fill_seconds"`

	// PeakRoundsPerSec is, for a half-peak run, the closed-loop rate
	// measured first; RateRoundsPerSec the open-loop rate the reported
	// run was driven at (0: closed loop).
	PeakRoundsPerSec float64 `json:"peak_rounds_per_sec"`
	RateRoundsPerSec float64 `json:"rate_rounds_per_sec"`

	Rounds        int64            `json:"rounds"` // completed without error
	Messages      int64            `json:"messages"`
	Seconds       float64          `json:"seconds"`
	RoundsPerSec  float64          `json:"rounds_per_sec"`
	MessagesPerS  float64          `json:"messages_per_sec"`
	LatencyP50Ms  float64          `json:"latency_p50_ms"`
	LatencyP95Ms  float64          `json:"latency_p95_ms"`
	LatencyP99Ms  float64          `json:"latency_p99_ms"`
	ErrorCount    int64            `json:"error_count"`
	Errors        map[string]int64 `json:"errors"`           // by kind
	CPUMsPerRound float64          `json:"cpu_ms_per_round"` // this process's CPU (with an in-process TAM: TAM and devices)
	PeakRSSBytes  int64            `json:"peak_rss_bytes"`   // this process's
	RSSBytes      int64            `json:"rss_bytes"`        // this process's, after the run

	// The TAM process's (Options.TAMPID), from /proc; 0 when unknown.
	TAMCPUMsPerRound float64 `json:"tam_cpu_ms_per_round"`
	TAMPeakRSSBytes  int64   `json:"tam_peak_rss_bytes"`
	TAMRSSBytes      int64   `json:"tam_rss_bytes"`

	// The signature floor: the public-key operations of one round, timed
	// in this process during the run, and the rate they allow on Cores.
	FloorRoundMs      float64 `json:"floor_round_ms"`
	FloorRoundsPerSec float64 `json:"floor_rounds_per_sec"`
	OfFloor           float64 `json:"of_floor"` // RoundsPerSec / FloorRoundsPerSec

	// The transport floor: this process's CPU for one round of the same
	// POSTs over net/http alone (a bare loopback server, no TEEP work, no
	// database), measured after the run; 0 unless the transport is plain
	// HTTP and the devices are light. With the signature floor, the rate
	// signatures and HTTP allow on Cores, and achieved/that.
	TransportRoundMs               float64 `json:"transport_round_ms"`
	FloorWithTransportRoundsPerSec float64 `json:"floor_with_transport_rounds_per_sec"`
	OfFloorWithTransport           float64 `json:"of_floor_with_transport"` // RoundsPerSec / FloorWithTransportRoundsPerSec
}

// run is one run's state: the TAM, the devices, the component.
type run struct {
	o       Options
	label   string // names this run's component and devices, so that runs on one database leave each other alone
	tgt     target
	w       *world // the in-process TAM; nil for a running one
	url     string
	signer  *cosekey.Signer
	devs    []simDevice
	rec     *recorder      // the first light device's POSTs over plain HTTP; nil otherwise
	keys    []*cosekey.Key // the active devices' Agent keys
	comp    suit.ComponentID
	seq     uint64
	cleanup []func() error
}

func (r *run) close() error {
	var errs []error
	for i := len(r.cleanup) - 1; i >= 0; i-- {
		errs = append(errs, r.cleanup[i]())
	}
	return errors.Join(errs...)
}

// Run provisions the fleet and a TAM (or reaches a running one), runs the
// scenario and measures it.
func Run(ctx context.Context, o Options) (res *Result, err error) {
	if err := o.defaults(); err != nil {
		return nil, err
	}
	dir, err := os.MkdirTemp("", "teep-fleetsim-")
	if err != nil {
		return nil, err
	}
	id := make([]byte, 4)
	rand.Read(id) // never fails (crypto/rand, Go 1.24 on)
	r := &run{o: o, label: "fleetsim-" + hex.EncodeToString(id)}
	r.cleanup = append(r.cleanup, func() error { return os.RemoveAll(dir) })
	defer func() { err = errors.Join(err, r.close()) }()
	res = &Result{Scenario: o.Scenario, Model: o.Model, TAM: "in-process", Transport: "http", Devices: o.Devices,
		ActiveDevices: o.Active, Concurrency: o.Concurrency, Cores: runtime.GOMAXPROCS(0), SizeBytes: o.Size,
		HistoryRounds: o.HistoryRounds, Errors: map[string]int64{}}
	if err := r.setup(ctx, dir, res); err != nil {
		return nil, err
	}
	rounds := o.Rounds
	if o.Scenario == ScenarioSteady {
		// Warm-up, not measured: every device installs the component.
		if st, err := drive(ctx, o, r.devs, 1, 0, nil, time.Now().Add(o.Duration)); err != nil {
			return nil, err
		} else if err := st.clean("warm-up"); err != nil {
			return nil, err
		}
	} else {
		rounds = 1
	}

	floorBefore, err := floor(o.Scenario)
	if err != nil {
		return nil, err
	}
	rate := o.Rate
	if o.HalfPeak {
		st, elapsed, _, err := r.measure(ctx, rounds, 0, "peak rounds")
		if err != nil {
			return nil, err
		}
		if err := st.clean("peak"); err != nil {
			return nil, err
		}
		res.PeakRoundsPerSec = float64(st.rounds) / elapsed.Seconds()
		rate = res.PeakRoundsPerSec / 2
		if o.Scenario == ScenarioRollout {
			// Each device installs again: a new version.
			if err := r.publish(ctx); err != nil {
				return nil, err
			}
		}
	}
	res.RateRoundsPerSec = rate
	pid0, _ := readProc(o.TAMPID)
	st, elapsed, cpu, err := r.measure(ctx, rounds, rate, "rounds")
	if err != nil {
		return nil, err
	}
	pid1, _ := readProc(o.TAMPID)
	floorAfter, err := floor(o.Scenario)
	if err != nil {
		return nil, err
	}
	floorNs := median(append(floorBefore, floorAfter...))
	if o.Scenario == ScenarioAttest && st.rounds > 0 {
		// This TAM ends a first contact once the device is registered and
		// installs in the next round: run it (not measured) so that the
		// devices reach policy.
		if _, err := drive(ctx, o, r.devs, 1, 0, nil, time.Now().Add(o.Duration)); err != nil {
			return nil, err
		}
	}
	complete := st.rounds == int64(len(r.devs)*rounds) && len(st.errors) == 0
	if complete {
		// Every device must end in policy, whatever the TAM said.
		if err := checkPolicy(ctx, r.tgt, r.keys, r.comp, r.seq); err != nil {
			return nil, err
		}
	}
	if o.Keep != nil {
		var t *tamserver.TAM
		if r.w != nil {
			t = r.w.tam
		}
		if err := o.Keep(ctx, t, r.keys, r.comp); err != nil {
			return nil, err
		}
	}
	res.Rounds, res.Messages, res.Seconds, res.Errors = st.rounds, st.msgs, elapsed.Seconds(), st.errors
	res.PeakRSSBytes, res.RSSBytes, res.FloorRoundMs = peakRSS(), currentRSS(), floorNs/1e6
	for _, n := range st.errors {
		res.ErrorCount += n
	}
	if res.Seconds > 0 {
		res.RoundsPerSec = float64(res.Rounds) / res.Seconds
		res.MessagesPerS = float64(res.Messages) / res.Seconds
	}
	if res.Rounds > 0 {
		res.CPUMsPerRound = float64(cpu) / 1e6 / float64(res.Rounds)
		if o.TAMPID != 0 && pid1.cpu > 0 {
			res.TAMCPUMsPerRound = float64(pid1.cpu-pid0.cpu) / 1e6 / float64(res.Rounds)
		}
	}
	res.TAMPeakRSSBytes, res.TAMRSSBytes = pid1.peakRSS, pid1.rss
	res.LatencyP50Ms, res.LatencyP95Ms, res.LatencyP99Ms = pct(st.lat, 0.50), pct(st.lat, 0.95), pct(st.lat, 0.99)
	res.FloorRoundsPerSec = float64(res.Cores) * 1e9 / floorNs
	res.OfFloor = res.RoundsPerSec / res.FloorRoundsPerSec
	if round := r.rec.round(); round != nil {
		transportNs, err := transportFloor(ctx, round, res.Rounds, o.Concurrency)
		if err != nil {
			return nil, fmt.Errorf("fleetsim: transport floor: %w", err)
		}
		if transportNs > 0 {
			res.TransportRoundMs = transportNs / 1e6
			res.FloorWithTransportRoundsPerSec = float64(res.Cores) * 1e9 / (floorNs + transportNs)
			res.OfFloorWithTransport = res.RoundsPerSec / res.FloorWithTransportRoundsPerSec
		}
	}
	return res, nil
}

// measure runs rounds rounds per device (closed loop, or open loop at
// rate) with a progress bar, and returns the stats, the wall time and
// this process's CPU time.
func (r *run) measure(ctx context.Context, rounds int, rate float64, what string) (stats, time.Duration, time.Duration, error) {
	bar := progress.New(r.o.Progress, what, int64(len(r.devs)*rounds), progress.Options{})
	cpu0 := cpuTime()
	t0 := time.Now()
	st, err := drive(ctx, r.o, r.devs, rounds, rate, bar, t0.Add(r.o.Duration))
	elapsed := time.Since(t0)
	cpu := cpuTime() - cpu0
	bar.Done()
	return st, elapsed, cpu, err
}

// setup starts or reaches the TAM, makes and registers the devices, fills
// the history and publishes the component.
func (r *run) setup(ctx context.Context, dir string, res *Result) error {
	o := r.o
	attest := o.Scenario == ScenarioAttest
	var light []*lightDevice
	var full *fullFleet
	var endorse []verifier.Endorsement
	var err error
	if o.Model == ModelFull {
		if full, err = provisionFull(dir, o.Active); err != nil {
			return err
		}
		for i, k := range full.attest {
			endorse = append(endorse, verifier.Endorsement{Name: fmt.Sprintf("fleetsim device %d", i), Key: k})
		}
	} else if light, endorse, err = makeDevices(o.Active, attest, o.AttestationKey); err != nil {
		return err
	}
	if !attest {
		endorse = nil
	}
	var roots *x509.CertPool
	if o.TAMCA != "" {
		if roots, err = httpd.LoadCertPool(o.TAMCA); err != nil {
			return fmt.Errorf("fleetsim: TAM CA: %w", err)
		}
	}
	if o.TAM == "" {
		if r.w, err = startTAM(ctx, dir, o.DB, endorse); err != nil {
			return err
		}
		r.cleanup = append(r.cleanup, r.w.close)
		r.tgt, r.url = engineTarget{r.w.tam.Engine}, r.w.url
		if o.DB != "" {
			res.Database = "postgresql"
		} else {
			res.Database = "sqlite"
		}
	} else {
		c := &admin.Client{BaseURL: o.AdminURL, Token: o.AdminToken}
		if roots != nil {
			c.HTTP = httpClient(o.Concurrency, roots)
		}
		if r.tgt, err = newAdminTarget(ctx, c, o.Concurrency); err != nil {
			return err
		}
		r.url, res.TAM = o.TAM, "external"
		u, _ := url.Parse(o.TAM)
		res.Transport = strings.ToLower(u.Scheme)
	}
	signerKey, err := cosekey.Generate(cosekey.AlgESP256)
	if err == nil {
		r.signer, err = cosekey.NewSigner(signerKey, 0)
	}
	if err == nil {
		err = r.tgt.trustSigner(ctx, signerKey.PublicKey())
	}
	if err != nil {
		return err
	}
	tamKeys := r.tgt.tamKeys()
	if full != nil {
		ca := o.TAMCA
		if r.devs, r.keys, err = full.open(ctx, r.url, ca, tamKeys, signerKey.PublicKey()); err != nil {
			return err
		}
		for _, d := range r.devs {
			r.cleanup = append(r.cleanup, d.close)
		}
	} else {
		exchangers, err := newExchangers(r.url, o.Concurrency, roots)
		if err != nil {
			return err
		}
		for i, d := range light {
			ex := exchangers()
			r.cleanup = append(r.cleanup, func() error { ex.close(); return nil })
			if i == 0 && res.Transport == "http" {
				r.rec = &recorder{exchanger: ex}
				ex = r.rec
			}
			d.tamKeys, d.signers, d.payload, d.ex = tamKeys, []*cosekey.Key{signerKey.PublicKey()}, fleet.PayloadID(r.label), ex
			if attest {
				d.hwmodel = []byte(r.label)
				d.attester.Identity.HWModel = d.hwmodel
			}
			r.devs = append(r.devs, d)
			r.keys = append(r.keys, d.key)
		}
	}
	if !attest {
		all := slices.Clone(r.keys)
		// The inactive devices: registered keys only.
		for range o.Devices - o.Active {
			k, err := cosekey.Generate(cosekey.AlgESP256)
			if err != nil {
				return err
			}
			all = append(all, k.PublicKey())
		}
		t0 := time.Now()
		if err := r.tgt.register(ctx, all, r.label); err != nil {
			return err
		}
		res.RegisterSeconds = time.Since(t0).Seconds()
		if o.HistoryRounds > 0 {
			kids := make([][]byte, len(all))
			for i, k := range all {
				kids[i] = k.KID()
			}
			t0 := time.Now()
			if _, err := r.w.tam.Engine.FillHistory(ctx, kids, o.HistoryRounds); err != nil {
				return err
			}
			res.HistoryFillSeconds = time.Since(t0).Seconds()
		}
	} else if o.HistoryRounds > 0 {
		return errors.New("fleetsim: history rounds need pre-registered devices (not attest)")
	}
	return r.publish(ctx)
}

// publish registers the next version of the simulator's component
// (Options.Size bytes) and requires it on every device of this run.
// Pre-registered devices carry this run's label; attesting light devices
// are not registered beforehand, so their policy is scoped by the hwmodel
// their Evidence carries (this run's label), and full ones by their
// software TEE's hwmodel.
func (r *run) publish(ctx context.Context) error {
	r.seq++
	payload := make([]byte, r.o.Size)
	for i := range payload {
		payload[i] = byte(i*7 + int(r.seq))
	}
	env, err := fleet.Envelope(r.signer, r.label, r.seq, payload)
	if err != nil {
		return err
	}
	scope, value := tam.ScopeLabel, r.label
	if r.o.Scenario == ScenarioAttest {
		scope = tam.ScopeHWModel
		if r.o.Model == ModelFull {
			value = softteeHWModel
		}
	}
	r.comp, err = r.tgt.publish(ctx, env, scope, value)
	return err
}

// softteeHWModel is the hwmodel a software TEE attests.
const softteeHWModel = "teep-go softtee"

func pct(sorted []time.Duration, p float64) float64 {
	if len(sorted) == 0 {
		return 0
	}
	i := min(int(float64(len(sorted))*p), len(sorted)-1)
	return float64(sorted[i]) / 1e6
}

type stats struct {
	rounds, msgs int64
	lat          []time.Duration // sorted
	errors       map[string]int64
}

// clean fails when a phase that is not measured had errors: the run would
// measure something else than it says.
func (st stats) clean(phase string) error {
	if len(st.errors) == 0 {
		return nil
	}
	var parts []string
	for k, n := range st.errors {
		parts = append(parts, fmt.Sprintf("%s %d", k, n))
	}
	sort.Strings(parts)
	return fmt.Errorf("fleetsim: %s failed: %s", phase, strings.Join(parts, ", "))
}

// drive runs rounds rounds on every device until deadline. Closed loop
// (rate 0): at most o.Concurrency at once, a device running its rounds
// one after the other (one session at a time, as an Agent does), devices
// handed out from a queue. Open loop (rate > 0): a round starts every
// 1/rate seconds whether or not earlier ones finished, on the next device
// in turn (waiting for it if it is still busy), at most o.Concurrency in
// flight; latency counts from the scheduled start.
func drive(ctx context.Context, o Options, devs []simDevice, rounds int, rate float64,
	bar *progress.Bar, deadline time.Time) (stats, error) {
	ctx, cancel := context.WithDeadline(ctx, deadline)
	defer cancel()
	var mu sync.Mutex
	st := stats{errors: map[string]int64{}}
	var wg sync.WaitGroup
	// one runs a round and records it; start is when it was due.
	type local struct {
		lat       []time.Duration
		n, msgs   int64
		errs      map[string]int64
		cancelled bool
	}
	one := func(l *local, d simDevice, start time.Time) {
		m, err := d.round(ctx)
		dur := time.Since(start)
		l.msgs += int64(m)
		if err != nil {
			if ctx.Err() != nil {
				l.cancelled = true // cut by the deadline: not counted
				return
			}
			l.errs[Kind(err)]++
			return
		}
		l.n++
		l.lat = append(l.lat, dur)
		bar.Add(1)
	}
	merge := func(l *local) {
		mu.Lock()
		st.rounds += l.n
		st.msgs += l.msgs
		st.lat = append(st.lat, l.lat...)
		for k, v := range l.errs {
			st.errors[k] += v
		}
		mu.Unlock()
	}
	workers := min(o.Concurrency, len(devs))
	if rate <= 0 {
		var next atomic.Int64
		for range workers {
			wg.Go(func() {
				l := &local{errs: map[string]int64{}}
				defer merge(l)
				for {
					i := next.Add(1) - 1
					if int(i) >= len(devs) {
						return
					}
					for range rounds {
						if ctx.Err() != nil {
							return
						}
						one(l, devs[i], time.Now())
					}
				}
			})
		}
	} else {
		type job struct {
			due time.Time
			dev int
		}
		total := len(devs) * rounds
		jobs := make(chan job, workers)
		busy := make([]sync.Mutex, len(devs))
		go func() {
			defer close(jobs)
			t0 := time.Now()
			interval := float64(time.Second) / rate
			for i := range total {
				due := t0.Add(time.Duration(float64(i) * interval))
				if d := time.Until(due); d > 0 {
					select {
					case <-time.After(d):
					case <-ctx.Done():
						return
					}
				}
				select {
				case jobs <- job{due, i % len(devs)}:
				case <-ctx.Done():
					return
				}
			}
		}()
		for range workers {
			wg.Go(func() {
				l := &local{errs: map[string]int64{}}
				defer merge(l)
				for j := range jobs {
					if ctx.Err() != nil {
						return
					}
					busy[j.dev].Lock()
					one(l, devs[j.dev], j.due)
					busy[j.dev].Unlock()
				}
			})
		}
	}
	wg.Wait()
	slices.Sort(st.lat)
	if err := context.Cause(ctx); err != nil && !errors.Is(err, context.DeadlineExceeded) {
		return st, err
	}
	return st, nil
}

// world is the in-process TAM.
type world struct {
	tam  *tamserver.TAM
	url  string
	stop func() error
}

func startTAM(ctx context.Context, dir, db string, endorse []verifier.Endorsement) (*world, error) {
	to := tamserver.Options{DataDir: filepath.Join(dir, "tam"), DB: db, Version: "fleetsim"}
	if endorse != nil {
		v, err := verifier.New(verifier.Config{Policy: &verifier.Policy{ID: "fleetsim", Endorsements: endorse}})
		if err != nil {
			return nil, fmt.Errorf("fleetsim: Verifier: %w", err)
		}
		to.Appraiser = &appraiser.Verifier{Local: v}
	}
	srv, err := tamserver.Open(ctx, to)
	if err != nil {
		return nil, fmt.Errorf("fleetsim: TAM: %w", err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		srv.Close()
		return nil, err
	}
	sctx, cancel := context.WithCancel(ctx)
	served := make(chan error, 1)
	go func() { served <- srv.Serve(sctx, ln, nil) }()
	return &world{tam: srv, url: "http://" + ln.Addr().String() + "/tam", stop: func() error {
		cancel()
		err := <-served
		return errors.Join(err, srv.Close())
	}}, nil
}

func (w *world) close() error { return w.stop() }

// makeDevices makes n light devices, each with its own P-256 Agent key
// and, when attest, an attestation key (its own, endorsed for the
// Verifier, or shared when given).
func makeDevices(n int, attest bool, shared *cosekey.Key) ([]*lightDevice, []verifier.Endorsement, error) {
	devs := make([]*lightDevice, n)
	var endorse []verifier.Endorsement
	var sharedSigner *cosekey.Signer
	if attest && shared != nil {
		var err error
		if sharedSigner, err = cosekey.NewSigner(shared, 0); err != nil {
			return nil, nil, fmt.Errorf("fleetsim: attestation key: %w", err)
		}
		endorse = append(endorse, verifier.Endorsement{Name: "fleetsim devices", Key: shared.PublicKey()})
	}
	for i := range devs {
		k, s, err := newSigner()
		if err != nil {
			return nil, nil, err
		}
		devs[i] = &lightDevice{signer: s, key: k.PublicKey()}
		if !attest {
			continue
		}
		as := sharedSigner
		if as == nil {
			var ak *cosekey.Key
			if ak, as, err = newSigner(); err != nil {
				return nil, nil, err
			}
			endorse = append(endorse, verifier.Endorsement{Name: fmt.Sprintf("fleetsim device %d", i), Key: ak.PublicKey()})
		}
		ueid, err := attester.NewUEID()
		if err != nil {
			return nil, nil, err
		}
		devs[i].attester = &attester.Attester{Key: as, Identity: attester.Identity{UEID: ueid,
			OEMID: eat.OEMIDBytes(ueid[1:17]), HWVersion: eat.Version{Version: "1.0", Scheme: eat.SchemeMultipartNumeric},
			SWName: "teep-go fleetsim", Manifests: []eat.Manifest{selfReference}}}
	}
	return devs, endorse, nil
}

// selfReference is the SUIT reference a light device reports for its own
// software (the TEEP EAT profile wants the TEE's software named).
var selfReference = func() eat.Manifest {
	sum := sha256.Sum256([]byte("teep-go fleetsim light device"))
	return eat.SUITReference{DigestAlg: eat.AlgSHA256, Digest: sum[:]}.Manifest(eat.ContentFormatCBOR)
}()

func newSigner() (*cosekey.Key, *cosekey.Signer, error) {
	k, err := cosekey.Generate(cosekey.AlgESP256)
	if err != nil {
		return nil, nil, err
	}
	s, err := cosekey.NewSigner(k, 0)
	return k, s, err
}

// floor times, single-threaded, the public-key operations of one round as
// this TAM and a light device do them. A steady round: the TAM signs its
// QueryRequest with ESP256 and Ed25519 (a COSE_Sign), the device verifies
// one signature and signs its QueryResponse (ESP256), the TAM verifies it.
// A rollout round adds the Update (TAM signs, device verifies), the
// manifest's signature (device verifies) and the Success (device signs,
// TAM verifies). A first contact (attest) is two query exchanges (the
// second QueryRequest asks for attestation) and the Evidence (device
// signs, Verifier verifies). It returns nanoseconds per round of each of
// floorBatches batches.
func floor(scenario string) ([]float64, error) {
	p256, err := cosekey.Generate(cosekey.AlgESP256)
	if err != nil {
		return nil, err
	}
	ed, err := cosekey.Generate(cosekey.AlgEd25519)
	if err != nil {
		return nil, err
	}
	sp, err := cosekey.NewSigner(p256, 0)
	if err != nil {
		return nil, err
	}
	se, err := cosekey.NewSigner(ed, 0)
	if err != nil {
		return nil, err
	}
	payload := make([]byte, 64)
	pub := []*cosekey.Key{p256.PublicKey()}
	signVerify := func() error {
		m, err := cosekey.Sign1(payload, sp, nil)
		if err == nil {
			_, _, err = cosekey.Verify(m, cosekey.VerifyOptions{Keys: pub})
		}
		return err
	}
	manifestSig, err := cosekey.Sign1(payload, sp, nil)
	if err != nil {
		return nil, err
	}
	query := func() error {
		m, err := cosekey.SignMulti(payload, []*cosekey.Signer{sp, se}, nil)
		if err == nil {
			_, _, err = cosekey.Verify(m, cosekey.VerifyOptions{Keys: pub})
		}
		if err == nil {
			err = signVerify() // QueryResponse
		}
		return err
	}
	one := func() error {
		if err := query(); err != nil {
			return err
		}
		switch scenario {
		case ScenarioRollout: // Update, manifest, Success
			for range 2 {
				if err := signVerify(); err != nil {
					return err
				}
			}
			_, _, err := cosekey.Verify(manifestSig, cosekey.VerifyOptions{Keys: pub})
			return err
		case ScenarioAttest: // the second query, the Evidence
			if err := query(); err != nil {
				return err
			}
			return signVerify()
		}
		return nil
	}
	if err := one(); err != nil {
		return nil, err
	}
	var out []float64
	for range floorBatches {
		t0 := time.Now()
		for range floorBatch {
			if err := one(); err != nil {
				return nil, err
			}
		}
		out = append(out, float64(time.Since(t0))/floorBatch)
	}
	return out, nil
}

// median of the floor samples: a batch that other load on the machine
// preempted does not move it.
func median(v []float64) float64 {
	s := slices.Clone(v)
	slices.Sort(s)
	return s[len(s)/2]
}

// ErrorKinds lists r's error kinds, sorted.
func (r *Result) ErrorKinds() []string {
	var out []string
	for k := range r.Errors {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}
