package main

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"runtime"
	"runtime/pprof"
	"strings"

	"github.com/teep-go/teep/internal/fleetsim"
	"github.com/teep-go/teep/internal/keyfile"
)

func init() {
	register(&command{path: "bench fleet", summary: "simulate a fleet of devices against an in-process TAM and compare with the signature floor", run: benchFleet})
}

func benchFleet(e *env, args []string) error {
	fs := newFlags(e, "bench fleet", "[--scenario steady|rollout|attest] [--devices N] [--concurrency C] [--rounds N] [--duration D] [--size BYTES] [--db postgres://...] [--json | --markdown]",
		"Runs a TAM (HTTP on 127.0.0.1; SQLite in a temporary directory, or the PostgreSQL database of --db)\n"+
			"and N simulated light devices (own Agent key each, protocol work only), C at a time, and prints\n"+
			"rounds/s, messages/s, latency percentiles, errors by kind, CPU per round, peak RSS, and the\n"+
			"signature floor measured in the same run with achieved/floor, and over HTTP the transport floor\n"+
			"(net/http alone replaying one round) with achieved/(floor+HTTP) (BENCHMARKS.md explains the method).\n"+
			"--markdown runs every scenario on SQLite (and on --db when given) and prints BENCHMARKS.md.")
	var o fleetsim.Options
	fs.StringVar(&o.Scenario, "scenario", fleetsim.ScenarioSteady, "steady (devices up to date), rollout (each device installs one component) or attest (first contact with Evidence)")
	fs.StringVar(&o.Model, "model", fleetsim.ModelLight, "device model: light (protocol work only) or full (a software TEE, Agent and Broker per device)")
	fs.IntVar(&o.Active, "active", 0, "devices that run rounds (default: all); the others are registered only")
	fs.Float64Var(&o.Rate, "rate", 0, "open loop: start this many rounds per second (default: closed loop)")
	fs.BoolVar(&o.HalfPeak, "half-peak", false, "measure the closed-loop peak, then rerun at half of it and report that run")
	fs.IntVar(&o.HistoryRounds, "history-rounds", 0, "first write the rows of this many completed rounds into the store (in-process TAM)")
	fs.StringVar(&o.TAM, "tam", "", "drive a running TAM at this TEEP URL (http, https, coap, coaps, coap+tcp, coaps+tcp; loopback only)")
	fs.StringVar(&o.AdminURL, "tam-admin", "", "the running TAM's admin API base URL (default: --tam's scheme, host and port)")
	fs.StringVar(&o.AdminToken, "tam-token", "", "the running TAM's admin token (or set TEEP_TAM_TOKEN)")
	fs.StringVar(&o.TAMCA, "tam-ca", "", "PEM CA file for the running TAM's TLS or DTLS certificate")
	fs.IntVar(&o.TAMPID, "tam-pid", 0, "the running TAM's process id: report its CPU and peak RSS from /proc")
	fs.BoolVar(&o.NonLoopbackUnsafe, "tam-non-loopback-unsafe", false, "allow a TAM that is not on a loopback address")
	attKey := fs.String("attestation-key", "", "private key file (PEM) every attesting light device signs Evidence with (a running TAM's Verifier endorses it)")
	fs.IntVar(&o.Devices, "devices", fleetsim.DefaultDevices, "simulated devices")
	fs.IntVar(&o.Concurrency, "concurrency", fleetsim.DefaultConcurrency, "devices running a round at once")
	fs.IntVar(&o.Rounds, "rounds", fleetsim.DefaultRounds, "measured rounds per device (steady; rollout measures one)")
	fs.DurationVar(&o.Duration, "duration", fleetsim.DefaultDuration, "stop measuring after this long")
	fs.IntVar(&o.Size, "size", fleetsim.DefaultSize, "component payload bytes (rollout)")
	db := fs.String("db", "", "a postgres:// URL (or set TEEP_TAM_DB); default SQLite in a temporary directory")
	asJSON := fs.Bool("json", false, "print JSON")
	md := fs.Bool("markdown", false, "run every scenario on SQLite (and --db) and print BENCHMARKS.md")
	scaleDevices := fs.Int("scale-devices", 100_000, "--markdown: registered devices of the scale row")
	scaleHistory := fs.Int("scale-history", 1_000_000, "--markdown: history rounds of the history row")
	machine := fs.String("machine", "", "machine description for --markdown (default: GOOS/GOARCH and cores)")
	cpuProfile := fs.String("cpuprofile", "", "write a CPU profile of the whole run (TAM and devices, in process) to this file, for go tool pprof")
	pos, err := parse(fs, args)
	if err != nil {
		return err
	}
	if len(pos) != 0 {
		return usagef("no arguments expected")
	}
	if o.Devices < 1 || o.Concurrency < 1 || o.Rounds < 1 || o.Size < 1 || o.Duration <= 0 {
		return usagef("--devices, --concurrency, --rounds, --size and --duration must be positive")
	}
	if *asJSON && *md {
		return usagef("--json and --markdown exclude each other")
	}
	if *db == "" && o.TAM == "" {
		*db = e.getenv("TEEP_TAM_DB")
	}
	if o.AdminToken == "" {
		o.AdminToken = e.getenv("TEEP_TAM_TOKEN")
	}
	if *attKey != "" {
		if o.AttestationKey, err = keyfile.Load(*attKey); err != nil {
			return err
		}
	}
	ctx := context.Background()
	if *cpuProfile != "" {
		f, err := os.Create(*cpuProfile)
		if err != nil {
			return err
		}
		defer f.Close()
		if err := pprof.StartCPUProfile(f); err != nil {
			return err
		}
		defer pprof.StopCPUProfile()
	}
	if *md {
		return benchMarkdown(ctx, e, o, *db, *machine, *scaleDevices, *scaleHistory, args)
	}
	o.DB = *db
	if !*asJSON {
		o.Progress = e.stderr
	}
	r, err := fleetsim.Run(ctx, o)
	if err != nil {
		return err
	}
	if *asJSON {
		enc := json.NewEncoder(e.stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(r)
	}
	return fleetsim.WriteText(e.stdout, r)
}

// historyDevices is the fleet of --markdown's history comparison.
const historyDevices = 3000

func benchMarkdown(ctx context.Context, e *env, o fleetsim.Options, db, machine string, scaleDevices, scaleHistory int, args []string) error {
	if machine == "" {
		machine = fmt.Sprintf("%s/%s, %d cores, loopback", runtime.GOOS, runtime.GOARCH, runtime.GOMAXPROCS(0))
	}
	load0 := loadAverage()
	dbs := []string{""}
	if db != "" {
		dbs = append(dbs, db)
	}
	var runs []*fleetsim.Result
	for _, d := range dbs {
		for _, s := range []string{fleetsim.ScenarioSteady, fleetsim.ScenarioRollout, fleetsim.ScenarioAttest} {
			ro := o
			ro.Scenario, ro.DB, ro.Progress = s, d, e.stderr
			r, err := fleetsim.Run(ctx, ro)
			if err != nil {
				name := "SQLite"
				if d != "" {
					name = "PostgreSQL"
				}
				return fmt.Errorf("%s on %s: %w", s, name, err)
			}
			runs = append(runs, r)
		}
	}
	// On SQLite: latency at half the peak, a large registered fleet, a
	// long history; each against the rows above.
	// A rollout measures one round per device: the history comparison
	// runs historyDevices of them on a fresh database and after the
	// history, so that each run lasts seconds, not a fraction of one.
	hd := max(historyDevices, o.Devices)
	for _, ro := range []fleetsim.Options{
		{Scenario: fleetsim.ScenarioSteady, HalfPeak: true},
		{Scenario: fleetsim.ScenarioSteady, Devices: max(scaleDevices, o.Devices), Active: o.Devices},
		{Scenario: fleetsim.ScenarioRollout, Devices: hd},
		{Scenario: fleetsim.ScenarioRollout, Devices: hd, HistoryRounds: scaleHistory},
	} {
		x := o
		x.Scenario, x.HalfPeak, x.HistoryRounds, x.Progress = ro.Scenario, ro.HalfPeak, ro.HistoryRounds, e.stderr
		if ro.Devices != 0 {
			x.Devices, x.Active = ro.Devices, ro.Active
		}
		r, err := fleetsim.Run(ctx, x)
		if err != nil {
			return fmt.Errorf("%s on SQLite: %w", ro.Scenario, err)
		}
		runs = append(runs, r)
	}
	if l1 := loadAverage(); load0 != "" && l1 != "" {
		machine += fmt.Sprintf("; 1-minute load average %s before the runs, %s after", load0, l1)
	}
	// The command as typed, without a database URL (it may carry a password).
	var shown []string
	for i := 0; i < len(args); i++ {
		switch a := args[i]; {
		case a == "--db" || a == "-db":
			shown = append(shown, a, "postgres://...")
			i++
		case strings.HasPrefix(a, "--db=") || strings.HasPrefix(a, "-db="):
			shown = append(shown, "--db=postgres://...")
		case strings.ContainsAny(a, " \t'\"$;&|<>"):
			shown = append(shown, "'"+strings.ReplaceAll(a, "'", `'\''`)+"'")
		default:
			shown = append(shown, a)
		}
	}
	return fleetsim.WriteBenchmarks(e.stdout, strings.TrimSpace("teep bench fleet "+strings.Join(shown, " "))+" > BENCHMARKS.md", machine, runs)
}

// loadAverage is the 1-minute load average (Linux), "" where unknown: how
// busy the machine was, for the reader of the figures.
func loadAverage() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return ""
	}
	if f := strings.Fields(string(b)); len(f) > 0 {
		return f[0]
	}
	return ""
}
