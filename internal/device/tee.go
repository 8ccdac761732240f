package device

import (
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"

	"github.com/teep-go/teep/cosekey"
	"github.com/teep-go/teep/internal/agent"
	"github.com/teep-go/teep/internal/keyfile"
	"github.com/teep-go/teep/internal/tee"
	"github.com/teep-go/teep/internal/tee/softtee"
	"github.com/teep-go/teep/suit/processor"
	"github.com/teep-go/teep/teep"
)

// TEE is one opened software TEE with its Agent and SUIT installer.
type TEE struct {
	Name  string
	TEE   *softtee.TEE
	Agent *agent.Agent
	SUIT  *agent.SUIT
}

// teeOptions are what opening one TEE needs.
type teeOptions struct {
	tams       []string
	numbering  teep.Numbering
	agentKey   *cosekey.Key
	vendor     *[16]byte
	class      *[16]byte
	tamKeys    []*cosekey.Key
	signerKeys []*cosekey.Key
	scopes     []scopeKeys
	fetcher    processor.Fetcher
	log        *slog.Logger
	events     func(agent.Event)
	metrics    processor.Observer
	passport   agent.Verifier
	faultHook  func(point string, staged []string) error
}

// scopeKeys are the trust anchors of one named TAM.
type scopeKeys struct {
	name                string
	tamKeys, signerKeys []*cosekey.Key
}

// openTEE opens (creating on first use) the software TEE name under state,
// adds trust anchors and builds its Agent.
func openTEE(state, name string, o teeOptions) (*TEE, error) {
	t, err := openSoftTEE(state, name, o)
	if err != nil {
		return nil, err
	}
	d, err := buildAgent(t, o)
	if err != nil {
		t.Close()
		return nil, err
	}
	return d, nil
}

func openSoftTEE(state, name string, o teeOptions) (*softtee.TEE, error) {
	if !softtee.ValidName.MatchString(name) {
		return nil, optionErrorf("TEEs", "TEE name %q: want lower-case letters, digits, '.', '_' or '-' (up to 63)", name)
	}
	dir := filepath.Join(state, DirTEE, name)
	t, err := softtee.Open(dir, softtee.Options{Name: name, AgentKey: o.agentKey, VendorID: o.vendor, ClassID: o.class,
		FaultHook: o.faultHook})
	if errors.Is(err, tee.ErrBusy) {
		return nil, fmt.Errorf("%w (is `teep device run` already running on %s?)", err, state)
	}
	if err != nil {
		return nil, err
	}
	if err := trust(t, o); err != nil {
		t.Close()
		return nil, err
	}
	return t, nil
}

// trust adds the trust anchors, and writes the public keys in the clear
// next to the sealed state so that they can be read while a daemon holds
// the TEE.
func trust(t *softtee.TEE, o teeOptions) error {
	for _, k := range o.tamKeys {
		if err := agent.AddTrustAnchor(t.Storage(), agent.RoleTAM, k); err != nil {
			return fmt.Errorf("TEE %s: trust TAM key: %w", t.Name(), err)
		}
	}
	for _, k := range o.signerKeys {
		if err := agent.AddTrustAnchor(t.Storage(), agent.RoleSigner, k); err != nil {
			return fmt.Errorf("TEE %s: trust signer key: %w", t.Name(), err)
		}
	}
	for _, sc := range o.scopes {
		for _, k := range sc.tamKeys {
			if err := agent.AddScopedTrustAnchor(t.Storage(), sc.name, agent.RoleTAM, k); err != nil {
				return fmt.Errorf("TEE %s: trust a key of TAM %s: %w", t.Name(), sc.name, err)
			}
		}
		for _, k := range sc.signerKeys {
			if err := agent.AddScopedTrustAnchor(t.Storage(), sc.name, agent.RoleSigner, k); err != nil {
				return fmt.Errorf("TEE %s: trust a signer key for TAM %s: %w", t.Name(), sc.name, err)
			}
		}
	}
	for file, k := range map[string]*cosekey.Key{FileAgentKeyPEM: t.AgentPublicKey(), FileAttestationKeyPEM: t.AttestationPublicKey()} {
		if err := keyfile.Save(filepath.Join(t.Dir(), file), k, cosekey.FormatPEM, false); err != nil {
			return err
		}
	}
	return nil
}

func buildAgent(t *softtee.TEE, o teeOptions) (*TEE, error) {
	log := o.log
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	s, err := agent.NewSUIT(agent.SUITConfig{TEE: t, Fetcher: o.fetcher, Logger: log, Observer: o.metrics})
	if err != nil {
		return nil, err
	}
	a, err := agent.New(agent.Config{TEE: t, Installer: s, TAMs: o.tams, Numbering: o.numbering, Logger: log, Events: o.events,
		Passport: o.passport})
	if err != nil {
		return nil, err
	}
	return &TEE{Name: t.Name(), TEE: t, Agent: a, SUIT: s}, nil
}

// Provision creates (on first use) the named TEEs of a state directory
// and returns their attestation public keys in order, for a Verifier's
// endorsements: what a device maker does before the device meets a TAM.
func Provision(state string, names ...string) ([]*cosekey.Key, error) {
	var out []*cosekey.Key
	for _, n := range names {
		t, err := openSoftTEE(state, n, teeOptions{})
		if err != nil {
			return nil, err
		}
		out = append(out, t.AttestationPublicKey())
		if err := t.Close(); err != nil {
			return nil, err
		}
	}
	return out, nil
}

// PublicKey reads a TEE's public Agent key (or its attestation key) from
// the copy next to its sealed state, which works while a daemon holds the
// TEE. An empty name is the state directory's first TEE.
func PublicKey(state, name string, attestation bool) (*cosekey.Key, error) {
	name, err := FirstTEE(state, name)
	if err != nil {
		return nil, err
	}
	file := FileAgentKeyPEM
	if attestation {
		file = FileAttestationKeyPEM
	}
	k, err := keyfile.Load(filepath.Join(state, DirTEE, name, file))
	if errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("no TEE %q in %s", name, state)
	}
	return k, err
}

// logEvent logs an Agent event: failures as warnings, the rest as info.
func logEvent(log *slog.Logger, ev agent.Event) {
	attrs := []any{"tee", ev.TEE, "event", string(ev.Kind)}
	if ev.Component != nil {
		attrs = append(attrs, "component", ev.Component.String())
	}
	if ev.Sequence != 0 {
		attrs = append(attrs, "sequence", ev.Sequence)
	}
	if ev.Kind == agent.EventFailure || ev.Kind == agent.EventTAMError {
		log.Warn(ev.Detail, attrs...)
		return
	}
	log.Info(ev.Detail, attrs...)
}
