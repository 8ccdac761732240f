package tam

import (
	"encoding/hex"
	"fmt"
	"sort"
	"strings"
)

// catalog is the registered components as the planner needs them.
type catalog struct {
	versions  map[cidKey][]ComponentVersion // ascending sequence
	byPayload map[cidKey]cidKey             // payload component id -> component
	byDigest  map[string]versionRef         // manifest or image digest (raw bytes) -> version
}

type versionRef struct {
	id  cidKey
	seq uint64
}

func newCatalog(all map[cidKey][]ComponentVersion) *catalog {
	c := &catalog{versions: all, byPayload: map[cidKey]cidKey{}, byDigest: map[string]versionRef{}}
	for id, vs := range all {
		for _, v := range vs {
			// An Agent reports either the manifest digest (what a SUIT
			// processor keeps per manifest) or a payload's image digest.
			c.byDigest[string(v.Digest)] = versionRef{id, v.Sequence}
			for _, p := range v.PayloadIDs {
				c.byPayload[keyOf(p)] = id
			}
			for _, d := range v.PayloadDigests {
				c.byDigest[string(d)] = versionRef{id, v.Sequence}
			}
		}
	}
	return c
}

func (c *catalog) latest(id cidKey) (ComponentVersion, bool) {
	vs := c.versions[id]
	if len(vs) == 0 {
		return ComponentVersion{}, false
	}
	return vs[len(vs)-1], true
}

// resolve maps a component id an Agent reported (a manifest component id or
// a payload component id) to the registered component, if any.
func (c *catalog) resolve(id cidKey) (cidKey, bool) {
	if _, ok := c.versions[id]; ok {
		return id, true
	}
	if m, ok := c.byPayload[id]; ok {
		return m, true
	}
	return "", false
}

// covers reports whether policy p, of a component owner owns, applies to
// device d. A label scope matches only the labels the owner set: labels are
// per tenant (Device.LabelsOf).
func covers(p Policy, owner string, d *Device) bool {
	switch p.Scope {
	case ScopeAll:
		return true
	case ScopeLabel:
		for _, l := range d.LabelsOf(owner) {
			if l == p.Value {
				return true
			}
		}
	case ScopeHWModel:
		return len(d.HWModel) > 0 && (string(d.HWModel) == p.Value || hex.EncodeToString(d.HWModel) == strings.ToLower(p.Value))
	case ScopeDevice:
		return strings.EqualFold(hex.EncodeToString(d.KID), p.Value)
	}
	return false
}

type requestedTC struct {
	id         cidKey
	min        uint64 // minimum sequence number; 0 = any
	haveBinary bool
}

type failKey struct {
	id  cidKey
	seq uint64
}

type planInput struct {
	dev         *Device
	installed   map[cidKey]Installed
	catalog     *catalog
	policies    []Policy
	owners      map[string]string // component IDHex -> owner; absent: DefaultTenant
	personal    []Personalization
	failures    map[failKey]int
	requested   []requestedTC
	unneeded    []cidKey // from the Agent's unneeded-manifest-list
	maxAttempts int
}

// planStep is one manifest to send.
type planStep struct {
	id         cidKey
	seq        uint64
	requested  bool
	haveBinary bool
	personal   *Personalization // nil for a registered component
}

type plan struct {
	install []planStep // dependencies before what needs them
	remove  []cidKey
	notes   []string // why something wanted is not sent
	// exhausted: a wanted version failed maxAttempts times on the device
	// and is no longer offered (the device is flagged failed).
	exhausted bool
}

func (p *plan) empty() bool { return len(p.install) == 0 && len(p.remove) == 0 }

// makePlan computes the difference between the device's desired state
// (policies, its requests, its personalization data) and what it has.
//
//   - wanted: components a required policy covering the device names; plus
//     components the Agent requests (requested-tc-list) or requested before,
//     if some policy (required or optional) covers the device for them;
//     minus what the Agent declared unneeded, unless required.
//   - each wanted component's latest version is sent unless the device has
//     it (or a later one), or it failed maxAttempts times on this device;
//     a requested minimum sequence number the latest cannot meet is noted.
//   - dependencies registered here are sent first when missing or outdated.
//   - removed: what this TAM installed and nothing wants any more, and what
//     the Agent declared unneeded and no policy requires.
func makePlan(in planInput) plan {
	var p plan
	required, available := map[cidKey]bool{}, map[cidKey]bool{}
	for _, pol := range in.policies {
		if covers(pol, ownerIn(in.owners, IDHex(pol.Component)), in.dev) {
			available[keyOf(pol.Component)] = true
			if pol.Mode == Required {
				required[keyOf(pol.Component)] = true
			}
		}
	}
	unneeded := map[cidKey]bool{}
	for _, u := range in.unneeded {
		if resolved, ok := in.catalog.resolve(u); ok {
			u = resolved
		}
		unneeded[u] = true
		if required[u] {
			p.notes = append(p.notes, fmt.Sprintf("Agent declared %s unneeded; kept: a policy requires it", u.Name()))
		}
	}
	type want struct {
		requested  bool
		min        uint64
		haveBinary bool
	}
	wanted := map[cidKey]*want{}
	for id := range required {
		wanted[id] = &want{}
	}
	for _, r := range in.requested {
		if !available[r.id] {
			p.notes = append(p.notes, fmt.Sprintf("Agent requested %s, which no policy offers to this device", r.id.Name()))
			continue
		}
		if unneeded[r.id] && !required[r.id] {
			continue
		}
		w := wanted[r.id]
		if w == nil {
			w = &want{requested: true}
			wanted[r.id] = w
		}
		if r.min > w.min {
			w.min = r.min
		}
		w.haveBinary = w.haveBinary || r.haveBinary
	}
	for id, inst := range in.installed {
		if inst.Managed && inst.Requested && available[id] && !unneeded[id] && wanted[id] == nil {
			wanted[id] = &want{requested: true}
		}
	}

	keep := map[cidKey]bool{}
	done := map[cidKey]bool{}
	var visit func(id cidKey, w want, depth int)
	// visitDep sends a dependency registered here (as requested by the Agent
	// if it also asked for it); unknown dependencies are the device's to
	// resolve, possibly from another TAM.
	visitDep := func(dep cidKey, depth int) {
		if _, known := in.catalog.latest(dep); !known {
			return
		}
		w := want{}
		if x := wanted[dep]; x != nil {
			w = *x
		}
		visit(dep, w, depth)
	}
	visit = func(id cidKey, w want, depth int) {
		keep[id] = true
		if done[id] {
			return
		}
		done[id] = true // also guards against dependency cycles
		target, ok := in.catalog.latest(id)
		if !ok {
			if depth == 0 {
				p.notes = append(p.notes, fmt.Sprintf("%s has no registered version", id.Name()))
			}
			return
		}
		if w.min > target.Sequence {
			p.notes = append(p.notes, fmt.Sprintf("Agent needs %s at sequence %d or later; the latest registered is %d", id.Name(), w.min, target.Sequence))
			return
		}
		for _, dep := range target.Dependencies {
			visitDep(keyOf(dep), depth+1)
		}
		if inst, ok := in.installed[id]; ok && inst.Sequence >= target.Sequence {
			return
		}
		if n := in.failures[failKey{id, target.Sequence}]; in.maxAttempts > 0 && n >= in.maxAttempts {
			p.notes = append(p.notes, fmt.Sprintf("%s sequence %d failed %d times on this device; not offered again until a newer version or a reset", id.Name(), target.Sequence, n))
			p.exhausted = true
			return
		}
		p.install = append(p.install, planStep{id: id, seq: target.Sequence, requested: w.requested && !required[id], haveBinary: w.haveBinary})
	}
	ids := make([]cidKey, 0, len(wanted))
	for id := range wanted {
		ids = append(ids, id)
	}
	sort.Slice(ids, func(i, j int) bool { return ids[i] < ids[j] })
	for _, id := range ids {
		visit(id, *wanted[id], 0)
	}
	for i := range in.personal {
		pz := &in.personal[i]
		pzID := keyOf(pz.ComponentID)
		keep[pzID] = true
		for _, dep := range pz.DependsOn {
			visitDep(keyOf(dep), 1)
		}
		if inst, ok := in.installed[pzID]; ok && inst.Sequence >= pz.Sequence {
			continue
		}
		if n := in.failures[failKey{pzID, pz.Sequence}]; in.maxAttempts > 0 && n >= in.maxAttempts {
			p.notes = append(p.notes, fmt.Sprintf("personalization %q sequence %d failed %d times; not offered again until replaced or a reset", pz.Name, pz.Sequence, n))
			p.exhausted = true
			continue
		}
		p.install = append(p.install, planStep{id: pzID, seq: pz.Sequence, personal: pz})
	}

	removing := map[cidKey]bool{}
	inst := make([]cidKey, 0, len(in.installed))
	for id := range in.installed {
		inst = append(inst, id)
	}
	sort.Slice(inst, func(i, j int) bool { return inst[i] < inst[j] })
	for _, id := range inst {
		if in.installed[id].Managed && !keep[id] {
			p.remove = append(p.remove, id)
			removing[id] = true
		}
	}
	for _, u := range in.unneeded {
		if resolved, ok := in.catalog.resolve(u); ok {
			u = resolved
		}
		if !keep[u] && !removing[u] {
			p.remove = append(p.remove, u)
			removing[u] = true
		}
	}
	return p
}
