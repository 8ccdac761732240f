package storetest

import (
	"testing"
	"time"

	"github.com/teep-go/teep/internal/tam"
)

func testTenants(t *testing.T, s tam.Store) {
	acme := tam.Tenant{ID: "acme", Name: "Acme TC vendor", CreatedAt: base}
	update(t, s, func(tx tam.Tx) error { return tx.AddTenant(ctx, acme) })
	err := s.Update(ctx, func(tx tam.Tx) error { return tx.AddTenant(ctx, tam.Tenant{ID: "acme", Name: "again"}) })
	wantErr(t, err, tam.ErrExists, "adding a tenant twice")
	view(t, s, func(tx tam.Tx) error {
		ts, err := tx.Tenants(ctx)
		// The implicit tenant exists in every fresh store.
		equal(t, "tenants", ts, []tam.Tenant{acme, {ID: tam.DefaultTenant, Name: tam.DefaultTenant}})
		if err != nil {
			return err
		}
		got, err := tx.Tenant(ctx, "acme")
		equal(t, "tenant", got, acme)
		if err != nil {
			return err
		}
		_, err = tx.Tenant(ctx, "nobody")
		wantErr(t, err, tam.ErrNotFound, "unknown tenant")
		return nil
	})
}

func testAPITokens(t *testing.T, s tam.Store) {
	update(t, s, func(tx tam.Tx) error { return tx.AddTenant(ctx, tam.Tenant{ID: "acme", Name: "Acme", CreatedAt: base}) })
	prov := tam.APIToken{ID: "t1", Name: "ops", Role: tam.RoleProvider, Hash: tam.HashAPISecret("s1"), CreatedAt: base}
	ro := tam.APIToken{ID: "t2", Name: "ci", Tenant: "acme", Role: tam.RoleReadOnly, Hash: tam.HashAPISecret("s2"),
		CreatedAt: base, ExpiresAt: base.Add(time.Hour)}
	def := tam.APIToken{ID: "t3", Name: "dev", Tenant: tam.DefaultTenant, Role: tam.RoleAdmin, Hash: tam.HashAPISecret("s3"), CreatedAt: base}
	update(t, s, func(tx tam.Tx) error {
		for _, k := range []tam.APIToken{ro, prov, def} {
			if err := tx.AddAPIToken(ctx, k); err != nil {
				return err
			}
		}
		return nil
	})
	err := s.Update(ctx, func(tx tam.Tx) error {
		return tx.AddAPIToken(ctx, tam.APIToken{ID: "t1", Role: tam.RoleAdmin, Hash: tam.HashAPISecret("other"), CreatedAt: base})
	})
	wantErr(t, err, tam.ErrExists, "token id taken")
	err = s.Update(ctx, func(tx tam.Tx) error {
		return tx.AddAPIToken(ctx, tam.APIToken{ID: "t9", Role: tam.RoleAdmin, Hash: tam.HashAPISecret("s2"), CreatedAt: base})
	})
	wantErr(t, err, tam.ErrExists, "token hash taken")
	err = s.Update(ctx, func(tx tam.Tx) error {
		return tx.AddAPIToken(ctx, tam.APIToken{ID: "t9", Tenant: "nobody", Role: tam.RoleAdmin, Hash: tam.HashAPISecret("s9"), CreatedAt: base})
	})
	wantErr(t, err, tam.ErrNotFound, "token of an unknown tenant")
	view(t, s, func(tx tam.Tx) error {
		all, err := tx.APITokens(ctx, "")
		equal(t, "all tokens", all, []tam.APIToken{prov, ro, def})
		if err != nil {
			return err
		}
		acme, err := tx.APITokens(ctx, "acme")
		equal(t, "acme tokens", acme, []tam.APIToken{ro})
		if err != nil {
			return err
		}
		got, err := tx.APITokenByHash(ctx, tam.HashAPISecret("s2"))
		equal(t, "by hash", got, ro)
		if err != nil {
			return err
		}
		_, err = tx.APITokenByHash(ctx, tam.HashAPISecret("wrong"))
		wantErr(t, err, tam.ErrNotFound, "unknown hash")
		_, err = tx.APIToken(ctx, "t9")
		wantErr(t, err, tam.ErrNotFound, "unknown id")
		return nil
	})
	at := base.Add(time.Minute)
	update(t, s, func(tx tam.Tx) error { return tx.RevokeAPIToken(ctx, "t2", at) })
	err = s.Update(ctx, func(tx tam.Tx) error { return tx.RevokeAPIToken(ctx, "t2", at.Add(time.Minute)) })
	wantErr(t, err, tam.ErrNotFound, "revoking twice")
	ro.RevokedAt = at
	view(t, s, func(tx tam.Tx) error {
		got, err := tx.APIToken(ctx, "t2")
		equal(t, "revoked token", got, ro)
		if got.Usable(at) {
			t.Error("a revoked token is usable")
		}
		return err
	})
}

func testAudit(t *testing.T, s tam.Store) {
	entries := []tam.AuditEntry{
		{Time: base, TokenID: "admin", TokenName: "admin", Action: "POST /admin/v1/tenants", Object: "/admin/v1/tenants", Remote: "127.0.0.1:1", Outcome: "ok"},
		{Time: base.Add(time.Second), TokenID: "t2", TokenName: "ci", Tenant: "acme", Action: "POST /admin/v1/policies", Object: "/admin/v1/policies", Remote: "127.0.0.1:2", Outcome: "ok"},
		{Time: base.Add(2 * time.Second), TokenID: "t2", TokenName: "ci", Tenant: "acme", Action: "DELETE /admin/v1/policies", Object: "/admin/v1/policies", Remote: "127.0.0.1:2", Outcome: "403 forbidden"},
		{Time: base.Add(3 * time.Second), TokenID: "t3", TokenName: "dev", Tenant: tam.DefaultTenant, Action: "POST /admin/v1/policies", Object: "/admin/v1/policies", Remote: "[::1]:3", Outcome: "ok"},
	}
	update(t, s, func(tx tam.Tx) error {
		var last int64
		for i := range entries {
			id, err := tx.AddAudit(ctx, entries[i])
			if err != nil {
				return err
			}
			if id <= last {
				t.Errorf("audit ids do not increase: %d after %d", id, last)
			}
			entries[i].ID, last = id, id
		}
		return nil
	})
	e := entries
	cases := []struct {
		name string
		f    tam.AuditFilter
		want []tam.AuditEntry
	}{
		{"all", tam.AuditFilter{}, []tam.AuditEntry{e[3], e[2], e[1], e[0]}},
		{"tenant", tam.AuditFilter{Tenant: "acme"}, []tam.AuditEntry{e[2], e[1]}},
		{"token", tam.AuditFilter{TokenID: "t3"}, []tam.AuditEntry{e[3]}},
		{"action", tam.AuditFilter{Action: "POST /admin/v1/policies"}, []tam.AuditEntry{e[3], e[1]}},
		{"since until", tam.AuditFilter{Since: base.Add(time.Second), Until: base.Add(3 * time.Second)}, []tam.AuditEntry{e[2], e[1]}},
		{"first page", tam.AuditFilter{Limit: 2}, []tam.AuditEntry{e[3], e[2]}},
		{"next page", tam.AuditFilter{Limit: 2, Before: e[2].ID}, []tam.AuditEntry{e[1], e[0]}},
		{"none", tam.AuditFilter{Tenant: "nobody"}, nil},
	}
	view(t, s, func(tx tam.Tx) error {
		for _, c := range cases {
			got, err := tx.Audit(ctx, c.f)
			if err != nil {
				return err
			}
			if len(got) == 0 && len(c.want) == 0 {
				continue
			}
			equal(t, "audit "+c.name, got, c.want)
		}
		_, err := tx.AddAudit(ctx, e[0])
		wantErr(t, err, tam.ErrStoreReadOnly, "audit write in a view")
		return nil
	})
}

func testOwners(t *testing.T, s tam.Store) {
	update(t, s, func(tx tam.Tx) error { return tx.AddTenant(ctx, tam.Tenant{ID: "acme", Name: "Acme", CreatedAt: base}) })
	update(t, s, func(tx tam.Tx) error { return tx.SetOwner(ctx, tam.OwnedSigner, "0102", "acme") })
	err := s.Update(ctx, func(tx tam.Tx) error { return tx.SetOwner(ctx, tam.OwnedSigner, "0303", "nobody") })
	wantErr(t, err, tam.ErrNotFound, "owner of an unknown tenant")
	view(t, s, func(tx tam.Tx) error {
		for _, c := range []struct {
			kind      tam.OwnedKind
			key, want string
		}{
			{tam.OwnedSigner, "0102", "acme"},
			{tam.OwnedComponent, "0102", tam.DefaultTenant}, // kinds are separate
			{tam.OwnedSigner, "0303", tam.DefaultTenant},    // no row: the default tenant
		} {
			got, err := tx.Owner(ctx, c.kind, c.key)
			if err != nil {
				return err
			}
			equal(t, "owner of "+string(c.kind)+" "+c.key, got, c.want)
		}
		return nil
	})
	update(t, s, func(tx tam.Tx) error { return tx.SetOwner(ctx, tam.OwnedComponent, "a1", "acme") })
	view(t, s, func(tx tam.Tx) error {
		got, err := tx.Owners(ctx, tam.OwnedSigner)
		if err != nil {
			return err
		}
		equal(t, "signer owners", got, map[string]string{"0102": "acme"})
		got, err = tx.Owners(ctx, tam.OwnedComponent)
		equal(t, "component owners", got, map[string]string{"a1": "acme"})
		return err
	})
	update(t, s, func(tx tam.Tx) error { return tx.SetOwner(ctx, tam.OwnedSigner, "0102", tam.DefaultTenant) })
	view(t, s, func(tx tam.Tx) error {
		got, err := tx.Owner(ctx, tam.OwnedSigner, "0102")
		equal(t, "replaced owner", got, tam.DefaultTenant)
		return err
	})
}
