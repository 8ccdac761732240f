package tam

import (
	"context"
	"crypto/sha256"
	"fmt"
	"regexp"
	"time"
)

// DefaultTenant is the implicit tenant of a single-operator TAM: it exists
// in every database (the migration creates it) and owns everything made
// before any other tenant exists, so a user who never creates a tenant
// sees no change.
const DefaultTenant = "default"

// Tenant is a service provider or Trusted Component developer using the TAM.
type Tenant struct {
	ID        string
	Name      string
	CreatedAt time.Time
}

var tenantIDRe = regexp.MustCompile(`^[a-z0-9][a-z0-9-]{0,62}$`)

// CheckTenantID reports whether id is a valid tenant id: 1 to 63 lower-case
// letters, digits and dashes, not starting with a dash.
func CheckTenantID(id string) error {
	if !tenantIDRe.MatchString(id) {
		return fmt.Errorf("%w: tenant id %q: want 1-63 of a-z, 0-9 and '-', not starting with '-'", ErrInvalid, id)
	}
	return nil
}

// Role is what an API token may do. Roles are ordered: each may do
// everything the ones below it may.
type Role string

// Roles, lowest first.
const (
	RoleReadOnly Role = "read-only" // read the tenant's state
	RoleOperator Role = "operator"  // also devices, labels, policies, personalization
	RoleAdmin    Role = "admin"     // also components, trusted keys, the tenant's tokens
	// RoleProvider is the global administrator of the TAM (the admin token
	// given at start-up): every tenant, tenants themselves.
	RoleProvider Role = "provider"
)

// Rank orders roles; an unknown role ranks 0, below every known one.
func (r Role) Rank() int {
	switch r {
	case RoleReadOnly:
		return 1
	case RoleOperator:
		return 2
	case RoleAdmin:
		return 3
	case RoleProvider:
		return 4
	}
	return 0
}

// ParseRole parses a role name.
func ParseRole(s string) (Role, error) {
	if r := Role(s); r.Rank() > 0 {
		return r, nil
	}
	return "", fmt.Errorf("%w: role %q: want read-only, operator, admin or provider", ErrInvalid, s)
}

// APIToken is a bearer token for the admin API. Only the SHA-256 of its
// secret is kept: the secret is shown once, when the token is created.
type APIToken struct {
	ID        string // public, names the token in lists and the audit log
	Name      string
	Tenant    string // empty for a provider token
	Role      Role
	Hash      []byte    // SHA-256 of the secret
	CreatedAt time.Time // creation time
	ExpiresAt time.Time // zero: never
	RevokedAt time.Time // zero: not revoked
}

// HashAPISecret is the stored form of a token secret.
func HashAPISecret(secret string) []byte {
	h := sha256.Sum256([]byte(secret))
	return h[:]
}

// Usable reports whether t may be used at now.
func (t APIToken) Usable(now time.Time) bool {
	return t.RevokedAt.IsZero() && (t.ExpiresAt.IsZero() || now.Before(t.ExpiresAt))
}

// AuditEntry records one state-changing admin action.
type AuditEntry struct {
	ID        int64
	Time      time.Time
	TokenID   string // who: the token's id ("admin" for the start-up token)
	TokenName string
	Tenant    string // the tenant acted for; empty for provider-wide actions
	Action    string // method and route pattern, e.g. "POST /admin/v1/policies"
	Object    string // the path acted on
	Remote    string // the peer's address
	Outcome   string // "ok", or the HTTP status and reason of the failure
}

// AuditFilter selects audit entries; zero fields match everything.
type AuditFilter struct {
	Tenant  string
	TokenID string
	Action  string
	Since   time.Time // at or after
	Until   time.Time // before
	Before  int64     // only entries with a smaller ID (paging, newest first)
	Limit   int       // at most this many; <= 0 means no limit
}

// TenantTx keeps the tenants.
type TenantTx interface {
	AddTenant(ctx context.Context, t Tenant) error // ErrExists if the id is taken
	Tenant(ctx context.Context, id string) (Tenant, error)
	Tenants(ctx context.Context) ([]Tenant, error) // by id
}

// APITokenTx keeps the admin API tokens.
type APITokenTx interface {
	// AddAPIToken stores a new token; ErrExists if the id or hash is taken,
	// ErrNotFound if its tenant does not exist.
	AddAPIToken(ctx context.Context, t APIToken) error
	APIToken(ctx context.Context, id string) (APIToken, error)
	APITokenByHash(ctx context.Context, hash []byte) (APIToken, error)
	// APITokens lists the tokens of tenant ("" lists every token), by id.
	APITokens(ctx context.Context, tenant string) ([]APIToken, error)
	// RevokeAPIToken marks the token revoked at; ErrNotFound if it does not
	// exist or is revoked already.
	RevokeAPIToken(ctx context.Context, id string, at time.Time) error
}

// AuditTx keeps the audit log, append-only.
type AuditTx interface {
	AddAudit(ctx context.Context, e AuditEntry) (int64, error)      // returns the new entry's ID
	Audit(ctx context.Context, f AuditFilter) ([]AuditEntry, error) // newest first
}

// OwnedKind names what a tenant may own in OwnerTx.
type OwnedKind string

// Owned kinds. Policies, and what devices hold of a component, belong to
// the component's owner; devices themselves are shared.
const (
	OwnedSigner    OwnedKind = "signer"    // key: hex of the TC signer's kid
	OwnedComponent OwnedKind = "component" // key: IDHex of the component
)

// OwnerTx records which tenant owns what.
type OwnerTx interface {
	// SetOwner records tenant as the owner (insert or replace);
	// ErrNotFound if the tenant does not exist.
	SetOwner(ctx context.Context, kind OwnedKind, key, tenant string) error
	// Owner returns the owner, DefaultTenant when none is recorded.
	Owner(ctx context.Context, kind OwnedKind, key string) (string, error)
	// Owners returns every recorded owner of kind, by key; a key absent
	// from the map belongs to DefaultTenant.
	Owners(ctx context.Context, kind OwnedKind) (map[string]string, error)
}
