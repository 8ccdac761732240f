package admin

import (
	"context"
	"crypto/subtle"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"time"

	"github.com/teep-go/teep/internal/httpd"
	"github.com/teep-go/teep/internal/tam"
)

// scope says how a route is confined to the caller's tenant.
type scope int

const (
	// scopeOpen: not tenant data (health, TAM keys, whoami, tenants).
	scopeOpen scope = iota
	// scopeTenant: objects tenants own (components, policies, TC signers,
	// devices' components, labels and personalization data) and the shared
	// devices they sit on. The engine confines the call (tam.WithTenant,
	// set by guard): lists hold the tenant's own objects, another tenant's
	// object answers 404 as if absent, and a change to something shared
	// (a new device, a Verifier key) answers 403 (tam.ErrForbidden).
	scopeTenant
	// scopeShared: a change to a device itself, which every tenant's
	// components may be on: the provider and the default tenant only; any
	// other tenant gets 403 whatever the device (the engine refuses too).
	scopeShared
	// scopeOwn: the handler confines the answer to the caller's tenant
	// (tokens, audit log).
	scopeOwn
)

// ProviderTokenID names the start-up admin token in whoami and the audit log.
const ProviderTokenID = "admin"

// principal is who makes a request.
type principal struct {
	TokenID string
	Name    string
	Tenant  string // empty for a provider
	Role    tam.Role
	Expires time.Time
}

func (p principal) provider() bool { return p.Role == tam.RoleProvider }

// seesTenant reports whether p may act on data of tenant.
func (p principal) seesTenant(tenant string) bool { return p.provider() || p.Tenant == tenant }

type principalKey struct{}

func caller(r *http.Request) principal {
	p, _ := r.Context().Value(principalKey{}).(principal)
	return p
}

var errNoToken = errors.New("missing or wrong bearer token")

// authenticate finds the token the request presents: the start-up admin
// token (the provider), or a stored API token looked up by the SHA-256 of
// its secret, which must be neither revoked nor expired.
func (s *server) authenticate(r *http.Request) (principal, error) {
	h := r.Header.Get("Authorization")
	const pre = "Bearer "
	if len(h) <= len(pre) || !strings.EqualFold(h[:len(pre)], pre) {
		return principal{}, errNoToken
	}
	secret := h[len(pre):]
	if subtle.ConstantTimeCompare([]byte(secret), []byte(s.cfg.Token)) == 1 {
		return principal{TokenID: ProviderTokenID, Name: ProviderTokenID, Role: tam.RoleProvider}, nil
	}
	if !strings.HasPrefix(secret, apiTokenPrefix) || len(secret) > maxSecretLen {
		return principal{}, errNoToken
	}
	var k tam.APIToken
	err := s.cfg.Engine.Store().View(r.Context(), func(tx tam.Tx) (err error) {
		k, err = tx.APITokenByHash(r.Context(), tam.HashAPISecret(secret))
		return err
	})
	if errors.Is(err, tam.ErrNotFound) {
		return principal{}, errNoToken
	}
	if err != nil {
		return principal{}, fmt.Errorf("admin: token lookup: %w", err)
	}
	if !k.Usable(time.Now()) || k.Role.Rank() == 0 {
		return principal{}, fmt.Errorf("%w (token %s is revoked or expired)", errNoToken, k.ID)
	}
	return principal{TokenID: k.ID, Name: k.Name, Tenant: k.Tenant, Role: k.Role, Expires: k.ExpiresAt}, nil
}

// allow applies the route's row of the access table. The role is checked
// first: its answer (403) depends only on the token and the route, so it
// says nothing about which objects exist; then a shared route refuses a
// tenant other than the default (403, whatever the object). Ownership of
// objects is the engine's (scopeTenant): another tenant's answer 404, as
// if they did not exist.
func allow(rt route, p principal) error {
	if p.Role.Rank() < rt.min.Rank() {
		return status(http.StatusForbidden, "role %s may not %s (needs %s)", p.Role, rt.pattern, rt.min)
	}
	if rt.scope == scopeShared && !p.seesTenant(tam.DefaultTenant) {
		return status(http.StatusForbidden, "tenant %s may not %s: devices are shared; only the provider and the default tenant change them", p.Tenant, rt.pattern)
	}
	return nil
}

// guard authenticates, applies the access table, runs the handler, and
// audits every request that may change state.
func (s *server) guard(rt route) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		httpd.SecurityHeaders(w.Header())
		p, err := s.authenticate(r)
		if err != nil {
			level := slog.LevelWarn
			if !errors.Is(err, errNoToken) {
				level = slog.LevelError
			}
			s.log.Log(r.Context(), level, "admin request with a missing or wrong token", "peer", httpd.Peer(r), "method", r.Method, "path", r.URL.Path, "err", err)
			if !errors.Is(err, errNoToken) {
				httpd.WriteProblem(w, problemFor(err))
				return
			}
			// RFC 6750 §3: the challenge names the scheme.
			w.Header().Set("WWW-Authenticate", `Bearer realm="teep-tam-admin"`)
			httpd.WriteProblem(w, httpd.NewProblem(http.StatusUnauthorized, "missing or wrong bearer token"))
			return
		}
		ctx := context.WithValue(r.Context(), principalKey{}, p)
		if !p.provider() {
			// The engine confines the call to the token's tenant (tam.WithTenant).
			ctx = tam.WithTenant(ctx, p.Tenant)
		}
		var pending *tam.PendingAudit
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			pending = &tam.PendingAudit{Entry: tam.AuditEntry{
				Time: time.Now().UTC(), TokenID: p.TokenID, TokenName: p.Name, Tenant: p.Tenant,
				Action: actionOf(rt, r), Object: r.URL.RequestURI(), Remote: httpd.Peer(r),
			}}
			ctx = tam.WithAudit(ctx, pending)
		}
		r = r.WithContext(ctx)
		err = allow(rt, p)
		if err == nil {
			err = rt.h(w, r)
		}
		if err != nil {
			pr := problemFor(err)
			level := slog.LevelInfo
			if pr.Status >= 500 {
				level = slog.LevelError
			}
			s.log.Log(ctx, level, "admin request failed", "peer", httpd.Peer(r), "method", r.Method, "path", r.URL.Path,
				"token_id", p.TokenID, "status", pr.Status, "err", err)
			httpd.WriteProblem(w, pr)
			if pending != nil {
				pending.Entry.Outcome = fmt.Sprintf("%d %s", pr.Status, http.StatusText(pr.Status))
			}
		}
		if pending != nil {
			s.audit(context.WithoutCancel(ctx), pending)
		}
	})
}

func actionOf(rt route, r *http.Request) string {
	if rt.pattern == "" {
		return r.Method + " " + r.URL.Path
	}
	return rt.pattern
}

// audit logs the entry and, unless the change's own transaction stored it,
// stores it now (a failure, or a request that changed nothing).
func (s *server) audit(ctx context.Context, p *tam.PendingAudit) {
	if !p.Written {
		if p.Entry.Outcome == "" {
			p.Entry.Outcome = "ok"
		}
		e := p.Entry
		err := s.cfg.Engine.Store().Update(tam.WithAudit(ctx, nil), func(tx tam.Tx) error {
			_, err := tx.AddAudit(ctx, e)
			return err
		})
		if err != nil {
			s.log.Error("admin audit entry not stored", "action", e.Action, "err", err)
		}
	}
	e := p.Entry
	s.log.Info("admin audit", "token_id", e.TokenID, "token_name", e.TokenName, "tenant", e.Tenant, "action", e.Action,
		"object", e.Object, "remote", e.Remote, "outcome", e.Outcome)
}
