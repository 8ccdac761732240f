package processor

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/teep-go/teep/cosekey"
	"github.com/teep-go/teep/suit"
)

// Identity is what the device asserts for the identity conditions. A device
// may assert several values of each (e.g. a class per hardware revision it
// is compatible with).
type Identity struct {
	VendorIDs [][]byte // 16-byte UUIDs, or CBOR-PEN bytes
	ClassIDs  [][]byte // 16-byte UUIDs
	DeviceIDs [][]byte // 16-byte UUIDs
}

// Limits bound a run. Zero fields take defaults.
type Limits struct {
	suit.Limits
	MaxComponentSize int64 // largest component a fetch/copy/write may stage
	MaxInMemory      int64 // largest payload held in memory (AEAD decryption, dependency envelopes)
}

// Default run limits.
const (
	DefaultMaxComponentSize = 4 << 30
	DefaultMaxInMemory      = 32 << 20
)

func (l Limits) withDefaults() Limits {
	if l.MaxComponentSize <= 0 {
		l.MaxComponentSize = DefaultMaxComponentSize
	}
	if l.MaxInMemory <= 0 {
		l.MaxInMemory = DefaultMaxInMemory
	}
	l.Limits = l.Limits.WithDefaults()
	return l
}

// AuthorizeRequest asks whether the signer of a manifest may act on a
// manifest id (Component nil) or on a component.
type AuthorizeRequest struct {
	Signer     *cosekey.Key // nil when a MAC authenticated the manifest
	ManifestID suit.ComponentID
	Component  suit.ComponentID
}

// Config configures a Processor.
type Config struct {
	// Trust anchors: manifests must carry a block that verifies with one.
	// With none, every Install fails authentication; Uninstall, Installed
	// and Inventory still work (stored manifests were authenticated when
	// they were installed).
	Trust   []*cosekey.Key
	MACKeys []suit.MACKey
	Store   ComponentStore
	Fetcher Fetcher // nil: only integrated payloads and dependencies
	// Identity the device asserts for vendor/class/device-identifier.
	Identity Identity
	// DeviceKey is the device's P-256 ECDH key for ECDH-ES encrypted
	// payloads (convenience for Decryption.ECDH).
	DeviceKey *cosekey.Key
	// Decryption holds further ECDH recipient keys and AES-KW KEKs.
	Decryption suit.DecryptionKeys
	// Invoker runs components; nil: invoke is unsupported.
	Invoker Invoker
	// Slot answers component-slot conditions; nil: the condition fails.
	Slot func(id suit.ComponentID) (uint64, bool)
	// Authorize, when set, is asked before a manifest is accepted and
	// before each component it changes (an ACL per signer).
	Authorize func(AuthorizeRequest) error
	// RequireIncreasingSequence rejects an equal sequence number too. By
	// default an equal number is accepted only for the identical manifest
	// (re-applying it); a lower one is always rejected.
	RequireIncreasingSequence bool
	// SkipFetchIfPresent skips a fetch when the installed (committed)
	// content already matches the image digest and size, so an unchanged
	// payload is not downloaded again.
	SkipFetchIfPresent bool
	Limits             Limits
	Logger             *slog.Logger
	// Observer, when set, is told about every finished run (metrics).
	Observer Observer
}

// Processor runs SUIT procedures against a component store. Runs are
// serialised; a Processor is safe for concurrent use.
type Processor struct {
	cfg  Config
	keys suit.DecryptionKeys
	mu   sync.Mutex
	log  *slog.Logger
}

// New checks the configuration and returns a Processor.
func New(cfg Config) (*Processor, error) {
	if cfg.Store == nil {
		return nil, errors.New("processor: Config.Store is required")
	}
	for i, k := range cfg.Trust {
		if k == nil {
			return nil, fmt.Errorf("processor: Config.Trust[%d] is nil", i)
		}
	}
	cfg.Limits = cfg.Limits.withDefaults()
	p := &Processor{cfg: cfg, keys: cfg.Decryption, log: cfg.Logger}
	if p.log == nil {
		p.log = slog.New(slog.DiscardHandler)
	}
	if cfg.DeviceKey != nil {
		dk, err := cfg.DeviceKey.ECDHPrivate()
		if err != nil {
			return nil, fmt.Errorf("processor: DeviceKey: %w", err)
		}
		p.keys.ECDH = append([]suit.ECDHRecipientKey{{Key: dk}}, p.keys.ECDH...)
	}
	return p, nil
}

// RunOptions adjust one run.
type RunOptions struct {
	// Nonce becomes suit-report-nonce (TEEP: the token of the request).
	Nonce []byte
	// Capabilities adds suit-report-capability-report to the report.
	Capabilities bool
}

// Capabilities describes what this processor supports, as a SUIT capability
// report: any component id, the commands, parameters and algorithms it
// implements, and the envelope, manifest, common and dependency keys it reads.
func (p *Processor) Capabilities() *suit.CapabilityReport {
	c := &suit.CapabilityReport{
		Components: []suit.ComponentCapability{{Wildcard: true}},
		Commands: []int64{suit.CondVendorID, suit.CondClassID, suit.CondImageMatch, suit.CondCheckContent,
			suit.CondDependencyIntegrity, suit.CondIsDependency, suit.DirProcessDependency, suit.DirSetComponentIndex,
			suit.CondAbort, suit.DirTryEach, suit.DirWrite, suit.DirSetParameters, suit.DirOverrideParameters,
			suit.DirFetch, suit.DirCopy, suit.CondDeviceID, suit.CondImageNotMatch, suit.DirSwap, suit.DirRunSequence, suit.DirUnlink},
		Parameters: []int64{suit.ParamVendorID, suit.ParamClassID, suit.ParamImageDigest, suit.ParamComponentSlot,
			suit.ParamStrictOrder, suit.ParamSoftFailure, suit.ParamImageSize, suit.ParamContent, suit.ParamEncryptionInfo,
			suit.ParamURI, suit.ParamSourceComponent, suit.ParamInvokeArgs, suit.ParamDeviceID, suit.ParamFetchArguments},
		CryptAlgs: []int64{suit.AlgSHA256, suit.AlgSHA384, suit.AlgSHA512, suit.AlgSHAKE128, suit.AlgSHAKE256,
			-9, -7, -19, -8, suit.AlgHMAC256, suit.AlgHMAC384, suit.AlgHMAC512,
			suit.AlgA128KW, suit.AlgA192KW, suit.AlgA256KW, suit.AlgECDHESA128KW, suit.AlgECDHESA192KW, suit.AlgECDHESA256KW,
			suit.AlgA128GCM, suit.AlgA192GCM, suit.AlgA256GCM, suit.AlgChaCha20Poly1305, suit.AlgA128CTR, suit.AlgA192CTR, suit.AlgA256CTR},
		Envelope:   []int64{2, 3, 15, 16, 18, 20, 23},
		Manifest:   []int64{1, 2, 3, 4, 5, 7, 8, 9, 15, 16, 18, 20, 23, 24},
		Common:     []int64{1, 2, 4},
		Dependency: []int64{1},
	}
	if p.cfg.Slot != nil {
		c.Commands = append(c.Commands, suit.CondComponentSlot)
	}
	if p.cfg.Invoker != nil {
		c.Commands = append(c.Commands, suit.DirInvoke)
	}
	return c
}

// ComponentChange is a component installed or removed by a run.
type ComponentChange struct {
	ID     suit.ComponentID
	SHA256 []byte // of the installed content, or of the removed content
	Size   int64
}

// Failure locates the command that failed.
type Failure struct {
	ManifestID     suit.ComponentID // manifest the failing command belongs to
	ManifestPath   []uint64         // dependency indices from the root
	Section        suit.Section
	Offset         int
	Command        int64 // command code; 0 before any command ran
	ComponentIndex uint64
	Reason         suit.Reason
	Properties     []suit.Param // measured values or parameters in effect (SUIT_Record properties)
	Err            error
}

func (f *Failure) Error() string {
	if f.Command == 0 {
		return f.Err.Error()
	}
	return fmt.Sprintf("%s in %s of %s (offset %d, component %d): %v", suit.CommandName(f.Command), f.Section, f.ManifestID, f.Offset, f.ComponentIndex, f.Err)
}

func (f *Failure) Unwrap() error { return f.Err }

// Result is the outcome of a run. It is returned for failures too, with the
// report saying what failed.
type Result struct {
	Success          bool
	Procedure        string // "update", "uninstall" or "invoke"
	ManifestID       suit.ComponentID
	SequenceNumber   uint64
	Digest           suit.Digest
	Installed        []ComponentChange
	Removed          []ComponentChange
	Manifests        []suit.ComponentID // manifest records written
	RemovedManifests []suit.ComponentID
	Report           *suit.Report
	ReportBytes      []byte
	Failure          *Failure // nil on success
	Duration         time.Duration
	// Unchanged is set when the envelope was the installed manifest: only
	// suit-validate ran, and it passed (Processor.Install).
	Unchanged bool
}

// Install runs the Update procedure (dependency-resolution, payload-fetch,
// candidate-verification, install, validate; draft-ietf-suit-manifest §8.4.6
// with draft-ietf-suit-trust-domains §7) on an envelope, including its
// dependencies, and commits the result atomically. The error is non-nil iff
// the run failed; the Result (with its report) is always returned.
func (p *Processor) Install(ctx context.Context, envelope []byte, o RunOptions) (*Result, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if res, ok := p.unchanged(ctx, envelope, o); ok {
		return res, nil
	}
	r := p.newRun(ctx, "update", o)
	r.install(envelope)
	return r.finish()
}

// unchanged answers an Update whose root manifest is the one installed
// (same digest and sequence number) without installing it again: it
// authenticates the envelope, runs only suit-validate, which checks the
// installed images, and reports success with Result.Unchanged. A peer that
// resends what a device has must not cost a reinstall per session. Any
// failure, or a manifest without suit-validate, returns false: the full
// Update then runs, and repairs what validate found wrong.
func (p *Processor) unchanged(ctx context.Context, envelope []byte, o RunOptions) (*Result, bool) {
	r := p.newRun(ctx, "update", o)
	env, err := suit.ParseEnvelope(envelope, suit.ParseOptions{Limits: r.lim.Limits})
	if err != nil || env.Manifest().Validate == nil {
		return nil, false
	}
	m := env.Manifest()
	id := m.ComponentID
	if id == nil {
		id = fallbackManifestID(m)
	}
	// Compared before any signature work: a changed manifest costs nothing.
	old, err := r.record(id)
	if err != nil || old == nil || !old.Root || old.SequenceNumber != m.SequenceNumber || !old.Digest.Equal(env.Digest()) {
		return nil, false
	}
	r.setReference(env)
	mc, err := r.accept(env, nil, 0)
	if err != nil || !r.begin() {
		return nil, false
	}
	r.root = mc
	r.res.ManifestID, r.res.SequenceNumber, r.res.Digest = mc.id, m.SequenceNumber, env.Digest()
	r.processed[mc.id.Key()] = mc
	r.procOrder = append(r.procOrder, mc.id.Key())
	if !r.runSection(mc, suit.SectionValidate) || r.fail != nil {
		r.txn.Abort()
		return nil, false
	}
	r.res.Unchanged = true
	res, err := r.finish()
	return res, err == nil
}

// Uninstall removes the root reference to the manifest with the given
// manifest-component-id (TEEP unneeded-manifest-list). When nothing else
// references it, its suit-uninstall sequence runs (unlinking its
// components and dependencies), its record is deleted and components no
// manifest links any more are removed.
func (p *Processor) Uninstall(ctx context.Context, manifestID suit.ComponentID, o RunOptions) (*Result, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	r := p.newRun(ctx, "uninstall", o)
	r.uninstall(manifestID)
	return r.finish()
}

// Invoke runs the Invocation procedure (validate, load, invoke) of an
// installed manifest.
func (p *Processor) Invoke(ctx context.Context, manifestID suit.ComponentID, o RunOptions) (*Result, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	r := p.newRun(ctx, "invoke", o)
	r.invoke(manifestID)
	return r.finish()
}

// Installed lists the installed manifests.
func (p *Processor) Installed(ctx context.Context) ([]*ManifestRecord, error) {
	return p.cfg.Store.Manifests(ctx)
}

// Inventory returns one system-property-claims entry per installed manifest
// ({0: manifest-component-id, 3: manifest digest}), the shape TEEP's
// QueryResponse tc-list uses.
func (p *Processor) Inventory(ctx context.Context) ([]suit.SystemProperties, error) {
	recs, err := p.cfg.Store.Manifests(ctx)
	if err != nil {
		return nil, err
	}
	out := make([]suit.SystemProperties, 0, len(recs))
	for _, rec := range recs {
		d, err := suit.NewParam(suit.ParamImageDigest, rec.Digest)
		if err != nil {
			return nil, err
		}
		out = append(out, suit.SystemProperties{ComponentID: rec.ID, Properties: []suit.Param{d}})
	}
	return out, nil
}

// fallbackManifestID names a manifest that has no manifest-component-id:
// the SHA-256 of its encoded components, so versions of the same manifest
// share rollback state.
func fallbackManifestID(m *suit.Manifest) suit.ComponentID {
	h := sha256.New()
	for _, c := range m.Common.Components {
		h.Write(c.Marshal())
	}
	return suit.ComponentID{[]byte("suit-manifest"), h.Sum(nil)[:16]}
}
