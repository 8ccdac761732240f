package tam

import (
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"regexp"
	"sort"
	"strings"

	"github.com/teep-go/teep/cosekey"
	"github.com/teep-go/teep/suit"
)

// Management operations: what the admin API exposes. Each is one store
// transaction; a failed one changes nothing.

// AddComponent registers a version of a Trusted Component from a signed SUIT
// envelope: it must verify against a trusted TC signer key, and its sequence
// number must exceed every stored version's. The component is identified by
// the manifest's suit-manifest-component-id (or, when absent, by its only
// component's id).
func (e *Engine) AddComponent(ctx context.Context, envelope []byte) (ComponentVersion, error) {
	var v ComponentVersion
	if len(envelope) > e.cfg.MaxEnvelopeSize {
		return v, invalidf("envelope of %d bytes exceeds the limit of %d", len(envelope), e.cfg.MaxEnvelopeSize)
	}
	env, err := suit.ParseEnvelope(envelope, suit.ParseOptions{Limits: e.cfg.SUITLimits})
	if err != nil {
		return v, invalidf("not a valid SUIT envelope: %v", err)
	}
	keys, err := e.TrustedPublicKeys(ctx, RoleTCSigner)
	if err != nil {
		return v, err
	}
	if len(keys) == 0 {
		return v, fmt.Errorf("%w: no TC signer key is trusted yet (add one first)", ErrUntrustedSigner)
	}
	ver, err := env.Verify(keys)
	if err != nil {
		return v, fmt.Errorf("%w: %v", ErrUntrustedSigner, err)
	}
	man := env.Manifest()
	idSegs := man.ComponentID
	if idSegs == nil {
		if len(man.Common.Components) != 1 {
			return v, invalidf("the manifest has no suit-manifest-component-id and %d components; TEEP needs one id to manage it", len(man.Common.Components))
		}
		idSegs = man.Common.Components[0]
	}
	if err := checkID(idSegs); err != nil {
		return v, invalidf("%v", err)
	}
	v.ComponentID = idSegs.Clone()
	for _, c := range man.Common.Components {
		if err := checkID(c); err != nil {
			return v, invalidf("component: %v", err)
		}
		v.PayloadIDs = append(v.PayloadIDs, c.Clone())
	}
	v.PayloadDigests = imageDigests(man)
	for _, d := range man.Common.Dependencies {
		segs := d.Prefix
		if segs == nil {
			segs, _ = man.SlotID(d.Index)
		}
		if segs == nil {
			continue
		}
		if err := checkID(segs); err != nil {
			return v, invalidf("dependency: %v", err)
		}
		v.Dependencies = append(v.Dependencies, segs.Clone())
	}
	normalized, err := env.Marshal(suit.MarshalOptions{Tag: suit.TagNever})
	if err != nil {
		return v, fmt.Errorf("re-encode envelope: %w", err)
	}
	v.Sequence = man.SequenceNumber
	v.Digest = env.Digest().Bytes
	v.SignerKID = ver.Key.KID()
	v.Size = int64(len(normalized))
	v.CreatedAt = e.now()
	err = e.store.Update(ctx, func(tx Tx) error {
		if err := claimComponent(ctx, tx, v); err != nil { // isolation.go
			return err
		}
		return tx.AddComponentVersion(ctx, v, normalized)
	})
	if err != nil {
		return v, err
	}
	e.log.InfoContext(ctx, "component registered", "id", IDHex(v.ComponentID), "name", IDName(v.ComponentID), "sequence", v.Sequence,
		"signer", hexOrNil(v.SignerKID), "size", v.Size)
	return v, nil
}

// imageDigests collects the image-digest parameters the manifest sets, so
// tc-list entries reporting them can be matched to this version.
func imageDigests(m *suit.Manifest) [][]byte {
	var out [][]byte
	seen := map[string]bool{}
	var walk func(s *suit.Sequence)
	walk = func(s *suit.Sequence) {
		if s == nil {
			return
		}
		for _, c := range s.Commands {
			for _, p := range c.Params {
				if d, ok := p.Value.(suit.Digest); ok && p.Key == suit.ParamImageDigest && !seen[string(d.Bytes)] {
					seen[string(d.Bytes)] = true
					out = append(out, d.Bytes)
				}
			}
			for _, alt := range c.Sequences {
				walk(alt)
			}
			walk(c.Sub)
		}
	}
	walk(m.Common.Shared)
	if m.Install != nil {
		walk(m.Install.Sequence)
	}
	return out
}

// TrustedPublicKeys returns the keys trusted for a role, parsed.
func (e *Engine) TrustedPublicKeys(ctx context.Context, role KeyRole) ([]*cosekey.Key, error) {
	var ks []TrustedKey
	if err := e.store.View(ctx, func(tx Tx) (err error) { ks, err = tx.TrustedKeys(ctx, role); return err }); err != nil {
		return nil, err
	}
	out := make([]*cosekey.Key, 0, len(ks))
	for _, k := range ks {
		key, err := cosekey.ParseCOSEKey(k.Key)
		if err != nil {
			return nil, fmt.Errorf("stored %s key %x: %w", k.Role, k.KID, err)
		}
		out = append(out, key)
	}
	return out, nil
}

// ResolveComponent reads a component id (the text form of package suit, or
// the hex of its CBOR encoding) and checks that it is registered.
func (e *Engine) ResolveComponent(ctx context.Context, ref string) (suit.ComponentID, error) {
	id, err := ParseComponentID(ref)
	if err != nil {
		return nil, invalidf("component %q: %v", ref, err)
	}
	err = e.store.View(ctx, func(tx Tx) error {
		if _, err := tx.Component(ctx, id); err != nil {
			return err
		}
		return ownComponent(ctx, tx, id) // another tenant's component looks absent
	})
	if err != nil {
		if errors.Is(err, ErrNotFound) {
			err = ErrNotFound // the store's message names the id again
		}
		return nil, fmt.Errorf("component %q: %w", ref, err)
	}
	return id, nil
}

// ComponentInfo is a component with its versions and the policies naming it.
type ComponentInfo struct {
	Component
	Versions []ComponentVersion
	Policies []Policy
}

// Components lists the registered components: the caller's tenant's, or
// every one for the provider.
func (e *Engine) Components(ctx context.Context) ([]Component, error) {
	var out []Component
	err := e.store.View(ctx, func(tx Tx) error {
		cs, err := tx.Components(ctx)
		if err != nil {
			return err
		}
		acting, confined := actingTenant(ctx)
		if !confined {
			out = cs
			return nil
		}
		o, err := loadOwners(ctx, tx)
		for _, c := range cs {
			if o.component(c.ID) == acting {
				out = append(out, c)
			}
		}
		return err
	})
	return out, err
}

// ComponentInfo returns one component with its versions and policies.
func (e *Engine) ComponentInfo(ctx context.Context, id suit.ComponentID) (ComponentInfo, error) {
	var ci ComponentInfo
	err := e.store.View(ctx, func(tx Tx) (err error) {
		if ci.Component, err = tx.Component(ctx, id); err != nil {
			return err
		}
		if err := ownComponent(ctx, tx, id); err != nil {
			return err
		}
		if ci.Versions, err = tx.ComponentVersions(ctx, id); err != nil {
			return err
		}
		ps, err := tx.Policies(ctx)
		for _, p := range ps {
			if p.Component.Equal(id) {
				ci.Policies = append(ci.Policies, p)
			}
		}
		return err
	})
	return ci, err
}

// Envelope returns a stored version's envelope (untagged, as sent).
func (e *Engine) Envelope(ctx context.Context, id suit.ComponentID, seq uint64) ([]byte, error) {
	var env []byte
	err := e.store.View(ctx, func(tx Tx) (err error) {
		if env, err = tx.Envelope(ctx, id, seq); err != nil {
			return err
		}
		return ownComponent(ctx, tx, id)
	})
	return env, err
}

// DeleteComponent forgets a component, its versions and its policies. Devices
// that got it from this TAM have it removed at their next session.
func (e *Engine) DeleteComponent(ctx context.Context, id suit.ComponentID) error {
	err := e.store.Update(ctx, func(tx Tx) error {
		if err := ownComponent(ctx, tx, id); err != nil {
			return err
		}
		return tx.DeleteComponent(ctx, id)
	})
	if err != nil {
		return err
	}
	e.log.InfoContext(ctx, "component deleted", "id", IDHex(id), "name", IDName(id))
	return nil
}

// SetPolicy adds a policy, or changes the mode of the one with the same
// component and scope.
func (e *Engine) SetPolicy(ctx context.Context, p Policy) (Policy, error) {
	switch p.Mode {
	case Required, Optional:
	default:
		return p, invalidf("mode %q: want required or optional", p.Mode)
	}
	if err := checkScope(&p.Scope, &p.Value); err != nil {
		return p, err
	}
	p.CreatedAt = e.now()
	var out Policy
	err := e.store.Update(ctx, func(tx Tx) (err error) {
		if err := ownComponent(ctx, tx, p.Component); err != nil {
			return err
		}
		out, err = tx.PutPolicy(ctx, p)
		return err
	})
	if err == nil {
		e.log.InfoContext(ctx, "policy set", "component", IDName(p.Component), "mode", p.Mode, "scope", p.Scope, "value", p.Value)
	}
	return out, err
}

func checkScope(kind *ScopeKind, value *string) error {
	switch *kind {
	case ScopeAll:
		if *value != "" {
			return invalidf("scope all takes no value")
		}
	case ScopeLabel:
		if err := checkLabel(*value); err != nil {
			return err
		}
	case ScopeHWModel:
		if *value == "" || len(*value) > 64 {
			return invalidf("hwmodel must be 1..64 characters")
		}
	case ScopeDevice:
		kid, err := hex.DecodeString(*value)
		if err != nil || len(kid) == 0 {
			return invalidf("device scope wants a kid in hex")
		}
		*value = hex.EncodeToString(kid)
	default:
		return invalidf("scope %q: want all, label, hwmodel or device", *kind)
	}
	return nil
}

// RemovePolicies deletes the policies matching f and returns how many went.
// Devices that got a component only because of them have it removed at
// their next session.
func (e *Engine) RemovePolicies(ctx context.Context, f PolicyFilter) (int, error) {
	if f.Scope != "" {
		if err := checkScope(&f.Scope, &f.Value); err != nil {
			return 0, err
		}
	}
	if _, confined := actingTenant(ctx); confined && f.Component == nil {
		return 0, invalidf("a tenant removes policies by component")
	}
	var n int
	err := e.store.Update(ctx, func(tx Tx) (err error) {
		if f.Component != nil {
			if err := ownComponent(ctx, tx, f.Component); err != nil {
				return err
			}
		}
		n, err = tx.DeletePolicies(ctx, f)
		return err
	})
	if err == nil {
		e.log.InfoContext(ctx, "policies removed", "count", n, "component", IDName(f.Component), "scope", f.Scope, "value", f.Value)
	}
	return n, err
}

// Policies lists the policies of the caller's tenant's components, or
// every policy for the provider.
func (e *Engine) Policies(ctx context.Context) ([]Policy, error) {
	var out []Policy
	err := e.store.View(ctx, func(tx Tx) error {
		ps, err := tx.Policies(ctx)
		if err != nil {
			return err
		}
		acting, confined := actingTenant(ctx)
		if !confined {
			out = ps
			return nil
		}
		o, err := loadOwners(ctx, tx)
		for _, p := range ps {
			if o.component(p.Component) == acting {
				out = append(out, p)
			}
		}
		return err
	})
	return out, err
}

// AddTrustedKey trusts a public key for a role.
func (e *Engine) AddTrustedKey(ctx context.Context, role KeyRole, key *cosekey.Key, comment string) (TrustedKey, error) {
	switch role {
	case RoleTCSigner, RoleVerifier:
	default:
		return TrustedKey{}, invalidf("role %q: want %s or %s", role, RoleTCSigner, RoleVerifier)
	}
	if len(comment) > 256 {
		return TrustedKey{}, invalidf("comment longer than 256 bytes")
	}
	raw, err := key.MarshalCOSEKey(false)
	if err != nil {
		return TrustedKey{}, invalidf("%v", err)
	}
	k := TrustedKey{Role: role, KID: key.KID(), Key: raw, Comment: comment, CreatedAt: e.now()}
	if role == RoleVerifier {
		if err := sharedChange(ctx, "trust a Verifier key"); err != nil {
			return k, err
		}
	}
	err = e.store.Update(ctx, func(tx Tx) error {
		if role == RoleTCSigner {
			if err := claimSigner(ctx, tx, k.KID); err != nil {
				return err
			}
		}
		return tx.PutTrustedKey(ctx, k)
	})
	if err != nil {
		return k, err
	}
	e.log.InfoContext(ctx, "trusted key added", "role", role, "kid", hexOrNil(k.KID))
	return k, nil
}

// RemoveTrustedKey stops trusting a key. Versions it verified stay registered.
func (e *Engine) RemoveTrustedKey(ctx context.Context, role KeyRole, kid []byte) error {
	if role == RoleVerifier {
		if err := sharedChange(ctx, "remove a Verifier key"); err != nil {
			return err
		}
	}
	err := e.store.Update(ctx, func(tx Tx) error {
		if role == RoleTCSigner {
			if err := ownSigner(ctx, tx, kid); err != nil {
				return err
			}
		}
		return tx.DeleteTrustedKey(ctx, role, kid)
	})
	if err == nil {
		e.log.InfoContext(ctx, "trusted key removed", "role", role, "kid", hexOrNil(kid))
	}
	return err
}

// TrustedKeys lists the keys trusted for a role. A tenant sees its own TC
// signers, and every Verifier key (they appraise every device).
func (e *Engine) TrustedKeys(ctx context.Context, role KeyRole) ([]TrustedKey, error) {
	var out []TrustedKey
	err := e.store.View(ctx, func(tx Tx) error {
		ks, err := tx.TrustedKeys(ctx, role)
		if err != nil {
			return err
		}
		acting, confined := actingTenant(ctx)
		if !confined || role != RoleTCSigner {
			out = ks
			return nil
		}
		o, err := loadOwners(ctx, tx)
		for _, k := range ks {
			if o.signer(k.KID) == acting {
				out = append(out, k)
			}
		}
		return err
	})
	return out, err
}

var labelRE = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._:/-]{0,62}$`)

func checkLabel(l string) error {
	if !labelRE.MatchString(l) {
		return invalidf("label %q: want 1..63 of letters, digits and . _ : / - (starting with a letter or digit)", l)
	}
	return nil
}

func normLabels(ls []string) ([]string, error) {
	seen := map[string]bool{}
	out := []string{}
	for _, l := range ls {
		if err := checkLabel(l); err != nil {
			return nil, err
		}
		if !seen[l] {
			seen[l] = true
			out = append(out, l)
		}
	}
	if len(out) > 64 {
		return nil, invalidf("more than 64 labels")
	}
	sort.Strings(out)
	return out, nil
}

// AddAgent pre-registers an Agent key: the device is trusted without
// attestation (for TEEs that cannot attest, or provisioning lines that
// record keys at manufacture). Adding a known key sets the caller's labels
// on it. Trusting a new key is a shared change (sharedChange): a tenant
// other than the default may only label a device the TAM knows.
func (e *Engine) AddAgent(ctx context.Context, key *cosekey.Key, labels []string) (Device, error) {
	labels, err := normLabels(labels)
	if err != nil {
		return Device{}, err
	}
	raw, err := key.MarshalCOSEKey(false)
	if err != nil {
		return Device{}, invalidf("%v", err)
	}
	acting, _ := actingTenant(ctx)
	shared := sharedChange(ctx, "register a new device or trust a device without attestation")
	var d Device
	err = e.store.Update(ctx, func(tx Tx) error {
		cur, err := tx.Device(ctx, key.KID())
		switch {
		case errors.Is(err, ErrNotFound):
			if shared != nil {
				return shared
			}
			d = Device{KID: key.KID(), Key: raw, Preregistered: true, Attestation: AttestationNone,
				Status: StatusRegistered, CreatedAt: e.now()}
		case err != nil:
			return err
		default:
			d = cur
			if shared == nil {
				d.Preregistered = true
			}
		}
		d.SetLabelsOf(acting, labels)
		return tx.PutDevice(ctx, d)
	})
	if err != nil {
		return d, err
	}
	e.log.InfoContext(ctx, "Agent key registered", "kid", hexOrNil(d.KID), "tenant", acting, "labels", labels)
	return e.confineDevice(ctx, d)
}

// confineDevice is what the caller may read of d (deviceView).
func (e *Engine) confineDevice(ctx context.Context, d Device) (Device, error) {
	if _, confined := actingTenant(ctx); !confined {
		return d, nil
	}
	var v *deviceView
	err := e.store.View(ctx, func(tx Tx) (err error) { v, err = newDeviceView(ctx, tx); return err })
	if err != nil {
		return d, err
	}
	return v.device(d), nil
}

// DeviceInfo is a device with everything the TAM keeps about it.
type DeviceInfo struct {
	Device
	Installed       []Installed
	Failures        []InstallFailure
	Personalization []Personalization
	Pending         []PendingUpdate
	Reports         []Report
}

// Devices lists every device with its inventory. Devices are shared: a
// tenant sees each, with only its own components and labels (deviceView).
func (e *Engine) Devices(ctx context.Context) ([]DeviceInfo, error) {
	var out []DeviceInfo
	err := e.store.View(ctx, func(tx Tx) error {
		v, err := newDeviceView(ctx, tx)
		if err != nil {
			return err
		}
		ds, err := tx.Devices(ctx)
		if err != nil {
			return err
		}
		for _, d := range ds {
			in, err := tx.Installed(ctx, d.KID)
			if err != nil {
				return err
			}
			if v != nil {
				pz, err := tx.Personalizations(ctx, d.KID)
				if err != nil {
					return err
				}
				d, in = v.device(d), v.installed(in, pz)
			}
			out = append(out, DeviceInfo{Device: d, Installed: in})
		}
		return nil
	})
	return out, err
}

// DeviceInfo returns one device with its inventory, failures,
// personalization data, outstanding Updates and up to reports recent reports
// (none when reports <= 0).
func (e *Engine) DeviceInfo(ctx context.Context, kid []byte, reports int) (DeviceInfo, error) {
	var di DeviceInfo
	err := e.store.View(ctx, func(tx Tx) (err error) {
		if di.Device, err = tx.Device(ctx, kid); err != nil {
			return err
		}
		if di.Installed, err = tx.Installed(ctx, kid); err != nil {
			return err
		}
		if di.Failures, err = tx.Failures(ctx, kid); err != nil {
			return err
		}
		if di.Personalization, err = tx.Personalizations(ctx, kid); err != nil {
			return err
		}
		if di.Pending, err = tx.PendingFor(ctx, kid); err != nil {
			return err
		}
		if reports > 0 {
			if di.Reports, err = tx.Reports(ctx, kid, reports); err != nil {
				return err
			}
		}
		v, err := newDeviceView(ctx, tx)
		if err != nil || v == nil {
			return err
		}
		v.confine(&di)
		return nil
	})
	return di, err
}

// ResolveDevice accepts a kid in hex or a unique hex prefix (at least 8
// digits) and returns the kid.
func (e *Engine) ResolveDevice(ctx context.Context, ref string) ([]byte, error) {
	ref = strings.ToLower(ref)
	if kid, err := hex.DecodeString(ref); err == nil && len(kid) == 32 {
		return kid, nil
	}
	if len(ref) < 8 {
		return nil, invalidf("device %q: give the kid in hex (or a prefix of at least 8 digits)", ref)
	}
	var ds []Device
	if err := e.store.View(ctx, func(tx Tx) (err error) { ds, err = tx.Devices(ctx); return err }); err != nil {
		return nil, err
	}
	var match [][]byte
	for _, d := range ds {
		if strings.HasPrefix(hex.EncodeToString(d.KID), ref) {
			match = append(match, d.KID)
		}
	}
	switch len(match) {
	case 0:
		return nil, fmt.Errorf("device %s: %w", ref, ErrNotFound)
	case 1:
		return match[0], nil
	}
	return nil, invalidf("device prefix %q is ambiguous", ref)
}

// updateDevice applies f to a stored device in one transaction.
func (e *Engine) updateDevice(ctx context.Context, kid []byte, f func(tx FailureTx, d *Device) error) (Device, error) {
	var d Device
	err := e.store.Update(ctx, func(tx Tx) (err error) {
		if d, err = tx.Device(ctx, kid); err != nil {
			return err
		}
		if err := f(tx, &d); err != nil {
			return err
		}
		return tx.PutDevice(ctx, d)
	})
	return d, err
}

// SetLabels replaces the labels the caller's tenant set on a device (the
// default tenant's for the provider); other tenants' labels stay.
func (e *Engine) SetLabels(ctx context.Context, kid []byte, labels []string) (Device, error) {
	labels, err := normLabels(labels)
	if err != nil {
		return Device{}, err
	}
	acting, _ := actingTenant(ctx)
	d, err := e.updateDevice(ctx, kid, func(_ FailureTx, d *Device) error { d.SetLabelsOf(acting, labels); return nil })
	if err != nil {
		return d, err
	}
	return e.confineDevice(ctx, d)
}

// Reattest makes the device attest again at its next session. Any tenant
// may ask: a fresh appraisal changes nothing another tenant relies on.
func (e *Engine) Reattest(ctx context.Context, kid []byte) (Device, error) {
	d, err := e.updateDevice(ctx, kid, func(_ FailureTx, d *Device) error { d.NeedsAttestation = true; return nil })
	if err != nil {
		return d, err
	}
	return e.confineDevice(ctx, d)
}

// ResetDevice clears the device's failure counts and flagged status, so
// versions that failed are offered again.
func (e *Engine) ResetDevice(ctx context.Context, kid []byte) (Device, error) {
	if err := sharedChange(ctx, "reset a device"); err != nil {
		return Device{}, err
	}
	return e.updateDevice(ctx, kid, func(tx FailureTx, d *Device) error {
		if d.LastSeen.IsZero() {
			d.Status = StatusRegistered
		} else {
			d.Status = StatusOK
		}
		d.LastError, d.LastErrorCode = "", 0
		return tx.ClearFailures(ctx, kid)
	})
}

// DeleteDevice forgets a device and everything about it. Its key is no
// longer trusted; if it connects again it has to attest like a new one.
func (e *Engine) DeleteDevice(ctx context.Context, kid []byte) error {
	if err := sharedChange(ctx, "delete a device"); err != nil {
		return err
	}
	err := e.store.Update(ctx, func(tx Tx) error { return tx.DeleteDevice(ctx, kid) })
	if err == nil {
		e.log.InfoContext(ctx, "device deleted", "kid", hexOrNil(kid))
	}
	return err
}
