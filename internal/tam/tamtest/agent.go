package tamtest

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"

	"github.com/teep-go/teep/cosekey"
	"github.com/teep-go/teep/eat"
	"github.com/teep-go/teep/internal/attester"
	"github.com/teep-go/teep/suit"
	"github.com/teep-go/teep/suit/processor"
	"github.com/teep-go/teep/teep"
)

// Transport carries one message to the TAM and returns its answer (nil:
// the session is over). An empty message starts a session.
type Transport func(ctx context.Context, msg []byte) ([]byte, error)

// AgentOptions configure a scripted test Agent.
type AgentOptions struct {
	Key            *cosekey.Key // Agent (TEEP message) key; a fresh P-256 key when nil
	AttestationKey *cosekey.Key // signs Evidence; a fresh P-256 key when nil
	Identity       attester.Identity
	TAMKeys        []*cosekey.Key // trusted TAM keys
	Trust          []*cosekey.Key // trusted TC signers for manifests
	Numbering      teep.Numbering
	// KIDOnlyCNF makes Evidence name the Agent key only by kid, which is
	// not enough for a TAM that does not know the key yet.
	KIDOnlyCNF bool
	// Passport, when set, turns Evidence into an Attestation Result (the
	// passport model) before it is sent.
	Passport  func(evidence []byte) ([]byte, error)
	Transport Transport
	// EmptyTCList answers a request for the tc-list with tc-list: [] when
	// nothing is installed, as some Agents do (our encoder never writes it:
	// the CDDL asks for one entry). The message is then assembled by hand.
	EmptyTCList bool
}

// Agent is a scripted TEEP Agent for tests, built on the teep package and
// the real SUIT processor over an in-memory store. It answers QueryRequests
// (with Evidence when asked) and Updates (installing and removing through
// the processor, reporting with suit-report-nonce = token).
type Agent struct {
	t        testing.TB
	opts     AgentOptions
	key      *cosekey.Key
	signer   *cosekey.Signer
	attester *attester.Attester
	store    *processor.MemStore
	proc     *processor.Processor

	mu        sync.Mutex
	requested []teep.RequestedTC
	unneeded  []suit.ComponentID
	// FailUpdates, when non-zero, answers every Update with an Error of
	// this code instead of processing it.
	FailUpdates teep.ErrCode
	// Tamper, when set, may change each message before it is signed.
	Tamper func(m teep.Message)
}

// NewAgent makes a scripted Agent.
func NewAgent(t testing.TB, o AgentOptions) *Agent {
	t.Helper()
	a := &Agent{t: t, opts: o, key: o.Key}
	var err error
	if a.key == nil {
		if a.key, err = cosekey.Generate(cosekey.AlgESP256); err != nil {
			t.Fatal(err)
		}
	}
	if a.signer, err = cosekey.NewSigner(a.key, 0); err != nil {
		t.Fatal(err)
	}
	ak := o.AttestationKey
	if ak == nil {
		if ak, err = cosekey.Generate(cosekey.AlgESP256); err != nil {
			t.Fatal(err)
		}
		a.opts.AttestationKey = ak
	}
	as, err := cosekey.NewSigner(ak, 0)
	if err != nil {
		t.Fatal(err)
	}
	id := o.Identity
	if id.UEID == nil {
		if id.UEID, err = attester.NewUEID(); err != nil {
			t.Fatal(err)
		}
	}
	if id.OEMID == nil {
		id.OEMID = eat.OEMIDPEN(32473) // the documentation PEN (RFC 5612)
	}
	if id.HWModel == nil {
		id.HWModel = []byte("tamtest-model")
	}
	if id.HWVersion.Version == "" {
		id.HWVersion = eat.Version{Version: "1.0"}
	}
	if id.Manifests == nil {
		ref := eat.SUITReference{URI: "https://example.com/tamtest-agent.suit", DigestAlg: eat.AlgSHA256, Digest: make([]byte, 32)}
		id.Manifests = []eat.Manifest{ref.Manifest(eat.ContentFormatCBOR)}
	}
	a.attester = &attester.Attester{Key: as, Identity: id}
	a.store = processor.NewMemStore()
	trust := append(append([]*cosekey.Key{}, o.Trust...), o.TAMKeys...)
	if len(trust) == 0 {
		t.Fatal("tamtest: the Agent needs TAM keys or TC signer keys to trust")
	}
	cfg := processor.Config{Trust: trust, Store: a.store}
	if a.key.Type() == cosekey.KeyTypeP256 {
		cfg.DeviceKey = a.key // decrypts personalization data
	}
	if a.proc, err = processor.New(cfg); err != nil {
		t.Fatal(err)
	}
	return a
}

// Key is the Agent's key (private).
func (a *Agent) Key() *cosekey.Key { return a.key }

// KID is the Agent key's RFC 9679 thumbprint.
func (a *Agent) KID() []byte { return a.key.KID() }

// AttestationKey is the public key that signs the Agent's Evidence, for a
// Verifier policy to endorse.
func (a *Agent) AttestationKey() *cosekey.Key { return a.opts.AttestationKey.PublicKey() }

// Identity is what the Agent's Evidence says about the device.
func (a *Agent) Identity() attester.Identity { return a.attester.Identity }

// Transport is how the Agent reaches the TAM.
func (a *Agent) Transport() Transport { return a.opts.Transport }

// SetTransport changes how messages reach the TAM.
func (a *Agent) SetTransport(tr Transport) { a.opts.Transport = tr }

// Request asks for a component at the next QueryResponse
// (requested-tc-list); min, when non-nil, is the lowest acceptable
// sequence number.
func (a *Agent) Request(id suit.ComponentID, min *uint64) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.requested = append(a.requested, teep.RequestedTC{ComponentID: id, SequenceNumber: min})
}

// Unrequest declares a manifest unneeded at the next QueryResponse.
func (a *Agent) Unrequest(manifestID suit.ComponentID) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.unneeded = append(a.unneeded, manifestID)
}

// Trace records one session.
type Trace struct {
	Types    []string // message types in order, TAM's and Agent's alternating
	Messages [][]byte // the signed messages, same order
}

// Sync runs one session: an empty POST, then answers until the TAM ends it.
func (a *Agent) Sync(ctx context.Context) (*Trace, error) {
	tr := &Trace{}
	msg := []byte{}
	for i := 0; i < 16; i++ {
		in, err := a.opts.Transport(ctx, msg)
		if err != nil {
			return tr, err
		}
		if in == nil {
			return tr, nil
		}
		tr.add(in, a.opts.Numbering)
		if msg, err = a.Answer(ctx, in); err != nil {
			return tr, err
		}
		tr.add(msg, a.opts.Numbering)
	}
	return tr, errors.New("tamtest: session did not end after 16 exchanges")
}

func (tr *Trace) add(msg []byte, n teep.Numbering) {
	op, err := teep.Open(msg, teep.OpenOptions{Numbering: n, SkipVerifyUnsafe: true})
	typ := "invalid"
	if err == nil {
		typ = op.Message.Type().String()
	}
	tr.Types = append(tr.Types, typ)
	tr.Messages = append(tr.Messages, msg)
}

// Answer processes one TAM message and returns the signed answer.
func (a *Agent) Answer(ctx context.Context, in []byte) ([]byte, error) {
	op, err := teep.Open(in, teep.OpenOptions{Numbering: a.opts.Numbering, Keys: a.opts.TAMKeys})
	if err != nil {
		return nil, fmt.Errorf("tamtest agent: TAM message: %w", err)
	}
	var out teep.Message
	switch m := op.Message.(type) {
	case *teep.QueryRequest:
		out, err = a.queryResponse(ctx, m)
	case *teep.Update:
		out, err = a.update(ctx, m)
	default:
		return nil, fmt.Errorf("tamtest agent: unexpected %s from the TAM", m.Type())
	}
	if err != nil {
		return nil, err
	}
	if a.Tamper != nil {
		a.Tamper(out)
	}
	if qr, ok := out.(*teep.QueryResponse); ok && a.opts.EmptyTCList && qr.TCList == nil &&
		op.Message.(*teep.QueryRequest).DataItemRequested.Has(teep.DataItemTrustedComponents) {
		return a.signWithEmptyTCList(qr)
	}
	return teep.Sign(out, a.signer, teep.SignOptions{Encode: teep.EncodeOptions{Numbering: a.opts.Numbering}})
}

// signWithEmptyTCList encodes qr, appends tc-list: [] to its options map
// and signs the result. qr is [type, {options}], the map last and short.
func (a *Agent) signWithEmptyTCList(qr *teep.QueryResponse) ([]byte, error) {
	b, err := teep.Encode(qr, teep.EncodeOptions{Numbering: a.opts.Numbering})
	if err != nil {
		return nil, err
	}
	const mapHead = 2 // after 0x82 (array of 2) and the one-byte type
	if len(b) < 3 || b[mapHead]>>5 != 5 || b[mapHead]&0x1f >= 23 {
		return nil, fmt.Errorf("tamtest agent: cannot splice tc-list into % x", b)
	}
	b[mapHead]++
	b = append(b, byte(a.opts.Numbering.Wire(teep.LabelTCList)), 0x80)
	return cosekey.Sign1(b, a.signer, &cosekey.SignOptions{})
}

// Sign signs any message with the Agent key, for tests that send crafted
// messages.
func (a *Agent) Sign(m teep.Message) ([]byte, error) {
	return teep.Sign(m, a.signer, teep.SignOptions{Encode: teep.EncodeOptions{Numbering: a.opts.Numbering}})
}

func (a *Agent) queryResponse(ctx context.Context, q *teep.QueryRequest) (*teep.QueryResponse, error) {
	r := &teep.QueryResponse{Token: q.Token}
	if q.DataItemRequested.Has(teep.DataItemAttestation) {
		nonce := q.Challenge
		if nonce == nil {
			nonce = q.Token
		}
		ev, err := a.attester.Evidence(attester.Request{Nonce: nonce, AgentKey: a.key.PublicKey(), IncludeAgentKey: !a.opts.KIDOnlyCNF})
		if err != nil {
			return nil, err
		}
		if a.opts.Passport != nil && q.Challenge == nil {
			if ev, err = a.opts.Passport(ev); err != nil {
				return nil, err
			}
		}
		r.AttestationPayload = ev
	}
	if q.DataItemRequested.Has(teep.DataItemTrustedComponents) {
		inv, err := a.proc.Inventory(ctx)
		if err != nil {
			return nil, err
		}
		for _, sp := range inv {
			c := teep.SystemPropertyClaims{ComponentID: sp.ComponentID}
			for _, p := range sp.Properties {
				if d, ok := p.Value.(suit.Digest); ok && p.Key == suit.ParamImageDigest {
					c.ImageDigest = &teep.Digest{Alg: d.Alg, Bytes: d.Bytes}
				}
			}
			r.TCList = append(r.TCList, c)
		}
	}
	a.mu.Lock()
	r.RequestedTCList = append(r.RequestedTCList, a.requested...)
	r.UnneededManifestList = append(r.UnneededManifestList, a.unneeded...)
	a.mu.Unlock()
	return r, nil
}

func (a *Agent) update(ctx context.Context, u *teep.Update) (teep.Message, error) {
	if u.ErrCode != 0 {
		// A TAM-side error: acknowledge it.
		return &teep.Success{Token: u.Token, Msg: "noted " + u.ErrCode.String()}, nil
	}
	if a.FailUpdates != 0 {
		return &teep.Error{Token: u.Token, ErrCode: a.FailUpdates, ErrMsg: "scripted failure"}, nil
	}
	var reports [][]byte
	for _, id := range u.UnneededManifestList {
		res, err := a.proc.Uninstall(ctx, id, processor.RunOptions{Nonce: u.Token})
		if err != nil {
			return &teep.Error{Token: u.Token, ErrCode: teep.ErrManifestProcessingFailed, ErrMsg: "uninstall failed", SUITReports: [][]byte{res.ReportBytes}}, nil
		}
		reports = append(reports, res.ReportBytes)
	}
	for _, env := range u.ManifestList {
		res, err := a.proc.Install(ctx, env, processor.RunOptions{Nonce: u.Token})
		if err != nil {
			var rb [][]byte
			if res != nil && res.ReportBytes != nil {
				rb = [][]byte{res.ReportBytes}
			}
			return &teep.Error{Token: u.Token, ErrCode: teep.ErrManifestProcessingFailed, ErrMsg: truncate(err.Error()), SUITReports: rb}, nil
		}
		reports = append(reports, res.ReportBytes)
	}
	a.mu.Lock()
	a.requested, a.unneeded = nil, nil
	a.mu.Unlock()
	return &teep.Success{Token: u.Token, SUITReports: reports}, nil
}

func truncate(s string) string {
	if len(s) > 100 {
		return s[:100]
	}
	return s
}

// Installed returns the installed manifests: manifest id (readable) -> sequence number.
func (a *Agent) Installed(ctx context.Context) map[string]uint64 {
	a.t.Helper()
	recs, err := a.proc.Installed(ctx)
	if err != nil {
		a.t.Fatal(err)
	}
	out := map[string]uint64{}
	for _, r := range recs {
		out[r.ID.String()] = r.SequenceNumber
	}
	return out
}

// Component returns an installed component's bytes.
func (a *Agent) Component(ctx context.Context, id suit.ComponentID) ([]byte, bool) {
	a.t.Helper()
	r, _, err := a.store.Open(ctx, id)
	if err != nil {
		return nil, false
	}
	defer r.Close()
	var buf []byte
	tmp := make([]byte, 4096)
	for {
		n, err := r.Read(tmp)
		buf = append(buf, tmp[:n]...)
		if err != nil {
			break
		}
	}
	return buf, true
}
