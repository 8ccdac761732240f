package teephttp

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"mime"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/teep-go/teep/internal/httpd"
	"github.com/teep-go/teep/internal/tam"
	"github.com/teep-go/teep/teep"
)

// MediaType is the TEEP media type (draft-ietf-teep-protocol-26 §12.1).
const MediaType = "application/teep+cbor"

// Defaults for Config.
const (
	DefaultPath          = "/tam"
	DefaultMaxBodyBytes  = 4 << 20
	DefaultHandleTimeout = 30 * time.Second
	DefaultMaxInFlight   = 256
)

// Engine is what the binding needs from the TAM.
type Engine interface {
	Handle(ctx context.Context, in []byte, o tam.HandleOptions) ([]byte, error)
}

// Config configures the TEEP endpoints.
type Config struct {
	Engine Engine
	// Path is the TAM URI path for draft-26 numbering; default "/tam".
	Path string
	// LegacyPath, when set, serves the numbering of drafts 18-25 there.
	// A session never mixes numberings: tokens are bound to the endpoint.
	LegacyPath string
	// MaxBodyBytes bounds a request body; larger ones get 413.
	MaxBodyBytes int64
	// HandleTimeout bounds the processing of one message.
	HandleTimeout time.Duration
	// MaxInFlight bounds concurrent TEEP requests; more get 503.
	MaxInFlight int
	Logger      *slog.Logger
	Registerer  prometheus.Registerer
}

// Handler serves the TEEP endpoints. Mount it on Path and LegacyPath (or
// use Register).
type Handler struct {
	cfg      Config
	log      *slog.Logger
	slots    chan struct{}
	requests *prometheus.CounterVec
	duration *prometheus.HistogramVec
}

// NewHandler checks cfg and returns the handler.
func NewHandler(cfg Config) (*Handler, error) {
	if cfg.Engine == nil {
		return nil, errors.New("teephttp: Config.Engine is required")
	}
	if cfg.Path == "" {
		cfg.Path = DefaultPath
	}
	if !strings.HasPrefix(cfg.Path, "/") || (cfg.LegacyPath != "" && !strings.HasPrefix(cfg.LegacyPath, "/")) {
		return nil, errors.New("teephttp: paths must start with /")
	}
	if cfg.LegacyPath == cfg.Path {
		return nil, errors.New("teephttp: the legacy path must differ from the draft-26 path")
	}
	if cfg.MaxBodyBytes <= 0 {
		cfg.MaxBodyBytes = DefaultMaxBodyBytes
	}
	if cfg.HandleTimeout <= 0 {
		cfg.HandleTimeout = DefaultHandleTimeout
	}
	if cfg.MaxInFlight <= 0 {
		cfg.MaxInFlight = DefaultMaxInFlight
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	h := &Handler{
		cfg:   cfg,
		log:   cfg.Logger,
		slots: make(chan struct{}, cfg.MaxInFlight),
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "teep_tam_http_requests_total", Help: "TEEP HTTP requests by endpoint numbering and status code.",
		}, []string{"numbering", "code"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "teep_tam_http_request_duration_seconds", Help: "TEEP HTTP request latency by endpoint numbering.",
			Buckets: prometheus.ExponentialBuckets(0.0005, 2, 16),
		}, []string{"numbering"}),
	}
	if cfg.Registerer != nil {
		for _, c := range []prometheus.Collector{h.requests, h.duration} {
			if err := cfg.Registerer.Register(c); err != nil {
				return nil, fmt.Errorf("teephttp: register metrics: %w", err)
			}
		}
	}
	return h, nil
}

// Register mounts the endpoints on mux.
func (h *Handler) Register(mux *http.ServeMux) {
	mux.Handle(h.cfg.Path, h)
	if h.cfg.LegacyPath != "" {
		mux.Handle(h.cfg.LegacyPath, h)
	}
}

// ServeHTTP implements the server side of draft-ietf-teep-otrp-over-http-15 §5.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	start := time.Now()
	numbering := teep.Draft26
	if h.cfg.LegacyPath != "" && r.URL.Path == h.cfg.LegacyPath {
		numbering = teep.Legacy
	}
	rw := &statusWriter{ResponseWriter: w}
	defer func() {
		h.requests.WithLabelValues(numbering.String(), strconv.Itoa(rw.code())).Inc()
		h.duration.WithLabelValues(numbering.String()).Observe(time.Since(start).Seconds())
	}()
	httpd.SecurityHeaders(rw.Header())
	peer := httpd.Peer(r)
	if r.URL.Path != h.cfg.Path && r.URL.Path != h.cfg.LegacyPath {
		h.fail(rw, r, peer, httpd.NewProblem(http.StatusNotFound, "not found"))
		return
	}
	if r.Method != http.MethodPost {
		rw.Header().Set("Allow", http.MethodPost)
		h.fail(rw, r, peer, httpd.NewProblem(http.StatusMethodNotAllowed, "only POST is allowed"))
		return
	}
	if !acceptsTEEP(r.Header.Values("Accept")) {
		h.fail(rw, r, peer, httpd.NewProblem(http.StatusNotAcceptable, "the response is "+MediaType))
		return
	}
	if r.ContentLength > h.cfg.MaxBodyBytes {
		h.fail(rw, r, peer, httpd.NewProblem(http.StatusRequestEntityTooLarge, fmt.Sprintf("body larger than %d bytes", h.cfg.MaxBodyBytes)))
		return
	}
	body, err := io.ReadAll(http.MaxBytesReader(rw, r.Body, h.cfg.MaxBodyBytes))
	if err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			h.fail(rw, r, peer, httpd.NewProblem(http.StatusRequestEntityTooLarge, fmt.Sprintf("body larger than %d bytes", h.cfg.MaxBodyBytes)))
			return
		}
		h.fail(rw, r, peer, httpd.NewProblem(http.StatusBadRequest, "could not read the body"))
		return
	}
	ct := r.Header.Get("Content-Type")
	// An empty POST starts a session and needs no Content-Type; a body
	// must be declared as TEEP.
	if (len(body) > 0 || ct != "") && !isTEEP(ct) {
		h.fail(rw, r, peer, httpd.NewProblem(http.StatusUnsupportedMediaType, "Content-Type must be "+MediaType))
		return
	}
	select {
	case h.slots <- struct{}{}:
		defer func() { <-h.slots }()
	default:
		rw.Header().Set("Retry-After", "1")
		h.fail(rw, r, peer, httpd.NewProblem(http.StatusServiceUnavailable, "busy; retry later"))
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), h.cfg.HandleTimeout)
	defer cancel()
	out, err := h.cfg.Engine.Handle(ctx, body, tam.HandleOptions{Numbering: numbering, Peer: peer})
	if err != nil {
		p := problemFor(err, numbering)
		if p.Status == http.StatusServiceUnavailable {
			rw.Header().Set("Retry-After", "5")
		}
		h.fail(rw, r, peer, p)
		return
	}
	if len(out) == 0 {
		rw.WriteHeader(http.StatusNoContent)
		return
	}
	rw.Header().Set("Content-Type", MediaType)
	rw.Header().Set("Content-Length", strconv.Itoa(len(out)))
	rw.WriteHeader(http.StatusOK)
	rw.Write(out)
}

// problemFor is the one place mapping engine errors to HTTP statuses and
// problem details. A message the TAM drops (draft-ietf-teep-protocol-26
// §4.1.2) gets 400 with a short reason and, when the failure maps to one, the
// TEEP err-code an Agent would have sent for it (in the endpoint's
// numbering): the Broker then reports a failed session to its Agent. The
// reason is the engine's, safe for the peer; causes stay in the logs.
func problemFor(err error, n teep.Numbering) *httpd.Problem {
	var te *tam.Error
	if errors.As(err, &te) {
		switch te.Kind {
		case tam.KindBadMessage, tam.KindUnauthorized, tam.KindReplay:
			p := &httpd.Problem{Type: httpd.TypeTEEPMessage, Title: "TEEP message refused", Status: http.StatusBadRequest,
				Detail: te.Reason}
			if c := teep.CodeOf(te.Err); te.Err != nil && c != teep.ErrTemporaryError {
				p.ErrCode = n.WireErrCode(c)
			}
			return p
		case tam.KindUnavailable:
			return httpd.NewProblem(http.StatusServiceUnavailable, te.Reason)
		}
	}
	if errors.Is(err, context.DeadlineExceeded) {
		return httpd.NewProblem(http.StatusServiceUnavailable, "timed out; retry later")
	}
	return httpd.NewProblem(http.StatusInternalServerError, "internal error")
}

// fail answers with a problem document (never HTML, never a TEEP message:
// these are failures of the transport, draft-ietf-teep-otrp-over-http-15 §6)
// and logs it.
func (h *Handler) fail(w http.ResponseWriter, r *http.Request, peer string, p *httpd.Problem) {
	level := slog.LevelInfo
	switch {
	case p.Status == http.StatusServiceUnavailable:
		level = slog.LevelWarn // overload or a timeout: the peer retries
	case p.Status >= 500:
		level = slog.LevelError
	}
	h.log.Log(r.Context(), level, "TEEP HTTP request refused", "peer", peer, "method", r.Method, "path", r.URL.Path,
		"status", p.Status, "reason", p.Detail)
	httpd.WriteProblem(w, p)
}

func isTEEP(ct string) bool {
	mt, _, err := mime.ParseMediaType(ct)
	return err == nil && mt == MediaType
}

// acceptsTEEP reports whether the Accept header values allow the TEEP media
// type; no Accept header accepts anything (RFC 9110 §12.5.1).
func acceptsTEEP(values []string) bool {
	if len(values) == 0 {
		return true
	}
	for _, v := range values {
		for _, part := range strings.Split(v, ",") {
			mt, params, err := mime.ParseMediaType(strings.TrimSpace(part))
			if err != nil {
				continue
			}
			if q, ok := params["q"]; ok {
				if f, err := strconv.ParseFloat(q, 64); err == nil && f == 0 {
					continue
				}
			}
			if mt == MediaType || mt == "application/*" || mt == "*/*" {
				return true
			}
		}
	}
	return false
}

type statusWriter struct {
	http.ResponseWriter
	status int
}

func (s *statusWriter) WriteHeader(code int) {
	if s.status == 0 {
		s.status = code
	}
	s.ResponseWriter.WriteHeader(code)
}

func (s *statusWriter) Write(b []byte) (int, error) {
	if s.status == 0 {
		s.status = http.StatusOK
	}
	return s.ResponseWriter.Write(b)
}

func (s *statusWriter) code() int {
	if s.status == 0 {
		return http.StatusOK
	}
	return s.status
}
