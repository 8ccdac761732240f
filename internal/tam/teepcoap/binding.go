package teepcoap

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"time"

	"github.com/plgd-dev/go-coap/v3/message"
	"github.com/plgd-dev/go-coap/v3/message/codes"
	"github.com/plgd-dev/go-coap/v3/mux"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/teep-go/teep/internal/coapbind"
	"github.com/teep-go/teep/internal/tam"
	"github.com/teep-go/teep/teep"
)

// Defaults and limits of Config.
const (
	DefaultPath          = "/tam"
	DefaultMaxBodyBytes  = 4 << 20
	DefaultHandleTimeout = 30 * time.Second
	DefaultMaxInFlight   = 256
	// BusyMaxAge is the Max-Age (seconds) of a 5.03 for a full TAM;
	// UnavailableMaxAge that of a 5.03 from the engine (store busy, timeout).
	BusyMaxAge        = 1
	UnavailableMaxAge = 5
	// PeersFullMaxAge is that of a 5.03 to a UDP or DTLS peer beyond
	// MaxPeers: peers leave only after PeerIdleTimeout, so not at once.
	PeersFullMaxAge = 30
)

// Engine is what the binding needs from the TAM.
type Engine interface {
	Handle(ctx context.Context, in []byte, o tam.HandleOptions) ([]byte, error)
}

// Config configures the TEEP resources.
type Config struct {
	Engine Engine
	// Path is the TAM resource for draft-26 numbering; default "/tam".
	Path string
	// LegacyPath, when set, serves the numbering of drafts 18-25 there.
	LegacyPath string
	// MaxBodyBytes bounds a request body (whole, after Block1
	// reassembly); larger ones get 4.13 with Size1.
	MaxBodyBytes int64
	// HandleTimeout bounds the processing of one message.
	HandleTimeout time.Duration
	// MaxInFlight bounds concurrent TEEP requests (all transports); more
	// get 5.03 with Max-Age.
	MaxInFlight int
	Logger      *slog.Logger
	Registerer  prometheus.Registerer
}

// Handler serves the TEEP resources on every CoAP transport.
type Handler struct {
	cfg     Config
	log     *slog.Logger
	slots   chan struct{}
	metrics *metrics
}

// NewHandler checks cfg and returns the handler.
func NewHandler(cfg Config) (*Handler, error) {
	if cfg.Engine == nil {
		return nil, errors.New("teepcoap: Config.Engine is required")
	}
	if cfg.Path == "" {
		cfg.Path = DefaultPath
	}
	if !strings.HasPrefix(cfg.Path, "/") || (cfg.LegacyPath != "" && !strings.HasPrefix(cfg.LegacyPath, "/")) {
		return nil, errors.New("teepcoap: paths must start with /")
	}
	if cfg.LegacyPath == cfg.Path {
		return nil, errors.New("teepcoap: the legacy path must differ from the draft-26 path")
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
	m, err := newMetrics(cfg.Registerer)
	if err != nil {
		return nil, err
	}
	return &Handler{cfg: cfg, log: cfg.Logger, slots: make(chan struct{}, cfg.MaxInFlight), metrics: m}, nil
}

// MaxBodyBytes is the request body limit in force.
func (h *Handler) MaxBodyBytes() int64 { return h.cfg.MaxBodyBytes }

// forTransport is the mux.Handler of one transport (the metrics label).
type forTransport struct {
	h         *Handler
	transport string
}

func (f forTransport) ServeCOAP(w mux.ResponseWriter, r *mux.Message) {
	start := time.Now()
	code := f.h.serve(f.transport, w, r)
	f.h.metrics.requests.WithLabelValues(f.transport, coapbind.Label(code)).Inc()
	f.h.metrics.duration.WithLabelValues(f.transport).Observe(time.Since(start).Seconds())
}

// Handler returns the mux.Handler for a transport ("udp", "dtls", "tcp",
// "tls"), which labels its metrics.
func (h *Handler) Handler(transport string) mux.Handler {
	return forTransport{h: h, transport: transport}
}

// refusal is a transport-level error answer.
type refusal struct {
	code   codes.Code
	reason string
	maxAge uint32 // 5.03
	size1  uint32 // 4.13
}

func (h *Handler) serve(transport string, w mux.ResponseWriter, r *mux.Message) (code codes.Code) {
	peer := transport + " " + w.Conn().RemoteAddr().String()
	defer func() {
		if p := recover(); p != nil {
			h.log.Error("CoAP handler panic", "peer", peer, "panic", fmt.Sprint(p))
			code = codes.InternalServerError
			h.refuse(w, peer, refusal{code: code, reason: "internal error"})
		}
	}()
	out, ref := h.handle(r.Context(), peer, r)
	if ref != nil {
		h.refuse(w, peer, *ref)
		return ref.code
	}
	if len(out) == 0 {
		// The session is over: 2.04 without payload.
		if err := w.SetResponse(codes.Changed, coapbind.ContentFormat, nil); err != nil {
			h.log.Warn("CoAP response", "peer", peer, "err", err)
		}
		return codes.Changed
	}
	if err := w.SetResponse(codes.Changed, coapbind.ContentFormat, bytes.NewReader(out)); err != nil {
		h.log.Warn("CoAP response", "peer", peer, "err", err)
	}
	return codes.Changed
}

func (h *Handler) handle(ctx context.Context, peer string, r *mux.Message) ([]byte, *refusal) {
	path, err := r.Path()
	if err != nil {
		path = "/"
	}
	numbering := teep.Draft26
	switch {
	case path == h.cfg.Path:
	case h.cfg.LegacyPath != "" && path == h.cfg.LegacyPath:
		numbering = teep.Legacy
	default:
		return nil, &refusal{code: codes.NotFound, reason: "no TEEP resource at " + coapbind.Clip(path)}
	}
	if r.Code() != codes.POST {
		return nil, &refusal{code: codes.MethodNotAllowed, reason: "only POST is allowed"}
	}
	if accept, err := r.Accept(); err == nil && accept != coapbind.ContentFormat {
		return nil, &refusal{code: codes.NotAcceptable, reason: fmt.Sprintf("the response is application/teep+cbor (Content-Format %d)", coapbind.ContentFormat)}
	}
	var body []byte
	if b := r.Body(); b != nil {
		if n, err := r.BodySize(); err == nil && n > h.cfg.MaxBodyBytes {
			return nil, tooLarge(h.cfg.MaxBodyBytes)
		}
		body, err = io.ReadAll(io.LimitReader(b, h.cfg.MaxBodyBytes+1))
		if err != nil {
			return nil, &refusal{code: codes.BadRequest, reason: "could not read the payload"}
		}
		if int64(len(body)) > h.cfg.MaxBodyBytes {
			return nil, tooLarge(h.cfg.MaxBodyBytes)
		}
	}
	cf, cfErr := r.ContentFormat()
	// An empty POST starts a session and needs no Content-Format; a
	// payload must be declared as TEEP.
	if (len(body) > 0 || cfErr == nil) && (cfErr != nil || cf != coapbind.ContentFormat) {
		return nil, &refusal{code: codes.UnsupportedMediaType, reason: fmt.Sprintf("Content-Format must be %d (application/teep+cbor)", coapbind.ContentFormat)}
	}
	select {
	case h.slots <- struct{}{}:
		defer func() { <-h.slots }()
	default:
		return nil, &refusal{code: codes.ServiceUnavailable, reason: "busy; retry later", maxAge: BusyMaxAge}
	}
	ctx, cancel := context.WithTimeout(ctx, h.cfg.HandleTimeout)
	defer cancel()
	out, err := h.cfg.Engine.Handle(ctx, body, tam.HandleOptions{Numbering: numbering, Peer: peer})
	if err != nil {
		ref := codeFor(err)
		return nil, &ref
	}
	return out, nil
}

func tooLarge(limit int64) *refusal {
	return &refusal{code: codes.RequestEntityTooLarge, reason: fmt.Sprintf("payload larger than %d bytes", limit),
		size1: uint32(min(limit, 1<<32-1))}
}

// codeFor is the one place mapping engine errors to CoAP codes; it mirrors
// teephttp's statusFor (400 → 4.00, 503 → 5.03, 500 → 5.00). A message the
// TAM drops (draft-ietf-teep-protocol-26 §4.1.2) gets 4.00 with a short
// reason: the Broker then reports a failed session to its Agent.
func codeFor(err error) refusal {
	var te *tam.Error
	if errors.As(err, &te) {
		switch te.Kind {
		case tam.KindBadMessage, tam.KindUnauthorized, tam.KindReplay:
			return refusal{code: codes.BadRequest, reason: te.Reason}
		case tam.KindUnavailable:
			return refusal{code: codes.ServiceUnavailable, reason: te.Reason, maxAge: UnavailableMaxAge}
		}
	}
	if errors.Is(err, context.DeadlineExceeded) {
		return refusal{code: codes.ServiceUnavailable, reason: "timed out; retry later", maxAge: UnavailableMaxAge}
	}
	return refusal{code: codes.InternalServerError, reason: "internal error"}
}

// refuse writes an error answer with concise problem details and logs it.
func (h *Handler) refuse(w mux.ResponseWriter, peer string, ref refusal) {
	level := slog.LevelInfo
	switch {
	case ref.code == codes.ServiceUnavailable:
		level = slog.LevelWarn // overload or a timeout: the peer retries
	case ref.code >= codes.InternalServerError:
		level = slog.LevelError
	}
	h.log.Log(context.Background(), level, "TEEP CoAP request refused", "peer", peer, "code", ref.code.String(), "reason", ref.reason)
	if err := w.SetResponse(ref.code, coapbind.ProblemContentFormat, bytes.NewReader(coapbind.Problem(ref.code, ref.reason))); err != nil {
		h.log.Warn("CoAP response", "peer", peer, "err", err)
		return
	}
	if ref.maxAge > 0 {
		w.Message().SetOptionUint32(message.MaxAge, ref.maxAge)
	}
	if ref.size1 > 0 {
		w.Message().SetOptionUint32(message.Size1, ref.size1)
	}
}
