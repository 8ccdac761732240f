package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"text/tabwriter"
	"time"

	"github.com/teep-go/teep/cosekey"
	"github.com/teep-go/teep/internal/agent"
	"github.com/teep-go/teep/internal/broker"
	"github.com/teep-go/teep/internal/tam"
	"github.com/teep-go/teep/internal/tam/appraiser"
	"github.com/teep-go/teep/internal/tam/tamserver"
	"github.com/teep-go/teep/internal/tee/softtee"
	"github.com/teep-go/teep/internal/verifier"
	"github.com/teep-go/teep/suit"
)

func init() {
	register(&command{path: "demo", summary: "a TAM and three devices in one process: attestation, install, update, request, removal", run: demoRun})
}

// The demo's fleet: three devices, the third with two TEEs.
var demoFleet = demoFleetSpec{
	{"device-1", []string{"tee"}},
	{"device-2", []string{"tee"}},
	{"device-3", []string{"main", "secure2"}},
}

// demoTEE is one simulated TEE with its Agent.
type demoTEE struct {
	label     string // device/tee
	appraised bool   // the TAM's appraisal was shown
	tee       *softtee.TEE
	agent     *agent.Agent
	suit      *agent.SUIT
}

type demoDevice struct {
	name string
	tees []*demoTEE
	b    *broker.Broker
}

// demoTimeline prints the story: steps and what each party did.
type demoTimeline struct {
	w     io.Writer
	start time.Time
}

func (tl *demoTimeline) step(n int, title string) {
	fmt.Fprintf(tl.w, "\n%d. %s\n", n, title)
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
		"Runs, in this process, a TAM (SQLite in a temporary directory, TEEP over HTTP on 127.0.0.1)\n"+
			"and three simulated devices with software TEEs (the third has two), and prints the story:\n"+
			"attestation at first contact, install of a freshly built and signed Trusted Component, an\n"+
			"update to a new version, an optional component an application requests, and a removal.\n"+
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

// demoFleetSpec names devices and their TEEs.
type demoFleetSpec []struct {
	device string
	tees   []string
}

// demoWorld is a running TAM and a fleet of simulated devices whose TEEs
// trust it and one Trusted Component signer. The demo tells a story with
// it; `teep bench` measures it.
type demoWorld struct {
	srv     *tamserver.TAM
	url     string
	sk      *cosekey.Key
	signer  *cosekey.Signer
	devices []*demoDevice
	stop    func() error
}

// Close stops the TAM and closes every TEE.
func (w *demoWorld) Close() error {
	err := w.stop()
	for _, d := range w.devices {
		for _, t := range d.tees {
			t.tee.Close()
		}
	}
	return err
}

// demoStart opens the TEEs under dir/devices, starts a TAM on 127.0.0.1
// (SQLite in dir/tam) whose Verifier endorses every TEE's attestation key,
// and wires each device's Broker and Agents. events, when set, receives
// every Agent event.
func demoStart(ctx context.Context, dir string, fleet demoFleetSpec, log *slog.Logger, events func(*demoTEE, agent.Event)) (w *demoWorld, err error) {
	w = &demoWorld{stop: func() error { return nil }}
	defer func() {
		if err != nil {
			w.Close()
		}
	}()
	// The devices' TEEs exist first: the TAM's Verifier must know their
	// attestation keys (a device maker's endorsements).
	var endorse []verifier.Endorsement
	for _, f := range fleet {
		d := &demoDevice{name: f.device}
		w.devices = append(w.devices, d)
		for _, n := range f.tees {
			t, err := softtee.Open(filepath.Join(dir, "devices", f.device, deviceTEEDir, n), softtee.Options{Name: n})
			if err != nil {
				return w, err
			}
			d.tees = append(d.tees, &demoTEE{label: f.device + "/" + n, tee: t})
			endorse = append(endorse, verifier.Endorsement{Name: "softtee " + f.device + "/" + n, Key: t.AttestationPublicKey()})
		}
	}
	v, err := verifier.New(verifier.Config{Policy: &verifier.Policy{ID: "demo", Endorsements: endorse}})
	if err != nil {
		return w, err
	}

	// The TAM.
	srv, err := tamserver.Open(ctx, tamserver.Options{DataDir: filepath.Join(dir, "tam"), Logger: log, Version: "demo",
		Appraiser: &appraiser.Verifier{Local: v}})
	if err != nil {
		return w, err
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		srv.Close()
		return w, err
	}
	sctx, cancel := context.WithCancel(ctx)
	served := make(chan error, 1)
	go func() { served <- srv.Serve(sctx, ln, nil) }()
	w.srv, w.url = srv, "http://"+ln.Addr().String()+"/tam"
	w.stop = func() error {
		cancel()
		err := <-served
		if cerr := srv.Close(); err == nil {
			err = cerr
		}
		return err
	}

	// A Trusted Component signer, and the TAM trusting it.
	if w.sk, err = cosekey.Generate(cosekey.AlgESP256); err != nil {
		return w, err
	}
	if w.signer, err = cosekey.NewSigner(w.sk, 0); err != nil {
		return w, err
	}
	if _, err := srv.Engine.AddTrustedKey(ctx, tam.RoleTCSigner, w.sk.PublicKey(), "demo signer"); err != nil {
		return w, err
	}

	// The devices: every TEE trusts the TAM's keys and the signer.
	for _, d := range w.devices {
		d.b = broker.New(broker.Options{Client: broker.NewClient(broker.ClientOptions{UserAgent: "teep-demo"}), Logger: log})
		for _, t := range d.tees {
			for _, k := range srv.Engine.PublicKeys() {
				if err := agent.AddTrustAnchor(t.tee.Storage(), agent.RoleTAM, k); err != nil {
					return w, err
				}
			}
			if err := agent.AddTrustAnchor(t.tee.Storage(), agent.RoleSigner, w.sk.PublicKey()); err != nil {
				return w, err
			}
			if t.suit, err = agent.NewSUIT(agent.SUITConfig{TEE: t.tee, Logger: log}); err != nil {
				return w, err
			}
			cfg := agent.Config{TEE: t.tee, Installer: t.suit, TAMs: []string{w.url}, Logger: log}
			if events != nil {
				t := t
				cfg.Events = func(ev agent.Event) { events(t, ev) }
			}
			if t.agent, err = agent.New(cfg); err != nil {
				return w, err
			}
			if err := d.b.AddAgent(t.tee.Name(), broker.InProcess(t.agent)); err != nil {
				return w, err
			}
		}
	}
	return w, nil
}

func demoStory(ctx context.Context, tl *demoTimeline, dir string, log *slog.Logger) (err error) {
	fmt.Fprintln(tl.w, "teep demo: a TAM and three devices (four TEEs) in one process, over real HTTP on 127.0.0.1")
	var srv *tamserver.TAM
	w, err := demoStart(ctx, dir, demoFleet, log, func(t *demoTEE, ev agent.Event) { demoEvent(ctx, tl, srv.Engine, t, ev) })
	if err != nil {
		return err
	}
	defer func() {
		if cerr := w.Close(); err == nil {
			err = cerr
		}
	}()
	srv, devices, signer := w.srv, w.devices, w.signer
	tl.say("TAM", "serving %s (SQLite database in %s)", w.url, filepath.Join(dir, "tam"))
	tl.say("devices", "%d devices, %d software TEEs, each with its own Agent key, attestation key and sealed storage",
		len(devices), demoCount(devices))

	// 1. A Trusted Component, built and signed now, required everywhere.
	tl.step(1, "A Trusted Component is published; every device attests and installs it")
	hello1, err := demoEnvelope(signer, "hello-ta", 1, []byte("hello, TEE! (version 1)"))
	if err != nil {
		return err
	}
	hello, err := srv.Engine.AddComponent(ctx, hello1)
	if err != nil {
		return err
	}
	tl.say("signer", "built and signed SUIT manifest hello-ta v1 (%d bytes, payload integrated)", len(hello1))
	if _, err := srv.Engine.SetPolicy(ctx, tam.Policy{Component: hello.ComponentID, Mode: tam.Required, Scope: tam.ScopeAll}); err != nil {
		return err
	}
	tl.say("TAM", "hello-ta is required on every device")
	if err := demoSyncAll(ctx, devices); err != nil {
		return err
	}

	// 2. An update.
	tl.step(2, "Version 2 is published; every device updates")
	hello2, err := demoEnvelope(signer, "hello-ta", 2, []byte("hello, TEE! (version 2, with fixes)"))
	if err != nil {
		return err
	}
	if _, err := srv.Engine.AddComponent(ctx, hello2); err != nil {
		return err
	}
	tl.say("TAM", "hello-ta v2 uploaded")
	if err := demoSyncAll(ctx, devices); err != nil {
		return err
	}

	// 3. An optional component, installed only where an application asks.
	tl.step(3, "An optional component: installed only where an application asks for it")
	extraEnv, err := demoEnvelope(signer, "extra-ta", 1, []byte("an optional helper"))
	if err != nil {
		return err
	}
	extra, err := srv.Engine.AddComponent(ctx, extraEnv)
	if err != nil {
		return err
	}
	if _, err := srv.Engine.SetPolicy(ctx, tam.Policy{Component: extra.ComponentID, Mode: tam.Optional, Scope: tam.ScopeAll}); err != nil {
		return err
	}
	tl.say("TAM", "extra-ta offered to devices that request it")
	d3 := devices[2]
	extraID := demoPayloadID("extra-ta")
	tl.say(d3.name+"/secure2", "an application calls RequestTA(extra-ta)")
	if _, err := d3.b.RequestTA(ctx, "secure2", extraID, ""); err != nil {
		return err
	}

	// 4. A removal.
	tl.step(4, "hello-ta is withdrawn; every device removes it")
	if _, err := srv.Engine.RemovePolicies(ctx, tam.PolicyFilter{Component: hello.ComponentID}); err != nil {
		return err
	}
	tl.say("TAM", "hello-ta is no longer required")
	if err := demoSyncAll(ctx, devices); err != nil {
		return err
	}

	// The end state, and a check that it is what the story says.
	tl.step(5, "What each TEE holds now")
	tw := tabwriter.NewWriter(tl.w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "   TEE\tCOMPONENT\tVERSION\tSIZE\tSHA-256")
	var problems []string
	for _, d := range devices {
		for _, t := range d.tees {
			inst, err := t.suit.Installed()
			if err != nil {
				return err
			}
			if len(inst) == 0 {
				fmt.Fprintf(tw, "   %s\t-\t\t\t\n", t.label)
			}
			for _, c := range inst {
				fmt.Fprintf(tw, "   %s\t%s\t%d\t%d\t%x…\n", t.label, demoName(c.ComponentID), c.Sequence, c.Size, c.SHA256[:8])
			}
			want := 0
			if t.label == "device-3/secure2" {
				want = 1
			}
			if len(inst) != want || (want == 1 && demoName(inst[0].ComponentID) != "extra-ta") {
				problems = append(problems, fmt.Sprintf("%s holds %d components, want %d", t.label, len(inst), want))
			}
		}
	}
	tw.Flush()
	if len(problems) > 0 {
		return errors.New("demo: unexpected end state: " + strings.Join(problems, "; "))
	}
	return nil
}

func demoCount(ds []*demoDevice) int {
	n := 0
	for _, d := range ds {
		n += len(d.tees)
	}
	return n
}

// demoSyncAll runs a policy-check round on every TEE, in order (a real
// Broker syncs a device's TEEs in parallel), so the story reads the same
// every time.
func demoSyncAll(ctx context.Context, devices []*demoDevice) error {
	for _, d := range devices {
		for _, t := range d.tees {
			if err := d.b.Sync(ctx, t.tee.Name()); err != nil {
				return fmt.Errorf("%s: %w", t.label, err)
			}
		}
	}
	return nil
}

func demoEvent(ctx context.Context, tl *demoTimeline, eng *tam.Engine, t *demoTEE, ev agent.Event) {
	switch ev.Kind {
	case agent.EventAttestation:
		tl.say(t.label, "attestation: %s", ev.Detail)
	case agent.EventInstall:
		if !t.appraised {
			// The TAM appraised the Evidence before deciding on this
			// install: show its verdict first.
			t.appraised = true
			if info, err := eng.DeviceInfo(ctx, t.agent.PublicKey().KID(), 0); err == nil {
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

func demoPayloadID(name string) suit.ComponentID {
	return suit.NewComponentID("TEEP-Device", "SecureFS", name, "ta")
}

// demoEnvelope builds and signs a Trusted Component: a SUIT manifest
// (draft-ietf-teep-protocol-26 Appendix E layout) with the payload
// integrated, the software TEE's vendor and class ids as conditions.
func demoEnvelope(signer *cosekey.Signer, name string, seq uint64, payload []byte) ([]byte, error) {
	env, err := suit.Build(suit.ManifestSpec{
		ManifestComponentID: suit.NewComponentID("TEEP-Device", "SecureFS", name, "suit"),
		SequenceNumber:      seq,
		VendorID:            softtee.DefaultVendorID[:],
		ClassID:             softtee.DefaultClassID[:],
		Components:          []suit.ComponentSpec{{ID: demoPayloadID(name), Payload: payload, Integrated: true}},
	})
	if err != nil {
		return nil, err
	}
	if err := env.Sign(signer); err != nil {
		return nil, err
	}
	return env.Marshal(suit.MarshalOptions{})
}
