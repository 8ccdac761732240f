package main

import (
	"flag"
	"fmt"
	"text/tabwriter"
	"time"

	"github.com/teep-go/teep/internal/tam/admin"
)

// Tenants, scoped API tokens and the audit log (docs/tam.md "Tenants,
// tokens and audit"). `tam token` alone still prints the start-up token.

func init() {
	for _, c := range []*command{
		{path: "tam token create", summary: "create a scoped API token (its secret is printed once)", run: tamTokenCreate},
		{path: "tam token list", summary: "list API tokens (never their secrets)", run: tamTokenList},
		{path: "tam token revoke", summary: "revoke an API token", run: tamTokenRevoke},
		{path: "tam whoami", summary: "show the tenant and role of the token in use", run: tamWhoami},
		{path: "tam tenant add", summary: "create a tenant (provider token)", run: tamTenantAdd},
		{path: "tam tenant list", summary: "list tenants (provider token)", run: tamTenantList},
		{path: "tam audit", summary: "show the audit log of admin changes", run: tamAudit},
	} {
		register(c)
	}
}

func tamTokenCreate(e *env, args []string) error {
	var role, tenant *string
	var expires *time.Duration
	var asJSON *bool
	c, pos, err := tamSimple(e, "tam token create", "NAME --role ROLE [--tenant ID] [--expires DURATION] [--json] [--server URL] [--data DIR]",
		"Creates an API token and prints its secret, which is not stored and is shown only this once.\nROLE is read-only, operator, admin or provider; --tenant defaults to the caller's.", 1, args,
		func(fs *flag.FlagSet) {
			role = fs.String("role", "", "read-only, operator, admin or provider")
			tenant = fs.String("tenant", "", "tenant the token acts for")
			expires = fs.Duration("expires", 0, "lifetime, e.g. 720h (0: never expires)")
			asJSON = fs.Bool("json", false, "print JSON")
		},
		func() error {
			if *role == "" {
				return usagef("--role is required")
			}
			if *expires < 0 {
				return usagef("--expires must not be negative")
			}
			return nil
		})
	if err != nil {
		return err
	}
	req := admin.NewAPIToken{Name: pos[0], Tenant: *tenant, Role: *role}
	if *expires > 0 {
		req.ExpiresAt = time.Now().Add(*expires).UTC()
	}
	ctx, cancel := tamCtx()
	defer cancel()
	tok, err := c.CreateToken(ctx, req)
	if err != nil {
		return err
	}
	if *asJSON {
		return tamJSON(e, tok)
	}
	fmt.Fprintf(e.stderr, "token %s (tenant %s, role %s): keep the secret below, it is not shown again\n", tok.ID, orDash(tok.Tenant), tok.Role)
	fmt.Fprintln(e.stdout, tok.Secret)
	return nil
}

func tamWhen(t time.Time) string {
	if t.IsZero() {
		return "-"
	}
	return t.Format(time.RFC3339)
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

func tamTokenList(e *env, args []string) error {
	var tenant *string
	var asJSON *bool
	c, _, err := tamSimple(e, "tam token list", "[--tenant ID] [--json] [--server URL] [--data DIR]", "Lists API tokens: id, name, tenant, role, expiry, revocation.", 0, args,
		func(fs *flag.FlagSet) {
			tenant = fs.String("tenant", "", "only this tenant's tokens")
			asJSON = fs.Bool("json", false, "print JSON")
		})
	if err != nil {
		return err
	}
	ctx, cancel := tamCtx()
	defer cancel()
	ts, err := c.Tokens(ctx, *tenant)
	if err != nil {
		return err
	}
	if *asJSON {
		return tamJSON(e, ts)
	}
	tw := tabwriter.NewWriter(e.stdout, 2, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "ID\tNAME\tTENANT\tROLE\tEXPIRES\tREVOKED")
	for _, t := range ts {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", t.ID, t.Name, orDash(t.Tenant), t.Role, tamWhen(t.ExpiresAt), tamWhen(t.RevokedAt))
	}
	return tw.Flush()
}

func tamTokenRevoke(e *env, args []string) error {
	c, pos, err := tamSimple(e, "tam token revoke", "ID [--server URL] [--data DIR]", "Revokes an API token; it stops working at once.", 1, args, nil)
	if err != nil {
		return err
	}
	ctx, cancel := tamCtx()
	defer cancel()
	return c.RevokeToken(ctx, pos[0])
}

func tamWhoami(e *env, args []string) error {
	var asJSON *bool
	c, _, err := tamSimple(e, "tam whoami", "[--json] [--server URL] [--data DIR]", "Shows the token in use: id, name, tenant and role.", 0, args,
		func(fs *flag.FlagSet) { asJSON = fs.Bool("json", false, "print JSON") })
	if err != nil {
		return err
	}
	ctx, cancel := tamCtx()
	defer cancel()
	w, err := c.Whoami(ctx)
	if err != nil {
		return err
	}
	if *asJSON {
		return tamJSON(e, w)
	}
	fmt.Fprintf(e.stdout, "token: %s (%s)\ntenant: %s\nrole: %s\n", w.TokenID, w.Name, orDash(w.Tenant), w.Role)
	return nil
}

func tamTenantAdd(e *env, args []string) error {
	var name *string
	c, pos, err := tamSimple(e, "tam tenant add", "ID [--name NAME] [--server URL] [--data DIR]",
		"Creates a tenant. ID is 1-63 of a-z, 0-9 and '-'.", 1, args,
		func(fs *flag.FlagSet) { name = fs.String("name", "", "display name (default: the id)") })
	if err != nil {
		return err
	}
	ctx, cancel := tamCtx()
	defer cancel()
	t, err := c.AddTenant(ctx, pos[0], *name)
	if err != nil {
		return err
	}
	fmt.Fprintln(e.stdout, t.ID)
	return nil
}

func tamTenantList(e *env, args []string) error {
	var asJSON *bool
	c, _, err := tamSimple(e, "tam tenant list", "[--json] [--server URL] [--data DIR]", "Lists tenants.", 0, args,
		func(fs *flag.FlagSet) { asJSON = fs.Bool("json", false, "print JSON") })
	if err != nil {
		return err
	}
	ctx, cancel := tamCtx()
	defer cancel()
	ts, err := c.Tenants(ctx)
	if err != nil {
		return err
	}
	if *asJSON {
		return tamJSON(e, ts)
	}
	tw := tabwriter.NewWriter(e.stdout, 2, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "ID\tNAME")
	for _, t := range ts {
		fmt.Fprintf(tw, "%s\t%s\n", t.ID, t.Name)
	}
	return tw.Flush()
}

func tamAudit(e *env, args []string) error {
	var q admin.AuditQuery
	var since, until *string
	var asJSON *bool
	c, _, err := tamSimple(e, "tam audit", "[--tenant ID] [--token ID] [--action ACTION] [--since T] [--until T] [--before N] [--limit N] [--json] [--server URL] [--data DIR]",
		"Shows the audit log of admin changes, newest first. Times are RFC 3339; --before N pages on\nfrom the entry before id N (the JSON's next_before).", 0, args,
		func(fs *flag.FlagSet) {
			fs.StringVar(&q.Tenant, "tenant", "", "only this tenant's entries")
			fs.StringVar(&q.Token, "token", "", "only this token's entries (token id)")
			fs.StringVar(&q.Action, "action", "", `only this action, e.g. "POST /admin/v1/policies"`)
			since = fs.String("since", "", "entries at or after this time")
			until = fs.String("until", "", "entries before this time")
			fs.Int64Var(&q.Before, "before", 0, "entries with an id below this")
			fs.IntVar(&q.Limit, "limit", admin.DefaultAuditLimit, fmt.Sprintf("at most this many entries (1-%d)", admin.MaxAuditLimit))
			asJSON = fs.Bool("json", false, "print JSON")
		},
		func() error {
			for _, x := range []struct {
				flag string
				s    *string
				t    *time.Time
			}{{"--since", since, &q.Since}, {"--until", until, &q.Until}} {
				if *x.s == "" {
					continue
				}
				t, err := time.Parse(time.RFC3339Nano, *x.s)
				if err != nil {
					return usagef("%s: want an RFC 3339 time", x.flag)
				}
				*x.t = t
			}
			if q.Limit < 1 || q.Limit > admin.MaxAuditLimit {
				return usagef("--limit: want 1 to %d", admin.MaxAuditLimit)
			}
			return nil
		})
	if err != nil {
		return err
	}
	ctx, cancel := tamCtx()
	defer cancel()
	page, err := c.Audit(ctx, q)
	if err != nil {
		return err
	}
	if *asJSON {
		return tamJSON(e, page)
	}
	tw := tabwriter.NewWriter(e.stdout, 2, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "ID\tTIME\tTOKEN\tTENANT\tACTION\tOBJECT\tREMOTE\tOUTCOME")
	for _, x := range page.Entries {
		fmt.Fprintf(tw, "%d\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", x.ID, x.Time.Format(time.RFC3339), x.TokenName, orDash(x.Tenant), x.Action, x.Object, x.Remote, x.Outcome)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	if page.NextBefore > 0 {
		fmt.Fprintf(e.stderr, "more: --before %d\n", page.NextBefore)
	}
	return nil
}
