package tam

import (
	"context"
	"fmt"
	"sync"

	"github.com/teep-go/teep/suit"
)

// DefaultEnvelopeCacheBytes bounds the envelopes an Engine keeps in memory
// between sessions (Config.EnvelopeCacheBytes).
const DefaultEnvelopeCacheBytes = 64 << 20

// catalogCache keeps, between sessions, what every session would otherwise
// read and rebuild from the store: the catalog (every component version)
// and the policies, and the envelopes Updates send, in the form they are
// sent (whole, or with integrated payloads dropped for an Agent that has
// the binary, parsed once). Everything in it belongs to one catalog
// generation (CatalogGenerationTx): a session reads the generation in the
// snapshot it plans from, and a different one (a change through this or
// any other replica) drops the cache and reloads. Cached values are
// shared by concurrent sessions and never modified.
type catalogCache struct {
	mu       sync.Mutex
	valid    bool
	gen      uint64
	catalog  *catalog
	policies []Policy
	owners   map[string]string // component IDHex -> owner tenant
	envs     map[envKey][]byte
	envBytes int
	maxBytes int // <= 0: envelopes are not kept
}

type envKey struct {
	id       cidKey
	seq      uint64
	detached bool // integrated payloads dropped
}

func (c *catalogCache) get(gen uint64) (*catalog, []Policy, map[string]string, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if !c.valid || c.gen != gen {
		return nil, nil, nil, false
	}
	return c.catalog, c.policies, c.owners, true
}

// put replaces the cache with the catalog of generation gen. It keeps the
// envelopes only when gen is the generation they were read under.
func (c *catalogCache) put(gen uint64, cat *catalog, ps []Policy, owners map[string]string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if !c.valid || c.gen != gen {
		c.envs, c.envBytes = nil, 0
	}
	c.valid, c.gen, c.catalog, c.policies, c.owners = true, gen, cat, ps, owners
}

func (c *catalogCache) envelope(gen uint64, k envKey) ([]byte, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if !c.valid || c.gen != gen {
		return nil, false
	}
	env, ok := c.envs[k]
	return env, ok
}

// putEnvelope keeps env, read under generation gen, while the cache holds
// that generation and has room.
func (c *catalogCache) putEnvelope(gen uint64, k envKey, env []byte) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if !c.valid || c.gen != gen || c.envBytes+len(env) > c.maxBytes {
		return
	}
	if _, dup := c.envs[k]; dup {
		return
	}
	if c.envs == nil {
		c.envs = map[envKey][]byte{}
	}
	c.envs[k] = env
	c.envBytes += len(env)
}

// loadCatalog sets st's catalog and policies, from the cache when it
// holds the generation of tx's snapshot, and notes that generation in st
// (cached stays false for a store without generations).
func (e *Engine) loadCatalog(ctx context.Context, tx stateTx, st *state) error {
	gtx, ok := tx.(CatalogGenerationTx)
	if ok {
		gen, err := gtx.CatalogGeneration(ctx)
		if err != nil {
			return err
		}
		st.gen, st.cached = gen, true
		if cat, ps, owners, hit := e.cache.get(gen); hit {
			e.met.catalogHits.Inc()
			st.catalog, st.policies, st.owners = cat, ps, owners
			return nil
		}
		e.met.catalogMisses.Inc()
	}
	vs, err := tx.AllVersions(ctx)
	if err != nil {
		return err
	}
	all := map[cidKey][]ComponentVersion{}
	for _, v := range vs {
		k := keyOf(v.ComponentID)
		all[k] = append(all[k], v)
	}
	st.catalog = newCatalog(all)
	if st.policies, err = tx.Policies(ctx); err != nil {
		return err
	}
	// Owners change the generation too (a trigger on owners), so they are
	// cached with the catalog they belong to.
	if st.owners, err = tx.Owners(ctx, OwnedComponent); err != nil {
		return err
	}
	if ok {
		e.cache.put(st.gen, st.catalog, st.policies, st.owners)
	}
	return nil
}

// envelopes returns the manifests of the plan as sent, in order, up to
// Config.MaxUpdateBytes (at least one; what does not fit waits for the
// next session). A registered component's envelope comes from the cache
// when it holds st's generation, else from one snapshot, and is kept when
// that snapshot is of the same generation.
func (e *Engine) envelopes(ctx context.Context, st *state, steps []planStep) ([][]byte, error) {
	missing := false
	for _, step := range steps {
		if step.personal == nil {
			if _, ok := e.cache.envelope(st.gen, envKey{step.id, step.seq, step.haveBinary}); !ok || !st.cached {
				missing = true
				break
			}
		}
	}
	var out [][]byte
	take := func(tx Tx) error {
		out = make([][]byte, 0, len(steps))
		keep := false
		if gtx, ok := tx.(CatalogGenerationTx); ok && st.cached {
			gen, err := gtx.CatalogGeneration(ctx)
			if err != nil {
				return err
			}
			keep = gen == st.gen
		}
		size := 0
		for _, step := range steps {
			env, err := e.envelope(ctx, tx, st, step, keep)
			if err != nil {
				return err
			}
			if size > 0 && size+len(env) > e.cfg.MaxUpdateBytes {
				break
			}
			size += len(env)
			out = append(out, env)
		}
		return nil
	}
	if !missing {
		return out, take(nil)
	}
	err := e.store.View(ctx, take)
	return out, err
}

// envelope is one step's manifest as sent; tx may be nil when every
// registered component's is cached.
func (e *Engine) envelope(ctx context.Context, tx Tx, st *state, step planStep, keep bool) ([]byte, error) {
	if step.personal != nil {
		return step.personal.Envelope, nil
	}
	k := envKey{step.id, step.seq, step.haveBinary}
	if st.cached {
		if env, ok := e.cache.envelope(st.gen, k); ok {
			return env, nil
		}
	}
	if tx == nil {
		return nil, fmt.Errorf("envelope %s/%d: %w", step.id.Name(), step.seq, ErrNotFound)
	}
	env, err := tx.Envelope(ctx, step.id.id(), step.seq)
	if err != nil {
		return nil, err
	}
	if step.haveBinary {
		parsed, err := suit.ParseEnvelope(env, suit.ParseOptions{Limits: e.cfg.SUITLimits})
		if err != nil {
			return nil, fmt.Errorf("stored envelope %s/%d: %w", step.id.Name(), step.seq, err)
		}
		if env, err = parsed.Marshal(suit.MarshalOptions{Tag: suit.TagNever, DropIntegrated: true}); err != nil {
			return nil, err
		}
	}
	if keep {
		e.cache.putEnvelope(st.gen, k, env)
	}
	return env, nil
}
