package admin

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/teep-go/teep/internal/httpd"
)

// Client calls the admin API of a running TAM.
type Client struct {
	BaseURL string // e.g. http://127.0.0.1:8080
	Token   string
	HTTP    *http.Client // nil: a client with a 30 s timeout that follows no redirects
}

// MaxResponseBytes bounds what the client reads back.
const MaxResponseBytes = 64 << 20

// APIError is a non-2xx answer. Message is the problem's detail (or the
// start of a body that is not a problem document); Problem is the whole
// RFC 9457 document when the server sent one.
type APIError struct {
	Status  int
	Message string
	Problem *httpd.Problem
}

func (e *APIError) Error() string {
	return fmt.Sprintf("%d %s: %s", e.Status, http.StatusText(e.Status), e.Message)
}

// IsNotFound reports whether err is a 404 from the API.
func IsNotFound(err error) bool {
	var ae *APIError
	return errors.As(err, &ae) && ae.Status == http.StatusNotFound
}

func (c *Client) http() *http.Client {
	if c.HTTP != nil {
		return c.HTTP
	}
	return &http.Client{
		Timeout:       30 * time.Second,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
}

// do sends a request; out, when non-nil, receives the JSON answer.
func (c *Client) do(ctx context.Context, method, path string, q url.Values, contentType string, body []byte, out any) ([]byte, error) {
	u := strings.TrimSuffix(c.BaseURL, "/") + path
	if len(q) > 0 {
		u += "?" + q.Encode()
	}
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req, err := http.NewRequestWithContext(ctx, method, u, rd)
	if err != nil {
		return nil, fmt.Errorf("admin client: %w", err)
	}
	req.Header.Set("Authorization", "Bearer "+c.Token)
	req.Header.Set("Accept", "application/json, "+httpd.MediaTypeProblem)
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	resp, err := c.http().Do(req)
	if err != nil {
		return nil, fmt.Errorf("admin client: %w", err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, MaxResponseBytes+1))
	if err != nil {
		return nil, fmt.Errorf("admin client: reading the answer: %w", err)
	}
	if len(b) > MaxResponseBytes {
		return nil, fmt.Errorf("admin client: answer larger than %d bytes", MaxResponseBytes)
	}
	if resp.StatusCode/100 != 2 {
		ae := &APIError{Status: resp.StatusCode, Message: httpd.ErrorText(resp.Header.Get("Content-Type"), b)}
		if p, err := httpd.ParseProblem(resp.Header.Get("Content-Type"), b); err == nil {
			ae.Problem = p
		}
		return nil, ae
	}
	if out != nil {
		if err := json.Unmarshal(b, out); err != nil {
			return nil, fmt.Errorf("admin client: decoding the answer: %w", err)
		}
	}
	return b, nil
}

func esc(s string) string { return url.PathEscape(s) }

// Health checks the server and its database.
func (c *Client) Health(ctx context.Context) (Health, error) {
	var h Health
	_, err := c.do(ctx, http.MethodGet, Prefix+"health", nil, "", nil, &h)
	return h, err
}

// Info returns the TAM's version and public keys.
func (c *Client) Info(ctx context.Context) (Info, error) {
	var in Info
	_, err := c.do(ctx, http.MethodGet, Prefix+"tam", nil, "", nil, &in)
	return in, err
}

// AddComponent uploads a signed SUIT envelope.
func (c *Client) AddComponent(ctx context.Context, envelope []byte) (Version, error) {
	var v Version
	_, err := c.do(ctx, http.MethodPost, Prefix+"components", nil, "application/suit-envelope+cose", envelope, &v)
	return v, err
}

// Components lists the registered components.
func (c *Client) Components(ctx context.Context) ([]Component, error) {
	var out []Component
	_, err := c.do(ctx, http.MethodGet, Prefix+"components", nil, "", nil, &out)
	return out, err
}

// Component returns one component (by hex id or name) with its versions.
func (c *Client) Component(ctx context.Context, ref string) (ComponentDetail, error) {
	var out ComponentDetail
	_, err := c.do(ctx, http.MethodGet, Prefix+"components/"+esc(ref), nil, "", nil, &out)
	return out, err
}

// DeleteComponent forgets a component.
func (c *Client) DeleteComponent(ctx context.Context, ref string) error {
	_, err := c.do(ctx, http.MethodDelete, Prefix+"components/"+esc(ref), nil, "", nil, nil)
	return err
}

// Envelope downloads a stored version.
func (c *Client) Envelope(ctx context.Context, ref string, seq uint64) ([]byte, error) {
	return c.do(ctx, http.MethodGet, Prefix+"components/"+esc(ref)+"/versions/"+strconv.FormatUint(seq, 10), nil, "", nil, nil)
}

// Policies lists every policy.
func (c *Client) Policies(ctx context.Context) ([]Policy, error) {
	var out []Policy
	_, err := c.do(ctx, http.MethodGet, Prefix+"policies", nil, "", nil, &out)
	return out, err
}

// SetPolicy adds or changes a policy.
func (c *Client) SetPolicy(ctx context.Context, p Policy) (Policy, error) {
	b, err := json.Marshal(p)
	if err != nil {
		return p, err
	}
	var out Policy
	_, err = c.do(ctx, http.MethodPost, Prefix+"policies", nil, "application/json", b, &out)
	return out, err
}

// RemovePolicies deletes the policies of a component, narrowed by scope
// and value when given.
func (c *Client) RemovePolicies(ctx context.Context, component, scope, value string) (int, error) {
	q := url.Values{"component": {component}}
	if scope != "" {
		q.Set("scope", scope)
	}
	if value != "" {
		q.Set("value", value)
	}
	var out PolicyRemoval
	_, err := c.do(ctx, http.MethodDelete, Prefix+"policies", q, "", nil, &out)
	return out.Removed, err
}

// Devices lists the devices with their inventories.
func (c *Client) Devices(ctx context.Context) ([]Device, error) {
	var out []Device
	_, err := c.do(ctx, http.MethodGet, Prefix+"devices", nil, "", nil, &out)
	return out, err
}

// Device returns one device (kid or unique prefix) with reports.
func (c *Client) Device(ctx context.Context, kid string, reports int) (DeviceDetail, error) {
	var out DeviceDetail
	_, err := c.do(ctx, http.MethodGet, Prefix+"devices/"+esc(kid), url.Values{"reports": {strconv.Itoa(reports)}}, "", nil, &out)
	return out, err
}

// AddAgent pre-registers an Agent key (PEM, COSE_Key or JWK).
func (c *Client) AddAgent(ctx context.Context, key []byte, labels []string) (Device, error) {
	var out Device
	_, err := c.do(ctx, http.MethodPost, Prefix+"devices", url.Values{"label": labels}, "application/octet-stream", key, &out)
	return out, err
}

// DeleteDevice forgets a device.
func (c *Client) DeleteDevice(ctx context.Context, kid string) error {
	_, err := c.do(ctx, http.MethodDelete, Prefix+"devices/"+esc(kid), nil, "", nil, nil)
	return err
}

// SetLabels replaces a device's labels.
func (c *Client) SetLabels(ctx context.Context, kid string, labels []string) (Device, error) {
	if labels == nil {
		labels = []string{}
	}
	b, err := json.Marshal(LabelsRequest{Labels: labels})
	if err != nil {
		return Device{}, err
	}
	var out Device
	_, err = c.do(ctx, http.MethodPut, Prefix+"devices/"+esc(kid)+"/labels", nil, "application/json", b, &out)
	return out, err
}

// Reattest asks for attestation at the device's next session.
func (c *Client) Reattest(ctx context.Context, kid string) (Device, error) {
	var out Device
	_, err := c.do(ctx, http.MethodPost, Prefix+"devices/"+esc(kid)+"/reattest", nil, "", nil, &out)
	return out, err
}

// Reset clears a device's failures and flagged status.
func (c *Client) Reset(ctx context.Context, kid string) (Device, error) {
	var out Device
	_, err := c.do(ctx, http.MethodPost, Prefix+"devices/"+esc(kid)+"/reset", nil, "", nil, &out)
	return out, err
}

// Personalization lists a device's personalization items.
func (c *Client) Personalization(ctx context.Context, kid string) ([]Personalization, error) {
	var out []Personalization
	_, err := c.do(ctx, http.MethodGet, Prefix+"devices/"+esc(kid)+"/personalization", nil, "", nil, &out)
	return out, err
}

// SetPersonalization stores data for a device under name.
func (c *Client) SetPersonalization(ctx context.Context, kid, name string, data []byte, dependsOn []string) (Personalization, error) {
	var out Personalization
	_, err := c.do(ctx, http.MethodPut, Prefix+"devices/"+esc(kid)+"/personalization/"+esc(name), url.Values{"depends-on": dependsOn},
		"application/octet-stream", data, &out)
	return out, err
}

// DeletePersonalization drops a personalization item.
func (c *Client) DeletePersonalization(ctx context.Context, kid, name string) error {
	_, err := c.do(ctx, http.MethodDelete, Prefix+"devices/"+esc(kid)+"/personalization/"+esc(name), nil, "", nil, nil)
	return err
}

// TrustedKeys lists the keys of a role (TrustSigners or TrustVerifiers).
func (c *Client) TrustedKeys(ctx context.Context, role string) ([]TrustedKey, error) {
	var out []TrustedKey
	_, err := c.do(ctx, http.MethodGet, Prefix+"trust/"+esc(role), nil, "", nil, &out)
	return out, err
}

// AddTrustedKey trusts a key (PEM, COSE_Key or JWK) for a role.
func (c *Client) AddTrustedKey(ctx context.Context, role string, key []byte, comment string) (TrustedKey, error) {
	var q url.Values
	if comment != "" {
		q = url.Values{"comment": {comment}}
	}
	var out TrustedKey
	_, err := c.do(ctx, http.MethodPost, Prefix+"trust/"+esc(role), q, "application/octet-stream", key, &out)
	return out, err
}

// RemoveTrustedKey stops trusting a key.
func (c *Client) RemoveTrustedKey(ctx context.Context, role, kid string) error {
	_, err := c.do(ctx, http.MethodDelete, Prefix+"trust/"+esc(role)+"/"+esc(kid), nil, "", nil, nil)
	return err
}
