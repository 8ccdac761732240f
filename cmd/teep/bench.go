package main

import (
	"context"
	"encoding/json"

	"github.com/teep-go/teep/internal/bench"
)

func init() {
	register(&command{path: "bench", summary: "measure codec, SUIT streaming, TAM sessions and TA invocation against baselines from the same run", run: benchRun})
}

func benchRun(e *env, args []string) error {
	fs := newFlags(e, "bench", "[--quick] [--devices N] [--sessions N] [--payload-mib N] [--json]",
		"Measures, in this process, each against a baseline measured in the same run:\n"+
			"  - TEEP Decode and Open of the draft-26 Appendix D Update, vs a generic CBOR decode and a bare COSE verify;\n"+
			"  - a SUIT install streaming a payload into a directory store, vs SHA-256 over the same bytes;\n"+
			"  - TAM sessions over loopback HTTP with SQLite (nothing to do; install of a new version), vs the\n"+
			"    signatures and verifications such a session needs;\n"+
			"  - sessions per second with every TEE of a fleet syncing at once;\n"+
			"  - invocations of a trivial WebAssembly TA (cold, warm, 4 callers), vs a direct Go call of the\n"+
			"    same work, and the TA's memory per instance, vs a goroutine holding the same linear memory.\n"+
			"Ratios are time (or bytes) over the baseline's: lower is better, 1 is as cheap as the baseline.")
	var o bench.Options
	fs.BoolVar(&o.Quick, "quick", false, "small sizes and counts (a smoke run)")
	fs.IntVar(&o.Devices, "devices", bench.DefaultDevices, "TEEs syncing concurrently in the fleet measurement")
	fs.IntVar(&o.Sessions, "sessions", bench.DefaultSessions, "sessions per session measurement")
	fs.IntVar(&o.PayloadMiB, "payload-mib", bench.DefaultPayloadMiB, "payload size for the SUIT streaming measurement")
	asJSON := fs.Bool("json", false, "print JSON instead of a table")
	pos, err := parse(fs, args)
	if err != nil {
		return err
	}
	if len(pos) != 0 {
		return usagef("no arguments expected")
	}
	if !o.Quick && (o.Devices < 1 || o.Sessions < 1 || o.PayloadMiB < 1) {
		return usagef("--devices, --sessions and --payload-mib must be positive")
	}
	rows, err := bench.Run(context.Background(), o)
	if err != nil {
		return err
	}
	if *asJSON {
		enc := json.NewEncoder(e.stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(rows)
	}
	return bench.WriteTable(e.stdout, rows)
}
