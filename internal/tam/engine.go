package tam

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/teep-go/teep/cosekey"
	"github.com/teep-go/teep/suit"
	"github.com/teep-go/teep/teep"
	"github.com/veraison/go-cose"
)

// AttestationPolicy says when the TAM asks an Agent for attestation.
type AttestationPolicy int

const (
	// AttestUnknown (default) attests Agents whose key is not registered,
	// registered devices flagged for re-attestation, and devices whose last
	// appraisal is older than Config.ReattestAfter.
	AttestUnknown AttestationPolicy = iota
	// AttestAlways asks for attestation in every session's first QueryRequest.
	AttestAlways
	// AttestNever never asks: only pre-registered Agent keys are served.
	AttestNever
)

// Defaults for Config.
const (
	// DefaultTokenLifetime is how long a token or challenge stays valid.
	// draft-ietf-teep-protocol-26 §4.1.1 recommends "several hours": SUIT
	// dependency resolution on a device can take that long.
	DefaultTokenLifetime       = 12 * time.Hour
	DefaultMaxPendingPerDevice = 4
	DefaultMaxInstallAttempts  = 3
	DefaultMaxUpdateBytes      = 8 << 20
	DefaultKeepReports         = 50
	DefaultMaxEnvelopeSize     = 16 << 20
	DefaultMaxPersonalization  = 1 << 20
)

// Config configures an Engine. Store and Keys are required.
type Config struct {
	Store Store
	// Keys are the TAM's private signing keys. draft-ietf-teep-protocol-26
	// §8.2 makes both cipher suites mandatory for a TAM, so one P-256 key
	// (ESP256) and one Ed25519 key are required.
	Keys []*cosekey.Key
	// SessionKey (32 bytes) authenticates QueryRequest tokens. Keep it
	// across restarts so outstanding tokens stay valid; a random one is
	// made when nil.
	SessionKey []byte

	Appraiser     Appraiser         // nil: only pre-registered Agents are served
	Attestation   AttestationPolicy // when to ask for attestation
	ReattestAfter time.Duration     // 0: attest once, at first contact
	// Passport asks Agents for an Attestation Result (nonce = token, no
	// challenge) instead of Evidence with the challenge as nonce.
	Passport  bool
	Freshness []teep.FreshnessMechanism // offered; default [nonce]

	TokenLifetime       time.Duration // default DefaultTokenLifetime
	MaxPendingPerDevice int           // outstanding Updates per device; default DefaultMaxPendingPerDevice
	MaxInstallAttempts  int           // failures before a version is no longer offered to a device; default DefaultMaxInstallAttempts
	MaxUpdateBytes      int           // manifests in one Update; the rest waits for the next session; default DefaultMaxUpdateBytes
	KeepReports         int           // reports kept per device; default DefaultKeepReports
	MaxEnvelopeSize     int           // uploaded SUIT envelope; default DefaultMaxEnvelopeSize
	MaxPersonalization  int           // personalization data per item; default DefaultMaxPersonalization
	// EnvelopeCacheBytes bounds the envelopes kept in memory between
	// sessions (catalogcache.go); default DefaultEnvelopeCacheBytes,
	// negative keeps none.
	EnvelopeCacheBytes int
	// PersonalizationContentAlg encrypts personalization data:
	// suit.AlgA128CTR (default; the profile of the draft's example and the
	// one every Agent is likely to have) or suit.AlgA128GCM.
	PersonalizationContentAlg int64

	Limits     teep.Limits // zero fields: teep.DefaultLimits
	SUITLimits suit.Limits // zero fields: suit defaults

	Logger     *slog.Logger          // nil: discard
	Registerer prometheus.Registerer // nil: metrics are kept but not exported
	Clock      func() time.Time      // nil: time.Now
	Rand       io.Reader             // nil: crypto/rand
}

// Engine is the transport-agnostic TAM: it turns incoming TEEP messages
// into outgoing ones (Handle) and carries out the operator's management
// operations. It is safe for concurrent use.
type Engine struct {
	cfg        Config
	store      Store
	log        *slog.Logger
	met        *metrics
	tokens     *tokenMinter
	signers    map[cose.Algorithm]*cosekey.Signer
	nosync     NoSyncStore      // nil: every commit is durable
	devState   DeviceStateStore // nil: a round reads its device in a View
	steady     SteadyRoundStore // nil: a steady round commits with updateNoSync
	pendingKey PendingKeyStore  // nil: a Success or Error's Update is read in a View
	cache      catalogCache
}

// New checks cfg and builds an Engine.
func New(cfg Config) (*Engine, error) {
	if cfg.Store == nil {
		return nil, errors.New("tam: Config.Store is required")
	}
	if cfg.Rand == nil {
		cfg.Rand = rand.Reader
	}
	if cfg.Clock == nil {
		cfg.Clock = time.Now
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	def := func(v *int, d int) {
		if *v <= 0 {
			*v = d
		}
	}
	def(&cfg.MaxPendingPerDevice, DefaultMaxPendingPerDevice)
	def(&cfg.MaxInstallAttempts, DefaultMaxInstallAttempts)
	def(&cfg.MaxUpdateBytes, DefaultMaxUpdateBytes)
	def(&cfg.KeepReports, DefaultKeepReports)
	def(&cfg.MaxEnvelopeSize, DefaultMaxEnvelopeSize)
	def(&cfg.MaxPersonalization, DefaultMaxPersonalization)
	if cfg.EnvelopeCacheBytes == 0 {
		cfg.EnvelopeCacheBytes = DefaultEnvelopeCacheBytes
	}
	if cfg.TokenLifetime <= 0 {
		cfg.TokenLifetime = DefaultTokenLifetime
	}
	if len(cfg.Freshness) == 0 {
		cfg.Freshness = []teep.FreshnessMechanism{teep.FreshnessNonce}
	}
	switch cfg.PersonalizationContentAlg {
	case 0:
		cfg.PersonalizationContentAlg = suit.AlgA128CTR
	case suit.AlgA128CTR, suit.AlgA128GCM:
	default:
		return nil, fmt.Errorf("tam: personalization content algorithm %d: want A128CTR or A128GCM", cfg.PersonalizationContentAlg)
	}
	if cfg.SessionKey == nil {
		cfg.SessionKey = make([]byte, sessionKeySize)
		if _, err := io.ReadFull(cfg.Rand, cfg.SessionKey); err != nil {
			return nil, fmt.Errorf("tam: session key: %w", err)
		}
	}
	if len(cfg.SessionKey) < 16 {
		return nil, fmt.Errorf("tam: session key of %d bytes is too short (want 32)", len(cfg.SessionKey))
	}
	e := &Engine{
		cfg:     cfg,
		store:   auditStore{cfg.Store}, // audit.go: admin changes carry their audit entry
		log:     cfg.Logger,
		tokens:  &tokenMinter{key: cfg.SessionKey, rand: cfg.Rand},
		signers: map[cose.Algorithm]*cosekey.Signer{},
		cache:   catalogCache{maxBytes: cfg.EnvelopeCacheBytes},
	}
	for _, k := range cfg.Keys {
		if k == nil || !k.IsPrivate() {
			return nil, errors.New("tam: Config.Keys must be private keys")
		}
		var algs []cose.Algorithm
		switch k.Type() {
		case cosekey.KeyTypeP256:
			algs = []cose.Algorithm{cosekey.AlgESP256, cosekey.AlgES256}
		case cosekey.KeyTypeEd25519:
			algs = []cose.Algorithm{cosekey.AlgEd25519, cosekey.AlgEdDSA}
		}
		for _, a := range algs {
			if _, dup := e.signers[a]; dup {
				return nil, fmt.Errorf("tam: two %s keys given; want one P-256 and one Ed25519 key", k.Type())
			}
			s, err := cosekey.NewSigner(k, a)
			if err != nil {
				return nil, fmt.Errorf("tam: %w", err)
			}
			e.signers[a] = s
		}
	}
	if ds, ok := cfg.Store.(DeviceStateStore); ok {
		e.devState = ds
	}
	if sr, ok := cfg.Store.(SteadyRoundStore); ok {
		e.steady = sr
	}
	if pk, ok := cfg.Store.(PendingKeyStore); ok {
		e.pendingKey = pk
	}
	if ns, ok := cfg.Store.(NoSyncStore); ok {
		e.nosync = ns
		e.tokens.epoch = ns.Epoch
	}
	if e.signers[cosekey.AlgESP256] == nil || e.signers[cosekey.AlgEd25519] == nil {
		return nil, errors.New("tam: need one P-256 and one Ed25519 key (draft-ietf-teep-protocol-26 §8.2: a TAM supports both cipher suites)")
	}
	m, err := newMetrics(cfg.Registerer)
	if err != nil {
		return nil, err
	}
	e.met = m
	return e, nil
}

// PublicKeys returns the TAM's public keys (P-256 first): the trust anchors
// Agents need, and the keys that sign personalization manifests.
func (e *Engine) PublicKeys() []*cosekey.Key {
	return []*cosekey.Key{e.signers[cosekey.AlgESP256].PublicKey(), e.signers[cosekey.AlgEd25519].PublicKey()}
}

// Store returns the engine's store.
func (e *Engine) Store() Store { return e.store }

func (e *Engine) now() time.Time { return e.cfg.Clock() }

// HandleOptions describe the endpoint a message arrived on.
type HandleOptions struct {
	Numbering teep.Numbering // the endpoint's numbering; a session never mixes them
	Peer      string         // the peer's address, for logs
}

// Handle processes one message of a TEEP session and returns the next
// message to send, or nil when the session is over (HTTP 204). An empty
// input starts a session (ProcessConnect); anything else is an Agent's
// message (ProcessTeepMessage). A refused message yields an *Error and
// leaves the state as it was.
func (e *Engine) Handle(ctx context.Context, in []byte, o HandleOptions) (out []byte, err error) {
	start := time.Now()
	typ, kid := "connect", []byte(nil)
	defer func() {
		e.met.duration.WithLabelValues(typ).Observe(time.Since(start).Seconds())
		if err == nil {
			return
		}
		var te *Error
		if !errors.As(err, &te) {
			switch {
			case errors.Is(err, ErrStoreBusy):
				err = reject(KindUnavailable, "busy; retry later", err)
			case errors.Is(err, context.DeadlineExceeded):
				err = reject(KindUnavailable, "timed out; retry later", err)
			case errors.Is(err, context.Canceled):
				// The peer went away (or the server is stopping): nothing of
				// ours failed, and nothing was committed.
				err = reject(KindUnavailable, "request canceled", err)
			default:
				err = reject(KindInternal, "internal error", err)
			}
			errors.As(err, &te)
		}
		e.met.rejected.WithLabelValues(te.Kind.String()).Inc()
		level := slog.LevelWarn
		switch {
		case te.Kind == KindInternal:
			level = slog.LevelError
		case errors.Is(err, context.Canceled):
			level = slog.LevelInfo
		}
		e.log.Log(ctx, level, "TEEP message rejected", "peer", o.Peer, "type", typ, "kid", hexOrNil(kid),
			"kind", te.Kind.String(), "reason", te.Reason, "err", te.Err, "numbering", o.Numbering.String())
	}()
	if len(in) == 0 {
		return e.startSession(ctx, o)
	}
	op, err := teep.Open(in, teep.OpenOptions{Numbering: o.Numbering, Limits: e.cfg.Limits, SkipVerifyUnsafe: true})
	if err != nil {
		typ = "malformed"
		return nil, reject(KindBadMessage, openFailure(in, err), err)
	}
	kid = op.KID
	typ = op.Message.Type().String()
	switch m := op.Message.(type) {
	case *teep.QueryResponse:
		return e.onQueryResponse(ctx, in, op, m, o)
	case *teep.Success:
		return nil, e.onSuccess(ctx, in, op, m, o)
	case *teep.Error:
		return nil, e.onError(ctx, in, op, m, o)
	}
	return nil, reject(KindBadMessage, "unexpected message type "+typ, nil)
}

// openFailure names what was wrong with a message teep.Open refused, for
// the log and the transport's error body: a signed message whose payload
// does not decode is not "not signed".
func openFailure(in []byte, err error) string {
	switch {
	case errors.Is(err, teep.ErrLimit):
		return "TEEP message exceeds a limit"
	case !teep.IsSigned(in):
		return "not a signed TEEP message"
	}
	if _, perr := cosekey.ParseSigned(in); perr != nil {
		return "malformed COSE structure"
	}
	return "signed message whose payload is not a valid TEEP message"
}

// verify checks the signature of op, which Handle opened unverified to
// read its kid, against key; the message it decoded then is the one now
// authenticated.
func (e *Engine) verify(op *teep.Opened, key *cosekey.Key) (*teep.Opened, error) {
	vop, err := op.Verify([]*cosekey.Key{key}, nil)
	if err != nil {
		return nil, reject(KindBadMessage, "signature does not verify", err)
	}
	return vop, nil
}

// signerFor picks the TAM key answering an Agent that signs with alg: the
// draft uses the selected cipher suite in both directions.
func (e *Engine) signerFor(alg cose.Algorithm) *cosekey.Signer {
	if s := e.signers[alg]; s != nil {
		return s
	}
	return e.signers[cosekey.AlgESP256]
}

// multiSigners sign a QueryRequest to an Agent whose suite is unknown: one
// signature per offered suite. Legacy-numbering peers (drafts 18-25) may
// predate RFC 9864, so they also get the ES256 / EdDSA signatures.
func (e *Engine) multiSigners(n teep.Numbering) []*cosekey.Signer {
	s := []*cosekey.Signer{e.signers[cosekey.AlgESP256], e.signers[cosekey.AlgEd25519]}
	if n == teep.Legacy {
		s = append(s, e.signers[cosekey.AlgES256], e.signers[cosekey.AlgEdDSA])
	}
	return s
}

func (e *Engine) suites(n teep.Numbering) []teep.CipherSuite {
	s := teep.MandatoryCipherSuites()
	if n == teep.Legacy {
		s = append(s, teep.Sign1Suite(int64(cosekey.AlgES256)), teep.Sign1Suite(int64(cosekey.AlgEdDSA)))
	}
	return s
}

func (e *Engine) signOpts(n teep.Numbering) teep.SignOptions {
	return teep.SignOptions{Encode: teep.EncodeOptions{Numbering: n}, Rand: e.cfg.Rand}
}

// updateNoSync commits a change whose loss costs only a retry (a token
// consumed by a session that changed nothing the device owns) without
// waiting for stable storage, when the store can.
func (e *Engine) updateNoSync(ctx context.Context, fn func(Tx) error) error {
	if e.nosync != nil {
		return e.nosync.UpdateNoSync(ctx, fn)
	}
	return e.store.Update(ctx, fn)
}

// useToken consumes a QueryRequest token inside tx. It first checks that
// the store's token epoch is still the one the token verified under: the
// transaction's connection read the epoch before serving it (pgstore), so
// a token parsed just before a database crash, whose consumption the crash
// may have lost, is refused here rather than accepted twice.
func (e *Engine) useToken(ctx context.Context, tx SessionTx, tok queryToken) error {
	if tok.epoch != e.tokens.currentEpoch() {
		return fmt.Errorf("%w: minted under an earlier token epoch", ErrTokenUsed)
	}
	return tx.UseToken(ctx, tok.raw, tok.expires)
}

// Purge drops expired used tokens and pending Updates; run it periodically.
func (e *Engine) Purge(ctx context.Context) (int, error) {
	var n int
	err := e.store.Update(ctx, func(tx Tx) (err error) { n, err = tx.PurgeExpired(ctx, e.now()); return err })
	return n, err
}
