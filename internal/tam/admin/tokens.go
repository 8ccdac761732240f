package admin

import (
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"net/http"
	"strconv"
	"time"

	"github.com/teep-go/teep/internal/tam"
)

// API token secrets: a prefix that tells them from the start-up token,
// then 32 random bytes in base64url.
const (
	apiTokenPrefix = "teep_"
	maxSecretLen   = 128
	// MaxTokenName bounds token and tenant names.
	MaxTokenName = 200
	// DefaultAuditLimit and MaxAuditLimit bound a page of GET /audit.
	DefaultAuditLimit = 100
	MaxAuditLimit     = 1000
)

// Whoami describes the caller's token.
type Whoami struct {
	TokenID   string    `json:"token_id"`
	Name      string    `json:"name"`
	Tenant    string    `json:"tenant,omitempty"`
	Role      string    `json:"role"`
	ExpiresAt time.Time `json:"expires_at,omitzero"`
}

// APIToken is a stored API token (never its secret).
type APIToken struct {
	ID        string    `json:"id"`
	Name      string    `json:"name"`
	Tenant    string    `json:"tenant,omitempty"`
	Role      string    `json:"role"`
	CreatedAt time.Time `json:"created_at"`
	ExpiresAt time.Time `json:"expires_at,omitzero"`
	RevokedAt time.Time `json:"revoked_at,omitzero"`
}

// NewAPIToken is the body of POST /tokens. Tenant defaults to the caller's.
type NewAPIToken struct {
	Name      string    `json:"name"`
	Tenant    string    `json:"tenant,omitempty"`
	Role      string    `json:"role"`
	ExpiresAt time.Time `json:"expires_at,omitzero"`
}

// CreatedAPIToken is the answer to POST /tokens: the only time the secret
// is shown.
type CreatedAPIToken struct {
	APIToken
	Secret string `json:"secret"`
}

// Tenant is a tenant of the TAM.
type Tenant struct {
	ID        string    `json:"id"`
	Name      string    `json:"name"`
	CreatedAt time.Time `json:"created_at,omitzero"`
}

// AuditEntry is one audited admin action.
type AuditEntry struct {
	ID        int64     `json:"id"`
	Time      time.Time `json:"time"`
	TokenID   string    `json:"token_id"`
	TokenName string    `json:"token_name"`
	Tenant    string    `json:"tenant,omitempty"`
	Action    string    `json:"action"`
	Object    string    `json:"object"`
	Remote    string    `json:"remote"`
	Outcome   string    `json:"outcome"`
}

// AuditPage is a page of the audit log, newest first; NextBefore, when
// set, is the before= of the next page.
type AuditPage struct {
	Entries    []AuditEntry `json:"entries"`
	NextBefore int64        `json:"next_before,omitempty"`
}

func toAPIToken(k tam.APIToken) APIToken {
	return APIToken{ID: k.ID, Name: k.Name, Tenant: k.Tenant, Role: string(k.Role), CreatedAt: k.CreatedAt, ExpiresAt: k.ExpiresAt, RevokedAt: k.RevokedAt}
}

func (s *server) whoami(w http.ResponseWriter, r *http.Request) error {
	p := caller(r)
	writeJSON(w, http.StatusOK, Whoami{TokenID: p.TokenID, Name: p.Name, Tenant: p.Tenant, Role: string(p.Role), ExpiresAt: p.Expires})
	return nil
}

func (s *server) listTokens(w http.ResponseWriter, r *http.Request) error {
	p := caller(r)
	tenant := r.URL.Query().Get("tenant")
	if !p.provider() {
		if tenant != "" && tenant != p.Tenant {
			return status(http.StatusNotFound, "not found in tenant %s", p.Tenant)
		}
		tenant = p.Tenant
	}
	var ks []tam.APIToken
	err := s.cfg.Engine.Store().View(r.Context(), func(tx tam.Tx) (err error) { ks, err = tx.APITokens(r.Context(), tenant); return err })
	if err != nil {
		return err
	}
	out := []APIToken{}
	for _, k := range ks {
		out = append(out, toAPIToken(k))
	}
	writeJSON(w, http.StatusOK, out)
	return nil
}

func (s *server) createToken(w http.ResponseWriter, r *http.Request) error {
	p := caller(r)
	var in NewAPIToken
	if err := readJSON(w, r, &in); err != nil {
		return err
	}
	role, err := tam.ParseRole(in.Role)
	if err != nil {
		return err
	}
	if in.Name == "" || len(in.Name) > MaxTokenName {
		return status(http.StatusBadRequest, "name: want 1 to %d bytes", MaxTokenName)
	}
	if in.Tenant == "" && role != tam.RoleProvider {
		in.Tenant = p.Tenant
		if p.provider() {
			in.Tenant = tam.DefaultTenant
		}
	}
	switch {
	case role == tam.RoleProvider && in.Tenant != "":
		return status(http.StatusBadRequest, "a provider token belongs to no tenant")
	case !p.provider() && role.Rank() > p.Role.Rank():
		return status(http.StatusForbidden, "role %s may not create a %s token", p.Role, role)
	case !p.provider() && in.Tenant != p.Tenant:
		return status(http.StatusForbidden, "a token of tenant %s may create tokens of that tenant only", p.Tenant)
	}
	now := time.Now().UTC()
	if !in.ExpiresAt.IsZero() && !in.ExpiresAt.After(now) {
		return status(http.StatusBadRequest, "expires_at is in the past")
	}
	raw := make([]byte, 32+8)
	if _, err := rand.Read(raw); err != nil {
		return err
	}
	secret := apiTokenPrefix + base64.RawURLEncoding.EncodeToString(raw[:32])
	k := tam.APIToken{ID: "tok-" + hex.EncodeToString(raw[32:]), Name: in.Name, Tenant: in.Tenant, Role: role,
		Hash: tam.HashAPISecret(secret), CreatedAt: now, ExpiresAt: in.ExpiresAt.UTC()}
	if err := s.cfg.Engine.Store().Update(r.Context(), func(tx tam.Tx) error { return tx.AddAPIToken(r.Context(), k) }); err != nil {
		return err
	}
	w.Header().Set("Location", Prefix+"tokens/"+k.ID)
	writeJSON(w, http.StatusCreated, CreatedAPIToken{APIToken: toAPIToken(k), Secret: secret})
	return nil
}

func (s *server) revokeToken(w http.ResponseWriter, r *http.Request) error {
	p := caller(r)
	id := r.PathValue("id")
	ctx := r.Context()
	err := s.cfg.Engine.Store().Update(ctx, func(tx tam.Tx) error {
		k, err := tx.APIToken(ctx, id)
		if err != nil {
			return err
		}
		if !p.seesTenant(k.Tenant) {
			return status(http.StatusNotFound, "API token %q: not found", id)
		}
		return tx.RevokeAPIToken(ctx, id, time.Now().UTC())
	})
	if err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

func (s *server) listTenants(w http.ResponseWriter, r *http.Request) error {
	var ts []tam.Tenant
	err := s.cfg.Engine.Store().View(r.Context(), func(tx tam.Tx) (err error) { ts, err = tx.Tenants(r.Context()); return err })
	if err != nil {
		return err
	}
	out := []Tenant{}
	for _, t := range ts {
		out = append(out, Tenant{ID: t.ID, Name: t.Name, CreatedAt: t.CreatedAt})
	}
	writeJSON(w, http.StatusOK, out)
	return nil
}

func (s *server) addTenant(w http.ResponseWriter, r *http.Request) error {
	var in Tenant
	if err := readJSON(w, r, &in); err != nil {
		return err
	}
	if err := tam.CheckTenantID(in.ID); err != nil {
		return err
	}
	if in.Name == "" {
		in.Name = in.ID
	}
	if len(in.Name) > MaxTokenName {
		return status(http.StatusBadRequest, "name longer than %d bytes", MaxTokenName)
	}
	t := tam.Tenant{ID: in.ID, Name: in.Name, CreatedAt: time.Now().UTC()}
	if err := s.cfg.Engine.Store().Update(r.Context(), func(tx tam.Tx) error { return tx.AddTenant(r.Context(), t) }); err != nil {
		return err
	}
	w.Header().Set("Location", Prefix+"tenants/"+t.ID)
	writeJSON(w, http.StatusCreated, Tenant{ID: t.ID, Name: t.Name, CreatedAt: t.CreatedAt})
	return nil
}

func (s *server) listAudit(w http.ResponseWriter, r *http.Request) error {
	p := caller(r)
	q := r.URL.Query()
	f := tam.AuditFilter{Tenant: q.Get("tenant"), TokenID: q.Get("token"), Action: q.Get("action"), Limit: DefaultAuditLimit}
	if !p.provider() {
		if f.Tenant != "" && f.Tenant != p.Tenant {
			return status(http.StatusNotFound, "not found in tenant %s", p.Tenant)
		}
		f.Tenant = p.Tenant
	}
	for name, dst := range map[string]*time.Time{"since": &f.Since, "until": &f.Until} {
		if v := q.Get(name); v != "" {
			t, err := time.Parse(time.RFC3339Nano, v)
			if err != nil {
				return status(http.StatusBadRequest, "%s: want an RFC 3339 time", name)
			}
			*dst = t
		}
	}
	if v := q.Get("before"); v != "" {
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil || n <= 0 {
			return status(http.StatusBadRequest, "before: want a positive entry id")
		}
		f.Before = n
	}
	if v := q.Get("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n <= 0 || n > MaxAuditLimit {
			return status(http.StatusBadRequest, "limit: want 1 to %d", MaxAuditLimit)
		}
		f.Limit = n
	}
	var es []tam.AuditEntry
	err := s.cfg.Engine.Store().View(r.Context(), func(tx tam.Tx) (err error) { es, err = tx.Audit(r.Context(), f); return err })
	if err != nil {
		return err
	}
	out := AuditPage{Entries: []AuditEntry{}}
	for _, e := range es {
		out.Entries = append(out.Entries, AuditEntry{ID: e.ID, Time: e.Time, TokenID: e.TokenID, TokenName: e.TokenName, Tenant: e.Tenant,
			Action: e.Action, Object: e.Object, Remote: e.Remote, Outcome: e.Outcome})
	}
	if len(es) == f.Limit && len(es) > 0 {
		out.NextBefore = es[len(es)-1].ID
	}
	writeJSON(w, http.StatusOK, out)
	return nil
}
