package httpd

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"runtime/debug"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
)

// Server defaults. Only the header read and idle connections are bounded by
// default: some APIs (the Broker's sync) answer after a whole TEEP session,
// so a server sets ReadTimeout and WriteTimeout for what it serves.
const (
	DefaultReadHeaderTimeout = 10 * time.Second
	DefaultIdleTimeout       = 120 * time.Second
	DefaultShutdownTimeout   = 20 * time.Second
	DefaultMaxHeaderBytes    = 32 << 10
)

// ServerConfig configures a Server.
type ServerConfig struct {
	Handler http.Handler
	// TLS: certificate and key files (PEM). Without them the server speaks
	// plain HTTP.
	CertFile, KeyFile string
	// ClientCAFile, when set, asks clients for a certificate chaining to
	// these CAs; RequireClientCert refuses clients without one.
	ClientCAFile      string
	RequireClientCert bool

	// Timeouts (RFC 9110 §9.5 lets a server close connections it no
	// longer wants); zero takes the default above, or none for ReadTimeout
	// and WriteTimeout. ShutdownTimeout is the grace requests in progress
	// get once Serve's context is done.
	ReadHeaderTimeout, ReadTimeout, WriteTimeout, IdleTimeout, ShutdownTimeout time.Duration
	MaxHeaderBytes                                                             int
	// CancelOnShutdown cancels the contexts of requests in progress as soon
	// as Serve's context is done, rather than letting them run out the
	// grace period.
	CancelOnShutdown bool
	Logger           *slog.Logger
}

// Server is an http.Server with our settings: timeouts, TLS, panics
// answered as problems, graceful shutdown.
type Server struct {
	cfg ServerConfig
	srv *http.Server
	tls bool
	log *slog.Logger
}

// NewServer builds the server; it loads TLS files now so that mistakes show
// before anything listens.
func NewServer(cfg ServerConfig) (*Server, error) {
	if cfg.Handler == nil {
		return nil, errors.New("httpd: ServerConfig.Handler is required")
	}
	def := func(v *time.Duration, d time.Duration) {
		if *v <= 0 {
			*v = d
		}
	}
	def(&cfg.ReadHeaderTimeout, DefaultReadHeaderTimeout)
	def(&cfg.IdleTimeout, DefaultIdleTimeout)
	def(&cfg.ShutdownTimeout, DefaultShutdownTimeout)
	if cfg.MaxHeaderBytes <= 0 {
		cfg.MaxHeaderBytes = DefaultMaxHeaderBytes
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	s := &Server{cfg: cfg, log: cfg.Logger}
	s.srv = &http.Server{
		Handler:           Recover(cfg.Logger, cfg.Handler),
		ReadHeaderTimeout: cfg.ReadHeaderTimeout,
		ReadTimeout:       cfg.ReadTimeout,
		WriteTimeout:      cfg.WriteTimeout,
		IdleTimeout:       cfg.IdleTimeout,
		MaxHeaderBytes:    cfg.MaxHeaderBytes,
		ErrorLog:          slog.NewLogLogger(cfg.Logger.Handler(), slog.LevelWarn),
	}
	if (cfg.CertFile == "") != (cfg.KeyFile == "") {
		return nil, errors.New("httpd: give both a TLS certificate and its key")
	}
	if cfg.CertFile == "" {
		if cfg.ClientCAFile != "" || cfg.RequireClientCert {
			return nil, errors.New("httpd: client certificates need TLS (a certificate and key)")
		}
		return s, nil
	}
	cert, err := tls.LoadX509KeyPair(cfg.CertFile, cfg.KeyFile)
	if err != nil {
		return nil, fmt.Errorf("httpd: TLS certificate: %w", err)
	}
	// BCP 195 (RFC 9325): TLS 1.2 or later.
	tc := &tls.Config{MinVersion: tls.VersionTLS12, Certificates: []tls.Certificate{cert}}
	if cfg.ClientCAFile != "" {
		pool, err := LoadCertPool(cfg.ClientCAFile)
		if err != nil {
			return nil, fmt.Errorf("httpd: client CA: %w", err)
		}
		tc.ClientCAs = pool
		tc.ClientAuth = tls.VerifyClientCertIfGiven
		if cfg.RequireClientCert {
			tc.ClientAuth = tls.RequireAndVerifyClientCert
		}
	} else if cfg.RequireClientCert {
		return nil, errors.New("httpd: requiring client certificates needs a client CA")
	}
	s.srv.TLSConfig = tc
	s.tls = true
	return s, nil
}

// TLS reports whether the server speaks HTTPS.
func (s *Server) TLS() bool { return s.tls }

// Serve accepts connections on ln until ctx is done, then shuts down
// gracefully: it stops accepting, lets requests in progress finish (up to
// the shutdown timeout) and returns nil. A Server serves once.
func (s *Server) Serve(ctx context.Context, ln net.Listener) error {
	if s.cfg.CancelOnShutdown {
		s.srv.BaseContext = func(net.Listener) context.Context { return ctx }
	}
	errc := make(chan error, 1)
	go func() {
		if s.tls {
			errc <- s.srv.ServeTLS(ln, "", "")
		} else {
			errc <- s.srv.Serve(ln)
		}
	}()
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	s.log.Info("shutting down", "addr", ln.Addr().String(), "grace", s.cfg.ShutdownTimeout.String())
	sctx, cancel := context.WithTimeout(context.Background(), s.cfg.ShutdownTimeout)
	defer cancel()
	if err := s.srv.Shutdown(sctx); err != nil {
		s.srv.Close()
		<-errc
		return fmt.Errorf("httpd: shutdown: %w", err)
	}
	if err := <-errc; err != nil && !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}

// Recover turns a panic in next into a 500 problem (logged with its stack),
// so a peer never sees one.
func Recover(log *slog.Logger, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		defer func() {
			if p := recover(); p != nil {
				if p == http.ErrAbortHandler {
					panic(p)
				}
				log.Error("handler panic", "peer", Peer(r), "method", r.Method, "path", r.URL.Path,
					"panic", fmt.Sprint(p), "stack", string(debug.Stack()))
				SecurityHeaders(w.Header())
				WriteProblem(w, NewProblem(http.StatusInternalServerError, "internal error"))
			}
		}()
		next.ServeHTTP(w, r)
	})
}

// LoadCertPool reads PEM certificates (a CA file) into a pool.
func LoadCertPool(path string) (*x509.CertPool, error) {
	pem, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(pem) {
		return nil, fmt.Errorf("%s: no PEM certificates in it", path)
	}
	return pool, nil
}

// NewRegistry is a Prometheus registry with the Go runtime and process
// collectors, which every daemon of ours exports.
func NewRegistry() *prometheus.Registry {
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return reg
}
