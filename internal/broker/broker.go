package broker

import (
	"context"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"strings"
	"sync"
	"time"

	"github.com/teep-go/teep/suit"
)

// Limits of one Broker.
const (
	// MaxExchangesPerSession bounds the messages of one session, so a TAM
	// that never ends a session cannot keep the device busy forever.
	MaxExchangesPerSession = 64
	// MaxSessionsPerSync bounds the sessions of one policy-check round.
	MaxSessionsPerSync = 32
	// MaxSessionRestarts bounds how often a session interrupted after a
	// TEEP message was sent starts again from an empty POST.
	MaxSessionRestarts = 3
	// DefaultSessionTimeout is the deadline of one session, every attempt,
	// restart and the Agent's own processing included, so a TAM that never
	// answers or trickles its body cannot hold a device longer.
	DefaultSessionTimeout = 10 * time.Minute
)

// Agent is the TEEP Agent as the Broker sees it: the conceptual API of
// RFC 9397 §6.2.1 (and draft-ietf-teep-otrp-over-http-15 §5), plus Status
// for the local API. An Agent runs in the same process (the agent package)
// or behind a local socket (RemoteAgent).
type Agent interface {
	// RequestTA: an application needs the Trusted Component id; tamURI is
	// an optional hint. A Result with a TAM URI asks for a session.
	RequestTA(ctx context.Context, id suit.ComponentID, tamURI string) (Result, error)
	// UnrequestTA: no application needs the component any more.
	UnrequestTA(ctx context.Context, id suit.ComponentID, tamURI string) (Result, error)
	// RequestPolicyCheck: time to check with the TAMs; returns one TAM per
	// call, and nothing (with the round's Problems) when done.
	RequestPolicyCheck(ctx context.Context) (Result, error)
	// ProcessTeepMessage handles a message from the TAM at tamURI and
	// returns the message to send back to it, or nothing.
	ProcessTeepMessage(ctx context.Context, tamURI string, msg []byte) (Result, error)
	// ProcessError tells the Agent a message to tamURI was not delivered.
	ProcessError(ctx context.Context, tamURI string, cause error)
	// Status lists what the TEE holds.
	Status(ctx context.Context) (*TEEStatus, error)
}

// Result is what an Agent API call returns: nothing, a TAM URI, or a TAM
// URI and a message to send to it.
type Result struct {
	TAMURI  string
	Message []byte
	// Problems, set when a policy-check round ends, lists what went wrong
	// in it on the Agent's side (updates it could not apply, errors the TAM
	// reported); the Broker records transport failures itself.
	Problems []string
	// Refused is set when Message is the Agent's Error for a TAM message
	// it could not accept (undecodable, unauthenticated): the reason.
	Refused string
}

// HexBytes is a byte string shown in JSON as hex.
type HexBytes []byte

// MarshalJSON implements json.Marshaler.
func (h HexBytes) MarshalJSON() ([]byte, error) { return json.Marshal(hex.EncodeToString(h)) }

// UnmarshalJSON implements json.Unmarshaler.
func (h *HexBytes) UnmarshalJSON(b []byte) error {
	var s string
	if err := json.Unmarshal(b, &s); err != nil {
		return err
	}
	d, err := hex.DecodeString(s)
	if err != nil {
		return err
	}
	*h = d
	return nil
}

// TEEStatus is what one TEE holds.
type TEEStatus struct {
	Name       string             `json:"name"`
	AgentKID   HexBytes           `json:"agent_kid,omitempty"`
	TAM        string             `json:"tam,omitempty"`
	Components []Component        `json:"components"`
	Requested  []suit.ComponentID `json:"requested,omitempty"`
	Unneeded   []suit.ComponentID `json:"unneeded,omitempty"`
	LastSync   *time.Time         `json:"last_sync,omitempty"`
	Error      string             `json:"error,omitempty"`
}

// Component is one installed Trusted Component.
type Component struct {
	ID             suit.ComponentID `json:"id"`
	ManifestID     suit.ComponentID `json:"manifest_component_id,omitempty"`
	SequenceNumber uint64           `json:"sequence_number"`
	SHA256         HexBytes         `json:"sha256"`
	Size           uint64           `json:"size"`
	// TAM names the TAM that installed it when the device trusts several
	// (absent: the default TAM).
	TAM string `json:"tam,omitempty"`
}

// Options configure a Broker.
type Options struct {
	Client *Client // TEEP/HTTP client (nil: NewClient with defaults)
	// CoAP is the TEEP/CoAP client for coap://, coaps://, coap+tcp:// and
	// coaps+tcp:// TAMs (nil: NewCoAPClient with defaults).
	CoAP *CoAPClient
	// PerTAM, keyed by TAM URI, replaces Client and CoAP for that TAM: a
	// device trusting several TAMs gives each its own TLS roots or PSK.
	PerTAM map[string]Transport
	Logger *slog.Logger
	// Metrics, when set, counts sessions and messages.
	Metrics *Metrics
	// SessionTimeout is the deadline of one session (0:
	// DefaultSessionTimeout; negative: none).
	SessionTimeout time.Duration
}

// Transport is the HTTP and CoAP clients for one TAM; a nil one is the
// Broker's.
type Transport struct {
	Client *Client
	CoAP   *CoAPClient
}

// Broker relays TEEP messages between TEEP Agents and TAMs
// (RFC 9397 §4.3, draft-ietf-teep-otrp-over-http-15 §5), one Agent per TEE.
type Broker struct {
	sessionTimeout time.Duration
	client         *Client
	coap           *CoAPClient
	perTAM         map[string]Transport
	log            *slog.Logger
	metrics        *Metrics

	mu     sync.Mutex
	names  []string // in the order added; the first is the default TEE
	agents map[string]*teeSlot
}

type teeSlot struct {
	agent Agent
	// busy serializes the sessions of one TEE: a timer-driven sync and an
	// application request never interleave messages of one Agent.
	busy sync.Mutex
}

// New returns a Broker with no Agents.
func New(o Options) *Broker {
	b := &Broker{client: o.Client, coap: o.CoAP, perTAM: o.PerTAM, log: o.Logger, metrics: o.Metrics, agents: map[string]*teeSlot{}, sessionTimeout: o.SessionTimeout}
	if b.sessionTimeout == 0 {
		b.sessionTimeout = DefaultSessionTimeout
	}
	if b.log == nil {
		b.log = slog.New(slog.DiscardHandler)
	}
	if b.client == nil {
		b.client = NewClient(ClientOptions{Logger: b.log})
	}
	if b.coap == nil {
		b.coap = NewCoAPClient(CoAPOptions{Logger: b.log})
	}
	return b
}

// ErrUnknownTEE is returned for a TEE name the Broker does not serve.
var ErrUnknownTEE = errors.New("broker: unknown TEE")

// ErrTAMInvalid: the TAM kept sending messages the Agent cannot accept.
var ErrTAMInvalid = errors.New("broker: session ended")

// ErrSessionTimeout: a session outlived Options.SessionTimeout.
var ErrSessionTimeout = errors.New("broker: session timed out")

// AddAgent routes the TEE name to a. Names are unique.
func (b *Broker) AddAgent(name string, a Agent) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	if _, dup := b.agents[name]; dup {
		return fmt.Errorf("broker: TEE %q added twice", name)
	}
	b.agents[name] = &teeSlot{agent: a}
	b.names = append(b.names, name)
	return nil
}

// TEEs lists the TEE names, the default first.
func (b *Broker) TEEs() []string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return append([]string(nil), b.names...)
}

// slot picks the TEE by name; "" picks the default (first) TEE, as
// RFC 9397 §4.3 leaves the choice of TEE to the Broker.
func (b *Broker) slot(name string) (string, *teeSlot, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if name == "" {
		if len(b.names) == 0 {
			return "", nil, fmt.Errorf("%w: no TEEs configured", ErrUnknownTEE)
		}
		name = b.names[0]
	}
	s, ok := b.agents[name]
	if !ok {
		return "", nil, fmt.Errorf("%w %q (have %s)", ErrUnknownTEE, name, strings.Join(b.names, ", "))
	}
	return name, s, nil
}

// Session runs one TEEP/HTTP session for the Agent of tee, starting from an
// Agent Result (draft-15 §5.2–5.3): POST (empty, or the Agent's message),
// hand each TAM answer to the Agent, POST its reply, until the TAM answers
// without content or the Agent has nothing to send.
func (b *Broker) session(ctx context.Context, tee string, a Agent, start Result) error {
	uri, msg := start.TAMURI, start.Message
	u, err := CheckTAMURI(uri)
	if err != nil {
		return err
	}
	client, coap := b.client, b.coap
	if t, ok := b.perTAM[uri]; ok {
		if t.Client != nil {
			client = t.Client
		}
		if t.CoAP != nil {
			coap = t.CoAP
		}
	}
	post := client.Post
	if IsCoAPScheme(u.Scheme) {
		post = coap.Post
	}
	b.log.Debug("session start", "tee", tee, "tam", uri)
	b.metrics.sessionStarted(tee)
	if b.sessionTimeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeoutCause(ctx, b.sessionTimeout,
			fmt.Errorf("%w: session with %s exceeded its deadline of %v", ErrSessionTimeout, uri, b.sessionTimeout))
		defer cancel()
	}
	refused := "" // the Agent's reason for refusing the TAM's last message
	restarts := 0
	for i := 0; i < MaxExchangesPerSession; i++ {
		resp, err := post(ctx, uri, msg)
		b.metrics.posted(tee, err)
		if err != nil && len(msg) > 0 && retryable(err) && restarts < MaxSessionRestarts && ctx.Err() == nil {
			// The message may have reached the TAM, which then consumed its
			// token: resending it would only be refused. Start over.
			restarts++
			d := client.backoff(restarts, 0)
			b.log.Warn("session interrupted after a TEEP message was sent; restarting it from an empty POST",
				"tee", tee, "tam", uri, "restart", restarts, "delay", d, "err", err)
			if serr := client.sleep(ctx, d); serr == nil {
				msg, refused = nil, ""
				continue
			}
		}
		if err != nil {
			if cause := context.Cause(ctx); errors.Is(cause, ErrSessionTimeout) {
				err = fmt.Errorf("%w (last: %v)", cause, err)
			}
			a.ProcessError(ctx, uri, err)
			b.metrics.sessionEnded(tee, "transport_error")
			return err
		}
		if len(resp) == 0 {
			b.metrics.sessionEnded(tee, "ok")
			b.log.Debug("session end", "tee", tee, "tam", uri, "exchanges", i+1)
			return nil
		}
		r, err := a.ProcessTeepMessage(ctx, uri, resp)
		if err != nil {
			b.metrics.sessionEnded(tee, "agent_error")
			return fmt.Errorf("agent: %w", err)
		}
		if len(r.Message) == 0 {
			b.metrics.sessionEnded(tee, "ok")
			return nil
		}
		if refused != "" && r.Refused != "" {
			// The TAM answered the Agent's Error with another message the
			// Agent cannot accept: more Errors would only repeat it until
			// the exchange limit.
			b.metrics.sessionEnded(tee, "tam_invalid")
			return fmt.Errorf("%w: %s answered the Agent's Error with another invalid message; first refusal: %s", ErrTAMInvalid, uri, refused)
		}
		refused = r.Refused
		msg = r.Message
	}
	b.metrics.sessionEnded(tee, "too_long")
	return fmt.Errorf("session with %s exceeded %d exchanges", uri, MaxExchangesPerSession)
}

// SyncError reports a policy-check round that did not go cleanly.
type SyncError struct {
	TEE      string
	Problems []string
}

func (e *SyncError) Error() string {
	return fmt.Sprintf("TEE %s: %s", e.TEE, strings.Join(e.Problems, "; "))
}

// Sync runs a policy-check round for one TEE ("" = every TEE, in
// parallel): sessions with each TAM the Agent names until it names none
// (draft-15 §5.4). It fails if any session failed or the Agent reports a
// problem (for example an Update it could not apply).
func (b *Broker) Sync(ctx context.Context, tee string) error {
	if tee != "" {
		return b.syncOne(ctx, tee)
	}
	names := b.TEEs()
	errs := make([]error, len(names))
	var wg sync.WaitGroup
	for i, n := range names {
		wg.Go(func() { errs[i] = b.syncOne(ctx, n) })
	}
	wg.Wait()
	return errors.Join(errs...)
}

func (b *Broker) syncOne(ctx context.Context, tee string) error {
	name, s, err := b.slot(tee)
	if err != nil {
		return err
	}
	s.busy.Lock()
	defer s.busy.Unlock()
	var problems []string
	for i := 0; ; i++ {
		if i >= MaxSessionsPerSync {
			problems = append(problems, fmt.Sprintf("policy check did not settle after %d sessions", MaxSessionsPerSync))
			break
		}
		r, err := s.agent.RequestPolicyCheck(ctx)
		if err != nil {
			problems = append(problems, "agent: "+err.Error())
			break
		}
		if r.TAMURI == "" {
			problems = append(problems, r.Problems...)
			break
		}
		if err := b.session(ctx, name, s.agent, r); err != nil {
			b.log.Warn("session failed", "tee", name, "tam", r.TAMURI, "err", err)
			problems = append(problems, err.Error())
			if ctx.Err() != nil {
				break
			}
			// The Agent was told (ProcessError, or its own error) and does
			// not name this TAM again in this round.
		}
	}
	if len(problems) > 0 {
		return &SyncError{TEE: name, Problems: dedupe(problems)}
	}
	return nil
}

// dedupe drops repeated problems, keeping the first of each in order: a
// TAM that sends the same bad message twice is one problem, not two.
func dedupe(problems []string) []string {
	seen := make(map[string]bool, len(problems))
	out := problems[:0]
	for _, p := range problems {
		if !seen[p] {
			seen[p] = true
			out = append(out, p)
		}
	}
	return out
}

// RequestTA asks the Agent of tee ("" = default) for a Trusted Component
// and runs the session it asks for. It returns the TEE that handled it.
func (b *Broker) RequestTA(ctx context.Context, tee string, id suit.ComponentID, tamURI string) (string, error) {
	return b.request(ctx, tee, id, tamURI, true)
}

// UnrequestTA tells the Agent of tee that id is no longer needed.
func (b *Broker) UnrequestTA(ctx context.Context, tee string, id suit.ComponentID, tamURI string) (string, error) {
	return b.request(ctx, tee, id, tamURI, false)
}

func (b *Broker) request(ctx context.Context, tee string, id suit.ComponentID, tamURI string, want bool) (string, error) {
	name, s, err := b.slot(tee)
	if err != nil {
		return "", err
	}
	s.busy.Lock()
	var r Result
	if want {
		r, err = s.agent.RequestTA(ctx, id, tamURI)
	} else {
		r, err = s.agent.UnrequestTA(ctx, id, tamURI)
	}
	s.busy.Unlock()
	if err != nil {
		return name, fmt.Errorf("TEE %s: %w", name, err)
	}
	if r.TAMURI == "" {
		return name, nil // nothing to do (already installed / not installed)
	}
	// The Agent wants the TAM contacted: run a full round so that whatever
	// the TAM decides (install, then maybe a dependency) is done on return.
	return name, b.syncOne(ctx, name)
}

// Status lists every TEE's state, in TEE order.
func (b *Broker) Status(ctx context.Context) []TEEStatus {
	var out []TEEStatus
	for _, n := range b.TEEs() {
		_, s, err := b.slot(n)
		if err != nil {
			continue
		}
		st, err := s.agent.Status(ctx)
		if err != nil {
			out = append(out, TEEStatus{Name: n, Components: []Component{}, Error: err.Error()})
			continue
		}
		st.Name = n
		if st.Components == nil {
			st.Components = []Component{}
		}
		out = append(out, *st)
	}
	return out
}

// Jitter spreads a period by ±10%, so a fleet of devices started together
// does not reach the TAM in step.
func Jitter(d time.Duration) time.Duration {
	if j := int64(d / 10); j > 0 {
		d += time.Duration(rand.Int64N(2*j+1) - j)
	}
	return d
}
