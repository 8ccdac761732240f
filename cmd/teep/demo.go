package main

import (
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"text/tabwriter"
	"time"

	"github.com/teep-go/teep/internal/agent"
	"github.com/teep-go/teep/internal/device"
	"github.com/teep-go/teep/internal/fleet"
	"github.com/teep-go/teep/internal/tam"
	"github.com/teep-go/teep/internal/tee/wasmta/handta"
	"github.com/teep-go/teep/suit"
)

func init() {
	register(&command{path: "demo", summary: "a TAM and four devices (one over CoAP) in one process: attestation, install, update, a TA run across its update, request, removal", run: demoRun})
}

// The demo's fleet: four devices, the third with two TEEs, the fourth on CoAP.
var demoFleet = []fleet.DeviceSpec{
	{Name: "device-1", TEEs: []string{"tee"}},
	{Name: "device-2", TEEs: []string{"tee"}},
	{Name: "device-3", TEEs: []string{"main", "secure2"}},
	{Name: "device-4", TEEs: []string{"tee"}, CoAP: true},
}

// demoTEE is one simulated TEE as the story shows it.
type demoTEE struct {
	*device.TEE
	label     string // device/tee
	appraised bool   // the TAM's appraisal was shown
}

// demoTimeline prints the story: steps and what each party did.
type demoTimeline struct {
	w     io.Writer
	start time.Time
	n     int // steps shown so far
}

func (tl *demoTimeline) step(title string) {
	tl.n++
	fmt.Fprintf(tl.w, "\n%d. %s\n", tl.n, title)
}

func (tl *demoTimeline) say(who, format string, a ...any) {
	fmt.Fprintf(tl.w, "   %-18s %s\n", who, fmt.Sprintf(format, a...))
}

// demoName is a component id as a person reads it: the demo's ids are
// ['TEEP-Device', 'SecureFS', name, 'ta' or 'suit'] (the payload and the
// manifest), shown as name; other ids as their printable segments joined
// by "/", or the id itself.
func demoName(id suit.ComponentID) string {
	var parts []string
	for i, p := range id {
		if (i < 2 && (string(p) == "TEEP-Device" || string(p) == "SecureFS")) ||
			(i == len(id)-1 && i > 0 && (string(p) == "ta" || string(p) == "suit")) {
			continue
		}
		if len(p) == 0 || strings.IndexFunc(string(p), func(r rune) bool { return r < 0x21 || r > 0x7e }) >= 0 {
			return id.String()
		}
		parts = append(parts, string(p))
	}
	return strings.Join(parts, "/")
}

func demoRun(e *env, args []string) error {
	fs := newFlags(e, "demo", "[--keep DIR] [--verbose]",
		"Runs, in this process, a TAM (SQLite in a temporary directory, TEEP over HTTP and CoAP on\n"+
			"127.0.0.1) and four simulated devices with software TEEs (the third has two, the fourth\ntalks CoAP over UDP), and prints the story:\n"+
			"attestation at first contact, install of a freshly built and signed Trusted Component, an\n"+
			"update to a new version, a Trusted Application (WebAssembly) invoked before and after\n"+
			"its own update with its sealed state kept, an optional component an application\n"+
			"requests, and a removal.\n"+
			"Everything is deleted at the end unless --keep is given.")
	keep := fs.String("keep", "", "keep the TAM's and the devices' state in DIR (must not exist)")
	verbose := fs.Bool("verbose", false, "log the TAM's and the Agents' details to stderr")
	pos, err := parse(fs, args)
	if err != nil {
		return err
	}
	if len(pos) != 0 {
		return usagef("no arguments expected")
	}
	log := slog.New(slog.DiscardHandler)
	if *verbose {
		log = slog.New(slog.NewTextHandler(e.stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	var dir string
	if *keep != "" {
		if _, err := os.Stat(*keep); err == nil {
			return usagef("--keep %s: already exists", *keep)
		}
		dir = *keep
		if err := os.MkdirAll(dir, 0o700); err != nil {
			return err
		}
	} else {
		if dir, err = os.MkdirTemp("", "teep-demo-"); err != nil {
			return err
		}
		defer os.RemoveAll(dir)
	}
	ctx, cancel := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer cancel()
	tl := &demoTimeline{w: e.stdout, start: time.Now()}
	err = demoStory(ctx, tl, dir, log)
	if err != nil {
		return err
	}
	fmt.Fprintf(e.stdout, "\nDone in %.1fs.", time.Since(tl.start).Seconds())
	if *keep != "" {
		fmt.Fprintf(e.stdout, " State kept in %s.\n", dir)
	} else {
		fmt.Fprintln(e.stdout, " Temporary state removed.")
	}
	return nil
}

// demoScene is the running story: the fleet, and its TEEs as the timeline
// names them.
type demoScene struct {
	tl   *demoTimeline
	w    *fleet.World
	tees map[string]*demoTEE // by device/tee
}

func demoStory(ctx context.Context, tl *demoTimeline, dir string, log *slog.Logger) (err error) {
	fmt.Fprintln(tl.w, "teep demo: a TAM and four devices (five TEEs) in one process, over real HTTP and CoAP on 127.0.0.1")
	s := &demoScene{tl: tl, tees: map[string]*demoTEE{}}
	if s.w, err = fleet.Start(ctx, fleet.Options{Dir: dir, Fleet: demoFleet, Logger: log, UserAgent: "teep-demo", Events: s.event(ctx)}); err != nil {
		return err
	}
	defer func() {
		if cerr := s.w.Close(); err == nil {
			err = cerr
		}
	}()
	for _, d := range s.w.Devices {
		for _, t := range d.TEEs() {
			s.tees[d.Name+"/"+t.Name] = &demoTEE{TEE: t, label: d.Name + "/" + t.Name}
		}
	}
	tl.say("TAM", "serving %s and %s (SQLite database in %s)", s.w.URL, s.w.CoAPURL, filepath.Join(dir, "tam"))
	tl.say("devices", "%d devices, %d software TEEs, each with its own Agent key, attestation key and sealed storage",
		len(s.w.Devices), len(s.tees))
	hello, err := s.publish(ctx)
	if err != nil {
		return err
	}
	for _, step := range []func(context.Context, suit.ComponentID) error{s.update, s.runTA, s.updateTA, s.optional, s.withdraw} {
		if err := step(ctx, hello); err != nil {
			return err
		}
	}
	return s.endState()
}

func (s *demoScene) event(ctx context.Context) func(string, agent.Event) {
	return func(dev string, ev agent.Event) { demoEvent(ctx, s.tl, s.w.TAM.Engine, s.tees[dev+"/"+ev.TEE], ev) }
}

// publish: a Trusted Component, built and signed now, required everywhere.
func (s *demoScene) publish(ctx context.Context) (suit.ComponentID, error) {
	s.tl.step("A Trusted Component is published; every device attests and installs it")
	hello1, err := fleet.Envelope(s.w.Signer, "hello-ta", 1, []byte("hello, TEE! (version 1)"))
	if err != nil {
		return nil, err
	}
	hello, err := s.w.TAM.Engine.AddComponent(ctx, hello1)
	if err != nil {
		return nil, err
	}
	s.tl.say("signer", "built and signed SUIT manifest hello-ta v1 (%d bytes, payload integrated)", len(hello1))
	if _, err := s.w.TAM.Engine.SetPolicy(ctx, tam.Policy{Component: hello.ComponentID, Mode: tam.Required, Scope: tam.ScopeAll}); err != nil {
		return nil, err
	}
	s.tl.say("TAM", "hello-ta is required on every device")
	return hello.ComponentID, demoSyncAll(ctx, s.w.Devices)
}

// update: version 2, which every device installs.
func (s *demoScene) update(ctx context.Context, _ suit.ComponentID) error {
	s.tl.step("Version 2 is published; every device updates")
	hello2, err := fleet.Envelope(s.w.Signer, "hello-ta", 2, []byte("hello, TEE! (version 2, with fixes)"))
	if err != nil {
		return err
	}
	if _, err := s.w.TAM.Engine.AddComponent(ctx, hello2); err != nil {
		return err
	}
	s.tl.say("TAM", "hello-ta v2 uploaded")
	return demoSyncAll(ctx, s.w.Devices)
}

// The runnable Trusted Application: the hand-assembled counter of package
// handta, so the demo needs no Go toolchain to build it. It keeps its
// count in the TEE's sealed storage and reports its version.
const demoTA = "counter-ta"

// demoTAHome is the one TEE the counter is required on.
func (s *demoScene) demoTAHome() (*fleet.Device, *demoTEE) {
	d := s.w.Devices[0]
	return d, s.tees[d.Name+"/"+d.TEEs()[0].Name]
}

// publishTA signs version seq of the counter (code v<seq>) and uploads
// it to the TAM.
func (s *demoScene) publishTA(ctx context.Context, seq uint64) (suit.ComponentID, error) {
	code := handta.Counter(strconv.FormatUint(seq, 10))
	env, err := fleet.Envelope(s.w.Signer, demoTA, seq, code)
	if err != nil {
		return nil, err
	}
	c, err := s.w.TAM.Engine.AddComponent(ctx, env)
	if err != nil {
		return nil, err
	}
	s.tl.say("signer", "built and signed SUIT manifest %s v%d (%d bytes; payload: a %d-byte WebAssembly module, assembled by hand)", demoTA, seq, len(env), len(code))
	return c.ComponentID, nil
}

// invokeTA runs the counter once through the device's Broker (what the
// local API behind `teep device invoke` calls) and checks its answer, so
// that a count lost across the update fails the demo.
func (s *demoScene) invokeTA(ctx context.Context, want string) error {
	d, t := s.demoTAHome()
	_, out, err := d.Broker().Invoke(ctx, t.Name, fleet.PayloadID(demoTA), nil)
	if err != nil {
		return fmt.Errorf("%s: invoke %s: %w", t.label, demoTA, err)
	}
	s.tl.say(t.label, "an application invokes %s: %q", demoTA, out)
	if string(out) != want {
		return fmt.Errorf("demo: %s answered %q, want %q", demoTA, out, want)
	}
	return nil
}

// runTA: the counter, required on one device, installs there and is run.
func (s *demoScene) runTA(ctx context.Context, _ suit.ComponentID) error {
	d, t := s.demoTAHome()
	s.tl.step(fmt.Sprintf("A Trusted Application that runs: %s is installed on %s and invoked", demoTA, t.label))
	id, err := s.publishTA(ctx, 1)
	if err != nil {
		return err
	}
	kid := hex.EncodeToString(t.Agent.PublicKey().KID())
	if _, err := s.w.TAM.Engine.SetPolicy(ctx, tam.Policy{Component: id, Mode: tam.Required, Scope: tam.ScopeDevice, Value: kid}); err != nil {
		return err
	}
	s.tl.say("TAM", "%s is required on %s only (a policy scoped to its Agent key)", demoTA, t.label)
	// Only this device's policy changed: the others would have nothing
	// to do.
	if err := d.Broker().Sync(ctx, t.Name); err != nil {
		return fmt.Errorf("%s: %w", t.label, err)
	}
	for _, want := range []string{"counter v1: 1", "counter v1: 2"} {
		if err := s.invokeTA(ctx, want); err != nil {
			return err
		}
	}
	return nil
}

// updateTA: version 2 of the counter replaces the code; the count, in
// the TA's sealed storage, stays.
func (s *demoScene) updateTA(ctx context.Context, _ suit.ComponentID) error {
	d, t := s.demoTAHome()
	s.tl.step(fmt.Sprintf("%s v2 is published; %s updates, and the TA keeps its sealed state", demoTA, t.label))
	if _, err := s.publishTA(ctx, 2); err != nil {
		return err
	}
	s.tl.say("TAM", "%s v2 uploaded", demoTA)
	if err := d.Broker().Sync(ctx, t.Name); err != nil {
		return fmt.Errorf("%s: %w", t.label, err)
	}
	return s.invokeTA(ctx, "counter v2: 3")
}

// optional: a component installed only where an application asks.
func (s *demoScene) optional(ctx context.Context, _ suit.ComponentID) error {
	s.tl.step("An optional component: installed only where an application asks for it")
	extraEnv, err := fleet.Envelope(s.w.Signer, "extra-ta", 1, []byte("an optional helper"))
	if err != nil {
		return err
	}
	extra, err := s.w.TAM.Engine.AddComponent(ctx, extraEnv)
	if err != nil {
		return err
	}
	if _, err := s.w.TAM.Engine.SetPolicy(ctx, tam.Policy{Component: extra.ComponentID, Mode: tam.Optional, Scope: tam.ScopeAll}); err != nil {
		return err
	}
	s.tl.say("TAM", "extra-ta offered to devices that request it")
	d3 := s.w.Devices[2]
	s.tl.say(d3.Name+"/secure2", "an application calls RequestTA(extra-ta)")
	_, err = d3.Broker().RequestTA(ctx, "secure2", fleet.PayloadID("extra-ta"), "")
	return err
}

// withdraw: the first component's policy goes; every device removes it.
func (s *demoScene) withdraw(ctx context.Context, hello suit.ComponentID) error {
	s.tl.step("hello-ta is withdrawn; every device removes it")
	if _, err := s.w.TAM.Engine.RemovePolicies(ctx, tam.PolicyFilter{Component: hello}); err != nil {
		return err
	}
	s.tl.say("TAM", "hello-ta is no longer required")
	return demoSyncAll(ctx, s.w.Devices)
}

// endState shows what each TEE holds, and checks it is what the story
// says.
func (s *demoScene) endState() error {
	s.tl.step("What each TEE holds now")
	tw := tabwriter.NewWriter(s.tl.w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "   TEE\tCOMPONENT\tVERSION\tSIZE\tSHA-256")
	var problems []string
	_, home := s.demoTAHome()
	for _, d := range s.w.Devices {
		for _, dt := range d.TEEs() {
			t := s.tees[d.Name+"/"+dt.Name]
			inst, err := t.SUIT.Installed()
			if err != nil {
				return err
			}
			if len(inst) == 0 {
				fmt.Fprintf(tw, "   %s\t-\t\t\t\n", t.label)
			}
			for _, c := range inst {
				fmt.Fprintf(tw, "   %s\t%s\t%d\t%d\t%x…\n", t.label, demoName(c.ComponentID), c.Sequence, c.Size, c.SHA256[:8])
			}
			var want []string
			switch t.label {
			case "device-3/secure2":
				want = []string{"extra-ta v1"}
			case home.label:
				want = []string{demoTA + " v2"}
			}
			var got []string
			for _, c := range inst {
				got = append(got, fmt.Sprintf("%s v%d", demoName(c.ComponentID), c.Sequence))
			}
			if !slices.Equal(got, want) {
				problems = append(problems, fmt.Sprintf("%s holds %v, want %v", t.label, got, want))
			}
		}
	}
	tw.Flush()
	if len(problems) > 0 {
		return errors.New("demo: unexpected end state: " + strings.Join(problems, "; "))
	}
	return nil
}

// demoSyncAll runs a policy-check round on every TEE, in order (a real
// Broker syncs a device's TEEs in parallel), so the story reads the same
// every time.
func demoSyncAll(ctx context.Context, devices []*fleet.Device) error {
	for _, d := range devices {
		for _, t := range d.TEEs() {
			if err := d.Broker().Sync(ctx, t.Name); err != nil {
				return fmt.Errorf("%s/%s: %w", d.Name, t.Name, err)
			}
		}
	}
	return nil
}

func demoEvent(ctx context.Context, tl *demoTimeline, eng *tam.Engine, t *demoTEE, ev agent.Event) {
	if t == nil {
		return // not a TEE of the story
	}
	switch ev.Kind {
	case agent.EventAttestation:
		tl.say(t.label, "attestation: %s", ev.Detail)
	case agent.EventInstall:
		if !t.appraised {
			// The TAM appraised the Evidence before deciding on this
			// install: show its verdict first.
			t.appraised = true
			if info, err := eng.DeviceInfo(ctx, t.Agent.PublicKey().KID(), 0); err == nil {
				tl.say("TAM", "appraised %s: %s; registered its Agent key (kid %x…)", t.label, info.Attestation, info.KID[:6])
			}
		}
		if ev.Detail == "installed" {
			tl.say(t.label, "installed %s v%d", demoName(ev.Component), ev.Sequence)
		} else {
			tl.say(t.label, "updated %s to v%d (%s)", demoName(ev.Component), ev.Sequence, strings.TrimPrefix(ev.Detail, "updated "))
		}
	case agent.EventUninstall:
		tl.say(t.label, "removed %s", demoName(ev.Component))
	case agent.EventFailure, agent.EventTAMError:
		tl.say(t.label, "PROBLEM: %s", ev.Detail)
	}
}
