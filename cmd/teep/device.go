package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"regexp"
	"slices"
	"strings"
	"syscall"
	"text/tabwriter"
	"time"

	"github.com/teep-go/teep/cosekey"
	"github.com/teep-go/teep/internal/broker"
	"github.com/teep-go/teep/internal/device"
	"github.com/teep-go/teep/internal/keyfile"
	"github.com/teep-go/teep/suit"
)

func init() {
	register(&command{path: "device run", summary: "run a device: the TEEP Broker and one Agent per software TEE", run: deviceRun})
	register(&command{path: "device status", summary: "list each TEE's installed Trusted Components", run: deviceStatus})
	register(&command{path: "device request", summary: "ask for a Trusted Component (RequestTA)", run: deviceRequest})
	register(&command{path: "device release", summary: "say a Trusted Component is no longer needed (UnrequestTA)", run: deviceRelease})
	register(&command{path: "device sync", summary: "make the running daemon check with the TAM now", run: deviceSync})
	register(&command{path: "device key", summary: "print a TEE's public Agent or attestation key, to register it with a TAM", run: deviceKey})
	register(&command{path: "device agent", summary: "serve one TEE's Agent on a local socket for a Broker in another process", run: deviceAgent})
}

// deviceHooks, when set (tests), add the test hooks of device.Options to
// every device the commands open.
var deviceHooks func(*device.Options)

// deviceFlagOf names the flag behind each device.Options field, so that
// device.OptionErrors read as usage errors of the command.
var deviceFlagOf = map[string]string{
	"TAM": "--tam", "TEEs": "--tee", "Remote": "--remote-agent", "TAMKeys": "--tam-key", "SignerKeys": "--signer-key",
	"AgentKeys": "--agent-key", "Verifier": "--verifier", "TAMs": "--tam", "Interval": "--interval", "StateDir": "--state",
}

// deviceErr maps the device package's option errors to usage errors (exit
// status 2); the one place the CLI does so.
func deviceErr(err error) error {
	var oe *device.OptionError
	if !errors.As(err, &oe) {
		return err
	}
	if f, ok := deviceFlagOf[oe.Option]; ok {
		return usagef("%s: %s", f, oe.Msg)
	}
	return usageError{oe.Msg}
}

func deviceOptions(o device.Options) device.Options {
	if deviceHooks != nil {
		deviceHooks(&o)
	}
	return o
}

// deviceAgentKeys reads --agent-key FILE (the first TEE's) and NAME=FILE.
func deviceAgentKeys(specs []string) (map[string]*cosekey.Key, error) {
	out := map[string]*cosekey.Key{}
	for _, spec := range specs {
		name, file, ok := strings.Cut(spec, "=")
		if !ok {
			name, file = "", spec
		}
		if _, dup := out[name]; dup {
			return nil, usagef("--agent-key given twice for TEE %s", name)
		}
		k, err := deviceLoadAgentKey(file)
		if err != nil {
			return nil, err
		}
		out[name] = k
	}
	return out, nil
}

func deviceLoadAgentKey(file string) (*cosekey.Key, error) {
	k, err := keyfile.Load(file)
	if err != nil {
		return nil, err
	}
	if !k.IsPrivate() {
		return nil, fmt.Errorf("--agent-key %s: not a private key", file)
	}
	return k, nil
}

func deviceRemotes(specs []string) ([]device.RemoteAgent, error) {
	var out []device.RemoteAgent
	for _, spec := range specs {
		name, sock, ok := strings.Cut(spec, "=")
		if !ok || name == "" || sock == "" {
			return nil, usagef("--remote-agent: want NAME=SOCKET")
		}
		out = append(out, device.RemoteAgent{Name: name, Socket: sock})
	}
	return out, nil
}

func deviceUUIDFlag(name, v string) (*[16]byte, error) {
	if v == "" {
		return nil, nil
	}
	u, err := device.ParseUUID(v)
	if err != nil {
		return nil, usagef("--%s: %v", name, err)
	}
	return u, nil
}

// deviceRunFlags are the flags of `device run` not held in device.Options
// as they are.
type deviceRunFlags struct {
	tees, tamKeys, signerKeys, agentKeys, remotes listFlag
	tams, tamCAs, tamPSKs                         listFlag
	vendor, class, logLevel, logFormat            *string
	legacy                                        *bool
}

func deviceRun(e *env, args []string) error {
	fs := newFlags(e, "device run", "--tam [NAME=]URL... [--state DIR] [--tee NAME]... [--once] [--interval D] [--tam-key FILE]... [--signer-key FILE]... [--agent-key FILE] [--vendor-id UUID] [--class-id UUID] [--legacy-numbering]",
		"Runs a device: one software TEE with its TEEP Agent per --tee (default \"default\"), and the\n"+
			"TEEP Broker that connects them to the TAM over HTTP(S) (draft-ietf-teep-otrp-over-http-15).\n"+
			"With --once it runs sessions until the TAM has nothing more to do and exits (0 on success,\n"+
			"1 with the reason otherwise). Without it, it keeps checking every --interval and serves the\n"+
			"local API on DIR/broker.sock (teep device status/request/release use it) until SIGINT or\n"+
			"SIGTERM. Trust anchors, keys and identity persist (sealed) in the state directory; the\n"+
			"TAM URLs and TEE list in DIR/device.json.\n\n"+
			"Several TAMs: --tam NAME=URL (repeatable), and --tam-key, --signer-key, --tam-ca and --tam-psk\n"+
			"as NAME=FILE for that TAM. Each named TAM is trusted only with its own keys: it installs only\n"+
			"manifests of its signers and never updates or removes another TAM's components. A value\n"+
			"without NAME= is for the TAM named \"default\".")
	var o device.Options
	var f deviceRunFlags
	fs.Var(&f.tams, "tam", "TAM URL, or NAME=URL for one of several TAMs (repeatable; remembered in the state directory)")
	fs.StringVar(&o.StateDir, "state", device.DefaultStateDir(e.getenv), "device state directory")
	fs.Var(&f.tees, "tee", "software TEE to run (repeatable; default: those of the state directory, or \"default\")")
	fs.BoolVar(&o.Once, "once", false, "run until the TAM has nothing more to do, then exit")
	fs.DurationVar(&o.Interval, "interval", device.DefaultInterval, "time between policy checks of the daemon")
	fs.DurationVar(&o.SessionTimeout, "session-timeout", broker.DefaultSessionTimeout, "deadline of one TEEP session, every attempt and restart included")
	fs.Var(&f.tamKeys, "tam-key", "[NAME=]FILE: trust this TAM public key (COSE_Key, PEM or JWK; repeatable; persists)")
	fs.Var(&f.signerKeys, "signer-key", "[NAME=]FILE: trust this Trusted Component signer key for the TAM's SUIT manifests (repeatable; persists)")
	fs.Var(&f.agentKeys, "agent-key", "import the Agent key from FILE into the first TEE on its first run, or NAME=FILE for TEE NAME (repeatable)")
	f.vendor = fs.String("vendor-id", "", "the TEEs' SUIT vendor-id UUID (persists)")
	f.class = fs.String("class-id", "", "the TEEs' SUIT class-id UUID (persists)")
	f.legacy = fs.Bool("legacy-numbering", false, "speak the TEEP numbering of drafts -18 to -25 (persists)")
	fs.Var(&f.tamCAs, "tam-ca", "[NAME=]FILE: PEM CA certificates for the TAM's TLS or DTLS certificate (default: system roots; persists)")
	fs.Var(&f.tamPSKs, "tam-psk", "[NAME=]FILE with \"IDENTITY HEX-KEY\": DTLS pre-shared key for a coaps:// TAM (persists)")
	fs.StringVar(&o.Verifier, "verifier", "", "Verifier service URL (teep verifier serve) for the passport model: Evidence is exchanged for an Attestation Result when a TAM asks without a challenge (persists)")
	fs.Var(&f.remotes, "remote-agent", "NAME=SOCKET: route TEE NAME to an Agent process serving on SOCKET (teep device agent)")
	fs.BoolVar(&o.FetchHTTPUnsafe, "fetch-http-unsafe", false, "allow plain http:// payload URIs in SUIT manifests")
	fs.StringVar(&o.MetricsAddr, "metrics", "", "serve Prometheus metrics on this address (e.g. 127.0.0.1:9465)")
	f.logLevel = fs.String("log-level", "info", "debug, info, warn or error")
	f.logFormat = fs.String("log-format", "text", "text or json")
	pos, err := parse(fs, args)
	if err != nil {
		return err
	}
	if len(pos) != 0 {
		return usagef("no arguments expected")
	}
	if o.Interval < device.MinInterval {
		return usagef("--interval must be at least %v", device.MinInterval)
	}
	if err := f.apply(e, fs, &o); err != nil {
		return err
	}
	o.Progress = e.stderr // bars only when stderr is a terminal
	ctx, cancel := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer cancel()
	d, err := device.Open(ctx, deviceOptions(o))
	if err != nil {
		return deviceErr(err)
	}
	defer d.Close()
	err = d.Run(ctx)
	if o.Once {
		deviceWriteStatus(e.stdout, d.Status(context.Background()))
	}
	return deviceErr(err)
}

// apply puts the flags that need reading or parsing into o.
func (f *deviceRunFlags) apply(e *env, fs *flag.FlagSet, o *device.Options) error {
	var err error
	if o.Logger, err = newLogger(e, *f.logLevel, *f.logFormat); err != nil {
		return err
	}
	fs.Visit(func(fl *flag.Flag) {
		if fl.Name == "legacy-numbering" {
			o.LegacyNumbering = f.legacy
		}
	})
	o.TEEs = f.tees
	if o.VendorID, err = deviceUUIDFlag("vendor-id", *f.vendor); err != nil {
		return err
	}
	if o.ClassID, err = deviceUUIDFlag("class-id", *f.class); err != nil {
		return err
	}
	if err := f.applyTAMs(o); err != nil {
		return err
	}
	if o.AgentKeys, err = deviceAgentKeys(f.agentKeys); err != nil {
		return err
	}
	o.Remote, err = deviceRemotes(f.remotes)
	return err
}

// deviceTAMName is the NAME= prefix of a per-TAM flag value; a URL
// ("scheme:...") or a path with "/" or ":" before its "=" has none.
var deviceTAMName = regexp.MustCompile(`^([a-z0-9][a-z0-9._-]{0,62})=(.*)$`)

func deviceNamed(spec string) (name, value string) {
	if m := deviceTAMName.FindStringSubmatch(spec); m != nil {
		return m[1], m[2]
	}
	return device.DefaultTAM, spec
}

// applyTAMs sorts --tam, --tam-key, --signer-key, --tam-ca and --tam-psk
// by TAM: the default TAM's into o.TAM..., the named ones into o.TAMs.
func (f *deviceRunFlags) applyTAMs(o *device.Options) error {
	var named []*device.TAMOptions
	get := func(name string) *device.TAMOptions {
		for _, t := range named {
			if t.Name == name {
				return t
			}
		}
		t := &device.TAMOptions{Name: name}
		named = append(named, t)
		return t
	}
	set := func(flagName string, dst *string, v string) error {
		if *dst != "" {
			return usagef("--%s given twice for one TAM", flagName)
		}
		*dst = v
		return nil
	}
	for _, spec := range f.tams {
		name, url := deviceNamed(spec)
		if err := set("tam", &get(name).URL, url); err != nil {
			return err
		}
	}
	for _, spec := range f.tamCAs {
		name, file := deviceNamed(spec)
		if err := set("tam-ca", &get(name).CA, file); err != nil {
			return err
		}
	}
	for _, spec := range f.tamPSKs {
		name, file := deviceNamed(spec)
		if err := set("tam-psk", &get(name).PSK, file); err != nil {
			return err
		}
	}
	for _, l := range []struct {
		specs   []string
		signers bool
	}{{f.tamKeys, false}, {f.signerKeys, true}} {
		for _, spec := range l.specs {
			name, file := deviceNamed(spec)
			k, err := keyfile.Load(file)
			if err != nil {
				return err
			}
			t := get(name)
			if l.signers {
				t.SignerKeys = append(t.SignerKeys, k)
			} else {
				t.TAMKeys = append(t.TAMKeys, k)
			}
		}
	}
	for _, t := range named {
		if t.Name == device.DefaultTAM {
			o.TAM, o.TAMKeys, o.SignerKeys, o.TAMCA, o.TAMPSK = t.URL, t.TAMKeys, t.SignerKeys, t.CA, t.PSK
			continue
		}
		o.TAMs = append(o.TAMs, *t)
	}
	return nil
}

// deviceWriteStatus prints TEE statuses as a table per TEE.
func deviceWriteStatus(w io.Writer, sts []broker.TEEStatus) {
	for i, st := range sts {
		if i > 0 {
			fmt.Fprintln(w)
		}
		fmt.Fprintf(w, "TEE %s", st.Name)
		if len(st.AgentKID) > 0 {
			fmt.Fprintf(w, " (agent kid %x)", []byte(st.AgentKID))
		}
		fmt.Fprintln(w)
		if st.Error != "" {
			fmt.Fprintf(w, "  ERROR: %s\n", st.Error)
			continue
		}
		if len(st.Components) == 0 {
			fmt.Fprintln(w, "  no Trusted Components installed")
		} else {
			tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
			// The TAM column only on devices with named TAMs.
			tams := slices.ContainsFunc(st.Components, func(c broker.Component) bool { return c.TAM != "" })
			head := "  ID\tSEQUENCE\tSIZE\tSHA256\tNAME"
			if tams {
				head += "\tTAM"
			}
			fmt.Fprintln(tw, head)
			for _, c := range st.Components {
				line := fmt.Sprintf("  %s\t%d\t%d\t%x\t%s", c.ID, c.SequenceNumber, c.Size, []byte(c.SHA256), deviceReadable(c.ID))
				if tams {
					tam := c.TAM
					if tam == "" {
						tam = device.DefaultTAM
					}
					line += "\t" + tam
				}
				fmt.Fprintln(tw, line)
			}
			tw.Flush()
		}
		for _, id := range st.Requested {
			fmt.Fprintf(w, "  requested: %s\n", id)
		}
		for _, id := range st.Unneeded {
			fmt.Fprintf(w, "  released:  %s\n", id)
		}
	}
}

// deviceReadable shows a component id's segments as text when they all
// are printable ("TEEP-Device/SecureFS/app/ta"), else "-".
func deviceReadable(id suit.ComponentID) string {
	parts := make([]string, len(id))
	for i, p := range id {
		if len(p) == 0 || strings.IndexFunc(string(p), func(r rune) bool { return r < 0x21 || r > 0x7e || r == '/' }) >= 0 {
			return "-"
		}
		parts[i] = string(p)
	}
	return strings.Join(parts, "/")
}

func deviceStatus(e *env, args []string) error {
	fs := newFlags(e, "device status", "--state DIR [--json]",
		"Lists, per TEE, the installed Trusted Components: id (docs/suit.md text form), sequence number,\n"+
			"size and SHA-256, and pending requests and releases. It asks the running daemon, or reads\n"+
			"the sealed state directly when none runs; a TEE whose state was tampered with is reported\n"+
			"and the command fails.")
	state := fs.String("state", device.DefaultStateDir(e.getenv), "device state directory")
	asJSON := fs.Bool("json", false, "print JSON: {\"tees\": [...]}")
	pos, err := parse(fs, args)
	if err != nil {
		return err
	}
	if len(pos) != 0 {
		return usagef("no arguments expected")
	}
	sts, err := device.Status(context.Background(), *state)
	if err != nil {
		return err
	}
	if *asJSON {
		enc := json.NewEncoder(e.stdout)
		enc.SetIndent("", "  ")
		if err := enc.Encode(map[string]any{"tees": sts}); err != nil {
			return err
		}
	} else {
		deviceWriteStatus(e.stdout, sts)
	}
	var bad []string
	for _, st := range sts {
		if st.Error != "" {
			bad = append(bad, st.Name)
		}
	}
	if len(bad) > 0 {
		return fmt.Errorf("TEE %s: state unusable (see above)", strings.Join(bad, ", "))
	}
	return nil
}

func deviceRequest(e *env, args []string) error { return deviceRequestOrRelease(e, args, true) }
func deviceRelease(e *env, args []string) error { return deviceRequestOrRelease(e, args, false) }

func deviceRequestOrRelease(e *env, args []string, want bool) error {
	path, verb := "device request", "requested"
	about := "Asks for a Trusted Component (RFC 9397 RequestTA). With the daemon running, the session with\n" +
		"the TAM runs at once and the command reports its outcome; otherwise the request is recorded\n" +
		"in the TEE and sent at the next session."
	if !want {
		path, verb = "device release", "released"
		about = "Says a Trusted Component is no longer needed (RFC 9397 UnrequestTA): its manifest is listed\n" +
			"as unneeded to the TAM, at once when the daemon runs, else at the next session."
	}
	fs := newFlags(e, path, "--state DIR [--tee NAME] [--tam NAME|URL] ID",
		about+"\n\nID is a SUIT component id as `teep device status` prints it (TEEP-Device/SecureFS/app/ta:\nsegments joined by \"/\", each text or hex:HEX; docs/suit.md); [\"hex\",...] and hex parts\nseparated by commas are read too.")
	state := fs.String("state", device.DefaultStateDir(e.getenv), "device state directory")
	teeName := fs.String("tee", "", "the TEE (default: the device's first)")
	tam := fs.String("tam", "", "the TAM the request goes to: its name (teep device run --tam NAME=URL) or URL (default: the device's first TAM)")
	timeout := fs.Duration("timeout", 10*time.Minute, "how long to wait for the session")
	pos, err := parse(fs, args)
	if err != nil {
		return err
	}
	if len(pos) != 1 {
		return usagef("want exactly one component ID")
	}
	id, err := suit.ParseComponentID(pos[0])
	if err != nil {
		return usagef("component ID: %v", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), *timeout)
	defer cancel()
	r, err := device.Request(ctx, *state, *teeName, id, *tam, want)
	switch {
	case err != nil:
		return err
	case r.Daemon:
		fmt.Fprintf(e.stdout, "%s %s on TEE %s; the session completed with TAM %s\n", verb, id, r.TEE, r.TAM)
	case r.Nothing && want:
		fmt.Fprintf(e.stdout, "%s is already installed on TEE %s\n", id, r.TEE)
	case r.Nothing:
		fmt.Fprintf(e.stdout, "%s is not installed on TEE %s; nothing to release\n", id, r.TEE)
	default:
		fmt.Fprintf(e.stdout, "%s %s on TEE %s; recorded for the next session with TAM %s (no daemon is running)\n", verb, id, r.TEE, r.TAM)
	}
	return nil
}

func deviceSync(e *env, args []string) error {
	fs := newFlags(e, "device sync", "--state DIR [--tee NAME]",
		"Makes the running daemon run a policy check now (RequestPolicyCheck) and waits for it: the\n"+
			"sessions with the TAM run until it has nothing more to do. Without a daemon, use\n"+
			"`teep device run --once`.")
	state := fs.String("state", device.DefaultStateDir(e.getenv), "device state directory")
	teeName := fs.String("tee", "", "only this TEE (default: all)")
	timeout := fs.Duration("timeout", 10*time.Minute, "how long to wait")
	pos, err := parse(fs, args)
	if err != nil {
		return err
	}
	if len(pos) != 0 {
		return usagef("no arguments expected")
	}
	ctx, cancel := context.WithTimeout(context.Background(), *timeout)
	defer cancel()
	sts, err := device.Sync(ctx, *state, *teeName)
	if errors.Is(err, device.ErrNoDaemon) {
		return fmt.Errorf("no daemon runs on %s; use `teep device run --state %s --once`", *state, *state)
	}
	if err != nil {
		return err
	}
	deviceWriteStatus(e.stdout, sts)
	return nil
}

func deviceKey(e *env, args []string) error {
	fs := newFlags(e, "device key", "--state DIR [--tee NAME] [--attestation] [--format pem|cose|jwk]",
		"Prints a TEE's public Agent key (its kid names the device to a TAM; register it in advance\n"+
			"with the TAM to skip attestation), or with --attestation the key Evidence is signed with\n"+
			"(for a Verifier's endorsements).")
	state := fs.String("state", device.DefaultStateDir(e.getenv), "device state directory")
	teeName := fs.String("tee", "", "the TEE (default: the device's first)")
	attest := fs.Bool("attestation", false, "print the attestation key instead of the Agent key")
	format := fs.String("format", "pem", "pem, cose or jwk")
	pos, err := parse(fs, args)
	if err != nil {
		return err
	}
	if len(pos) != 0 {
		return usagef("no arguments expected")
	}
	k, err := device.PublicKey(*state, *teeName, *attest)
	if err != nil {
		return err
	}
	out, err := k.Marshal(cosekey.Format(*format), false)
	if err != nil {
		return usageError{err.Error()}
	}
	_, err = e.stdout.Write(out)
	return err
}

func deviceAgent(e *env, args []string) error {
	fs := newFlags(e, "device agent", "--state DIR --tee NAME --listen SOCKET [--tam [NAME=]URL]... [--tam-key [NAME=]FILE]... [--signer-key [NAME=]FILE]... [--agent-key FILE] [--legacy-numbering]",
		"Runs one TEE's TEEP Agent in this process and serves the Broker/Agent API (RFC 9397 §6.2.1)\n"+
			"on a Unix socket, for `teep device run --remote-agent NAME=SOCKET` in another process.\n"+
			"Several TAMs are given as in `teep device run`.")
	state := fs.String("state", device.DefaultStateDir(e.getenv), "device state directory")
	teeName := fs.String("tee", device.DefaultTEE, "the TEE")
	listen := fs.String("listen", "", "Unix socket to serve on (required)")
	var tf deviceRunFlags
	fs.Var(&tf.tams, "tam", "TAM URL, or NAME=URL (repeatable; default: the state directory's)")
	fs.Var(&tf.tamKeys, "tam-key", "[NAME=]FILE: trust this TAM public key (repeatable; persists)")
	fs.Var(&tf.signerKeys, "signer-key", "[NAME=]FILE: trust this Trusted Component signer key for the TAM (repeatable; persists)")
	agentKeyFile := fs.String("agent-key", "", "import the Agent key from FILE on the TEE's first run")
	legacy := fs.Bool("legacy-numbering", false, "speak the TEEP numbering of drafts -18 to -25")
	fetchHTTP := fs.Bool("fetch-http-unsafe", false, "allow plain http:// payload URIs in SUIT manifests")
	logLevel := fs.String("log-level", "info", "debug, info, warn or error")
	logFormat := fs.String("log-format", "text", "text or json")
	pos, err := parse(fs, args)
	if err != nil {
		return err
	}
	if len(pos) != 0 || *listen == "" {
		return usagef("want --listen SOCKET and no arguments")
	}
	o := device.Options{StateDir: *state, TEEs: []string{*teeName}, LegacyNumbering: legacy, FetchHTTPUnsafe: *fetchHTTP}
	if o.Logger, err = newLogger(e, *logLevel, *logFormat); err != nil {
		return err
	}
	if err := tf.applyTAMs(&o); err != nil {
		return err
	}
	if *agentKeyFile != "" {
		k, err := deviceLoadAgentKey(*agentKeyFile)
		if err != nil {
			return err
		}
		o.AgentKeys = map[string]*cosekey.Key{"": k}
	}
	ctx, cancel := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer cancel()
	return deviceErr(device.ServeAgent(ctx, deviceOptions(o), *listen))
}
