package admin

import (
	"context"
	"encoding/json"
	"net/http"
	"net/url"
	"strconv"
	"time"
)

// Whoami describes the client's own token.
func (c *Client) Whoami(ctx context.Context) (Whoami, error) {
	var out Whoami
	_, err := c.do(ctx, http.MethodGet, Prefix+"whoami", nil, "", nil, &out)
	return out, err
}

// Tokens lists API tokens ("" : every tenant the client may see).
func (c *Client) Tokens(ctx context.Context, tenant string) ([]APIToken, error) {
	var q url.Values
	if tenant != "" {
		q = url.Values{"tenant": {tenant}}
	}
	var out []APIToken
	_, err := c.do(ctx, http.MethodGet, Prefix+"tokens", q, "", nil, &out)
	return out, err
}

// CreateToken creates an API token; the answer holds its secret.
func (c *Client) CreateToken(ctx context.Context, t NewAPIToken) (CreatedAPIToken, error) {
	var out CreatedAPIToken
	b, err := json.Marshal(t)
	if err != nil {
		return out, err
	}
	_, err = c.do(ctx, http.MethodPost, Prefix+"tokens", nil, "application/json", b, &out)
	return out, err
}

// RevokeToken revokes an API token.
func (c *Client) RevokeToken(ctx context.Context, id string) error {
	_, err := c.do(ctx, http.MethodDelete, Prefix+"tokens/"+esc(id), nil, "", nil, nil)
	return err
}

// Tenants lists the tenants.
func (c *Client) Tenants(ctx context.Context) ([]Tenant, error) {
	var out []Tenant
	_, err := c.do(ctx, http.MethodGet, Prefix+"tenants", nil, "", nil, &out)
	return out, err
}

// AddTenant creates a tenant.
func (c *Client) AddTenant(ctx context.Context, id, name string) (Tenant, error) {
	var out Tenant
	b, err := json.Marshal(Tenant{ID: id, Name: name})
	if err != nil {
		return out, err
	}
	_, err = c.do(ctx, http.MethodPost, Prefix+"tenants", nil, "application/json", b, &out)
	return out, err
}

// AuditQuery selects audit entries; zero fields match everything.
type AuditQuery struct {
	Tenant, Token, Action string
	Since, Until          time.Time
	Before                int64
	Limit                 int
}

// Audit reads one page of the audit log.
func (c *Client) Audit(ctx context.Context, aq AuditQuery) (AuditPage, error) {
	q := url.Values{}
	for k, v := range map[string]string{"tenant": aq.Tenant, "token": aq.Token, "action": aq.Action} {
		if v != "" {
			q.Set(k, v)
		}
	}
	if !aq.Since.IsZero() {
		q.Set("since", aq.Since.Format(time.RFC3339Nano))
	}
	if !aq.Until.IsZero() {
		q.Set("until", aq.Until.Format(time.RFC3339Nano))
	}
	if aq.Before > 0 {
		q.Set("before", strconv.FormatInt(aq.Before, 10))
	}
	if aq.Limit > 0 {
		q.Set("limit", strconv.Itoa(aq.Limit))
	}
	var out AuditPage
	_, err := c.do(ctx, http.MethodGet, Prefix+"audit", q, "", nil, &out)
	return out, err
}
