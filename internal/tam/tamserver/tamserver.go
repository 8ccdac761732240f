package tamserver

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/teep-go/teep/cosekey"
	"github.com/teep-go/teep/internal/httpd"
	"github.com/teep-go/teep/internal/keyfile"
	"github.com/teep-go/teep/internal/tam"
	"github.com/teep-go/teep/internal/tam/admin"
	"github.com/teep-go/teep/internal/tam/appraiser"
	"github.com/teep-go/teep/internal/tam/console"
	"github.com/teep-go/teep/internal/tam/pgstore"
	"github.com/teep-go/teep/internal/tam/sqlitestore"
	"github.com/teep-go/teep/internal/tam/teepcoap"
	"github.com/teep-go/teep/internal/tam/teephttp"
	"github.com/teep-go/teep/internal/verifier"
	"github.com/teep-go/teep/teep"
	"github.com/veraison/go-cose"
)

// File names in the data directory.
const (
	FileP256Key    = "tam-esp256.key"
	FileEd25519Key = "tam-ed25519.key"
	FileSessionKey = "session.key"
	FileToken      = "admin.token"
	FileDB         = "tam.db"
	// CoAP (docs/coap-binding.md): the certificate for coaps:// and
	// coaps+tcp:// when no TLS certificate is configured, and the DTLS PSKs.
	FileCoAPCert = "coap-cert.pem"
	FileCoAPKey  = "coap-key.pem"
	FileCoAPPSK  = "coap-psk"
)

// Options configure a TAM. Only DataDir is required.
type Options struct {
	DataDir    string
	DB         string // database: "" for SQLite (tam.db in DataDir), or a postgres:// URL (see OpenDB)
	Path       string // TEEP path; default "/tam"
	LegacyPath string // legacy-numbering TEEP path; "" disables it

	// TLS for the listener(s).
	TLSCert, TLSKey, ClientCA string
	RequireClientCert         bool

	// Attestation. VerifierPolicy is a reference-values file for an
	// in-process Verifier (background-check). VerifierURL is a remote
	// `teep verifier serve`. VerifierKeys are trusted Verifier keys for
	// Attestation Results (passport, and the remote Verifier's answers);
	// keys added with the admin API (trust/verifiers) count too.
	VerifierPolicy string
	VerifierURL    string
	VerifierKeys   []*cosekey.Key
	Appraiser      tam.Appraiser // overrides the above (tests)
	Attestation    tam.AttestationPolicy
	ReattestAfter  time.Duration
	Passport       bool
	AllowTimestamp bool

	TokenLifetime             time.Duration
	MaxBodyBytes              int64
	PersonalizationContentAlg int64
	MaxPendingPerDevice       int
	MaxInstallAttempts        int
	// PurgeInterval is how often expired tokens and pending Updates are
	// purged and (SQLite) the WAL checkpointed and truncated; default
	// DefaultPurgeInterval.
	PurgeInterval time.Duration

	// CoAP listeners (docs/coap-binding.md); "" leaves one off. coaps://
	// (DTLS) and coaps+tcp:// (TLS) use CoAPCert/CoAPKey, else TLSCert/
	// TLSKey, else coap-cert.pem/coap-key.pem in the data directory; DTLS
	// also accepts the PSKs of CoAPPSKFile (default: coap-psk in the data
	// directory, when present). ClientCA and RequireClientCert apply too.
	CoAPAddr, CoAPSAddr, CoAPTCPAddr, CoAPSTCPAddr string
	CoAPCert, CoAPKey, CoAPPSKFile                 string

	// PprofAddr, when set, serves net/http/pprof (/debug/pprof/) on its
	// own listener; a loopback address only (ErrPprofNotLoopback).
	PprofAddr string

	// DisableConsole leaves the web console (package console, /console/)
	// out. It is served where the admin API is: on the admin listener when
	// Serve gets one, else on the main listener.
	DisableConsole bool

	Logger  *slog.Logger
	Version string
	Clock   func() time.Time
}

// TAM is an assembled, not yet serving, TAM.
type TAM struct {
	Engine   *tam.Engine
	Store    *sqlitestore.Store // the SQLite store; nil on PostgreSQL (Engine.Store() is either)
	db       Database
	Token    string
	NewToken bool // the admin token was created by this Open: print it once
	Handler  http.Handler
	// AdminHandler is Handler plus the web console (unless
	// Options.DisableConsole): what the admin listener serves.
	AdminHandler http.Handler
	// CoAP is the bound CoAP listeners (nil when none is configured).
	CoAP *teepcoap.Server
	// Pprof is the bound profiling listener (nil unless Options.PprofAddr).
	Pprof    net.Listener
	opts     Options
	registry *prometheus.Registry
	log      *slog.Logger
	purged   prometheus.Counter
}

// Open prepares the data directory and builds the TAM.
func Open(ctx context.Context, o Options) (*TAM, error) {
	if o.DataDir == "" {
		return nil, errors.New("tamserver: no data directory")
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if err := os.MkdirAll(o.DataDir, 0o700); err != nil {
		return nil, fmt.Errorf("data directory: %w", err)
	}
	p256, err := loadOrCreateKey(filepath.Join(o.DataDir, FileP256Key), cosekey.AlgESP256, o.Logger)
	if err != nil {
		return nil, err
	}
	ed, err := loadOrCreateKey(filepath.Join(o.DataDir, FileEd25519Key), cosekey.AlgEd25519, o.Logger)
	if err != nil {
		return nil, err
	}
	sessionKey, _, err := loadOrCreateSecret(filepath.Join(o.DataDir, FileSessionKey), func() ([]byte, error) {
		b := make([]byte, 32)
		_, err := rand.Read(b)
		return b, err
	})
	if err != nil {
		return nil, err
	}
	if len(sessionKey) != 32 {
		return nil, fmt.Errorf("%s: want 32 bytes, found %d", FileSessionKey, len(sessionKey))
	}
	tok, created, err := loadOrCreateSecret(filepath.Join(o.DataDir, FileToken), func() ([]byte, error) {
		t, err := admin.NewToken()
		return []byte(t + "\n"), err
	})
	if err != nil {
		return nil, err
	}
	token := strings.TrimSpace(string(tok))
	st, err := OpenDB(ctx, o.DB, o.DataDir)
	if err != nil {
		return nil, err
	}
	sq, _ := st.(*sqlitestore.Store)
	t := &TAM{Store: sq, db: st, Token: token, NewToken: created, opts: o, log: o.Logger, registry: httpd.NewRegistry(),
		purged: prometheus.NewCounter(prometheus.CounterOpts{Name: "teep_tam_purged_rows_total",
			Help: "Expired used tokens and pending Updates deleted by the periodic purge."})}
	if err := t.registry.Register(t.purged); err != nil {
		st.Close()
		return nil, err
	}
	if err := t.build(ctx, p256, ed, sessionKey); err != nil {
		t.Close()
		return nil, err
	}
	if o.PprofAddr != "" {
		if t.Pprof, err = listenPprof(o.PprofAddr); err != nil {
			t.Close()
			return nil, err
		}
	}
	return t, nil
}

func (t *TAM) build(ctx context.Context, p256, ed *cosekey.Key, sessionKey []byte) error {
	o := t.opts
	appraiser, err := t.appraiser()
	if err != nil {
		return err
	}
	t.Engine, err = tam.New(tam.Config{
		Store:                     t.db,
		Keys:                      []*cosekey.Key{p256, ed},
		SessionKey:                sessionKey,
		Appraiser:                 appraiser,
		Attestation:               o.Attestation,
		ReattestAfter:             o.ReattestAfter,
		Passport:                  o.Passport,
		TokenLifetime:             o.TokenLifetime,
		PersonalizationContentAlg: o.PersonalizationContentAlg,
		MaxPendingPerDevice:       o.MaxPendingPerDevice,
		MaxInstallAttempts:        o.MaxInstallAttempts,
		Freshness:                 freshness(o.AllowTimestamp),
		Logger:                    o.Logger,
		Registerer:                t.registry,
		Clock:                     o.Clock,
	})
	if err != nil {
		return err
	}
	mux := http.NewServeMux()
	th, err := teephttp.NewHandler(teephttp.Config{Engine: t.Engine, Path: o.Path, LegacyPath: o.LegacyPath,
		MaxBodyBytes: o.MaxBodyBytes, Logger: o.Logger, Registerer: t.registry})
	if err != nil {
		return err
	}
	th.Register(mux)
	if err := admin.Register(mux, admin.Config{Engine: t.Engine, Token: t.Token, Ping: t.db.Ping, Gatherer: t.registry,
		Version: o.Version, Logger: o.Logger}); err != nil {
		return err
	}
	t.Handler = httpd.Routes(mux)
	t.AdminHandler = t.Handler
	if !o.DisableConsole {
		c, err := console.New(console.Config{API: t.Handler, Logger: o.Logger, Clock: o.Clock})
		if err != nil {
			return err
		}
		amux := http.NewServeMux()
		amux.Handle("/", t.Handler)
		amux.Handle(console.Prefix, c.Handler())
		amux.Handle("/console", c.Handler())
		t.AdminHandler = amux
	}
	return t.listenCoAP()
}

func freshness(timestamp bool) []teep.FreshnessMechanism {
	if timestamp {
		return []teep.FreshnessMechanism{teep.FreshnessNonce, teep.FreshnessTimestamp}
	}
	return []teep.FreshnessMechanism{teep.FreshnessNonce}
}

// appraiser builds the attestation back end from the options; nil when
// none is configured (then only pre-registered Agents are served).
func (t *TAM) appraiser() (tam.Appraiser, error) {
	o := t.opts
	if o.Appraiser != nil {
		return o.Appraiser, nil
	}
	va := &appraiser.Verifier{ResultKeys: o.VerifierKeys, AllowTimestamp: o.AllowTimestamp,
		ResultKeysFunc: func(ctx context.Context) ([]*cosekey.Key, error) {
			return t.Engine.TrustedPublicKeys(ctx, tam.RoleVerifier)
		}}
	if o.VerifierPolicy != "" {
		p, err := verifier.LoadPolicy(o.VerifierPolicy)
		if err != nil {
			return nil, err
		}
		if va.Local, err = verifier.New(verifier.Config{Policy: p}); err != nil {
			return nil, err
		}
	}
	if o.VerifierURL != "" {
		if len(o.VerifierKeys) == 0 {
			return nil, errors.New("a remote Verifier needs its result-signing key (verifier key) to be trusted")
		}
		va.Remote = &verifier.Client{URL: o.VerifierURL, VerifierKeys: o.VerifierKeys}
	}
	return va, nil
}

// Registry is the Prometheus registry of this TAM.
func (t *TAM) Registry() *prometheus.Registry { return t.registry }

// Close closes the database (and CoAP listeners that never served).
func (t *TAM) Close() error {
	if t.CoAP != nil {
		t.CoAP.Close()
	}
	if t.Pprof != nil {
		t.Pprof.Close()
	}
	return t.db.Close()
}

// Database is a tam.Store with a health check: what OpenDB returns.
type Database interface {
	tam.Store
	Ping(ctx context.Context) error
}

// OpenDB opens the TAM's database: with db empty, the SQLite database
// tam.db in dataDir (the default, needing nothing installed); with a
// postgres:// or postgresql:// URL, that PostgreSQL database, which
// several replicas may share. Either is migrated to this binary's schema,
// and a database from a newer release is refused.
func OpenDB(ctx context.Context, db, dataDir string) (Database, error) {
	switch {
	case db == "":
		s, err := sqlitestore.Open(ctx, filepath.Join(dataDir, FileDB), sqlitestore.Options{})
		if err != nil {
			return nil, err
		}
		return s, nil
	case pgstore.IsDSN(db):
		s, err := pgstore.Open(ctx, db, pgstore.Options{})
		if err != nil {
			return nil, err
		}
		return s, nil
	default:
		// Not quoted: a mistyped URL may carry a password.
		return nil, errors.New("tamserver: database: want empty (SQLite in the data directory) or a postgres:// URL")
	}
}

// Read and write bounds of the TAM's connections: TEEP messages are small
// and processed quickly, SUIT uploads to the admin API at most
// admin.DefaultMaxUploadBytes.
const (
	ReadTimeout  = 60 * time.Second
	WriteTimeout = 60 * time.Second
	// pprofWriteTimeout leaves room for a CPU profile or trace of up to
	// two minutes (?seconds=N).
	pprofWriteTimeout = 125 * time.Second
)

// Serve serves the TEEP endpoints, the admin API and metrics on ln (and the
// admin API and metrics also on adminLn when not nil) until ctx is done,
// and the web console on adminLn, or on ln when there is no adminLn;
// then shuts down gracefully. It also purges expired tokens periodically.
func (t *TAM) Serve(ctx context.Context, ln, adminLn net.Listener) error {
	o := t.opts
	mainHandler := t.Handler
	if adminLn == nil {
		mainHandler = t.AdminHandler
	}
	srvCfg := httpd.ServerConfig{Handler: mainHandler, CertFile: o.TLSCert, KeyFile: o.TLSKey, ClientCAFile: o.ClientCA,
		RequireClientCert: o.RequireClientCert, ReadTimeout: ReadTimeout, WriteTimeout: WriteTimeout, Logger: o.Logger}
	srv, err := httpd.NewServer(srvCfg)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	go t.janitor(ctx)
	errc := make(chan error, 4)
	go func() { errc <- srv.Serve(ctx, ln) }()
	n := 1
	if t.Pprof != nil {
		enableContentionProfiles()
		psrv, err := httpd.NewServer(httpd.ServerConfig{Handler: pprofHandler(), ReadTimeout: ReadTimeout,
			WriteTimeout: pprofWriteTimeout, Logger: o.Logger})
		if err != nil {
			cancel()
			<-errc
			return err
		}
		n++
		go func() { errc <- psrv.Serve(ctx, t.Pprof) }()
	}
	if t.CoAP != nil {
		n++
		go func() { errc <- t.CoAP.Serve(ctx) }()
	}
	if adminLn != nil {
		srvCfg.RequireClientCert = false
		srvCfg.Handler = t.AdminHandler
		asrv, err := httpd.NewServer(srvCfg)
		if err != nil {
			cancel()
			for ; n > 0; n-- {
				<-errc
			}
			return err
		}
		n++
		go func() { errc <- asrv.Serve(ctx, adminLn) }()
	}
	var first error
	for i := 0; i < n; i++ {
		if err := <-errc; err != nil && first == nil {
			first = err
			cancel()
		}
	}
	return first
}

// DefaultPurgeInterval is Options.PurgeInterval's default.
const DefaultPurgeInterval = 5 * time.Minute

// checkpointer is the SQLite store's WAL checkpoint.
type checkpointer interface {
	Checkpoint(ctx context.Context) error
}

// janitor keeps storage bounded: it purges expired session state and
// checkpoints the SQLite WAL, at start and then every PurgeInterval.
func (t *TAM) janitor(ctx context.Context) {
	every := t.opts.PurgeInterval
	if every <= 0 {
		every = DefaultPurgeInterval
	}
	tick := time.NewTicker(every)
	defer tick.Stop()
	for {
		t.purge(ctx)
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
	}
}

func (t *TAM) purge(ctx context.Context) {
	n, err := t.Engine.Purge(ctx)
	switch {
	case err != nil && ctx.Err() == nil:
		t.log.Warn("purging expired tokens failed", "err", err)
	case n > 0:
		t.purged.Add(float64(n))
		t.log.Info("purged expired tokens and pending Updates", "rows", n)
	}
	if c, ok := t.db.(checkpointer); ok {
		if err := c.Checkpoint(ctx); err != nil && ctx.Err() == nil {
			t.log.Warn("WAL checkpoint incomplete", "err", err)
		}
	}
}

func loadOrCreateKey(path string, alg cose.Algorithm, log *slog.Logger) (*cosekey.Key, error) {
	k, err := keyfile.Load(path)
	if err == nil {
		if !k.IsPrivate() {
			return nil, fmt.Errorf("%s holds no private key", path)
		}
		return k, nil
	}
	if !errors.Is(err, os.ErrNotExist) {
		return nil, err
	}
	if k, err = cosekey.Generate(alg); err != nil {
		return nil, err
	}
	if err := keyfile.Save(path, k, cosekey.FormatCOSE, true); err != nil {
		return nil, err
	}
	log.Info("created TAM signing key", "file", path, "kid", fmt.Sprintf("%x", k.KID()))
	return k, nil
}

// loadOrCreateSecret reads a secret file, creating it (0600) with make when
// absent; created reports whether it was made now.
func loadOrCreateSecret(path string, make func() ([]byte, error)) ([]byte, bool, error) {
	b, err := os.ReadFile(path)
	if err == nil {
		return b, false, nil
	}
	if !errors.Is(err, os.ErrNotExist) {
		return nil, false, err
	}
	if b, err = make(); err != nil {
		return nil, false, err
	}
	if err := keyfile.WriteAtomic(path, b, 0o600); err != nil {
		return nil, false, err
	}
	return b, true, nil
}

// PublicKey reads the TAM's public key of the given type from a data
// directory without opening the database.
func PublicKey(dataDir string, t cosekey.KeyType) (*cosekey.Key, error) {
	name := FileP256Key
	if t == cosekey.KeyTypeEd25519 {
		name = FileEd25519Key
	}
	k, err := keyfile.Load(filepath.Join(dataDir, name))
	if err != nil {
		return nil, err
	}
	return k.PublicKey(), nil
}

// ReadToken reads the admin token of a data directory.
func ReadToken(dataDir string) (string, error) {
	b, err := os.ReadFile(filepath.Join(dataDir, FileToken))
	if err != nil {
		return "", err
	}
	return strings.TrimSpace(string(b)), nil
}
