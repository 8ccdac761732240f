package agent

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"sync"

	"github.com/teep-go/teep/cosekey"
	"github.com/teep-go/teep/internal/tee"
	"github.com/teep-go/teep/suit"
	"github.com/teep-go/teep/suit/processor"
)

// ErrNoSigners: no Trusted Component signer key is configured, so no
// manifest can be accepted.
var ErrNoSigners = errors.New("agent: no trusted Trusted Component signer keys configured")

// SUITConfig configures SUIT, the Installer that runs the SUIT processor on
// a TEE's component store.
type SUITConfig struct {
	TEE      tee.TEE
	Store    processor.ComponentStore // default: tee.NewComponentStore(TEE.Storage())
	Fetcher  processor.Fetcher        // nil: only integrated payloads and dependencies
	Limits   processor.Limits
	Logger   *slog.Logger
	Observer processor.Observer // e.g. the Prometheus counters of internal/suitmetrics
}

// SUIT is the Installer backed by the SUIT processor. Trust anchors (TC
// signer keys) are read from the TEE for every run, so keys added while the
// Agent runs take effect at once.
type SUIT struct {
	cfg   SUITConfig
	store processor.ComponentStore

	mu    sync.Mutex
	cache map[string]digestEntry // component key → digest of its content
}

type digestEntry struct {
	manifest []byte // digest of the manifest that installed it, when hashed
	size     int64
	sha      []byte
}

var (
	_ Installer       = (*SUIT)(nil)
	_ ScopedInstaller = (*SUIT)(nil)
)

// NewSUIT returns the SUIT Installer for cfg.TEE.
func NewSUIT(cfg SUITConfig) (*SUIT, error) {
	if cfg.TEE == nil {
		return nil, errors.New("agent: SUITConfig needs a TEE")
	}
	s := &SUIT{cfg: cfg, store: cfg.Store, cache: map[string]digestEntry{}}
	if s.store == nil {
		s.store = tee.NewComponentStore(cfg.TEE.Storage())
	}
	return s, nil
}

// Store is the component store the processor runs against.
func (s *SUIT) Store() processor.ComponentStore { return s.store }

func (s *SUIT) processor() (*processor.Processor, error) {
	signers, err := TrustAnchors(s.cfg.TEE.Storage(), RoleSigner)
	if err != nil {
		return nil, err
	}
	return s.processorTrusting(signers)
}

func (s *SUIT) processorTrusting(signers []*cosekey.Key) (*processor.Processor, error) {
	if len(signers) == 0 {
		return nil, ErrNoSigners
	}
	id := s.cfg.TEE.Identity()
	var keys suit.DecryptionKeys
	for _, d := range s.cfg.TEE.Decrypters() {
		keys.ECDH = append(keys.ECDH, suit.ECDHRecipientKey{Key: d})
	}
	return processor.New(processor.Config{
		Trust:              signers,
		Store:              s.store,
		Fetcher:            s.cfg.Fetcher,
		Identity:           processor.Identity{VendorIDs: [][]byte{id.VendorID[:]}, ClassIDs: [][]byte{id.ClassID[:]}},
		Decryption:         keys,
		SkipFetchIfPresent: true,
		Limits:             s.cfg.Limits,
		Logger:             s.cfg.Logger,
		Observer:           s.cfg.Observer,
		Invoker:            s.invoker(),
	})
}

// ErrInvokeFailed: a manifest was installed, and its suit-invoke, run
// right after, failed. The component stays installed (the Update
// procedure committed); the failure is reported like a manifest
// processing failure.
var ErrInvokeFailed = errors.New("agent: suit-invoke of the installed manifest failed")

// invoker is the TEE's Trusted Application runner as the SUIT processor's
// Invoker (suit-directive-invoke), or nil for a TEE that runs none.
func (s *SUIT) invoker() processor.Invoker {
	r, ok := s.cfg.TEE.(tee.Runner)
	if !ok {
		return nil
	}
	return taInvoker{r: r, log: s.cfg.Logger}
}

// taInvoker runs a component once, with suit-parameter-invoke-args as its
// input (empty when the manifest sets none). Its output goes to the log:
// a manifest's invocation has no caller to answer.
type taInvoker struct {
	r   tee.Runner
	log *slog.Logger
}

func (t taInvoker) Invoke(ctx context.Context, id suit.ComponentID, args []byte) error {
	out, err := t.r.Invoke(ctx, id, args)
	if err != nil {
		return err
	}
	if t.log != nil {
		t.log.Info("suit-invoke ran a Trusted Application", "component", id.String(), "output_bytes", len(out))
	}
	return nil
}

func outcome(res *processor.Result) Outcome {
	if res == nil {
		return Outcome{}
	}
	return Outcome{ManifestID: res.ManifestID, Sequence: res.SequenceNumber, Report: res.ReportBytes, Unchanged: res.Unchanged}
}

// Install implements Installer.
func (s *SUIT) Install(ctx context.Context, envelope, nonce []byte) (Outcome, error) {
	p, err := s.processor()
	if err != nil {
		return Outcome{}, err
	}
	return s.install(ctx, p, envelope, nonce)
}

// InstallTrusting implements ScopedInstaller: Install with only signers
// trusted.
func (s *SUIT) InstallTrusting(ctx context.Context, envelope, nonce []byte, signers []*cosekey.Key) (Outcome, error) {
	p, err := s.processorTrusting(signers)
	if err != nil {
		return Outcome{}, err
	}
	return s.install(ctx, p, envelope, nonce)
}

func (s *SUIT) install(ctx context.Context, p *processor.Processor, envelope, nonce []byte) (Outcome, error) {
	res, err := p.Install(ctx, envelope, processor.RunOptions{Nonce: nonce})
	out := outcome(res)
	if err == nil && !res.Unchanged && s.hasInvoke(ctx, res.ManifestID) {
		// The manifest asks for its components to run: the Invocation
		// procedure, once, right after the install (not again when a
		// TAM resends what is installed).
		inv, ierr := p.Invoke(ctx, res.ManifestID, processor.RunOptions{Nonce: nonce})
		if inv != nil {
			out.InvokeReport = inv.ReportBytes
		}
		if ierr != nil {
			return out, fmt.Errorf("%w: %v", ErrInvokeFailed, ierr)
		}
	}
	if out.ManifestID == nil {
		// Failed before the processor looked at the manifest (e.g. a
		// rollback): name it for the logs, from the unverified envelope.
		if e, perr := suit.ParseEnvelope(envelope, suit.ParseOptions{}); perr == nil && e.Manifest() != nil {
			out.ManifestID = e.Manifest().ComponentID
			out.Sequence = e.Manifest().SequenceNumber
		}
	}
	return out, err
}

// hasInvoke: the installed manifest id has a suit-invoke section (read
// from its stored record, which holds no integrated payload).
func (s *SUIT) hasInvoke(ctx context.Context, id suit.ComponentID) bool {
	rec, err := s.store.Manifest(ctx, id)
	if err != nil {
		return false
	}
	env, err := suit.ParseEnvelope(rec.Envelope, suit.ParseOptions{Limits: s.cfg.Limits.Limits})
	return err == nil && env.Manifest().Invoke != nil
}

// Uninstall implements Installer.
func (s *SUIT) Uninstall(ctx context.Context, id suit.ComponentID, nonce []byte) (Outcome, error) {
	p, err := s.processor()
	if errors.Is(err, ErrNoSigners) {
		// Removing needs no signer trust; a processor still needs an
		// anchor, so use one that can never verify anything.
		p, err = s.removalOnly()
	}
	if err != nil {
		return Outcome{}, err
	}
	res, err := p.Uninstall(ctx, id, processor.RunOptions{Nonce: nonce})
	return outcome(res), err
}

// removalOnly is a processor with a fresh, immediately forgotten trust
// anchor: it can run stored uninstall sequences but accept no manifest.
func (s *SUIT) removalOnly() (*processor.Processor, error) {
	k, err := cosekey.Generate(cosekey.AlgESP256)
	if err != nil {
		return nil, err
	}
	return processor.New(processor.Config{Trust: []*cosekey.Key{k.PublicKey()}, Store: s.store, Logger: s.cfg.Logger})
}

// Installed implements Installer: one entry per component per manifest,
// with the SHA-256 of the installed content (cached while the manifest
// that installed it is unchanged).
func (s *SUIT) Installed() ([]Installed, error) {
	ctx := context.Background()
	recs, err := s.store.Manifests(ctx)
	if err != nil {
		return nil, err
	}
	var out []Installed
	live := map[string]bool{}
	for _, r := range recs {
		for _, c := range r.Components {
			sha, size, err := s.digest(ctx, c, r.Digest.Bytes)
			if errors.Is(err, processor.ErrNotFound) {
				continue // linked but not (or no longer) present
			}
			if err != nil {
				return nil, err
			}
			live[c.Key()] = true
			out = append(out, Installed{
				ManifestID: r.ID, ComponentID: c, Sequence: r.SequenceNumber,
				SHA256: sha, Size: uint64(size), ManifestDigest: r.Digest.Bytes,
			})
		}
	}
	s.mu.Lock()
	for k := range s.cache {
		if !live[k] {
			delete(s.cache, k)
		}
	}
	s.mu.Unlock()
	return out, nil
}

func (s *SUIT) digest(ctx context.Context, id suit.ComponentID, manifest []byte) ([]byte, int64, error) {
	key := id.Key()
	s.mu.Lock()
	e, ok := s.cache[key]
	s.mu.Unlock()
	r, size, err := s.store.Open(ctx, id)
	if err != nil {
		return nil, 0, err
	}
	defer r.Close()
	if ok && e.size == size && string(e.manifest) == string(manifest) {
		return e.sha, size, nil
	}
	h := sha256.New()
	if _, err := io.Copy(h, r); err != nil {
		return nil, 0, fmt.Errorf("agent: hash component %s: %w", id, err)
	}
	sha := h.Sum(nil)
	s.mu.Lock()
	s.cache[key] = digestEntry{manifest: manifest, size: size, sha: sha}
	s.mu.Unlock()
	return sha, size, nil
}
