package fleetsim

import (
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/teep-go/teep/cosekey"
	"github.com/teep-go/teep/internal/tam"
	"github.com/teep-go/teep/internal/tam/admin"
	"github.com/teep-go/teep/suit"
)

// target is the TAM a run drives: the in-process one (world) or a running
// `teep tam serve` reached through its admin API (external).
type target interface {
	tamKeys() []*cosekey.Key
	trustSigner(ctx context.Context, k *cosekey.Key) error
	// register pre-registers Agent keys with a label.
	register(ctx context.Context, keys []*cosekey.Key, label string) error
	// publish adds a signed envelope and requires it on the devices of
	// scope and value; it returns the component id.
	publish(ctx context.Context, env []byte, scope tam.ScopeKind, value string) (suit.ComponentID, error)
	// installed reports whether the device holds component at seq or later.
	installed(ctx context.Context, key *cosekey.Key, component suit.ComponentID, seq uint64) (bool, error)
}

// checkPolicy returns an error naming every device that does not have
// component at version seq or later.
func checkPolicy(ctx context.Context, t target, devices []*cosekey.Key, component suit.ComponentID, seq uint64) error {
	var out []string
	for _, k := range devices {
		ok, err := t.installed(ctx, k, component, seq)
		if err != nil {
			return fmt.Errorf("fleetsim: device %x: %w", k.KID(), err)
		}
		if !ok {
			out = append(out, hex.EncodeToString(k.KID()))
		}
	}
	if len(out) > 0 {
		total := len(out)
		if len(out) > maxNamed {
			out = append(out[:maxNamed], "...")
		}
		return fmt.Errorf("fleetsim: %d of %d devices out of policy (lack %s version %d): %s",
			total, len(devices), component, seq, strings.Join(out, ", "))
	}
	return nil
}

// engineTarget is the in-process TAM's engine.
type engineTarget struct{ e *tam.Engine }

func (t engineTarget) tamKeys() []*cosekey.Key { return t.e.PublicKeys() }

func (t engineTarget) trustSigner(ctx context.Context, k *cosekey.Key) error {
	_, err := t.e.AddTrustedKey(ctx, tam.RoleTCSigner, k, "fleetsim signer")
	return err
}

func (t engineTarget) register(ctx context.Context, keys []*cosekey.Key, label string) error {
	_, err := t.e.AddAgents(ctx, keys, []string{label})
	return err
}

func (t engineTarget) publish(ctx context.Context, env []byte, scope tam.ScopeKind, value string) (suit.ComponentID, error) {
	c, err := t.e.AddComponent(ctx, env)
	if err != nil {
		return nil, fmt.Errorf("fleetsim: component: %w", err)
	}
	if _, err := t.e.SetPolicy(ctx, tam.Policy{Component: c.ComponentID, Mode: tam.Required, Scope: scope, Value: value}); err != nil {
		return nil, fmt.Errorf("fleetsim: policy: %w", err)
	}
	return c.ComponentID, nil
}

func (t engineTarget) installed(ctx context.Context, k *cosekey.Key, component suit.ComponentID, seq uint64) (bool, error) {
	di, err := t.e.DeviceInfo(ctx, k.KID(), 0)
	if err != nil {
		return false, err
	}
	for _, in := range di.Installed {
		if in.ComponentID.String() == component.String() && in.Sequence >= seq {
			return true, nil
		}
	}
	return false, nil
}

// adminTarget is a running TAM's admin API (docs/openapi/admin-v1.yaml).
type adminTarget struct {
	c    *admin.Client
	keys []*cosekey.Key
	// workers bounds the admin calls in flight while registering.
	workers int
}

func newAdminTarget(ctx context.Context, c *admin.Client, workers int) (*adminTarget, error) {
	in, err := c.Info(ctx)
	if err != nil {
		return nil, fmt.Errorf("fleetsim: the TAM's admin API: %w", err)
	}
	t := &adminTarget{c: c, workers: workers}
	for _, k := range in.Keys {
		pk, err := cosekey.ParsePEM([]byte(k.PEM))
		if err != nil {
			return nil, fmt.Errorf("fleetsim: the TAM's key %s: %w", k.KID, err)
		}
		t.keys = append(t.keys, pk)
	}
	if len(t.keys) == 0 {
		return nil, errors.New("fleetsim: the TAM's admin API lists no TAM key")
	}
	return t, nil
}

func (t *adminTarget) tamKeys() []*cosekey.Key { return t.keys }

func (t *adminTarget) trustSigner(ctx context.Context, k *cosekey.Key) error {
	raw, err := k.PublicKey().MarshalPEM(false)
	if err == nil {
		_, err = t.c.AddTrustedKey(ctx, "tc-signers", raw, "fleetsim signer")
	}
	if err != nil {
		return fmt.Errorf("fleetsim: trust the signer: %w", err)
	}
	return nil
}

// register pre-registers the keys, t.workers calls at a time.
func (t *adminTarget) register(ctx context.Context, keys []*cosekey.Key, label string) error {
	var next atomic.Int64
	var mu sync.Mutex
	var first error
	var wg sync.WaitGroup
	for range max(1, min(t.workers, len(keys))) {
		wg.Go(func() {
			for {
				i := int(next.Add(1) - 1)
				if i >= len(keys) {
					return
				}
				raw, err := keys[i].PublicKey().MarshalPEM(false)
				if err == nil {
					_, err = t.c.AddAgent(ctx, raw, []string{label})
				}
				if err != nil {
					mu.Lock()
					if first == nil {
						first = fmt.Errorf("fleetsim: register device %d: %w", i, err)
					}
					mu.Unlock()
					next.Store(int64(len(keys))) // stop the others
					return
				}
			}
		})
	}
	wg.Wait()
	return first
}

func (t *adminTarget) publish(ctx context.Context, env []byte, scope tam.ScopeKind, value string) (suit.ComponentID, error) {
	v, err := t.c.AddComponent(ctx, env)
	if err != nil {
		return nil, fmt.Errorf("fleetsim: component: %w", err)
	}
	if _, err := t.c.SetPolicy(ctx, admin.Policy{Component: v.ComponentID, Mode: string(tam.Required), Scope: string(scope), Value: value}); err != nil {
		return nil, fmt.Errorf("fleetsim: policy: %w", err)
	}
	return tam.ParseComponentID(v.ComponentID)
}

func (t *adminTarget) installed(ctx context.Context, k *cosekey.Key, component suit.ComponentID, seq uint64) (bool, error) {
	d, err := t.c.Device(ctx, hex.EncodeToString(k.KID()), 0)
	if err != nil {
		return false, err
	}
	for _, in := range d.Components {
		id, err := tam.ParseComponentID(in.ID)
		if err == nil && id.String() == component.String() && in.Sequence >= seq {
			return true, nil
		}
	}
	return false, nil
}
