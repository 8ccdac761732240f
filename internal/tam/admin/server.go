package admin

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/teep-go/teep/cosekey"
	"github.com/teep-go/teep/internal/httpd"
	"github.com/teep-go/teep/internal/tam"
	"github.com/teep-go/teep/suit"
)

// Prefix is the path prefix of the API.
const Prefix = "/admin/v1/"

// Limits of request bodies.
const (
	DefaultMaxUploadBytes = 16 << 20 // SUIT envelopes
	MaxJSONBytes          = 64 << 10
	MaxKeyBytes           = cosekey.MaxKeyFileSize
	DefaultReports        = 20
	MaxReports            = 1000
)

// Config configures the admin handler.
type Config struct {
	Engine *tam.Engine
	// Token is the bearer token every /admin/v1/ request must present.
	Token string
	// Ping checks the database for /readyz and /admin/v1/health; optional.
	Ping func(ctx context.Context) error
	// Gatherer serves /metrics; nil leaves /metrics out.
	Gatherer       prometheus.Gatherer
	MaxUploadBytes int64
	Version        string
	Logger         *slog.Logger
}

// NewToken makes a random admin token (32 bytes, base64url).
func NewToken() (string, error) {
	b := make([]byte, 32)
	if _, err := rand.Read(b); err != nil {
		return "", err
	}
	return base64.RawURLEncoding.EncodeToString(b), nil
}

type server struct {
	cfg Config
	log *slog.Logger
}

// Register mounts the API, /metrics, /healthz and /readyz on mux.
func Register(mux *http.ServeMux, cfg Config) error {
	if cfg.Engine == nil {
		return errors.New("admin: Config.Engine is required")
	}
	if len(cfg.Token) < 16 {
		return errors.New("admin: the admin token must be at least 16 characters")
	}
	if cfg.MaxUploadBytes <= 0 {
		cfg.MaxUploadBytes = DefaultMaxUploadBytes
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	s := &server{cfg: cfg, log: cfg.Logger}
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) { writeJSON(w, http.StatusOK, Health{Status: "ok"}) })
	mux.HandleFunc("GET /readyz", s.ready)
	if cfg.Gatherer != nil {
		mux.Handle("GET /metrics", promhttp.HandlerFor(cfg.Gatherer, promhttp.HandlerOpts{ErrorLog: slog.NewLogLogger(cfg.Logger.Handler(), slog.LevelWarn)}))
	}
	for _, rt := range s.routes() {
		if rt.min.Rank() == 0 {
			return fmt.Errorf("admin: route %s has no role", rt.pattern)
		}
		mux.Handle(rt.pattern, s.guard(rt))
	}
	mux.Handle(Prefix, s.wrap(func(w http.ResponseWriter, r *http.Request) error {
		return status(http.StatusNotFound, "no such admin endpoint")
	}))
	return nil
}

// route is one row of the API's single access table: the handler, the
// least role that may call it, and how it is scoped to tenants (access.go).
// Register refuses a route without a role, so no endpoint is left open by
// omission.
type route struct {
	pattern string
	h       func(http.ResponseWriter, *http.Request) error
	min     tam.Role
	scope   scope
}

func (s *server) routes() []route {
	return []route{
		{"GET /admin/v1/health", s.health, tam.RoleReadOnly, scopeOpen},
		{"GET /admin/v1/tam", s.info, tam.RoleReadOnly, scopeOpen},
		{"GET /admin/v1/components", s.listComponents, tam.RoleReadOnly, scopeTenant},
		{"POST /admin/v1/components", s.addComponent, tam.RoleAdmin, scopeTenant},
		{"GET /admin/v1/components/{id}", s.getComponent, tam.RoleReadOnly, scopeTenant},
		{"DELETE /admin/v1/components/{id}", s.deleteComponent, tam.RoleAdmin, scopeTenant},
		{"GET /admin/v1/components/{id}/versions/{seq}", s.getEnvelope, tam.RoleReadOnly, scopeTenant},
		{"GET /admin/v1/policies", s.listPolicies, tam.RoleReadOnly, scopeTenant},
		{"POST /admin/v1/policies", s.addPolicy, tam.RoleOperator, scopeTenant},
		{"DELETE /admin/v1/policies", s.removePolicies, tam.RoleOperator, scopeTenant},
		{"GET /admin/v1/devices", s.listDevices, tam.RoleReadOnly, scopeTenant},
		{"POST /admin/v1/devices", s.addDevice, tam.RoleOperator, scopeTenant},
		{"GET /admin/v1/devices/{kid}", s.getDevice, tam.RoleReadOnly, scopeTenant},
		{"DELETE /admin/v1/devices/{kid}", s.deleteDevice, tam.RoleOperator, scopeShared},
		{"PUT /admin/v1/devices/{kid}/labels", s.setLabels, tam.RoleOperator, scopeTenant},
		{"POST /admin/v1/devices/{kid}/reattest", s.reattest, tam.RoleOperator, scopeTenant},
		{"POST /admin/v1/devices/{kid}/reset", s.reset, tam.RoleOperator, scopeShared},
		{"GET /admin/v1/devices/{kid}/personalization", s.listPersonalization, tam.RoleReadOnly, scopeTenant},
		{"PUT /admin/v1/devices/{kid}/personalization/{name}", s.putPersonalization, tam.RoleOperator, scopeTenant},
		{"DELETE /admin/v1/devices/{kid}/personalization/{name}", s.deletePersonalization, tam.RoleOperator, scopeTenant},
		{"GET /admin/v1/trust/{role}", s.listTrust, tam.RoleReadOnly, scopeTenant},
		{"POST /admin/v1/trust/{role}", s.addTrust, tam.RoleAdmin, scopeTenant},
		{"DELETE /admin/v1/trust/{role}/{kid}", s.deleteTrust, tam.RoleAdmin, scopeTenant},
		{"GET /admin/v1/whoami", s.whoami, tam.RoleReadOnly, scopeOpen},
		{"GET /admin/v1/tokens", s.listTokens, tam.RoleAdmin, scopeOwn},
		{"POST /admin/v1/tokens", s.createToken, tam.RoleAdmin, scopeOwn},
		{"DELETE /admin/v1/tokens/{id}", s.revokeToken, tam.RoleAdmin, scopeOwn},
		{"GET /admin/v1/tenants", s.listTenants, tam.RoleProvider, scopeOpen},
		{"POST /admin/v1/tenants", s.addTenant, tam.RoleProvider, scopeOpen},
		{"GET /admin/v1/audit", s.listAudit, tam.RoleAdmin, scopeOwn},
	}
}

// status is a failure a handler chose the status of.
func status(code int, format string, a ...any) error {
	return httpd.NewProblem(code, fmt.Sprintf(format, a...))
}

// problemFor is the one place mapping engine and store errors to HTTP
// statuses and problem details (docs/http-errors.md). Engine errors say
// what is wrong with the request and go to the client; anything else is
// logged and answered "internal error".
func problemFor(err error) *httpd.Problem {
	var p *httpd.Problem
	switch {
	case errors.As(err, &p):
		return p
	case errors.Is(err, tam.ErrNotFound):
		return httpd.NewProblem(http.StatusNotFound, err.Error())
	case errors.Is(err, tam.ErrForbidden):
		return httpd.NewProblem(http.StatusForbidden, err.Error())
	case errors.Is(err, tam.ErrExists), errors.Is(err, tam.ErrSequence):
		return httpd.NewProblem(http.StatusConflict, err.Error())
	case errors.Is(err, tam.ErrInvalid):
		return httpd.NewProblem(http.StatusBadRequest, err.Error())
	case errors.Is(err, tam.ErrUntrustedSigner), errors.Is(err, tam.ErrUnsupportedKey):
		return httpd.NewProblem(http.StatusUnprocessableEntity, err.Error())
	case errors.Is(err, context.DeadlineExceeded), errors.Is(err, context.Canceled):
		return httpd.NewProblem(http.StatusServiceUnavailable, "request cancelled or timed out")
	}
	return httpd.NewProblem(http.StatusInternalServerError, "internal error")
}

// wrap guards a handler outside the route table (the catch-all 404): any
// valid token may reach it.
func (s *server) wrap(h func(http.ResponseWriter, *http.Request) error) http.Handler {
	return s.guard(route{h: h, min: tam.RoleReadOnly, scope: scopeOpen})
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		httpd.WriteProblem(w, httpd.NewProblem(http.StatusInternalServerError, "internal error"))
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	w.Write(append(b, '\n'))
}

func readBody(w http.ResponseWriter, r *http.Request, limit int64) ([]byte, error) {
	b, err := io.ReadAll(http.MaxBytesReader(w, r.Body, limit))
	if err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			return nil, status(http.StatusRequestEntityTooLarge, "body larger than %d bytes", limit)
		}
		return nil, status(http.StatusBadRequest, "reading the body: %v", err)
	}
	return b, nil
}

func readJSON(w http.ResponseWriter, r *http.Request, v any) error {
	b, err := readBody(w, r, MaxJSONBytes)
	if err != nil {
		return err
	}
	dec := json.NewDecoder(strings.NewReader(string(b)))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return status(http.StatusBadRequest, "invalid JSON: %v", err)
	}
	if dec.More() {
		return status(http.StatusBadRequest, "invalid JSON: trailing data")
	}
	return nil
}

func (s *server) ready(w http.ResponseWriter, r *http.Request) {
	httpd.SecurityHeaders(w.Header())
	h := Health{Status: "ok", Database: "ok"}
	if s.cfg.Ping != nil {
		if err := s.cfg.Ping(r.Context()); err != nil {
			s.log.Error("readiness check failed", "err", err)
			writeJSON(w, http.StatusServiceUnavailable, Health{Status: "unavailable", Database: "unreachable"})
			return
		}
	}
	writeJSON(w, http.StatusOK, h)
}

func (s *server) health(w http.ResponseWriter, r *http.Request) error {
	s.ready(w, r)
	return nil
}

func (s *server) info(w http.ResponseWriter, r *http.Request) error {
	in := Info{Version: s.cfg.Version}
	for _, k := range s.cfg.Engine.PublicKeys() {
		raw, err := k.MarshalCOSEKey(false)
		if err != nil {
			return err
		}
		tk, err := toTrustedKey("tam", k.KID(), raw, "", time.Time{})
		if err != nil {
			return err
		}
		in.Keys = append(in.Keys, tk)
	}
	writeJSON(w, http.StatusOK, in)
	return nil
}

// ---- components

func (s *server) component(r *http.Request) (suit.ComponentID, error) {
	return s.cfg.Engine.ResolveComponent(r.Context(), r.PathValue("id"))
}

func (s *server) listComponents(w http.ResponseWriter, r *http.Request) error {
	cs, err := s.cfg.Engine.Components(r.Context())
	if err != nil {
		return err
	}
	out := []Component{}
	for _, c := range cs {
		out = append(out, toComponent(c))
	}
	writeJSON(w, http.StatusOK, out)
	return nil
}

func (s *server) addComponent(w http.ResponseWriter, r *http.Request) error {
	body, err := readBody(w, r, s.cfg.MaxUploadBytes)
	if err != nil {
		return err
	}
	if len(body) == 0 {
		return status(http.StatusBadRequest, "empty body; send the SUIT envelope")
	}
	v, err := s.cfg.Engine.AddComponent(r.Context(), body)
	if err != nil {
		return err
	}
	w.Header().Set("Location", Prefix+"components/"+tam.IDHex(v.ComponentID))
	writeJSON(w, http.StatusCreated, toVersion(v))
	return nil
}

func (s *server) getComponent(w http.ResponseWriter, r *http.Request) error {
	id, err := s.component(r)
	if err != nil {
		return err
	}
	ci, err := s.cfg.Engine.ComponentInfo(r.Context(), id)
	if err != nil {
		return err
	}
	out := ComponentDetail{Component: toComponent(ci.Component), VersionList: []Version{}, Policies: []Policy{}}
	for _, v := range ci.Versions {
		out.VersionList = append(out.VersionList, toVersion(v))
	}
	for _, p := range ci.Policies {
		out.Policies = append(out.Policies, toPolicy(p))
	}
	writeJSON(w, http.StatusOK, out)
	return nil
}

func (s *server) deleteComponent(w http.ResponseWriter, r *http.Request) error {
	id, err := s.component(r)
	if err != nil {
		return err
	}
	if err := s.cfg.Engine.DeleteComponent(r.Context(), id); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

func (s *server) getEnvelope(w http.ResponseWriter, r *http.Request) error {
	id, err := s.component(r)
	if err != nil {
		return err
	}
	seq, err := strconv.ParseUint(r.PathValue("seq"), 10, 64)
	if err != nil {
		return status(http.StatusBadRequest, "sequence number: %v", err)
	}
	env, err := s.cfg.Engine.Envelope(r.Context(), id, seq)
	if err != nil {
		return err
	}
	w.Header().Set("Content-Type", "application/suit-envelope+cose")
	w.Header().Set("Content-Length", strconv.Itoa(len(env)))
	w.WriteHeader(http.StatusOK)
	w.Write(env)
	return nil
}

// ---- policies

func (s *server) listPolicies(w http.ResponseWriter, r *http.Request) error {
	ps, err := s.cfg.Engine.Policies(r.Context())
	if err != nil {
		return err
	}
	out := []Policy{}
	for _, p := range ps {
		out = append(out, toPolicy(p))
	}
	writeJSON(w, http.StatusOK, out)
	return nil
}

func (s *server) addPolicy(w http.ResponseWriter, r *http.Request) error {
	var in Policy
	if err := readJSON(w, r, &in); err != nil {
		return err
	}
	id, err := s.cfg.Engine.ResolveComponent(r.Context(), in.Component)
	if err != nil {
		return err
	}
	if in.Mode == "" {
		in.Mode = string(tam.Required)
	}
	if in.Scope == "" {
		in.Scope = string(tam.ScopeAll)
	}
	if in.Scope == string(tam.ScopeDevice) {
		kid, err := s.cfg.Engine.ResolveDevice(r.Context(), in.Value)
		if err != nil && !errors.Is(err, tam.ErrNotFound) {
			return err
		}
		if kid != nil {
			in.Value = hex.EncodeToString(kid)
		}
	}
	p, err := s.cfg.Engine.SetPolicy(r.Context(), tam.Policy{Component: id, Mode: tam.PolicyMode(in.Mode), Scope: tam.ScopeKind(in.Scope), Value: in.Value})
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusCreated, toPolicy(p))
	return nil
}

func (s *server) removePolicies(w http.ResponseWriter, r *http.Request) error {
	q := r.URL.Query()
	var f tam.PolicyFilter
	if v := q.Get("id"); v != "" {
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil || n <= 0 {
			return status(http.StatusBadRequest, "id: want a positive integer")
		}
		f.ID = n
	}
	if v := q.Get("component"); v != "" {
		id, err := s.cfg.Engine.ResolveComponent(r.Context(), v)
		if err != nil {
			return err
		}
		f.Component = id
	}
	f.Scope, f.Value = tam.ScopeKind(q.Get("scope")), q.Get("value")
	if f.ID == 0 && f.Component == nil {
		return status(http.StatusBadRequest, "name the policies to remove: id or component (and optionally scope and value)")
	}
	n, err := s.cfg.Engine.RemovePolicies(r.Context(), f)
	if err != nil {
		return err
	}
	if n == 0 {
		return status(http.StatusNotFound, "no policy matches")
	}
	writeJSON(w, http.StatusOK, PolicyRemoval{Removed: n})
	return nil
}

// ---- devices

func (s *server) device(r *http.Request) ([]byte, error) {
	return s.cfg.Engine.ResolveDevice(r.Context(), r.PathValue("kid"))
}

func (s *server) listDevices(w http.ResponseWriter, r *http.Request) error {
	ds, err := s.cfg.Engine.Devices(r.Context())
	if err != nil {
		return err
	}
	out := []Device{}
	for _, d := range ds {
		out = append(out, toDevice(d.Device, d.Installed, caller(r).Tenant))
	}
	writeJSON(w, http.StatusOK, out)
	return nil
}

// addDevice pre-registers an Agent key: the body is the key (PEM, COSE_Key
// or JWK); labels come as repeated "label" query parameters.
func (s *server) addDevice(w http.ResponseWriter, r *http.Request) error {
	key, err := s.readKey(w, r)
	if err != nil {
		return err
	}
	d, err := s.cfg.Engine.AddAgent(r.Context(), key, r.URL.Query()["label"])
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusCreated, toDevice(d, nil, caller(r).Tenant))
	return nil
}

func (s *server) readKey(w http.ResponseWriter, r *http.Request) (*cosekey.Key, error) {
	body, err := readBody(w, r, MaxKeyBytes)
	if err != nil {
		return nil, err
	}
	key, err := cosekey.Parse(body)
	if err != nil {
		return nil, status(http.StatusBadRequest, "key: %v", err)
	}
	return key.PublicKey(), nil
}

func (s *server) getDevice(w http.ResponseWriter, r *http.Request) error {
	kid, err := s.device(r)
	if err != nil {
		return err
	}
	n := DefaultReports
	if v := r.URL.Query().Get("reports"); v != "" {
		if n, err = strconv.Atoi(v); err != nil || n < 0 || n > MaxReports {
			return status(http.StatusBadRequest, "reports: want 0..%d", MaxReports)
		}
	}
	di, err := s.cfg.Engine.DeviceInfo(r.Context(), kid, n)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, toDetail(di, caller(r).Tenant))
	return nil
}

func (s *server) deleteDevice(w http.ResponseWriter, r *http.Request) error {
	kid, err := s.device(r)
	if err != nil {
		return err
	}
	if err := s.cfg.Engine.DeleteDevice(r.Context(), kid); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

// LabelsRequest replaces a device's labels.
type LabelsRequest struct {
	Labels []string `json:"labels"`
}

func (s *server) setLabels(w http.ResponseWriter, r *http.Request) error {
	kid, err := s.device(r)
	if err != nil {
		return err
	}
	var in LabelsRequest
	if err := readJSON(w, r, &in); err != nil {
		return err
	}
	if _, err := s.cfg.Engine.SetLabels(r.Context(), kid, in.Labels); err != nil {
		return err
	}
	return s.writeDevice(w, r, kid)
}

func (s *server) writeDevice(w http.ResponseWriter, r *http.Request, kid []byte) error {
	di, err := s.cfg.Engine.DeviceInfo(r.Context(), kid, 0)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, toDevice(di.Device, di.Installed, caller(r).Tenant))
	return nil
}

func (s *server) reattest(w http.ResponseWriter, r *http.Request) error {
	kid, err := s.device(r)
	if err != nil {
		return err
	}
	if _, err := s.cfg.Engine.Reattest(r.Context(), kid); err != nil {
		return err
	}
	return s.writeDevice(w, r, kid)
}

func (s *server) reset(w http.ResponseWriter, r *http.Request) error {
	kid, err := s.device(r)
	if err != nil {
		return err
	}
	if _, err := s.cfg.Engine.ResetDevice(r.Context(), kid); err != nil {
		return err
	}
	return s.writeDevice(w, r, kid)
}

func (s *server) listPersonalization(w http.ResponseWriter, r *http.Request) error {
	kid, err := s.device(r)
	if err != nil {
		return err
	}
	di, err := s.cfg.Engine.DeviceInfo(r.Context(), kid, 0)
	if err != nil {
		return err
	}
	out := []Personalization{}
	for _, p := range di.Personalization {
		out = append(out, toPersonalization(p))
	}
	writeJSON(w, http.StatusOK, out)
	return nil
}

// putPersonalization stores the body as the named item; "depends-on" query
// parameters name components it depends on.
func (s *server) putPersonalization(w http.ResponseWriter, r *http.Request) error {
	kid, err := s.device(r)
	if err != nil {
		return err
	}
	data, err := readBody(w, r, s.cfg.MaxUploadBytes)
	if err != nil {
		return err
	}
	var o tam.PersonalizationOptions
	for _, ref := range r.URL.Query()["depends-on"] {
		id, err := s.cfg.Engine.ResolveComponent(r.Context(), ref)
		if err != nil {
			return err
		}
		o.DependsOn = append(o.DependsOn, id)
	}
	p, err := s.cfg.Engine.SetPersonalization(r.Context(), kid, r.PathValue("name"), data, o)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusCreated, toPersonalization(p))
	return nil
}

func (s *server) deletePersonalization(w http.ResponseWriter, r *http.Request) error {
	kid, err := s.device(r)
	if err != nil {
		return err
	}
	if err := s.cfg.Engine.DeletePersonalization(r.Context(), kid, r.PathValue("name")); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

// ---- trust

// Roles in URLs.
const (
	TrustSigners   = "tc-signers"
	TrustVerifiers = "verifiers"
)

func role(r *http.Request) (tam.KeyRole, error) {
	switch r.PathValue("role") {
	case TrustSigners:
		return tam.RoleTCSigner, nil
	case TrustVerifiers:
		return tam.RoleVerifier, nil
	}
	return "", status(http.StatusNotFound, "trust role %q: want %s or %s", r.PathValue("role"), TrustSigners, TrustVerifiers)
}

func (s *server) listTrust(w http.ResponseWriter, r *http.Request) error {
	rl, err := role(r)
	if err != nil {
		return err
	}
	ks, err := s.cfg.Engine.TrustedKeys(r.Context(), rl)
	if err != nil {
		return err
	}
	out := []TrustedKey{}
	for _, k := range ks {
		tk, err := toTrustedKey(string(k.Role), k.KID, k.Key, k.Comment, k.CreatedAt)
		if err != nil {
			return err
		}
		out = append(out, tk)
	}
	writeJSON(w, http.StatusOK, out)
	return nil
}

func (s *server) addTrust(w http.ResponseWriter, r *http.Request) error {
	rl, err := role(r)
	if err != nil {
		return err
	}
	key, err := s.readKey(w, r)
	if err != nil {
		return err
	}
	k, err := s.cfg.Engine.AddTrustedKey(r.Context(), rl, key, r.URL.Query().Get("comment"))
	if err != nil {
		return err
	}
	tk, err := toTrustedKey(string(k.Role), k.KID, k.Key, k.Comment, k.CreatedAt)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusCreated, tk)
	return nil
}

func (s *server) deleteTrust(w http.ResponseWriter, r *http.Request) error {
	rl, err := role(r)
	if err != nil {
		return err
	}
	kid, err := hex.DecodeString(r.PathValue("kid"))
	if err != nil || len(kid) == 0 {
		return status(http.StatusBadRequest, "kid: want hex")
	}
	if err := s.cfg.Engine.RemoveTrustedKey(r.Context(), rl, kid); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}
