package verifier

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"mime"
	"net/http"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/teep-go/teep/cosekey"
	"github.com/teep-go/teep/eat"
	"github.com/teep-go/teep/internal/httpd"
)

// HTTP API of the Verifier service (passport model):
//
//	POST /v1/evidence  body: Evidence (Content-Type application/eat+cwt)
//	                   200: the signed Attestation Result (application/eat+cwt;
//	                   eat_profile=...), whatever its status; the status is
//	                   also in the Attestation-Status response header
//	                   400 malformed, 403 not signed by an endorsed key,
//	                   413 too large, 415 wrong type, 503 busy; errors are
//	                   RFC 9457 application/problem+json
//	GET  /v1/key       the result-signing public key as a COSE_Key
//	                   (application/cose-key), for operators to pin
//	GET  /healthz      200 "ok"
//	                   (every error answer is a problem document, internal/httpd)
//	GET  /metrics      Prometheus metrics, when a registry is configured
const (
	PathEvidence = "/v1/evidence"
	PathKey      = "/v1/key"
	PathHealth   = "/healthz"
	PathMetrics  = "/metrics"
)

// Server limits.
const (
	DefaultMaxInFlight = 64
	DefaultTimeout     = 10 * time.Second
)

// ServerConfig configures the HTTP service.
type ServerConfig struct {
	Verifier *Verifier // must have a result-signing key
	Logger   *slog.Logger
	// Registry, when set, gets the service's metrics and is served at /metrics.
	Registry *prometheus.Registry
	// MaxEvidenceSize bounds request bodies; default eat.DefaultLimits.MaxTokenSize.
	MaxEvidenceSize int64
	// MaxInFlight bounds concurrent appraisals; more get 503. Default 64.
	MaxInFlight int
}

// Server is the Verifier's HTTP service.
type Server struct {
	v       atomic.Pointer[Verifier]
	log     *slog.Logger
	reg     *prometheus.Registry
	maxBody int64
	sem     chan struct{}
	keyCOSE []byte

	requests   *prometheus.CounterVec
	appraisals *prometheus.CounterVec
	duration   prometheus.Histogram
}

// NewServer checks the configuration and registers metrics.
func NewServer(cfg ServerConfig) (*Server, error) {
	if cfg.Verifier == nil || cfg.Verifier.key == nil {
		return nil, errors.New("verifier server: need a Verifier with a result-signing key")
	}
	s := &Server{log: cfg.Logger, reg: cfg.Registry, maxBody: cfg.MaxEvidenceSize}
	s.v.Store(cfg.Verifier)
	if s.log == nil {
		s.log = slog.New(slog.DiscardHandler)
	}
	if s.maxBody <= 0 {
		s.maxBody = int64(eat.DefaultLimits.MaxTokenSize)
	}
	n := cfg.MaxInFlight
	if n <= 0 {
		n = DefaultMaxInFlight
	}
	s.sem = make(chan struct{}, n)
	var err error
	if s.keyCOSE, err = cfg.Verifier.key.PublicKey().MarshalCOSEKey(false); err != nil {
		return nil, err
	}
	s.requests = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "teep_verifier_requests_total", Help: "Evidence requests by HTTP status code.",
	}, []string{"code"})
	s.appraisals = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "teep_verifier_appraisals_total", Help: "Attestation Results issued, by status.",
	}, []string{"status"})
	s.duration = prometheus.NewHistogram(prometheus.HistogramOpts{
		Name: "teep_verifier_appraisal_seconds", Help: "Time to appraise Evidence and sign the result.",
		Buckets: prometheus.ExponentialBuckets(0.0001, 4, 8),
	})
	if s.reg != nil {
		for _, c := range []prometheus.Collector{s.requests, s.appraisals, s.duration} {
			if err := s.reg.Register(c); err != nil {
				return nil, fmt.Errorf("verifier server: metrics: %w", err)
			}
		}
	}
	return s, nil
}

// SetVerifier swaps in a Verifier with a new policy (e.g. on SIGHUP).
// Requests in progress finish with the old one. The result-signing key
// must stay the same: TAMs have pinned it.
func (s *Server) SetVerifier(v *Verifier) error {
	if v == nil || v.key == nil || !v.key.PublicKey().Equal(s.v.Load().key.PublicKey()) {
		return errors.New("verifier server: the new Verifier must sign with the same key")
	}
	s.v.Store(v)
	return nil
}

// Handler returns the service's routes.
func (s *Server) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("POST "+PathEvidence, s.evidence)
	mux.HandleFunc("GET "+PathKey, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/cose-key")
		w.Write(s.keyCOSE)
	})
	mux.HandleFunc("GET "+PathHealth, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		io.WriteString(w, "ok\n")
	})
	if s.reg != nil {
		mux.Handle("GET "+PathMetrics, promhttp.HandlerFor(s.reg, promhttp.HandlerOpts{}))
	}
	return httpd.WithSecurityHeaders(httpd.Routes(mux))
}

// Timeouts of the service's connections: Evidence is small and appraisal
// fast, so slow or idle clients cannot hold connections long.
const (
	ReadHeaderTimeout = 5 * time.Second
	IdleTimeout       = 60 * time.Second
	MaxHeaderBytes    = 16 << 10
	ShutdownTimeout   = 10 * time.Second
)

// HTTPServer wraps the handler in the shared server (internal/httpd) with
// the service's timeouts.
func (s *Server) HTTPServer() (*httpd.Server, error) {
	return httpd.NewServer(httpd.ServerConfig{
		Handler:           s.Handler(),
		ReadHeaderTimeout: ReadHeaderTimeout,
		ReadTimeout:       DefaultTimeout,
		WriteTimeout:      DefaultTimeout,
		IdleTimeout:       IdleTimeout,
		ShutdownTimeout:   ShutdownTimeout,
		MaxHeaderBytes:    MaxHeaderBytes,
		Logger:            s.log,
	})
}

// problem answers with an RFC 9457 problem document (internal/httpd).
func (s *Server) problem(w http.ResponseWriter, r *http.Request, code int, detail string) {
	s.requests.WithLabelValues(strconv.Itoa(code)).Inc()
	s.log.Warn("evidence rejected", "peer", httpd.Peer(r), "status", code, "detail", detail)
	httpd.WriteProblem(w, httpd.NewProblem(code, detail))
}

func (s *Server) evidence(w http.ResponseWriter, r *http.Request) {
	if !acceptableEvidenceType(r.Header.Get("Content-Type")) {
		s.problem(w, r, http.StatusUnsupportedMediaType, "Content-Type must be "+eat.MediaTypeEAT)
		return
	}
	select {
	case s.sem <- struct{}{}:
		defer func() { <-s.sem }()
	default:
		w.Header().Set("Retry-After", "1")
		s.problem(w, r, http.StatusServiceUnavailable, "too many appraisals in progress")
		return
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, s.maxBody))
	if err != nil {
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			s.problem(w, r, http.StatusRequestEntityTooLarge, fmt.Sprintf("evidence exceeds %d bytes", s.maxBody))
			return
		}
		s.problem(w, r, http.StatusBadRequest, "reading the body: "+err.Error())
		return
	}
	start := time.Now()
	// The nonce is the TEEP token, which only the TAM knows: it is echoed,
	// not compared, and the TAM checks it in VerifyResult.
	v := s.v.Load()
	a, err := v.AppraiseEvidence(r.Context(), body, Expectations{})
	switch {
	case errors.Is(err, ErrMalformed) && (a == nil || a.Claims == nil):
		s.problem(w, r, http.StatusBadRequest, err.Error())
		return
	case errors.Is(err, ErrUntrusted) && (a == nil || a.SignerKey == nil):
		s.problem(w, r, http.StatusForbidden, err.Error())
		return
	case a == nil:
		s.problem(w, r, http.StatusServiceUnavailable, err.Error())
		return
	}
	res, ierr := v.IssueResult(a)
	if ierr != nil {
		s.log.Error("issuing a result failed", "err", ierr)
		s.problem(w, r, http.StatusInternalServerError, "could not issue a result")
		return
	}
	s.duration.Observe(time.Since(start).Seconds())
	s.appraisals.WithLabelValues(a.Status.String()).Inc()
	s.requests.WithLabelValues("200").Inc()
	s.log.Info("attestation result issued", "peer", httpd.Peer(r), "status", a.Status.String(),
		"endorsement", a.Endorsement, "ueid", fmt.Sprintf("%x", a.Claims.UEID), "reasons", a.Reasons)
	w.Header().Set("Content-Type", eat.MediaTypeTEEP)
	w.Header().Set("Attestation-Status", a.Status.String())
	w.Write(res)
}

// acceptableEvidenceType admits application/eat+cwt with no profile or the
// TEEP profile.
func acceptableEvidenceType(ct string) bool {
	if eat.IsTEEPMediaType(ct) {
		return true
	}
	mt, params, err := mime.ParseMediaType(ct)
	return err == nil && mt == eat.MediaTypeEAT && len(params) == 0
}

// Client talks to a Verifier service.
type Client struct {
	URL  string       // base URL, e.g. http://127.0.0.1:8090
	HTTP *http.Client // nil: a client with a 10 s timeout that does not follow redirects
	// VerifierKeys are the pinned result-signing keys, for AppraiseEvidence.
	VerifierKeys []*cosekey.Key
}

// MaxResultSize bounds what the client reads back.
const MaxResultSize = 64 << 10

func (c *Client) http() *http.Client {
	if c.HTTP != nil {
		return c.HTTP
	}
	return &http.Client{
		Timeout: DefaultTimeout,
		CheckRedirect: func(*http.Request, []*http.Request) error {
			return http.ErrUseLastResponse
		},
	}
}

// Result posts Evidence and returns the signed Attestation Result (the
// passport) without checking it; the TAM does that.
func (c *Client) Result(ctx context.Context, evidence []byte) ([]byte, error) {
	u := strings.TrimSuffix(c.URL, "/") + PathEvidence
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, u, bytes.NewReader(evidence))
	if err != nil {
		return nil, fmt.Errorf("verifier client: %w", err)
	}
	req.Header.Set("Content-Type", eat.MediaTypeTEEP)
	req.Header.Set("Accept", eat.MediaTypeEAT)
	resp, err := c.http().Do(req)
	if err != nil {
		return nil, fmt.Errorf("verifier client: %w", err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, MaxResultSize+1))
	if err != nil {
		return nil, fmt.Errorf("verifier client: reading the response: %w", err)
	}
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("verifier client: %s: %s", resp.Status, httpd.ErrorText(resp.Header.Get("Content-Type"), body))
	}
	if len(body) > MaxResultSize {
		return nil, fmt.Errorf("verifier client: result exceeds %d bytes", MaxResultSize)
	}
	if ct := resp.Header.Get("Content-Type"); !eat.IsTEEPMediaType(ct) {
		return nil, fmt.Errorf("verifier client: unexpected Content-Type %q", ct)
	}
	return body, nil
}

// AppraiseEvidence lets a TAM use a remote Verifier in the background-check
// model: it posts the Evidence and checks the result against the pinned
// VerifierKeys and the expectations (exp.Nonce = the challenge sent).
func (c *Client) AppraiseEvidence(ctx context.Context, evidence []byte, exp Expectations) (*Appraisal, error) {
	res, err := c.Result(ctx, evidence)
	if err != nil {
		return nil, err
	}
	return VerifyResult(res, c.VerifierKeys, exp)
}
