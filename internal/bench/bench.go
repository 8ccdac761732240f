package bench

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"runtime"
	"sync"
	"text/tabwriter"
	"time"

	"github.com/fxamacker/cbor/v2"

	"github.com/teep-go/teep/cosekey"
	"github.com/teep-go/teep/internal/fleet"
	"github.com/teep-go/teep/internal/suitstore"
	"github.com/teep-go/teep/internal/tam"
	"github.com/teep-go/teep/suit"
	"github.com/teep-go/teep/suit/processor"
	"github.com/teep-go/teep/teep"
)

// Options size a run. Zero fields take the full defaults; Quick the smoke
// sizes.
type Options struct {
	Quick      bool
	Devices    int // TEEs syncing concurrently in the fleet measurement
	Sessions   int // sessions per session measurement
	PayloadMiB int // payload size of the SUIT streaming measurement
}

// Default and quick sizes.
const (
	DefaultDevices    = 16
	DefaultSessions   = 100
	DefaultPayloadMiB = 256
	quickDevices      = 4
	quickSessions     = 10
	quickPayloadMiB   = 8
)

// Run takes every measurement, in a temporary directory it removes.
func Run(ctx context.Context, o Options) ([]Row, error) {
	o = o.sized()
	if o.Devices < 1 || o.Sessions < 1 || o.PayloadMiB < 1 {
		return nil, fmt.Errorf("bench: sizes must be positive: %+v", o)
	}
	dir, err := os.MkdirTemp("", "teep-bench-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(dir)
	var rows []Row
	for _, f := range []func() ([]Row, error){
		func() ([]Row, error) { return codec(o.Quick) },
		func() ([]Row, error) { return suitInstall(ctx, filepath.Join(dir, "suit"), int64(o.PayloadMiB)<<20) },
		func() ([]Row, error) { return wasmInvoke(ctx, o.Quick) },
		func() ([]Row, error) { return sessions(ctx, filepath.Join(dir, "fleet"), o.Devices, o.Sessions) },
	} {
		r, err := f()
		if err != nil {
			return nil, err
		}
		rows = append(rows, r...)
	}
	return rows, nil
}

func (o Options) sized() Options {
	if o.Quick {
		return Options{Quick: true, Devices: quickDevices, Sessions: quickSessions, PayloadMiB: quickPayloadMiB}
	}
	if o.Devices == 0 {
		o.Devices = DefaultDevices
	}
	if o.Sessions == 0 {
		o.Sessions = DefaultSessions
	}
	if o.PayloadMiB == 0 {
		o.PayloadMiB = DefaultPayloadMiB
	}
	return o
}

// WriteTable prints rows as the table `teep bench` shows.
func WriteTable(w io.Writer, rows []Row) error {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "MEASUREMENT\tPER OP\tBASELINE\tRATIO\t")
	for _, r := range rows {
		extra := ""
		if r.Extra != "" {
			extra = " (" + r.Extra + ")"
		}
		fmt.Fprintf(tw, "%s\t%s%s\t%s\t%.2f\t\n", r.Name, r.PerOp, extra, r.Baseline, r.Ratio)
	}
	return tw.Flush()
}

// Row is one measurement and the baseline it is compared with. The
// machines we run on are noisy, so only the ratio to a baseline measured
// in the same run means much.
type Row struct {
	Name     string  `json:"name"`
	PerOp    string  `json:"per-op"`
	NsPerOp  float64 `json:"ns-per-op"`
	Extra    string  `json:"extra,omitempty"`
	Baseline string  `json:"baseline"`
	BaseNs   float64 `json:"baseline-ns-per-op"`
	Ratio    float64 `json:"ratio"` // NsPerOp / BaseNs: 1 means as fast as the baseline
	// A memory row measures bytes, not time: its NsPerOp and BaseNs are
	// 0 and its Ratio is Bytes / BaseBytes.
	Bytes     float64 `json:"bytes-per-op,omitempty"`
	BaseBytes float64 `json:"baseline-bytes-per-op,omitempty"`
}

func newRow(name string, ns float64, extra, baseline string, baseNs float64) Row {
	return Row{Name: name, PerOp: dur(ns), NsPerOp: ns, Extra: extra, Baseline: baseline, BaseNs: baseNs, Ratio: ns / baseNs}
}

func dur(ns float64) string { return time.Duration(ns).Round(10 * time.Nanosecond).String() }

// interleaved times f and its baseline alternately, n rounds each, so
// load from elsewhere on the machine hits both alike.
func interleaved(n int, f, base func() error) (ns, baseNs float64, err error) {
	var tf, tb time.Duration
	for i := 0; i < n; i++ {
		t0 := time.Now()
		if err := f(); err != nil {
			return 0, 0, err
		}
		t1 := time.Now()
		if err := base(); err != nil {
			return 0, 0, err
		}
		tf, tb = tf+t1.Sub(t0), tb+time.Since(t1)
	}
	return float64(tf) / float64(n), float64(tb) / float64(n), nil
}

// codec: the TEEP codec on an Update shaped like Appendix D.4 (a token
// and one signed SUIT envelope), bare and signed with ESP256. Built here so
// the binary needs no files.
func codec(quick bool) ([]Row, error) {
	env, err := sampleEnvelope()
	if err != nil {
		return nil, err
	}
	update := &teep.Update{Token: []byte("0123456789abcdef"), ManifestList: [][]byte{env}}
	raw, err := teep.Encode(update, teep.EncodeOptions{})
	if err != nil {
		return nil, err
	}
	key, err := cosekey.Generate(cosekey.AlgESP256)
	if err != nil {
		return nil, err
	}
	s, err := cosekey.NewSigner(key, 0)
	if err != nil {
		return nil, err
	}
	signed, err := teep.Sign(update, s, teep.SignOptions{})
	if err != nil {
		return nil, err
	}
	pub := []*cosekey.Key{key.PublicKey()}
	n := 20000
	if quick {
		n = 500
	}
	var sink any
	decNs, genNs, err := interleaved(n,
		func() error { _, err := teep.Decode(raw, teep.DecodeOptions{}); return err },
		func() error { return cbor.Unmarshal(raw, &sink) })
	if err != nil {
		return nil, err
	}
	n /= 20
	openNs, verNs, err := interleaved(n,
		func() error { _, err := teep.Open(signed, teep.OpenOptions{Keys: pub}); return err },
		func() error { _, _, err := cosekey.Verify(signed, cosekey.VerifyOptions{Keys: pub}); return err })
	if err != nil {
		return nil, err
	}
	return []Row{
		newRow("teep.Decode Update", decNs, fmt.Sprintf("%d B", len(raw)), "generic CBOR decode "+dur(genNs), genNs),
		newRow("teep.Open Update (ESP256)", openNs, "", "COSE verify "+dur(verNs), verNs),
	}, nil
}

// sampleEnvelope is a small signed SUIT envelope for the codec rows.
func sampleEnvelope() ([]byte, error) {
	sk, err := cosekey.Generate(cosekey.AlgESP256)
	if err != nil {
		return nil, err
	}
	s, err := cosekey.NewSigner(sk, 0)
	if err != nil {
		return nil, err
	}
	return fleet.Envelope(s, "bench-ta", 1, []byte("Hello, Secure World!"))
}

// gen yields size deterministic bytes without holding them.
type gen struct {
	left int64
	off  int
	blk  [64 << 10]byte
}

func (g *gen) Read(p []byte) (int, error) {
	if g.left == 0 {
		return 0, io.EOF
	}
	if int64(len(p)) > g.left {
		p = p[:g.left]
	}
	n := 0
	for n < len(p) {
		c := copy(p[n:], g.blk[g.off:])
		n += c
		g.off = (g.off + c) % len(g.blk)
	}
	g.left -= int64(n)
	return n, nil
}

func newGen(size int64) *gen {
	g := &gen{left: size}
	for i := range g.blk {
		g.blk[i] = byte(i*7 + i>>8)
	}
	return g
}

type fetcher struct{ size int64 }

func (f fetcher) Fetch(context.Context, string) (io.ReadCloser, int64, error) {
	return io.NopCloser(newGen(f.size)), f.size, nil
}

// suitInstall installs a streamed payload into the directory store, through
// the whole processor (authentication, fetch, digest, staged write, atomic
// commit), against SHA-256 over the same bytes.
func suitInstall(ctx context.Context, dir string, size int64) ([]Row, error) {
	h := sha256.New()
	if _, err := io.Copy(h, newGen(size)); err != nil {
		return nil, err
	}
	sk, err := cosekey.Generate(cosekey.AlgESP256)
	if err != nil {
		return nil, err
	}
	signer, err := cosekey.NewSigner(sk, 0)
	if err != nil {
		return nil, err
	}
	envFor := func(seq uint64) ([]byte, error) {
		e, err := suit.Build(suit.ManifestSpec{
			ManifestComponentID: suit.NewComponentID("bench", "suit"),
			SequenceNumber:      seq,
			Components: []suit.ComponentSpec{{ID: suit.NewComponentID("bench", "ta"),
				Digest: &suit.Digest{Alg: suit.AlgSHA256, Bytes: h.Sum(nil)}, Size: uint64(size), URI: "https://bench.invalid/ta"}},
		})
		if err != nil {
			return nil, err
		}
		if err := e.Sign(signer); err != nil {
			return nil, err
		}
		return e.Marshal(suit.MarshalOptions{})
	}
	store, err := suitstore.Open(dir)
	if err != nil {
		return nil, err
	}
	defer store.Close()
	p, err := processor.New(processor.Config{Trust: []*cosekey.Key{sk.PublicKey()}, Store: store, Fetcher: fetcher{size}})
	if err != nil {
		return nil, err
	}
	seq := uint64(0)
	buf := make([]byte, 256<<10)
	ns, baseNs, err := interleaved(3, func() error {
		seq++
		env, err := envFor(seq)
		if err != nil {
			return err
		}
		res, err := p.Install(ctx, env, processor.RunOptions{})
		if err != nil {
			return err
		}
		if res.Failure != nil {
			return fmt.Errorf("bench install: %v", res.Failure)
		}
		return nil
	}, func() error {
		h := sha256.New()
		_, err := io.CopyBuffer(h, newGen(size), buf)
		return err
	})
	if err != nil {
		return nil, err
	}
	mbps := float64(size) / (ns / 1e9) / (1 << 20)
	return []Row{newRow(fmt.Sprintf("SUIT install, %d MiB streamed to disk", size>>20), ns,
		fmt.Sprintf("%.0f MiB/s", mbps), "SHA-256 "+dur(baseNs), baseNs)}, nil
}

// sessions runs a TAM and a fleet of TEEs over loopback HTTP.
func sessions(ctx context.Context, dir string, devices, n int) ([]Row, error) {
	var spec []fleet.DeviceSpec
	for i := 0; i < devices; i++ {
		spec = append(spec, fleet.DeviceSpec{Name: fmt.Sprintf("device-%d", i+1), TEEs: []string{"tee"}})
	}
	w, err := fleet.Start(ctx, fleet.Options{Dir: dir, Fleet: spec})
	if err != nil {
		return nil, err
	}
	defer w.Close()
	// First contact: attestation and registration, not measured.
	for _, d := range w.Devices {
		if err := syncFirst(ctx, d); err != nil {
			return nil, err
		}
	}
	crypto, err := sessionCrypto()
	if err != nil {
		return nil, err
	}
	rtt, stopRTT, err := httpRoundTrip()
	if err != nil {
		return nil, err
	}
	defer stopRTT()
	first := w.Devices[0]
	// A session with nothing to do: QueryRequest, QueryResponse, 204.
	idleNs, idleBase, err := interleaved(n, func() error { return syncFirst(ctx, first) }, func() error { return crypto(false) })
	if err != nil {
		return nil, err
	}
	installNs, installBase, err := installSessions(ctx, w, n, crypto)
	if err != nil {
		return nil, err
	}
	fleetNs, err := fleetSessions(ctx, w, n)
	if err != nil {
		return nil, err
	}
	rttNs, err := rtt()
	if err != nil {
		return nil, err
	}
	return []Row{
		newRow("TAM session, nothing to do (2 POSTs)", idleNs, fmt.Sprintf("HTTP round trip %s", dur(rttNs)),
			"its signatures "+dur(idleBase), idleBase),
		newRow("TAM session, install new version (4 POSTs)", installNs, "", "its signatures "+dur(installBase), installBase),
		newRow(fmt.Sprintf("fleet: %d TEEs syncing at once", len(w.Devices)), fleetNs,
			fmt.Sprintf("%.0f sessions/s", 1e9/fleetNs), "one session alone "+dur(idleNs), idleNs),
	}, nil
}

// syncFirst runs a policy-check round on the device's (first) TEE.
func syncFirst(ctx context.Context, d *fleet.Device) error {
	return d.Broker().Sync(ctx, d.TEEs()[0].Name)
}

// installSessions: a new version each time, so every session carries an
// Update.
func installSessions(ctx context.Context, w *fleet.World, n int, crypto func(bool) error) (ns, baseNs float64, err error) {
	first := w.Devices[0]
	env, err := envelope(w, 1)
	if err != nil {
		return 0, 0, err
	}
	comp, err := w.TAM.Engine.AddComponent(ctx, env)
	if err != nil {
		return 0, 0, err
	}
	if _, err := w.TAM.Engine.SetPolicy(ctx, tam.Policy{Component: comp.ComponentID, Mode: tam.Required,
		Scope: tam.ScopeDevice, Value: hex.EncodeToString(first.TEEs()[0].Agent.PublicKey().KID())}); err != nil {
		return 0, 0, err
	}
	seq := uint64(1)
	return interleaved(n, func() error {
		seq++
		env, err := envelope(w, seq)
		if err != nil {
			return err
		}
		if _, err := w.TAM.Engine.AddComponent(ctx, env); err != nil {
			return err
		}
		return syncFirst(ctx, first)
	}, func() error { return crypto(true) })
}

// fleetSessions: every TEE runs idle sessions concurrently; the time per
// session.
func fleetSessions(ctx context.Context, w *fleet.World, n int) (float64, error) {
	rounds := max(n/4, 2)
	t0 := time.Now()
	var wg sync.WaitGroup
	errs := make(chan error, len(w.Devices))
	for _, d := range w.Devices {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < rounds; i++ {
				if err := syncFirst(ctx, d); err != nil {
					errs <- err
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	if err := <-errs; err != nil {
		return 0, err
	}
	return float64(time.Since(t0)) / float64(rounds*len(w.Devices)), nil
}

func envelope(w *fleet.World, seq uint64) ([]byte, error) {
	return fleet.Envelope(w.Signer, "bench-ta", seq, []byte(fmt.Sprintf("bench payload version %d", seq)))
}

// sessionCrypto returns the public-key work of a session done bare:
// the TAM signs its QueryRequest for both suites (COSE_Sign, the Agent's
// suite is unknown at an empty POST), the Agent verifies one signature and
// signs its QueryResponse, the TAM verifies it. With install, add the
// Update (TAM signs, Agent verifies, the Agent verifies the manifest) and
// the Success (Agent signs, TAM verifies).
func sessionCrypto() (func(install bool) error, error) {
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
		if err != nil {
			return err
		}
		_, _, err = cosekey.Verify(m, cosekey.VerifyOptions{Keys: pub})
		return err
	}
	return func(install bool) error {
		m, err := cosekey.SignMulti(payload, []*cosekey.Signer{sp, se}, nil)
		if err != nil {
			return err
		}
		if _, _, err := cosekey.Verify(m, cosekey.VerifyOptions{Keys: pub}); err != nil {
			return err
		}
		if err := signVerify(); err != nil { // QueryResponse
			return err
		}
		if !install {
			return nil
		}
		for i := 0; i < 2; i++ { // Update, Success
			if err := signVerify(); err != nil {
				return err
			}
		}
		_, _, err = cosekey.Verify(m, cosekey.VerifyOptions{Keys: pub}) // the manifest's signature
		return err
	}, nil
}

// httpRoundTrip serves a handler that answers 204 on loopback and
// returns a function measuring one POST round trip on a kept-alive client.
func httpRoundTrip() (func() (float64, error), func(), error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, nil, err
	}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body)
		w.WriteHeader(http.StatusNoContent)
	}), ReadHeaderTimeout: 5 * time.Second}
	go srv.Serve(ln)
	url := "http://" + ln.Addr().String() + "/"
	client := &http.Client{Timeout: 5 * time.Second}
	post := func() error {
		resp, err := client.Post(url, "application/teep+cbor", nil)
		if err != nil {
			return err
		}
		io.Copy(io.Discard, resp.Body)
		return resp.Body.Close()
	}
	return func() (float64, error) { return perOp(post, roundTripTime) }, func() { srv.Close() }, nil
}

// roundTripTime is how long perOp measures the HTTP round trip.
const roundTripTime = time.Second

// perOp times f in growing batches until a batch takes at least d, and
// returns that batch's time per call. A warm-up call and a GC before each
// batch keep connection set-up and earlier garbage out of the figure.
func perOp(f func() error, d time.Duration) (float64, error) {
	if err := f(); err != nil {
		return 0, err
	}
	for n := 1; ; {
		runtime.GC()
		t0 := time.Now()
		for i := 0; i < n; i++ {
			if err := f(); err != nil {
				return 0, err
			}
		}
		took := time.Since(t0)
		if took >= d || n >= 1e9 {
			return float64(took) / float64(n), nil
		}
		// Aim past d (by 20%), growing at most 100-fold per batch.
		next := int(float64(n) * 1.2 * float64(d) / float64(max(took, time.Microsecond)))
		n = min(max(next, n+1), 100*n)
	}
}
