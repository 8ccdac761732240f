package main

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"text/tabwriter"
	"time"

	"github.com/fxamacker/cbor/v2"

	"github.com/teep-go/teep/cosekey"
	"github.com/teep-go/teep/internal/suitstore"
	"github.com/teep-go/teep/internal/tam"
	"github.com/teep-go/teep/suit"
	"github.com/teep-go/teep/suit/processor"
	"github.com/teep-go/teep/teep"
)

func init() {
	register(&command{path: "bench", summary: "measure codec, SUIT streaming and TAM sessions against baselines from the same run", run: benchRun})
}

// benchRow is one measurement and the baseline it is compared with. The
// machines we run on are noisy, so only the ratio to a baseline measured
// in the same run means much.
type benchRow struct {
	Name     string  `json:"name"`
	PerOp    string  `json:"per-op"`
	NsPerOp  float64 `json:"ns-per-op"`
	Extra    string  `json:"extra,omitempty"`
	Baseline string  `json:"baseline"`
	BaseNs   float64 `json:"baseline-ns-per-op"`
	Ratio    float64 `json:"ratio"` // NsPerOp / BaseNs: 1 means as fast as the baseline
}

func benchRun(e *env, args []string) error {
	fs := newFlags(e, "bench", "[--quick] [--devices N] [--sessions N] [--payload-mib N] [--json]",
		"Measures, in this process, each against a baseline measured in the same run:\n"+
			"  - TEEP Decode and Open of the draft-26 Appendix D Update, vs a generic CBOR decode and a bare COSE verify;\n"+
			"  - a SUIT install streaming a payload into a directory store, vs SHA-256 over the same bytes;\n"+
			"  - TAM sessions over loopback HTTP with SQLite (nothing to do; install of a new version), vs the\n"+
			"    signatures and verifications such a session needs;\n"+
			"  - sessions per second with every TEE of a fleet syncing at once.\n"+
			"Ratios are time over baseline time: lower is better, 1 is as fast as the baseline.")
	quick := fs.Bool("quick", false, "small sizes and counts (a smoke run)")
	devices := fs.Int("devices", 16, "TEEs syncing concurrently in the fleet measurement")
	sessions := fs.Int("sessions", 100, "sessions per session measurement")
	payloadMiB := fs.Int("payload-mib", 256, "payload size for the SUIT streaming measurement")
	asJSON := fs.Bool("json", false, "print JSON instead of a table")
	pos, err := parse(fs, args)
	if err != nil {
		return err
	}
	if len(pos) != 0 {
		return usagef("no arguments expected")
	}
	if *quick {
		*devices, *sessions, *payloadMiB = 4, 10, 8
	}
	if *devices < 1 || *sessions < 1 || *payloadMiB < 1 {
		return usagef("--devices, --sessions and --payload-mib must be positive")
	}
	dir, err := os.MkdirTemp("", "teep-bench-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	ctx := context.Background()

	var rows []benchRow
	for _, f := range []func() ([]benchRow, error){
		func() ([]benchRow, error) { return benchCodec(*quick) },
		func() ([]benchRow, error) { return benchSUIT(ctx, filepath.Join(dir, "suit"), int64(*payloadMiB)<<20) },
		func() ([]benchRow, error) {
			return benchSessions(ctx, filepath.Join(dir, "fleet"), *devices, *sessions)
		},
	} {
		r, err := f()
		if err != nil {
			return err
		}
		rows = append(rows, r...)
	}
	if *asJSON {
		enc := json.NewEncoder(e.stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(rows)
	}
	tw := tabwriter.NewWriter(e.stdout, 0, 0, 2, ' ', 0)
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

func benchNew(name string, ns float64, extra, baseline string, baseNs float64) benchRow {
	return benchRow{Name: name, PerOp: benchDur(ns), NsPerOp: ns, Extra: extra, Baseline: baseline, BaseNs: baseNs, Ratio: ns / baseNs}
}

func benchDur(ns float64) string { return time.Duration(ns).Round(10 * time.Nanosecond).String() }

// benchInterleaved times f and its baseline alternately, n rounds each, so
// load from elsewhere on the machine hits both alike.
func benchInterleaved(n int, f, base func() error) (ns, baseNs float64, err error) {
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

// benchCodec: the TEEP codec on an Update shaped like Appendix D.4 (a token
// and one signed SUIT envelope), bare and signed with ESP256. Built here so
// the binary needs no files.
func benchCodec(quick bool) ([]benchRow, error) {
	env, err := benchSampleEnvelope()
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
	decNs, genNs, err := benchInterleaved(n,
		func() error { _, err := teep.Decode(raw, teep.DecodeOptions{}); return err },
		func() error { return cbor.Unmarshal(raw, &sink) })
	if err != nil {
		return nil, err
	}
	n /= 20
	openNs, verNs, err := benchInterleaved(n,
		func() error { _, err := teep.Open(signed, teep.OpenOptions{Keys: pub}); return err },
		func() error { _, _, err := cosekey.Verify(signed, cosekey.VerifyOptions{Keys: pub}); return err })
	if err != nil {
		return nil, err
	}
	return []benchRow{
		benchNew("teep.Decode Update", decNs, fmt.Sprintf("%d B", len(raw)), "generic CBOR decode "+benchDur(genNs), genNs),
		benchNew("teep.Open Update (ESP256)", openNs, "", "COSE verify "+benchDur(verNs), verNs),
	}, nil
}

// benchSampleEnvelope is a small signed SUIT envelope for the codec rows.
func benchSampleEnvelope() ([]byte, error) {
	sk, err := cosekey.Generate(cosekey.AlgESP256)
	if err != nil {
		return nil, err
	}
	s, err := cosekey.NewSigner(sk, 0)
	if err != nil {
		return nil, err
	}
	return demoEnvelope(s, "bench-ta", 1, []byte("Hello, Secure World!"))
}

// benchGen yields size deterministic bytes without holding them.
type benchGen struct {
	left int64
	off  int
	blk  [64 << 10]byte
}

func (g *benchGen) Read(p []byte) (int, error) {
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

func newBenchGen(size int64) *benchGen {
	g := &benchGen{left: size}
	for i := range g.blk {
		g.blk[i] = byte(i*7 + i>>8)
	}
	return g
}

type benchFetcher struct{ size int64 }

func (f benchFetcher) Fetch(context.Context, string) (io.ReadCloser, int64, error) {
	return io.NopCloser(newBenchGen(f.size)), f.size, nil
}

// benchSUIT installs a streamed payload into the directory store, through
// the whole processor (authentication, fetch, digest, staged write, atomic
// commit), against SHA-256 over the same bytes.
func benchSUIT(ctx context.Context, dir string, size int64) ([]benchRow, error) {
	h := sha256.New()
	if _, err := io.Copy(h, newBenchGen(size)); err != nil {
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
	p, err := processor.New(processor.Config{Trust: []*cosekey.Key{sk.PublicKey()}, Store: store, Fetcher: benchFetcher{size}})
	if err != nil {
		return nil, err
	}
	seq := uint64(0)
	buf := make([]byte, 256<<10)
	ns, baseNs, err := benchInterleaved(3, func() error {
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
		_, err := io.CopyBuffer(h, newBenchGen(size), buf)
		return err
	})
	if err != nil {
		return nil, err
	}
	mbps := float64(size) / (ns / 1e9) / (1 << 20)
	return []benchRow{benchNew(fmt.Sprintf("SUIT install, %d MiB streamed to disk", size>>20), ns,
		fmt.Sprintf("%.0f MiB/s", mbps), "SHA-256 "+benchDur(baseNs), baseNs)}, nil
}

// benchSessions runs a TAM and a fleet of TEEs over loopback HTTP.
func benchSessions(ctx context.Context, dir string, devices, sessions int) ([]benchRow, error) {
	fleet := demoFleetSpec{}
	for i := 0; i < devices; i++ {
		fleet = append(fleet, struct {
			device string
			tees   []string
		}{fmt.Sprintf("device-%d", i+1), []string{"tee"}})
	}
	w, err := demoStart(ctx, dir, fleet, slog.New(slog.DiscardHandler), nil)
	if err != nil {
		return nil, err
	}
	defer w.Close()
	first := w.devices[0]
	sync1 := func() error { return first.b.Sync(ctx, first.tees[0].tee.Name()) }
	// First contact: attestation and registration, not measured.
	for _, d := range w.devices {
		if err := d.b.Sync(ctx, d.tees[0].tee.Name()); err != nil {
			return nil, err
		}
	}

	crypto, err := benchSessionCrypto()
	if err != nil {
		return nil, err
	}
	rtt, stopRTT, err := benchHTTPRoundTrip()
	if err != nil {
		return nil, err
	}
	defer stopRTT()

	// A session with nothing to do: QueryRequest, QueryResponse, 204.
	idleNs, idleBase, err := benchInterleaved(sessions, sync1, func() error { return crypto(false) })
	if err != nil {
		return nil, err
	}
	// Install: a new version each time, so every session carries an Update.
	env, err := benchEnvelope(w, 1)
	if err != nil {
		return nil, err
	}
	comp, err := w.srv.Engine.AddComponent(ctx, env)
	if err != nil {
		return nil, err
	}
	if _, err := w.srv.Engine.SetPolicy(ctx, tam.Policy{Component: comp.ComponentID, Mode: tam.Required,
		Scope: tam.ScopeDevice, Value: hex.EncodeToString(first.tees[0].agent.PublicKey().KID())}); err != nil {
		return nil, err
	}
	seq := uint64(1)
	installNs, installBase, err := benchInterleaved(sessions, func() error {
		seq++
		env, err := benchEnvelope(w, seq)
		if err != nil {
			return err
		}
		if _, err := w.srv.Engine.AddComponent(ctx, env); err != nil {
			return err
		}
		return sync1()
	}, func() error { return crypto(true) })
	if err != nil {
		return nil, err
	}
	// The fleet at once: every TEE runs idle sessions concurrently.
	rounds := sessions / 4
	if rounds < 2 {
		rounds = 2
	}
	t0 := time.Now()
	var wg sync.WaitGroup
	errs := make(chan error, len(w.devices))
	for _, d := range w.devices {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < rounds; i++ {
				if err := d.b.Sync(ctx, d.tees[0].tee.Name()); err != nil {
					errs <- err
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	if err := <-errs; err != nil {
		return nil, err
	}
	total := float64(rounds * len(w.devices))
	fleetNs := float64(time.Since(t0)) / total
	rttNs := rtt()
	return []benchRow{
		benchNew("TAM session, nothing to do (2 POSTs)", idleNs, fmt.Sprintf("HTTP round trip %s", benchDur(rttNs)),
			"its signatures "+benchDur(idleBase), idleBase),
		benchNew("TAM session, install new version (4 POSTs)", installNs, "", "its signatures "+benchDur(installBase), installBase),
		benchNew(fmt.Sprintf("fleet: %d TEEs syncing at once", len(w.devices)), fleetNs,
			fmt.Sprintf("%.0f sessions/s", 1e9/fleetNs), "one session alone "+benchDur(idleNs), idleNs),
	}, nil
}

func benchEnvelope(w *demoWorld, seq uint64) ([]byte, error) {
	return demoEnvelope(w.signer, "bench-ta", seq, []byte(fmt.Sprintf("bench payload version %d", seq)))
}

// benchSessionCrypto returns the public-key work of a session done bare:
// the TAM signs its QueryRequest for both suites (COSE_Sign, the Agent's
// suite is unknown at an empty POST), the Agent verifies one signature and
// signs its QueryResponse, the TAM verifies it. With install, add the
// Update (TAM signs, Agent verifies, the Agent verifies the manifest) and
// the Success (Agent signs, TAM verifies).
func benchSessionCrypto() (func(install bool) error, error) {
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

// benchHTTPRoundTrip serves a handler that answers 204 on loopback and
// returns a function measuring one POST round trip on a kept-alive client.
func benchHTTPRoundTrip() (func() float64, func(), error) {
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
	measure := func() float64 {
		r := testing.Benchmark(func(b *testing.B) {
			for i := 0; i < b.N; i++ {
				resp, err := client.Post(url, "application/teep+cbor", nil)
				if err != nil {
					b.Fatal(err)
				}
				io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
			}
		})
		return float64(r.NsPerOp())
	}
	return measure, func() { srv.Close() }, nil
}
