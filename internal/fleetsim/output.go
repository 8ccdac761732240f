package fleetsim

import (
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
)

// WriteText prints r for people.
func WriteText(w io.Writer, r *Result) error {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	p := func(k, format string, a ...any) { fmt.Fprintf(tw, "%s\t%s\n", k, fmt.Sprintf(format, a...)) }
	p("scenario", "%s (%s devices, %s)", r.Scenario, r.Model, r.Database)
	p("devices", "%d, concurrency %d, %d cores", r.Devices, r.Concurrency, r.Cores)
	if r.Scenario != ScenarioSteady {
		p("component", "%d bytes", r.SizeBytes)
	}
	p("rounds", "%d in %.2f s: %.0f rounds/s, %.0f messages/s", r.Rounds, r.Seconds, r.RoundsPerSec, r.MessagesPerS)
	p("latency", "p50 %.2f ms, p95 %.2f ms, p99 %.2f ms", r.LatencyP50Ms, r.LatencyP95Ms, r.LatencyP99Ms)
	errs := "none"
	if r.ErrorCount > 0 {
		var parts []string
		for _, k := range r.ErrorKinds() {
			parts = append(parts, fmt.Sprintf("%s %d", k, r.Errors[k]))
		}
		errs = strings.Join(parts, ", ")
	}
	p("errors", "%s", errs)
	if r.TAM == "external" { // this process holds only the simulated devices
		p("CPU per round", "%.3f ms (this process: the simulated devices)", r.CPUMsPerRound)
		p("peak RSS", "%.1f MiB (this process)", float64(r.PeakRSSBytes)/(1<<20))
		if r.TAMCPUMsPerRound > 0 {
			p("TAM CPU per round", "%.3f ms (the TAM process, --tam-pid)", r.TAMCPUMsPerRound)
			p("TAM RSS", "%.1f MiB peak, %.1f MiB after the run", float64(r.TAMPeakRSSBytes)/(1<<20), float64(r.TAMRSSBytes)/(1<<20))
		}
	} else {
		p("CPU per round", "%.3f ms (whole process: TAM and simulated devices)", r.CPUMsPerRound)
		p("peak RSS", "%.1f MiB (whole process)", float64(r.PeakRSSBytes)/(1<<20))
	}
	p("signature floor", "%.3f ms per round on one core: %.0f rounds/s on %d cores", r.FloorRoundMs, r.FloorRoundsPerSec, r.Cores)
	p("achieved/floor", "%.2f", r.OfFloor)
	if r.TransportRoundMs > 0 {
		p("transport floor", "%.3f ms per round (net/http alone, the same POSTs): with signatures %.0f rounds/s on %d cores",
			r.TransportRoundMs, r.FloorWithTransportRoundsPerSec, r.Cores)
		p("achieved/(floor+HTTP)", "%.2f", r.OfFloorWithTransport)
	}
	return tw.Flush()
}

// MarkdownHeader is the table header WriteMarkdownRow rows go under.
const MarkdownHeader = "| scenario | database | devices | C | rounds/s | floor rounds/s | achieved/floor | achieved/(floor+HTTP) | p50 ms | p95 ms | p99 ms | errors | CPU ms/round | peak RSS MiB |\n" +
	"|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n"

// WriteMarkdownRow prints r as one row of the BENCHMARKS.md table.
func WriteMarkdownRow(w io.Writer, r *Result) error {
	scen := Label(r)
	_, err := fmt.Fprintf(w, "| %s | %s | %d | %d | %.0f | %.0f | **%.2f** | %.2f | %.2f | %.2f | %.2f | %d | %.3f | %.0f |\n",
		scen, r.Database, r.Devices, r.Concurrency, r.RoundsPerSec, r.FloorRoundsPerSec, r.OfFloor, r.OfFloorWithTransport,
		r.LatencyP50Ms, r.LatencyP95Ms, r.LatencyP99Ms, r.ErrorCount, r.CPUMsPerRound, float64(r.PeakRSSBytes)/(1<<20))
	return err
}

// Label names a run in a table: its scenario and what sets it apart.
func Label(r *Result) string {
	scen := r.Scenario
	if r.Scenario == ScenarioRollout {
		scen = fmt.Sprintf("rollout (%d B)", r.SizeBytes)
	}
	if r.Model != ModelLight {
		scen += ", " + r.Model
	}
	if r.Devices != r.ActiveDevices {
		scen += fmt.Sprintf(", %d registered", r.Devices)
	}
	if r.HistoryRounds > 0 {
		scen += fmt.Sprintf(", after %d history rounds", r.HistoryRounds)
	}
	if r.PeakRoundsPerSec > 0 {
		scen += fmt.Sprintf(", at half peak (%.0f of %.0f rounds/s)", r.RateRoundsPerSec, r.PeakRoundsPerSec)
	} else if r.RateRoundsPerSec > 0 {
		scen += fmt.Sprintf(", open loop at %.0f rounds/s", r.RateRoundsPerSec)
	}
	return scen
}

// ofFloorRatio compares two runs by achieved/floor, which carries the
// machine's speed during each run: on a shared machine the floor itself
// moves between runs, and rounds/s alone would credit or blame the TAM
// for that.
func ofFloorRatio(r, base *Result) string {
	if base.OfFloor == 0 || base.FloorRoundsPerSec == 0 {
		return "achieved/floor unknown"
	}
	return fmt.Sprintf("achieved/floor ×%.2f (%.2f against %.2f; the floor moved ×%.2f between the two runs)",
		r.OfFloor/base.OfFloor, r.OfFloor, base.OfFloor, r.FloorRoundsPerSec/base.FloorRoundsPerSec)
}

// WriteScale prints the same-run ratios of the scale rows against their
// baselines (the first plain row of the same scenario and database, and
// for a history row of the same fleet size).
func WriteScale(w io.Writer, runs []*Result) error {
	base := func(r *Result) *Result {
		for _, b := range runs {
			if b.Scenario == r.Scenario && b.Database == r.Database && b.Model == r.Model && b.Devices == b.ActiveDevices &&
				b.HistoryRounds == 0 && b.RateRoundsPerSec == 0 && b != r && (r.HistoryRounds == 0 || b.Devices == r.Devices) {
				return b
			}
		}
		return nil
	}
	var b strings.Builder
	for _, r := range runs {
		bl := base(r)
		if bl == nil || bl.RoundsPerSec == 0 {
			continue
		}
		switch {
		case r.Devices != r.ActiveDevices:
			fmt.Fprintf(&b, "- %d registered devices (%d running rounds) against %d: steady rounds/s ×%.2f, %s; process RSS after the run ×%.2f (%.0f MiB against %.0f MiB; the simulator's devices are the same %d in both).\n",
				r.Devices, r.ActiveDevices, bl.Devices, r.RoundsPerSec/bl.RoundsPerSec, ofFloorRatio(r, bl), float64(r.RSSBytes)/float64(max(bl.RSSBytes, 1)),
				float64(r.RSSBytes)/(1<<20), float64(bl.RSSBytes)/(1<<20), r.ActiveDevices)
		case r.HistoryRounds > 0:
			fmt.Fprintf(&b, "- After %d history rounds (filled in %.0f s) against a fresh database: %s rounds/s ×%.2f, %s.\n",
				r.HistoryRounds, r.HistoryFillSeconds, r.Scenario, r.RoundsPerSec/bl.RoundsPerSec, ofFloorRatio(r, bl))
		case r.PeakRoundsPerSec > 0:
			fmt.Fprintf(&b, "- %s at half of its peak (%.0f rounds/s, open loop): p50 %.2f ms, p95 %.2f ms, p99 %.2f ms; closed loop at the peak: p99 %.2f ms.\n",
				r.Scenario, r.RateRoundsPerSec, r.LatencyP50Ms, r.LatencyP95Ms, r.LatencyP99Ms, bl.LatencyP99Ms)
		}
	}
	if b.Len() == 0 {
		return nil
	}
	_, err := io.WriteString(w, "\n## Scale and latency (ratios in the same run)\n\n"+b.String())
	return err
}

// WriteBenchmarks prints BENCHMARKS.md: the method, the command that
// regenerated it, and one row per run.
func WriteBenchmarks(w io.Writer, command, machine string, runs []*Result) error {
	var b strings.Builder
	b.WriteString(`# Benchmarks

Generated by ` + "`" + command + "`" + ` (do not edit by hand; run it again; ` + "`go run ./cmd/teep`" + ` in
place of ` + "`teep`" + ` from a checkout).

## Method

` + "`teep bench fleet`" + ` runs, in one process, a TAM (the same tamserver ` + "`teep tam serve`" + ` runs, HTTP on
127.0.0.1, SQLite in a temporary directory or PostgreSQL with ` + "`--db`" + `) and N simulated devices of the
` + "`light`" + ` model: each has its own P-256 Agent key, pre-registered in the TAM, and does the protocol work
only (verifies the TAM's messages, signs its own, verifies each SUIT manifest's signature, keeps its
inventory in memory). C devices run at once; a device runs its rounds one after another, as an Agent does.

- ` + "`steady`" + `: every device already has the required component (a warm-up round, not measured, installs it);
  a measured round is QueryRequest, QueryResponse, 204: 2 POSTs.
- ` + "`rollout`" + `: every device's measured round installs the component (` + "`--size`" + ` bytes, integrated in a signed
  SUIT manifest): QueryRequest, QueryResponse, Update, Success, 204: 3 POSTs.
- ` + "`attest`" + `: devices are not pre-registered; the measured round is the first contact: QueryRequest, QueryResponse,
  a second QueryRequest asking for attestation, QueryResponse with Evidence (an EAT signed with the device's own
  attestation key, appraised by the TAM's in-process Verifier, background-check model), 204: 3 POSTs. (This TAM
  installs in the next round, which is run, not measured, so that the policy check holds.)

The **signature floor** is measured in the same run, in the same process, before and after the load (the
median of 20 batches of 20 rounds, so that a batch preempted by other load does not move it): one core does the public-key operations of one round as TAM and device do them (steady: the TAM's COSE_Sign
QueryRequest with ESP256 and Ed25519, the device's verify of it, the device's ESP256 QueryResponse and the
TAM's verify; rollout adds Update sign and verify, the manifest's verify, Success sign and verify; attest is
two such query exchanges and the Evidence's sign and verify). Floor
rounds/s = cores / that time: the rate a TAM and its devices on this machine could reach if they did
nothing but signatures. **achieved/floor** is the figure that carries from machine to machine; rounds/s
alone does not. Both sides share the machine, so the floor counts the devices' signatures too.

The **transport floor** is measured after the load, in the same process: the POSTs of one device's last
round, as it sent them and as the TAM answered, replayed by C clients through the devices' HTTP client to a
bare net/http server on loopback that answers each with its recorded answer and the headers
draft-ietf-teep-otrp-over-http-15 §4 asks for (no TEEP work, no database); the process's CPU per replayed
round (median of 5 batches). **achieved/(floor+HTTP)** is rounds/s over cores / (signature time + that CPU):
the part of what signatures and HTTP allow on this machine that the TAM reaches, so the rest is the TAM's
own work (decoding, policy, database) and the simulated devices'.

CPU per round and peak RSS are the whole process's (TAM and simulated devices), from getrusage; peak RSS
is the process's peak so far, so a later row includes earlier ones. Latency is per round (all its POSTs).
Errors must be 0: ` + "`go test ./internal/fleetsim`" + ` runs the same simulator (50 devices, C=8, every scenario,
SQLite, and PostgreSQL when ` + "`TEEP_TEST_POSTGRES_DSN`" + ` is set) and checks through the TAM's store that every
device ends in policy.

Further rows (SQLite): ` + "`--half-peak`" + ` measures the closed-loop peak, then drives the same fleet open loop
(` + "`--rate`" + `: a round starts every 1/rate s whether or not earlier ones ended; latency counts from the
scheduled start) at half of it. ` + "`--devices N --active M`" + ` registers N devices in bulk through the engine
(M of them run rounds, the rest are the fleet's population in the TAM's store). ` + "`--history-rounds N`" + ` first
writes, through the store, the rows N completed rounds leave (consumed QueryRequest tokens, which live until
their expiry, and success reports, bounded per device), then measures against that database; it is compared
with a run on a fresh database of the same size (3000 devices: a rollout measures one round per device, so
that each run lasts seconds).

The project's targets (not timed tests): achieved/floor at least 0.5 for both scenarios on SQLite and
0.35 on PostgreSQL, 1000 light devices, C=16, 1 KiB component.

Query plans of the hot path and CPU profiles before and after the performance work are in
docs/performance.md (written by hand; this file is generated).

## Figures

Machine: ` + machine + `.

`)
	b.WriteString(MarkdownHeader)
	if _, err := io.WriteString(w, b.String()); err != nil {
		return err
	}
	for _, r := range runs {
		if err := WriteMarkdownRow(w, r); err != nil {
			return err
		}
	}
	return WriteScale(w, runs)
}
