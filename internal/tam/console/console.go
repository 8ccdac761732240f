package console

import (
	"bytes"
	"embed"
	"errors"
	"fmt"
	"html/template"
	"io/fs"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/teep-go/teep/internal/tam"
	"github.com/teep-go/teep/internal/tam/admin"
)

// Prefix is where the console is mounted.
const Prefix = "/console/"

// CSP is the Content-Security-Policy of every console response: only the
// console's own style sheet, no script at all, no framing, forms posting
// back to the console only.
const CSP = "default-src 'none'; style-src 'self'; img-src 'self' data:; form-action 'self'; frame-ancestors 'none'; base-uri 'none'"

// Defaults of Config.
const (
	DefaultIdleTimeout = 30 * time.Minute
	DefaultSessionLife = 12 * time.Hour
	DefaultMaxSessions = 10000
	DefaultRefresh     = 5 * time.Second
	// MaxFormBytes bounds a form without a file; uploads get
	// admin.DefaultMaxUploadBytes plus room for the multipart framing.
	MaxFormBytes      = 64 << 10
	maxUploadOverhead = 64 << 10
	// MaxRolloutDevices bounds the devices a rollout page reads one by one.
	MaxRolloutDevices = 2000
)

// Config configures the console.
type Config struct {
	// API is the handler serving the admin API (admin.Register's mux):
	// every page and change is a call of it.
	API http.Handler
	// IdleTimeout and SessionLife end a session after that long unused, or
	// that long after sign-in.
	IdleTimeout, SessionLife time.Duration
	MaxSessions              int
	// Refresh is the reload interval of the live pages (overview, device,
	// rollout); negative turns it off.
	Refresh        time.Duration
	MaxUploadBytes int64
	Logger         *slog.Logger
	Clock          func() time.Time
}

//go:embed templates/*.html static/*
var files embed.FS

// Console is the console's handler.
type Console struct {
	cfg      Config
	log      *slog.Logger
	sessions *sessions
	pages    map[string]*template.Template
	static   http.Handler
}

// New builds the console.
func New(cfg Config) (*Console, error) {
	if cfg.API == nil {
		return nil, errors.New("console: Config.API is required")
	}
	if cfg.IdleTimeout <= 0 {
		cfg.IdleTimeout = DefaultIdleTimeout
	}
	if cfg.SessionLife <= 0 {
		cfg.SessionLife = DefaultSessionLife
	}
	if cfg.MaxSessions <= 0 {
		cfg.MaxSessions = DefaultMaxSessions
	}
	if cfg.Refresh == 0 {
		cfg.Refresh = DefaultRefresh
	}
	if cfg.MaxUploadBytes <= 0 {
		cfg.MaxUploadBytes = admin.DefaultMaxUploadBytes
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.Clock == nil {
		cfg.Clock = time.Now
	}
	c := &Console{cfg: cfg, log: cfg.Logger, pages: map[string]*template.Template{},
		sessions: &sessions{m: map[[32]byte]*session{}, idle: cfg.IdleTimeout, life: cfg.SessionLife, max: cfg.MaxSessions, clock: cfg.Clock}}
	names, err := fs.Glob(files, "templates/*.html")
	if err != nil {
		return nil, err
	}
	for _, n := range names {
		base := strings.TrimSuffix(strings.TrimPrefix(n, "templates/"), ".html")
		if base == "layout" {
			continue
		}
		t, err := template.New("layout.html").Funcs(funcs).ParseFS(files, "templates/layout.html", n)
		if err != nil {
			return nil, fmt.Errorf("console: template %s: %w", n, err)
		}
		c.pages[base] = t
	}
	sub, _ := fs.Sub(files, "static")
	c.static = http.StripPrefix(Prefix+"static/", http.FileServerFS(sub))
	return c, nil
}

// Sessions reports how many sessions are stored (for tests and metrics).
func (c *Console) Sessions() int { return c.sessions.len() }

// req is one authenticated console request.
type req struct {
	w   http.ResponseWriter
	r   *http.Request
	s   *session
	who admin.Whoami
}

func (q *req) can(method, path string) bool {
	return admin.Permits(tam.Role(q.who.Role), method, path)
}

type handler func(c *Console, q *req) error

func (c *Console) routes() map[string]handler {
	return map[string]handler{
		"GET /console/{$}":                        (*Console).overview,
		"GET /console/devices":                    (*Console).devices,
		"GET /console/devices/{kid}":              (*Console).device,
		"POST /console/devices/{kid}/labels":      (*Console).deviceLabels,
		"POST /console/devices/{kid}/reattest":    (*Console).deviceReattest,
		"POST /console/devices/{kid}/reset":       (*Console).deviceReset,
		"GET /console/components":                 (*Console).components,
		"POST /console/components":                (*Console).uploadComponent,
		"GET /console/components/{id}":            (*Console).component,
		"GET /console/components/{id}/rollout":    (*Console).rollout,
		"GET /console/policies":                   (*Console).policies,
		"POST /console/policies":                  (*Console).setPolicy,
		"POST /console/policies/{id}/delete":      (*Console).deletePolicy,
		"GET /console/trust":                      (*Console).trust,
		"POST /console/trust/{role}":              (*Console).addTrust,
		"POST /console/trust/{role}/{kid}/delete": (*Console).deleteTrust,
		"GET /console/tokens":                     (*Console).tokens,
		"POST /console/tokens":                    (*Console).createToken,
		"POST /console/tokens/{id}/revoke":        (*Console).revokeToken,
		"GET /console/audit":                      (*Console).audit,
		"POST /console/logout":                    (*Console).logout,
	}
}

// Handler returns the console's routes, to be mounted at Prefix.
func (c *Console) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /console/login", c.loginPage)
	mux.HandleFunc("POST /console/login", c.login)
	mux.Handle("GET /console/static/", c.static)
	for pattern, h := range c.routes() {
		mux.Handle(pattern, c.guard(h))
	}
	mux.HandleFunc("/console/", func(w http.ResponseWriter, r *http.Request) {
		c.renderError(w, r, nil, http.StatusNotFound, "no such page: "+r.URL.Path)
	})
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		h.Set("Content-Security-Policy", CSP)
		h.Set("X-Content-Type-Options", "nosniff")
		h.Set("Referrer-Policy", "no-referrer")
		h.Set("X-Frame-Options", "DENY")
		h.Set("Cache-Control", "no-store")
		if r.URL.Path == "/console" {
			http.Redirect(w, r, Prefix, http.StatusSeeOther)
			return
		}
		mux.ServeHTTP(w, r)
	})
}

// guard finds the session, checks the CSRF token of a POST, asks the API
// who the token is (so a revoked or expired token ends the session now),
// and runs h.
func (c *Console) guard(h handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s := c.sessions.get(r)
		if s == nil {
			if r.Method == http.MethodGet {
				http.Redirect(w, r, Prefix+"login?next="+url.QueryEscape(r.URL.RequestURI()), http.StatusSeeOther)
				return
			}
			c.renderError(w, r, nil, http.StatusForbidden, "not signed in (or the session expired)")
			return
		}
		if r.Method == http.MethodPost {
			if err := parseForm(w, r, c.cfg.MaxUploadBytes+maxUploadOverhead); err != nil {
				c.renderError(w, r, nil, http.StatusBadRequest, err.Error())
				return
			}
			if !checkCSRF(s, r.PostFormValue("csrf")) {
				c.log.Warn("console POST with a missing or wrong CSRF token", "peer", r.RemoteAddr, "path", r.URL.Path)
				c.renderError(w, r, nil, http.StatusForbidden, "missing or wrong CSRF token: reload the page and try again")
				return
			}
		}
		q := &req{w: w, r: r, s: s}
		if err := c.call(r, s.secret, "GET", admin.Prefix+"whoami", "", nil, &q.who); err != nil {
			var ae *apiError
			if errors.As(err, &ae) && ae.Status == http.StatusUnauthorized {
				c.sessions.drop(s)
				http.SetCookie(w, sessionCookie(r, "", -1))
				if r.Method == http.MethodGet {
					http.Redirect(w, r, Prefix+"login", http.StatusSeeOther)
					return
				}
				c.renderError(w, r, nil, http.StatusForbidden, "the token is no longer valid: sign in again")
				return
			}
			c.renderError(w, r, q, statusOf(err), err.Error())
			return
		}
		if err := h(c, q); err != nil {
			c.renderError(w, r, q, statusOf(err), detailOf(err))
		}
	})
}

func parseForm(w http.ResponseWriter, r *http.Request, uploadLimit int64) error {
	if strings.HasPrefix(r.Header.Get("Content-Type"), "multipart/form-data") {
		r.Body = http.MaxBytesReader(w, r.Body, uploadLimit)
		if err := r.ParseMultipartForm(1 << 20); err != nil {
			return fmt.Errorf("reading the form: %v", err)
		}
		return nil
	}
	r.Body = http.MaxBytesReader(w, r.Body, MaxFormBytes)
	if err := r.ParseForm(); err != nil {
		return fmt.Errorf("reading the form: %v", err)
	}
	return nil
}

func statusOf(err error) int {
	var ae *apiError
	if errors.As(err, &ae) {
		return ae.Status
	}
	var fe *formError
	if errors.As(err, &fe) {
		return http.StatusBadRequest
	}
	return http.StatusInternalServerError
}

func detailOf(err error) string {
	var ae *apiError
	if errors.As(err, &ae) {
		return ae.Detail
	}
	var fe *formError
	if errors.As(err, &fe) {
		return fe.msg
	}
	return "internal error"
}

// formError is a bad form field.
type formError struct{ msg string }

func (e *formError) Error() string { return e.msg }

func badForm(format string, a ...any) error { return &formError{fmt.Sprintf(format, a...)} }

// view is what every page template gets.
type view struct {
	Title   string
	Nav     string
	Who     *admin.Whoami
	CSRF    string
	Flash   string
	Error   string
	Secret  string // a created token's secret, shown once
	Refresh int    // seconds; 0 for none
	Status  int
	Now     time.Time
	Data    any
	q       *req
}

// Can reports whether the token's role may call the API route; the
// templates show a form only when it may.
func (v *view) Can(method, path string) bool { return v.q != nil && v.q.can(method, path) }

// render writes a page.
func (c *Console) render(q *req, code int, name string, v *view) error {
	t := c.pages[name]
	if t == nil {
		return fmt.Errorf("console: no template %s", name)
	}
	v.q, v.Now = q, c.cfg.Clock()
	if q != nil {
		v.Who, v.CSRF = &q.who, q.s.csrf
		if v.Flash == "" && v.Error == "" && v.Secret == "" {
			v.Flash, v.Error, v.Secret = c.sessions.takeFlash(q.s)
		}
	}
	if v.Refresh != 0 && c.cfg.Refresh > 0 {
		v.Refresh = int(c.cfg.Refresh / time.Second)
		if v.Refresh < 1 {
			v.Refresh = 1
		}
	} else {
		v.Refresh = 0
	}
	var buf bytes.Buffer
	if err := t.Execute(&buf, v); err != nil {
		return fmt.Errorf("console: rendering %s: %w", name, err)
	}
	w := q.w
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.WriteHeader(code)
	_, err := w.Write(buf.Bytes())
	return err
}

func (c *Console) renderError(w http.ResponseWriter, r *http.Request, q *req, code int, detail string) {
	if code >= 500 {
		c.log.Error("console request failed", "peer", r.RemoteAddr, "path", r.URL.Path, "status", code, "err", detail)
		detail = "internal error"
	}
	if q == nil {
		q = &req{w: w, r: r}
	}
	v := &view{Title: http.StatusText(code), Status: code, Error: detail}
	var err error
	if q.s == nil {
		err = c.renderBare(w, code, "error", v)
	} else {
		err = c.render(q, code, "error", v)
	}
	if err != nil {
		c.log.Error("console error page", "err", err)
	}
}

// renderBare renders a page for a request without a session.
func (c *Console) renderBare(w http.ResponseWriter, code int, name string, v *view) error {
	var buf bytes.Buffer
	v.Now = c.cfg.Clock()
	if err := c.pages[name].Execute(&buf, v); err != nil {
		return err
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.WriteHeader(code)
	_, err := w.Write(buf.Bytes())
	return err
}

// done ends a change: a flash message and a redirect to the page showing
// the result (Post/Redirect/Get, so reloading does not repeat the change).
func (c *Console) done(q *req, to, msg string) error {
	c.sessions.setFlash(q.s, msg, "", "")
	http.Redirect(q.w, q.r, to, http.StatusSeeOther)
	return nil
}
