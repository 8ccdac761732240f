package tam

import (
	"context"
	"errors"
	"fmt"
	"regexp"

	"github.com/teep-go/teep/cosekey"
	"github.com/teep-go/teep/suit"
)

var nameRE = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$`)

// PersonalizationOptions adjust SetPersonalization.
type PersonalizationOptions struct {
	// DependsOn names registered components the data depends on (e.g. the
	// TA that reads it); their latest envelopes are pinned by digest and
	// carried as integrated dependencies, as in draft-ietf-teep-protocol-26
	// Appendix E Example 3.
	DependsOn []suit.ComponentID
	// ComponentID is where the device stores the data; default
	// ["personalization", name]. The manifest's own id is this plus "suit".
	ComponentID suit.ComponentID
}

// PersonalizationComponent returns the default payload and manifest
// component ids of a personalization item of the default tenant.
func PersonalizationComponent(name string) (payload, manifest suit.ComponentID) {
	payload = suit.NewComponentID("personalization", name)
	return payload, append(payload.Clone(), []byte("suit"))
}

// TenantPersonalizationComponent is PersonalizationComponent for tenant's
// item: another tenant's ids carry its id, ["personalization", tenant,
// name], so two tenants' items of one name on a shared device are two
// components.
func TenantPersonalizationComponent(tenant, name string) (payload, manifest suit.ComponentID) {
	if tenant == DefaultTenant || tenant == "" {
		return PersonalizationComponent(name)
	}
	payload = suit.NewComponentID("personalization", tenant, name)
	return payload, append(payload.Clone(), []byte("suit"))
}

// SetPersonalization stores per-device data as a SUIT manifest that writes
// it, encrypted to the device's Agent key (ECDH-ES+A128KW; draft-ietf-suit-
// firmware-encryption) and signed by the TAM's keys. Only the encrypted
// envelope is kept. The device gets it at its next session; replacing the
// data raises the manifest's sequence number.
//
// This needs a P-256 Agent key: the SUIT COSE profiles of draft-26 wrap
// content keys with ECDH-ES on the Agent's key, which an Ed25519 (signing
// only) key cannot do. Such a device gets ErrUnsupportedKey. The device
// must also trust the TAM's key as a TC signer to install the manifest.
//
// The item is the caller's tenant's: names are per tenant, and DependsOn
// must name the tenant's own components.
func (e *Engine) SetPersonalization(ctx context.Context, kid []byte, name string, data []byte, o PersonalizationOptions) (Personalization, error) {
	var p Personalization
	if !nameRE.MatchString(name) {
		return p, invalidf("name %q: want 1..64 of letters, digits and . _ - (starting with a letter or digit)", name)
	}
	if name == "suit" {
		// A tenant's item "suit" would have the payload id
		// ["personalization", tenant, "suit"]: the manifest id of the default
		// tenant's item named after that tenant.
		return p, invalidf("name %q is reserved (manifest ids end with it)", name)
	}
	if len(data) == 0 || len(data) > e.cfg.MaxPersonalization {
		return p, invalidf("data of %d bytes: want 1..%d", len(data), e.cfg.MaxPersonalization)
	}
	acting, _ := actingTenant(ctx)
	payload, manifest := TenantPersonalizationComponent(acting, name)
	if o.ComponentID != nil {
		payload = o.ComponentID
		manifest = append(payload.Clone(), []byte("suit"))
	}
	if err := checkID(manifest); err != nil {
		return p, invalidf("%v", err)
	}
	pid, mid := payload.Clone(), manifest
	var dev Device
	var prev *Personalization
	var deps []suit.DependencySpec
	err := e.store.View(ctx, func(tx Tx) error {
		var err error
		if dev, err = tx.Device(ctx, kid); err != nil {
			return err
		}
		old, err := tx.Personalization(ctx, kid, acting, name)
		switch {
		case err == nil:
			prev = &old
		case !errors.Is(err, ErrNotFound):
			return err
		}
		for _, d := range o.DependsOn {
			c, err := tx.Component(ctx, d)
			if err == nil {
				err = ownComponent(ctx, tx, d)
			}
			if err != nil {
				return fmt.Errorf("dependency %s: %w", IDName(d), err)
			}
			env, err := tx.Envelope(ctx, d, c.Latest)
			if err != nil {
				return err
			}
			deps = append(deps, suit.DependencySpec{Envelope: env})
		}
		return nil
	})
	if err != nil {
		return p, err
	}
	key, err := cosekey.ParseCOSEKey(dev.Key)
	if err != nil {
		return p, fmt.Errorf("device %x: stored key: %w", kid, err)
	}
	if key.Type() != cosekey.KeyTypeP256 {
		return p, fmt.Errorf("%w: device %x has an %s Agent key; personalization data is encrypted with ECDH-ES+A128KW, which needs a P-256 Agent key",
			ErrUnsupportedKey, kid, key.Type())
	}
	pub, err := key.ECDHPublic()
	if err != nil {
		return p, fmt.Errorf("%w: %v", ErrUnsupportedKey, err)
	}
	seq := uint64(1)
	if prev != nil {
		seq = prev.Sequence + 1
	}
	env, err := suit.Build(suit.ManifestSpec{
		ManifestComponentID: manifest,
		SequenceNumber:      seq,
		Components: []suit.ComponentSpec{{
			ID:      payload,
			Payload: data,
			Inline:  true,
			Encrypt: &suit.EncryptOptions{ContentAlg: e.cfg.PersonalizationContentAlg, RecipientKey: pub, KID: kid, Rand: e.cfg.Rand},
		}},
		Dependencies: deps,
		Description:  "personalization data " + name,
		Limits:       e.cfg.SUITLimits,
	})
	if err != nil {
		return p, fmt.Errorf("build personalization manifest: %w", err)
	}
	if err := env.Sign(e.signers[cosekey.AlgESP256], e.signers[cosekey.AlgEd25519]); err != nil {
		return p, fmt.Errorf("sign personalization manifest: %w", err)
	}
	raw, err := env.Marshal(suit.MarshalOptions{Tag: suit.TagNever})
	if err != nil {
		return p, err
	}
	p = Personalization{DeviceKID: kid, Tenant: acting, Name: name, ComponentID: mid, PayloadID: pid, Sequence: seq, Envelope: raw,
		Digest: env.Digest().Bytes, DependsOn: o.DependsOn, Size: int64(len(data)), CreatedAt: e.now()}
	err = e.store.Update(ctx, func(tx Tx) error {
		cur, err := tx.Personalization(ctx, kid, acting, name)
		if err == nil && cur.Sequence >= seq {
			return fmt.Errorf("%w: personalization %q changed concurrently; retry", ErrExists, name)
		}
		if err != nil && !errors.Is(err, ErrNotFound) {
			return err
		}
		// One component id on a device is one component: refuse an id
		// another item (of any tenant) already writes.
		all, err := tx.Personalizations(ctx, kid)
		if err != nil {
			return err
		}
		for _, o := range all {
			if (tenantOr(o.Tenant) != acting || o.Name != name) && (o.ComponentID.Equal(mid) || o.PayloadID.Equal(pid)) {
				return fmt.Errorf("%w: component id %s is used by other personalization data on the device", ErrExists, IDName(mid))
			}
		}
		return tx.PutPersonalization(ctx, p)
	})
	if err != nil {
		return p, err
	}
	e.log.InfoContext(ctx, "personalization data stored", "kid", hexOrNil(kid), "name", name, "sequence", seq, "size", len(data))
	return p, nil
}

// DeletePersonalization drops a personalization item; a device that has it
// installed gets it removed at its next session.
func (e *Engine) DeletePersonalization(ctx context.Context, kid []byte, name string) error {
	acting, _ := actingTenant(ctx)
	return e.store.Update(ctx, func(tx Tx) error { return tx.DeletePersonalization(ctx, kid, acting, name) })
}
