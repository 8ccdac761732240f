package agent

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"time"

	"github.com/teep-go/teep/cosekey"
	"github.com/teep-go/teep/internal/tee"
	"github.com/teep-go/teep/suit"
	"github.com/teep-go/teep/teep"
	"github.com/veraison/go-cose"
)

// Installer runs SUIT manifests against the TEE's component store: the SUIT
// processor as the Agent uses it (SUIT implements it).
type Installer interface {
	// Install runs the SUIT update procedure for one encoded SUIT_Envelope.
	// It is atomic: on error nothing it would have changed is changed. The
	// Outcome's Report is an encoded SUIT_Report carrying nonce (the
	// Update's token), made on success and, where possible, on failure.
	// A manifest with suit-invoke is then run once (the Invocation
	// procedure); when that fails the install stands and the error wraps
	// ErrInvokeFailed, with Outcome.InvokeReport saying what failed.
	Install(ctx context.Context, envelope []byte, nonce []byte) (Outcome, error)
	// Uninstall unlinks the manifest whose manifest-component-id is id
	// (and, by reference counting, what it alone installed).
	Uninstall(ctx context.Context, id suit.ComponentID, nonce []byte) (Outcome, error)
	// Installed lists what the store holds.
	Installed() ([]Installed, error)
}

// ScopedInstaller is an Installer that can run a manifest trusting only
// the given signers: what a TAM confined to a trust scope needs (SUIT
// implements it).
type ScopedInstaller interface {
	Installer
	InstallTrusting(ctx context.Context, envelope []byte, nonce []byte, signers []*cosekey.Key) (Outcome, error)
}

// Outcome is what one Install or Uninstall did.
type Outcome struct {
	ManifestID suit.ComponentID // nil when the envelope could not be read
	Sequence   uint64
	Report     []byte // encoded SUIT_Report; nil when none could be made
	// Unchanged: the envelope was the installed manifest, whose images
	// validated; nothing was written.
	Unchanged bool
	// InvokeReport is the SUIT_Report of the Invocation procedure run
	// after the install, when the manifest has suit-invoke.
	InvokeReport []byte
}

// Installed describes one installed Trusted Component.
type Installed struct {
	ManifestID     suit.ComponentID // suit-manifest-component-id
	ComponentID    suit.ComponentID // the component the manifest installs
	Sequence       uint64           // suit-manifest-sequence-number
	SHA256         []byte           // of the installed image
	Size           uint64
	ManifestDigest []byte // SHA-256 SUIT_Digest of the manifest, for SUIT references
	ManifestURI    string // suit-reference-uri, "" when none
	VendorID       []byte
	ClassID        []byte
	// Owner is the trust scope (TAM) that installed the manifest, "" for
	// the unscoped (default) TAM; Agent.Status fills it.
	Owner string
}

// Config configures an Agent.
type Config struct {
	TEE       tee.TEE
	Installer Installer
	// TAMs are the TAM URIs the Agent may contact, the default first.
	TAMs []string
	// Numbering is the TEEP numbering spoken with the TAMs.
	Numbering teep.Numbering
	// Freshness lists the freshness mechanisms the Agent accepts, in order
	// of preference (default: nonce, then timestamp).
	Freshness []teep.FreshnessMechanism
	Logger    *slog.Logger
	// Events, if set, receives what the Agent does, for timelines.
	Events func(Event)
	// Passport, when set, turns the Agent's Evidence into an Attestation
	// Result when a TAM asks for attestation without a challenge (the
	// passport model of RFC 9334 §5.1; draft-ietf-teep-protocol-26 §5):
	// the Evidence (eat_nonce = the token) goes to this Verifier, and its
	// result goes to the TAM. Without it, or if the Verifier fails, the TAM
	// gets the Evidence.
	Passport Verifier
}

// Verifier issues Attestation Results for Evidence (verifier.Client is
// one).
type Verifier interface {
	Result(ctx context.Context, evidence []byte) ([]byte, error)
}

// Event is something an Agent did, reported through Config.Events.
type Event struct {
	TEE       string
	Kind      EventKind
	TAM       string
	Component suit.ComponentID
	Sequence  uint64
	Detail    string
}

// EventKind classifies Events.
type EventKind string

// Event kinds.
const (
	EventAttestation EventKind = "attestation" // Evidence sent in a QueryResponse
	EventQuery       EventKind = "query"       // QueryResponse sent
	EventInstall     EventKind = "install"     // a manifest installed (new component or update)
	EventUninstall   EventKind = "uninstall"   // a manifest unlinked
	EventFailure     EventKind = "failure"     // a manifest failed, or the TAM was refused
	EventTAMError    EventKind = "tam-error"   // the TAM reported an error in an Update
	EventUnchanged   EventKind = "unchanged"   // an Update resent an installed manifest: nothing was written
)

// RoundIdle is how long a policy-check round may see no call before the
// Agent considers it abandoned by its Broker. An install that takes longer
// (a slow fetch) only costs one more session.
const RoundIdle = 15 * time.Minute

// Agent is a TEEP Agent (draft-ietf-teep-protocol-26 §4, §6) for one TEE,
// transport-agnostic: it implements the conceptual API of RFC 9397 §6.2.1
// through the methods the Broker calls.
type Agent struct {
	cfg  Config
	tee  tee.TEE
	log  *slog.Logger
	key  *cosekey.Key // Agent key (signing happens in the TEE)
	algs []cose.Algorithm

	mu    sync.Mutex
	round *round
	last  *time.Time
}

// round is one policy-check round (draft-ietf-teep-otrp-over-http-15 §5.4):
// the TAMs still to contact, and what went wrong so far.
type round struct {
	touched  time.Time // last call in this round
	todo     []string
	current  string
	changed  bool // the current TAM's session applied an Update
	failed   bool // the current TAM's session failed
	problems []string
	sessions int
}

// New returns an Agent for cfg.TEE.
func New(cfg Config) (*Agent, error) {
	if cfg.TEE == nil || cfg.Installer == nil {
		return nil, errors.New("agent: Config needs a TEE and an Installer")
	}
	for _, u := range cfg.TAMs {
		if u == "" {
			return nil, errors.New("agent: empty TAM URI")
		}
	}
	if cfg.Freshness == nil {
		cfg.Freshness = []teep.FreshnessMechanism{teep.FreshnessNonce, teep.FreshnessTimestamp}
	}
	k, err := cosekey.FromSigner(cfg.TEE.AgentKey(), 0)
	if err != nil {
		return nil, fmt.Errorf("agent: Agent key: %w", err)
	}
	a := &Agent{cfg: cfg, tee: cfg.TEE, log: cfg.Logger, key: k}
	if a.log == nil {
		a.log = slog.New(slog.DiscardHandler)
	}
	a.log = a.log.With("tee", cfg.TEE.Name())
	// The Agent's cipher suites: COSE_Sign1 with its key's algorithm, the
	// draft-26 id first, then the legacy id older TAMs offer (RFC 9864 §2:
	// same computation).
	if k.Type() == cosekey.KeyTypeP256 {
		a.algs = []cose.Algorithm{cosekey.AlgESP256, cosekey.AlgES256}
	} else {
		a.algs = []cose.Algorithm{cosekey.AlgEd25519, cosekey.AlgEdDSA}
	}
	return a, nil
}

// Name is the TEE's name.
func (a *Agent) Name() string { return a.tee.Name() }

// PublicKey is the Agent's public key (its kid identifies the device to
// TAMs).
func (a *Agent) PublicKey() *cosekey.Key { return a.key.PublicKey() }

// CipherSuites lists the suites the Agent signs with, preferred first.
func (a *Agent) CipherSuites() []teep.CipherSuite {
	out := make([]teep.CipherSuite, len(a.algs))
	for i, alg := range a.algs {
		out[i] = teep.Sign1Suite(int64(alg))
	}
	return out
}

func (a *Agent) capabilities() teep.Capabilities {
	return teep.Capabilities{
		CipherSuites:        a.CipherSuites(),
		FreshnessMechanisms: a.cfg.Freshness,
		// SUIT Reports travel unprotected inside the signed TEEP message;
		// this profile is the one the Agent processes SUIT payloads with.
		SUITCOSEProfiles: []teep.SUITCOSEProfile{teep.SUITProfileSHA256ESP256ECDHA128CTR},
		Versions:         teep.SupportedVersions(),
	}
}

func (a *Agent) emit(e Event) {
	e.TEE = a.tee.Name()
	if a.cfg.Events != nil {
		a.cfg.Events(e)
	}
}

// pickTAM picks the TAM for a request: the hint if it is one of the
// configured TAMs (the Agent, not the application, decides which TAMs to
// trust: RFC 9397 §4.2), else the default.
func (a *Agent) pickTAM(hint string) string {
	if hint != "" && slices.Contains(a.cfg.TAMs, hint) {
		return hint
	}
	if len(a.cfg.TAMs) == 0 {
		return ""
	}
	return a.cfg.TAMs[0]
}

// sign wraps m in a COSE_Sign1 with the Agent key and alg.
func (a *Agent) sign(m teep.Message, alg cose.Algorithm) ([]byte, error) {
	s, err := cosekey.NewSigner(a.key, alg)
	if err != nil {
		return nil, err
	}
	return teep.Sign(m, s, teep.SignOptions{Encode: teep.EncodeOptions{Numbering: a.cfg.Numbering}, Rand: rand.Reader})
}

// findInstalled finds an installed component by component or manifest id.
func findInstalled(list []Installed, id suit.ComponentID) *Installed {
	for i := range list {
		if list[i].ComponentID.Equal(id) || list[i].ManifestID.Equal(id) {
			return &list[i]
		}
	}
	return nil
}

// Result is what an Agent API call returns: nothing, a TAM URI to contact,
// or a TAM URI and a message to send it; Problems close a policy round.
type Result struct {
	TAMURI   string
	Message  []byte
	Problems []string
	// Refused is set when Message is an Error answering a TAM message that
	// was not a valid TEEP message from a trusted TAM: why it was refused.
	Refused string
}

// RequestTA records that an application needs the component id (RFC 9397
// §6.2.1; draft-26 §6.1 item 1). An installed component needs nothing;
// otherwise the request joins the requested-tc-list and the TAM to contact
// is returned.
func (a *Agent) RequestTA(ctx context.Context, id suit.ComponentID, tamHint string) (Result, error) {
	if len(id) == 0 {
		return Result{}, errors.New("agent: empty component id")
	}
	inst, err := a.cfg.Installer.Installed()
	if err != nil {
		return Result{}, err
	}
	if findInstalled(inst, id) != nil {
		return Result{}, nil
	}
	tam := a.pickTAM(tamHint)
	err = tee.Update(ctx, a.tee.Storage(), func(tx tee.Tx) error {
		req, err := loadPending(tx, objRequested)
		if err != nil {
			return err
		}
		if indexOf(req, id) < 0 {
			req = append(req, pending{ID: id, TAM: tam})
		}
		if err := savePending(tx, objRequested, req); err != nil {
			return err
		}
		// Asking again cancels an earlier release.
		unneeded, err := loadPending(tx, objUnneeded)
		if err != nil {
			return err
		}
		if i := indexOf(unneeded, id); i >= 0 {
			unneeded = slices.Delete(unneeded, i, i+1)
		}
		return savePending(tx, objUnneeded, unneeded)
	})
	if err != nil {
		return Result{}, fmt.Errorf("agent: record request: %w", err)
	}
	a.log.Info("component requested", "component", id.String())
	return Result{TAMURI: tam}, nil
}

// UnrequestTA records that no application needs the component id any
// more (draft-26 §6.1 item 2): a pending request is dropped; an installed
// component's manifest joins the unneeded-manifest-list.
func (a *Agent) UnrequestTA(ctx context.Context, id suit.ComponentID, tamHint string) (Result, error) {
	if len(id) == 0 {
		return Result{}, errors.New("agent: empty component id")
	}
	inst, err := a.cfg.Installer.Installed()
	if err != nil {
		return Result{}, err
	}
	found := findInstalled(inst, id)
	tam := a.pickTAM(tamHint)
	err = tee.Update(ctx, a.tee.Storage(), func(tx tee.Tx) error {
		req, err := loadPending(tx, objRequested)
		if err != nil {
			return err
		}
		if i := indexOf(req, id); i >= 0 {
			req = slices.Delete(req, i, i+1)
			if err := savePending(tx, objRequested, req); err != nil {
				return err
			}
		}
		if found == nil {
			return nil
		}
		unneeded, err := loadPending(tx, objUnneeded)
		if err != nil {
			return err
		}
		if indexOf(unneeded, found.ManifestID) < 0 {
			unneeded = append(unneeded, pending{ID: found.ManifestID, TAM: tam})
		}
		return savePending(tx, objUnneeded, unneeded)
	})
	if err != nil {
		return Result{}, fmt.Errorf("agent: record release: %w", err)
	}
	if found == nil {
		return Result{}, nil
	}
	a.log.Info("component released", "manifest", found.ManifestID.String())
	return Result{TAMURI: tam}, nil
}

// RequestPolicyCheck returns the next TAM to contact in this round, and
// nothing (with the round's problems) when every TAM has been contacted
// and the last session with each applied nothing new (draft-15 §5.4;
// draft-26 §6.1 item 3). A TAM whose session applied an Update is asked
// again, so a round ends only when the TAMs have nothing more to do.
func (a *Agent) RequestPolicyCheck(ctx context.Context) (Result, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	r := a.round
	if r != nil && time.Since(r.touched) > RoundIdle {
		// A Broker abandoned this round (cancelled, crashed): start over
		// rather than carry its state into a new one.
		r, a.round = nil, nil
	}
	if r == nil {
		if len(a.cfg.TAMs) == 0 {
			return Result{}, nil
		}
		r = &round{todo: slices.Clone(a.cfg.TAMs), touched: time.Now()}
		a.round = r
	}
	if r.current != "" {
		// The previous session is over: ask the same TAM again only if it
		// changed something and nothing failed.
		if !r.changed || r.failed {
			r.todo = slices.DeleteFunc(r.todo, func(s string) bool { return s == r.current })
		}
		r.current, r.changed, r.failed = "", false, false
	}
	if len(r.todo) == 0 {
		a.round = nil
		now := time.Now()
		a.last = &now
		return Result{Problems: r.problems}, nil
	}
	r.current = r.todo[0]
	r.sessions++
	r.touched = time.Now()
	return Result{TAMURI: r.current}, nil
}

// noteChanged / noteProblem update the current round.
func (a *Agent) noteChanged() {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.round != nil {
		a.round.changed = true
		a.round.touched = time.Now()
	}
}

func (a *Agent) noteProblem(format string, args ...any) {
	msg := fmt.Sprintf(format, args...)
	a.log.Warn(msg)
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.round != nil {
		a.round.failed = true
		a.round.problems = append(a.round.problems, msg)
	}
}

// ProcessError is told that a message to tam could not be delivered
// (draft-15 §5.5): the TAM is dropped from the current round.
func (a *Agent) ProcessError(ctx context.Context, tam string, cause error) {
	a.log.Warn("session with TAM failed", "tam", tam, "err", cause)
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.round != nil && a.round.current == tam {
		a.round.failed = true
	}
}

// Status describes what the TEE holds.
type Status struct {
	AgentKID  []byte
	Installed []Installed
	Requested []suit.ComponentID
	Unneeded  []suit.ComponentID
	LastSync  *time.Time
}

// Status lists installed components and pending requests.
func (a *Agent) Status(ctx context.Context) (*Status, error) {
	inst, err := a.cfg.Installer.Installed()
	if err != nil {
		return nil, err
	}
	for i := range inst {
		if inst[i].Owner, err = Owner(a.tee.Storage(), inst[i].ManifestID); err != nil {
			return nil, err
		}
	}
	st := &Status{AgentKID: a.key.KID(), Installed: inst}
	req, err := loadPending(a.tee.Storage(), objRequested)
	if err != nil {
		return nil, err
	}
	for _, p := range req {
		st.Requested = append(st.Requested, p.ID)
	}
	un, err := loadPending(a.tee.Storage(), objUnneeded)
	if err != nil {
		return nil, err
	}
	for _, p := range un {
		st.Unneeded = append(st.Unneeded, p.ID)
	}
	a.mu.Lock()
	st.LastSync = a.last
	a.mu.Unlock()
	return st, nil
}
