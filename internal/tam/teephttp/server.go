package teephttp

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
	"time"
)

// Server timeouts. Reads and writes are bounded so a slow peer cannot hold a
// connection; TEEP messages are small and processed quickly.
const (
	DefaultReadHeaderTimeout = 10 * time.Second
	DefaultReadTimeout       = 60 * time.Second
	DefaultWriteTimeout      = 60 * time.Second
	DefaultIdleTimeout       = 120 * time.Second
	DefaultShutdownTimeout   = 20 * time.Second
	MaxHeaderBytes           = 32 << 10
)

// ServerConfig configures the HTTP(S) server of the TAM.
type ServerConfig struct {
	Handler http.Handler
	// TLS: certificate and key files (PEM). Without them the server speaks
	// plain HTTP (draft-ietf-teep-otrp-over-http-15 recommends HTTPS; TEEP
	// messages are signed end to end either way).
	CertFile, KeyFile string
	// ClientCAFile, when set, asks clients for a certificate chaining to
	// these CAs; RequireClientCert refuses clients without one.
	ClientCAFile      string
	RequireClientCert bool

	ReadHeaderTimeout, ReadTimeout, WriteTimeout, IdleTimeout, ShutdownTimeout time.Duration
	Logger                                                                     *slog.Logger
}

// Server is an http.Server with the TAM's settings.
type Server struct {
	srv      *http.Server
	tls      bool
	shutdown time.Duration
	log      *slog.Logger
}

// NewServer builds the server; it loads TLS files now so that mistakes show
// before anything listens.
func NewServer(cfg ServerConfig) (*Server, error) {
	if cfg.Handler == nil {
		return nil, errors.New("teephttp: ServerConfig.Handler is required")
	}
	def := func(v *time.Duration, d time.Duration) {
		if *v <= 0 {
			*v = d
		}
	}
	def(&cfg.ReadHeaderTimeout, DefaultReadHeaderTimeout)
	def(&cfg.ReadTimeout, DefaultReadTimeout)
	def(&cfg.WriteTimeout, DefaultWriteTimeout)
	def(&cfg.IdleTimeout, DefaultIdleTimeout)
	def(&cfg.ShutdownTimeout, DefaultShutdownTimeout)
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	s := &Server{shutdown: cfg.ShutdownTimeout, log: cfg.Logger}
	s.srv = &http.Server{
		Handler:           Recover(cfg.Logger, cfg.Handler),
		ReadHeaderTimeout: cfg.ReadHeaderTimeout,
		ReadTimeout:       cfg.ReadTimeout,
		WriteTimeout:      cfg.WriteTimeout,
		IdleTimeout:       cfg.IdleTimeout,
		MaxHeaderBytes:    MaxHeaderBytes,
		ErrorLog:          slog.NewLogLogger(cfg.Logger.Handler(), slog.LevelWarn),
	}
	if (cfg.CertFile == "") != (cfg.KeyFile == "") {
		return nil, errors.New("teephttp: give both a TLS certificate and its key")
	}
	if cfg.CertFile == "" {
		if cfg.ClientCAFile != "" || cfg.RequireClientCert {
			return nil, errors.New("teephttp: client certificates need TLS (a certificate and key)")
		}
		return s, nil
	}
	cert, err := tls.LoadX509KeyPair(cfg.CertFile, cfg.KeyFile)
	if err != nil {
		return nil, fmt.Errorf("teephttp: TLS certificate: %w", err)
	}
	tc := &tls.Config{MinVersion: tls.VersionTLS12, Certificates: []tls.Certificate{cert}}
	if cfg.ClientCAFile != "" {
		pem, err := os.ReadFile(cfg.ClientCAFile)
		if err != nil {
			return nil, fmt.Errorf("teephttp: client CA: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("teephttp: client CA %s: no PEM certificates", cfg.ClientCAFile)
		}
		tc.ClientCAs = pool
		tc.ClientAuth = tls.VerifyClientCertIfGiven
		if cfg.RequireClientCert {
			tc.ClientAuth = tls.RequireAndVerifyClientCert
		}
	} else if cfg.RequireClientCert {
		return nil, errors.New("teephttp: requiring client certificates needs a client CA")
	}
	s.srv.TLSConfig = tc
	s.tls = true
	return s, nil
}

// TLS reports whether the server speaks HTTPS.
func (s *Server) TLS() bool { return s.tls }

// Serve accepts connections on ln until ctx is done, then shuts down
// gracefully: it stops accepting, lets requests in progress finish (up to
// the shutdown timeout) and returns nil.
func (s *Server) Serve(ctx context.Context, ln net.Listener) error {
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
	s.log.Info("shutting down", "grace", s.shutdown.String())
	sctx, cancel := context.WithTimeout(context.Background(), s.shutdown)
	defer cancel()
	if err := s.srv.Shutdown(sctx); err != nil {
		s.srv.Close()
		return fmt.Errorf("teephttp: shutdown: %w", err)
	}
	if err := <-errc; err != nil && !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}
