package fleetsim

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	"github.com/teep-go/teep/cosekey"
	"github.com/teep-go/teep/eat"
	"github.com/teep-go/teep/internal/attester"
	"github.com/teep-go/teep/internal/fleet"
	"github.com/teep-go/teep/internal/progress"
	"github.com/teep-go/teep/internal/tam"
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

// ModelLight is the one device model so far (see the package comment).
const ModelLight = "light"

// Defaults and bounds.
const (
	DefaultDevices     = 1000
	DefaultConcurrency = 16
	DefaultRounds      = 5
	DefaultSize        = 1024
	DefaultDuration    = 10 * time.Minute
	MaxDevices         = 1_000_000
	MaxConcurrency     = 4096
	MaxSize            = 16 << 20
	// The floor is timed in floorBatches batches of floorBatch rounds'
	// signature work, before the load and again after it.
	floorBatches = 10
	floorBatch   = 20
)

// Options configure Run. Zero fields take the defaults.
type Options struct {
	Devices     int
	Concurrency int
	// Rounds per device (steady); a rollout measures one install round
	// per device.
	Rounds   int
	Duration time.Duration // the run stops when it is over (rounds not run are not counted)
	Scenario string
	Model    string
	Size     int    // component payload bytes (rollout)
	DB       string // "" for SQLite in a temporary directory, or a postgres:// URL
	// Progress receives a progress bar when it is a terminal.
	Progress io.Writer
	// Keep, when set, is called with the TAM after the run, before it is
	// closed (tests check the store through it).
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
	case o.Model != ModelLight:
		return fmt.Errorf("fleetsim: unknown device model %q (want %s)", o.Model, ModelLight)
	}
	return nil
}

// Result is what a run measured. Durations are in milliseconds, rates per
// second.
type Result struct {
	Scenario    string `json:"scenario"`
	Model       string `json:"model"`
	Database    string `json:"database"` // sqlite or postgresql
	Devices     int    `json:"devices"`
	Concurrency int    `json:"concurrency"`
	Cores       int    `json:"cores"` // GOMAXPROCS
	SizeBytes   int    `json:"size_bytes"`

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
	CPUMsPerRound float64          `json:"cpu_ms_per_round"` // process CPU (TAM and devices: one process)
	PeakRSSBytes  int64            `json:"peak_rss_bytes"`

	// The signature floor: the public-key operations of one round, timed
	// in this process during the run, and the rate they allow on Cores.
	FloorRoundMs      float64 `json:"floor_round_ms"`
	FloorRoundsPerSec float64 `json:"floor_rounds_per_sec"`
	OfFloor           float64 `json:"of_floor"` // RoundsPerSec / FloorRoundsPerSec
}

// Run provisions the fleet and a TAM, runs the scenario and measures it.
func Run(ctx context.Context, o Options) (*Result, error) {
	if err := o.defaults(); err != nil {
		return nil, err
	}
	dir, err := os.MkdirTemp("", "teep-fleetsim-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(dir)
	attest := o.Scenario == ScenarioAttest
	devs, keys, endorse, err := makeDevices(o.Devices, attest)
	if err != nil {
		return nil, err
	}
	w, err := startTAM(ctx, dir, o.DB, endorse)
	if err != nil {
		return nil, err
	}
	defer w.close()
	if err := w.provision(ctx, devs, attest); err != nil {
		return nil, err
	}
	comp, err := w.publish(ctx, 1, o.Size, attest)
	if err != nil {
		return nil, err
	}
	client := &http.Client{Timeout: time.Minute, Transport: &http.Transport{
		MaxIdleConns: o.Concurrency, MaxIdleConnsPerHost: o.Concurrency, IdleConnTimeout: time.Minute}}
	defer client.CloseIdleConnections()
	rounds := o.Rounds
	if o.Scenario == ScenarioSteady {
		// Warm-up, not measured: every device installs the component.
		if _, err := drive(ctx, o, devs, 1, client, w.url, nil, time.Now().Add(o.Duration)); err != nil {
			return nil, err
		}
	} else {
		rounds = 1
	}

	floorBefore, err := floor(o.Scenario)
	if err != nil {
		return nil, err
	}
	bar := progress.New(o.Progress, "rounds", int64(o.Devices*rounds), progress.Options{})
	cpu0 := cpuTime()
	t0 := time.Now()
	st, err := drive(ctx, o, devs, rounds, client, w.url, bar, t0.Add(o.Duration))
	elapsed := time.Since(t0)
	cpu := cpuTime() - cpu0
	bar.Done()
	if err != nil {
		return nil, err
	}
	floorAfter, err := floor(o.Scenario)
	if err != nil {
		return nil, err
	}
	floorNs := median(append(floorBefore, floorAfter...))
	if attest && st.rounds > 0 {
		// This TAM ends a first contact once the device is registered and
		// installs in the next round: run it (not measured) so that the
		// devices reach policy.
		if _, err := drive(ctx, o, devs, 1, client, w.url, nil, time.Now().Add(o.Duration)); err != nil {
			return nil, err
		}
	}
	if o.Keep != nil {
		if err := o.Keep(ctx, w.tam, keys, comp); err != nil {
			return nil, err
		}
	}
	r := &Result{Scenario: o.Scenario, Model: o.Model, Database: "sqlite", Devices: o.Devices, Concurrency: o.Concurrency,
		Cores: runtime.GOMAXPROCS(0), SizeBytes: o.Size, Rounds: st.rounds, Messages: st.msgs, Seconds: elapsed.Seconds(),
		Errors: st.errors, PeakRSSBytes: peakRSS(), FloorRoundMs: floorNs / 1e6}
	if o.DB != "" {
		r.Database = "postgresql"
	}
	for _, n := range st.errors {
		r.ErrorCount += n
	}
	if r.Seconds > 0 {
		r.RoundsPerSec = float64(r.Rounds) / r.Seconds
		r.MessagesPerS = float64(r.Messages) / r.Seconds
	}
	if r.Rounds > 0 {
		r.CPUMsPerRound = float64(cpu) / 1e6 / float64(r.Rounds)
	}
	r.LatencyP50Ms, r.LatencyP95Ms, r.LatencyP99Ms = pct(st.lat, 0.50), pct(st.lat, 0.95), pct(st.lat, 0.99)
	r.FloorRoundsPerSec = float64(r.Cores) * 1e9 / floorNs
	r.OfFloor = r.RoundsPerSec / r.FloorRoundsPerSec
	return r, nil
}

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

// drive runs rounds rounds on every device, at most o.Concurrency at once,
// until deadline. A device runs its rounds one after the other (one
// session at a time, as an Agent does); devices are handed out from a
// queue.
func drive(ctx context.Context, o Options, devs []*lightDevice, rounds int, c *http.Client, url string,
	bar *progress.Bar, deadline time.Time) (stats, error) {
	ctx, cancel := context.WithDeadline(ctx, deadline)
	defer cancel()
	var next atomic.Int64
	var mu sync.Mutex
	st := stats{errors: map[string]int64{}}
	var wg sync.WaitGroup
	for range min(o.Concurrency, len(devs)) {
		wg.Go(func() {
			var lat []time.Duration
			var n, msgs int64
			errs := map[string]int64{}
			for {
				i := next.Add(1) - 1
				if int(i) >= len(devs) {
					break
				}
				for range rounds {
					if ctx.Err() != nil {
						break
					}
					t0 := time.Now()
					m, _, err := devs[i].round(ctx, c, url)
					d := time.Since(t0)
					msgs += int64(m)
					if err != nil {
						if ctx.Err() != nil {
							break // cut by the deadline: not counted
						}
						errs[Kind(err)]++
						continue
					}
					n++
					lat = append(lat, d)
					bar.Add(1)
				}
			}
			mu.Lock()
			st.rounds += n
			st.msgs += msgs
			st.lat = append(st.lat, lat...)
			for k, v := range errs {
				st.errors[k] += v
			}
			mu.Unlock()
		})
	}
	wg.Wait()
	slices.Sort(st.lat)
	if err := context.Cause(ctx); err != nil && !errors.Is(err, context.DeadlineExceeded) {
		return st, err
	}
	return st, nil
}

// world is the in-process TAM and the simulator's signer.
type world struct {
	// run names this run's component and device label, so that runs on
	// one database (PostgreSQL) leave each other alone.
	run       string
	tam       *tamserver.TAM
	url       string
	signerKey *cosekey.Key
	signer    *cosekey.Signer
	stop      func() error
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
	id := make([]byte, 4)
	rand.Read(id) // never fails (crypto/rand, Go 1.24 on)
	w := &world{run: "fleetsim-" + hex.EncodeToString(id), tam: srv, url: "http://" + ln.Addr().String() + "/tam", stop: func() error {
		cancel()
		err := <-served
		return errors.Join(err, srv.Close())
	}}
	if w.signerKey, err = cosekey.Generate(cosekey.AlgESP256); err == nil {
		w.signer, err = cosekey.NewSigner(w.signerKey, 0)
	}
	if err == nil {
		_, err = srv.Engine.AddTrustedKey(ctx, tam.RoleTCSigner, w.signerKey.PublicKey(), "fleetsim signer")
	}
	if err != nil {
		w.close()
		return nil, err
	}
	return w, nil
}

func (w *world) close() error { return w.stop() }

// makeDevices makes n light devices, each with its own P-256 Agent key
// and, when attest, its own attestation key, endorsed for the Verifier.
func makeDevices(n int, attest bool) ([]*lightDevice, []*cosekey.Key, []verifier.Endorsement, error) {
	devs := make([]*lightDevice, n)
	keys := make([]*cosekey.Key, n)
	var endorse []verifier.Endorsement
	for i := range devs {
		k, s, err := newSigner()
		if err != nil {
			return nil, nil, nil, err
		}
		devs[i] = &lightDevice{signer: s, key: k.PublicKey()}
		keys[i] = devs[i].key
		if !attest {
			continue
		}
		ak, as, err := newSigner()
		if err != nil {
			return nil, nil, nil, err
		}
		ueid, err := attester.NewUEID()
		if err != nil {
			return nil, nil, nil, err
		}
		devs[i].attester = &attester.Attester{Key: as, Identity: attester.Identity{UEID: ueid,
			OEMID: eat.OEMIDBytes(ueid[1:17]), HWVersion: eat.Version{Version: "1.0", Scheme: eat.SchemeMultipartNumeric},
			SWName: "teep-go fleetsim", Manifests: []eat.Manifest{selfReference}}}
		endorse = append(endorse, verifier.Endorsement{Name: fmt.Sprintf("fleetsim device %d", i), Key: ak.PublicKey()})
	}
	return devs, keys, endorse, nil
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

// provision gives the devices the TAM's and the signer's keys and, unless
// they attest, pre-registers their Agent keys with this run's label.
func (w *world) provision(ctx context.Context, devs []*lightDevice, attest bool) error {
	tamKeys := w.tam.Engine.PublicKeys()
	for i, d := range devs {
		d.tamKeys, d.signers, d.payload = tamKeys, []*cosekey.Key{w.signerKey.PublicKey()}, fleet.PayloadID(w.run)
		if attest {
			d.hwmodel = []byte(w.run)
			d.attester.Identity.HWModel = d.hwmodel
			continue
		}
		if _, err := w.tam.Engine.AddAgent(ctx, d.key, []string{w.run}); err != nil {
			return fmt.Errorf("fleetsim: register device %d: %w", i, err)
		}
	}
	return nil
}

// publish registers version seq of the simulator's component (size bytes)
// and requires it on every device of this run.
// Attesting devices are not registered beforehand, so their policy is
// scoped by the hwmodel their Evidence carries (this run's label).
func (w *world) publish(ctx context.Context, seq uint64, size int, attest bool) (suit.ComponentID, error) {
	payload := make([]byte, size)
	for i := range payload {
		payload[i] = byte(i*7 + int(seq))
	}
	env, err := fleet.Envelope(w.signer, w.run, seq, payload)
	if err != nil {
		return nil, err
	}
	c, err := w.tam.Engine.AddComponent(ctx, env)
	if err != nil {
		return nil, fmt.Errorf("fleetsim: component: %w", err)
	}
	scope := tam.ScopeLabel
	if attest {
		scope = tam.ScopeHWModel
	}
	if _, err := w.tam.Engine.SetPolicy(ctx, tam.Policy{Component: c.ComponentID, Mode: tam.Required, Scope: scope, Value: w.run}); err != nil {
		return nil, fmt.Errorf("fleetsim: policy: %w", err)
	}
	return c.ComponentID, nil
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
