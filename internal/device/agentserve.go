package device

import (
	"context"
	"log/slog"
	"os"
	"time"

	"github.com/teep-go/teep/cosekey"
	"github.com/teep-go/teep/internal/broker"
)

// agentShutdown bounds the graceful shutdown of ServeAgent's socket.
const agentShutdown = 30 * time.Second

// ServeAgent runs one TEE's Agent (o.TEEs, exactly one) in this process and
// serves the Broker/Agent API (RFC 9397 §6.2.1) on the Unix socket listen
// until ctx ends, for a Broker in another process (Options.Remote). The
// TAM is o.TAM, else device.json's; device.json is not written. Of the
// options it uses StateDir, TAM, TEEs, TAMKeys, SignerKeys, AgentKeys,
// LegacyNumbering (true forces the legacy numbering), FetchHTTPUnsafe,
// Fetcher, Logger, Events, FaultHook and Ready.
func ServeAgent(ctx context.Context, o Options, listen string) error {
	d, err := newAgentDevice(o)
	if err != nil {
		return err
	}
	t, err := d.openAgentTEE()
	if err != nil {
		return err
	}
	defer t.TEE.Close()
	ln, err := broker.ListenUnix(listen)
	if err != nil {
		return err
	}
	defer os.Remove(listen)
	ctx, stop := context.WithCancel(ctx)
	defer stop()
	d.log.Info("agent serving", "tee", t.Name, "socket", listen)
	if o.Ready != nil {
		o.Ready(stop)
	}
	return broker.Serve(ctx, ln, broker.AgentHandler(broker.InProcess(t.Agent)), agentShutdown, d.log)
}

// newAgentDevice reads device.json for ServeAgent without changing it.
func newAgentDevice(o Options) (*Device, error) {
	if len(o.TEEs) != 1 || o.StateDir == "" {
		return nil, optionErrorf("TEEs", "an Agent serves one TEE of a state directory")
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if err := os.MkdirAll(o.StateDir, 0o700); err != nil {
		return nil, err
	}
	cfg, err := LoadConfig(o.StateDir)
	if err != nil {
		return nil, err
	}
	if err := mergeTAMs(cfg, o); err != nil {
		return nil, err
	}
	if o.LegacyNumbering != nil && *o.LegacyNumbering {
		cfg.LegacyNumbering = true
	}
	return &Device{opts: o, cfg: cfg, log: o.Logger}, nil
}

func (d *Device) openAgentTEE() (*TEE, error) {
	name := d.opts.TEEs[0]
	var ak *cosekey.Key
	for n, k := range d.opts.AgentKeys {
		if n != "" && n != name {
			return nil, optionErrorf("AgentKeys", "an Agent key for TEE %s, which is not served", n)
		}
		if !k.IsPrivate() {
			return nil, optionErrorf("AgentKeys", "the Agent key is not a private key")
		}
		ak = k
	}
	return openTEE(d.opts.StateDir, name, teeOptions{tams: d.tamURLs(), numbering: d.numbering(),
		tamKeys: publicKeys(d.opts.TAMKeys), signerKeys: publicKeys(d.opts.SignerKeys), scopes: d.scopes(), agentKey: ak,
		fetcher: d.fetcher(), log: d.log, events: d.event, faultHook: d.opts.FaultHook})
}
