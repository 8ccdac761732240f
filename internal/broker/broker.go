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
)

// Limits of one Broker.
const (
	// MaxExchangesPerSession bounds the messages of one session, so a TAM
	// that never ends a session cannot keep the device busy forever.
	MaxExchangesPerSession = 64
	// MaxSessionsPerSync bounds the sessions of one policy-check round.
	MaxSessionsPerSync = 32
)

// Agent is the TEEP Agent as the Broker sees it: the conceptual API of
// RFC 9397 §6.2.1 (and draft-ietf-teep-otrp-over-http-15 §5), plus Status
// for the local API. An Agent runs in the same process (the agent package)
// or behind a local socket (RemoteAgent).
type Agent interface {
	// RequestTA: an application needs the Trusted Component id; tamURI is
	// an optional hint. A Result with a TAM URI asks for a session.
	RequestTA(ctx context.Context, id ComponentID, tamURI string) (Result, error)
	// UnrequestTA: no application needs the component any more.
	UnrequestTA(ctx context.Context, id ComponentID, tamURI string) (Result, error)
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
}

// ComponentID is a SUIT_Component_Identifier; in JSON a list of hex strings.
type ComponentID [][]byte

// MarshalJSON encodes the id as a list of hex strings.
func (c ComponentID) MarshalJSON() ([]byte, error) {
	parts := make([]string, len(c))
	for i, p := range c {
		parts[i] = hex.EncodeToString(p)
	}
	return json.Marshal(parts)
}

// UnmarshalJSON decodes a list of hex strings.
func (c *ComponentID) UnmarshalJSON(b []byte) error {
	var parts []string
	if err := json.Unmarshal(b, &parts); err != nil {
		return fmt.Errorf("component id: want a list of hex strings: %w", err)
	}
	id, err := componentIDFromHex(parts)
	if err != nil {
		return err
	}
	*c = id
	return nil
}

// Limits on component ids from applications.
const (
	MaxComponentIDParts    = 16
	MaxComponentIDPartSize = 256
)

func componentIDFromHex(parts []string) (ComponentID, error) {
	if len(parts) == 0 {
		return nil, errors.New("component id: empty")
	}
	if len(parts) > MaxComponentIDParts {
		return nil, fmt.Errorf("component id: %d parts, more than %d", len(parts), MaxComponentIDParts)
	}
	id := make(ComponentID, len(parts))
	for i, p := range parts {
		b, err := hex.DecodeString(p)
		if err != nil {
			return nil, fmt.Errorf("component id part %d: %w", i, err)
		}
		if len(b) > MaxComponentIDPartSize {
			return nil, fmt.Errorf("component id part %d: %d bytes, more than %d", i, len(b), MaxComponentIDPartSize)
		}
		id[i] = b
	}
	return id, nil
}

// ParseComponentID reads a component id as users type it: a JSON list of
// hex strings (as `teep device status` prints it), or hex parts separated
// by commas or slashes.
func ParseComponentID(s string) (ComponentID, error) {
	s = strings.TrimSpace(s)
	if strings.HasPrefix(s, "[") {
		var id ComponentID
		if err := json.Unmarshal([]byte(s), &id); err != nil {
			return nil, err
		}
		return id, nil
	}
	return componentIDFromHex(strings.FieldsFunc(s, func(r rune) bool { return r == ',' || r == '/' }))
}

// String renders the id as the JSON list the CLI accepts.
func (c ComponentID) String() string {
	b, _ := c.MarshalJSON()
	return string(b)
}

// Equal reports whether c and d have the same parts.
func (c ComponentID) Equal(d ComponentID) bool {
	if len(c) != len(d) {
		return false
	}
	for i := range c {
		if string(c[i]) != string(d[i]) {
			return false
		}
	}
	return true
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
	Name       string        `json:"name"`
	AgentKID   HexBytes      `json:"agent_kid,omitempty"`
	TAM        string        `json:"tam,omitempty"`
	Components []Component   `json:"components"`
	Requested  []ComponentID `json:"requested,omitempty"`
	Unneeded   []ComponentID `json:"unneeded,omitempty"`
	LastSync   *time.Time    `json:"last_sync,omitempty"`
	Error      string        `json:"error,omitempty"`
}

// Component is one installed Trusted Component.
type Component struct {
	ID             ComponentID `json:"id"`
	ManifestID     ComponentID `json:"manifest_id,omitempty"`
	SequenceNumber uint64      `json:"sequence_number"`
	SHA256         HexBytes    `json:"sha256"`
	Size           uint64      `json:"size"`
}

// Options configure a Broker.
type Options struct {
	Client *Client // TEEP/HTTP client (nil: NewClient with defaults)
	// CoAP is the TEEP/CoAP client for coap://, coaps://, coap+tcp:// and
	// coaps+tcp:// TAMs (nil: NewCoAPClient with defaults).
	CoAP   *CoAPClient
	Logger *slog.Logger
	// Metrics, when set, counts sessions and messages.
	Metrics *Metrics
}

// Broker relays TEEP messages between TEEP Agents and TAMs
// (RFC 9397 §4.3, draft-ietf-teep-otrp-over-http-15 §5), one Agent per TEE.
type Broker struct {
	client  *Client
	coap    *CoAPClient
	log     *slog.Logger
	metrics *Metrics

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
	b := &Broker{client: o.Client, coap: o.CoAP, log: o.Logger, metrics: o.Metrics, agents: map[string]*teeSlot{}}
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
	post := b.client.Post
	if IsCoAPScheme(u.Scheme) {
		post = b.coap.Post
	}
	b.log.Debug("session start", "tee", tee, "tam", uri)
	b.metrics.sessionStarted(tee)
	for i := 0; i < MaxExchangesPerSession; i++ {
		resp, err := post(ctx, uri, msg)
		b.metrics.posted(tee, err)
		if err != nil {
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
		return &SyncError{TEE: name, Problems: problems}
	}
	return nil
}

// RequestTA asks the Agent of tee ("" = default) for a Trusted Component
// and runs the session it asks for. It returns the TEE that handled it.
func (b *Broker) RequestTA(ctx context.Context, tee string, id ComponentID, tamURI string) (string, error) {
	return b.request(ctx, tee, id, tamURI, true)
}

// UnrequestTA tells the Agent of tee that id is no longer needed.
func (b *Broker) UnrequestTA(ctx context.Context, tee string, id ComponentID, tamURI string) (string, error) {
	return b.request(ctx, tee, id, tamURI, false)
}

func (b *Broker) request(ctx context.Context, tee string, id ComponentID, tamURI string, want bool) (string, error) {
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
