package main

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"time"

	"github.com/teep-go/teep/internal/broker"
	"github.com/teep-go/teep/internal/device"
	"github.com/teep-go/teep/suit"
)

func init() {
	register(&command{path: "device invoke", summary: "run an installed Trusted Application once and print its output", run: deviceInvoke})
}

func deviceInvoke(e *env, args []string) error {
	fs := newFlags(e, "device invoke", "--state DIR [--tee NAME] --component ID [--input FILE|-]",
		"Runs an installed Trusted Application (a WebAssembly component, docs/trusted-apps.md) once in\n"+
			"its TEE, through the running daemon's local API, and writes its output to stdout as is.\n"+
			"The input is empty without --input; \"-\" reads stdin. Unknown or removed components and\n"+
			"components that are not TAs fail with a clear message.")
	state := fs.String("state", device.DefaultStateDir(e.getenv), "device state directory")
	teeName := fs.String("tee", "", "the TEE (default: the device's first)")
	comp := fs.String("component", "", "component ID of the TA, as `teep device status` prints it (required)")
	input := fs.String("input", "", "file holding the TA's input, or - for stdin")
	timeout := fs.Duration("timeout", time.Minute, "how long to wait for the answer")
	pos, err := parse(fs, args)
	if err != nil {
		return err
	}
	if len(pos) != 0 {
		return usagef("no arguments expected")
	}
	if *comp == "" {
		return usagef("--component is required")
	}
	id, err := suit.ParseComponentID(*comp)
	if err != nil {
		return usagef("--component: %v", err)
	}
	var in []byte
	if *input != "" {
		if in, err = readInput(e, []string{*input}, broker.MaxInvokeInput); err != nil {
			return err
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), *timeout)
	defer cancel()
	r, err := broker.NewLocalClient(filepath.Join(*state, device.FileSocket)).Invoke(ctx, *teeName, id, in)
	if errors.Is(err, broker.ErrNotRunning) {
		return fmt.Errorf("no daemon runs on %s; start `teep device run --state %s`", *state, *state)
	}
	if err != nil {
		return fmt.Errorf("invoke %s: %w", id, err)
	}
	_, err = e.stdout.Write(r.Output)
	return err
}
