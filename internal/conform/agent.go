package conform

import (
	"bytes"
	"crypto/rand"
	"fmt"
	"io"
	"net/http"
	"sync"

	"github.com/teep-go/teep/cosekey"
	"github.com/teep-go/teep/suit"
	"github.com/teep-go/teep/teep"
)

// MaxAgentMessage bounds a message the scripted TAM reads from a device.
const MaxAgentMessage = 4 << 20

// AgentOptions configure NewAgentSuite.
type AgentOptions struct {
	Numbering teep.Numbering
	// TAMKey signs the scripted TAM's messages and Signer the Trusted
	// Components it sends; the device under test must trust both. Fresh
	// keys when nil (their public halves are TAMPublicKey, SignerPublicKey).
	TAMKey, SignerKey *cosekey.Key
}

// AgentSuite is a scripted TAM (an http.Handler) that a device under test
// connects to. Each session, started by an empty POST, runs the next
// scenario of the catalogue and records how the Agent answered it.
type AgentSuite struct {
	num            teep.Numbering
	tam, tcSigner  *cosekey.Signer
	stranger       *cosekey.Signer // a TAM / TC signer no device trusts
	installed      []byte          // the envelope the install scenario sent
	mu             sync.Mutex
	next           int               // scenario to start with the next session
	cur            *agentScenario    // the scenario of the session in progress
	awaiting       bool              // cur's message was sent; its answer is due
	results        map[string]Result // by scenario id
	done           chan struct{}     // closed when every scenario has a result
	phase          int               // update scenarios: 0 QueryRequest sent, 1 Update sent
	lastQueryToken []byte
}

// agentScenario is one entry of the Agent catalogue.
type agentScenario struct {
	id, title, section string
	required           bool
	// update scenarios first run a valid QueryRequest, then send the Update.
	update bool
	// message builds what the TAM sends (token is fresh).
	message func(s *AgentSuite, token []byte) (teep.Message, *cosekey.Signer, error)
	// judge evaluates the Agent's answer (nil: none came).
	judge func(s *AgentSuite, sent teep.Message, answer teep.Message) (Status, string)
}

var agentScenarios = []agentScenario{
	{id: "agent.query-response", title: "a valid QueryRequest gets a QueryResponse echoing its token", section: "protocol-26 §4.3", required: true,
		message: validQueryRequest, judge: wantQueryResponse},
	{id: "agent.unsupported-version", title: "no common version: Error ERR_UNSUPPORTED_MSG_VERSION", section: "protocol-26 §4.2", required: true,
		message: func(s *AgentSuite, tok []byte) (teep.Message, *cosekey.Signer, error) {
			q, _, _ := validQueryRequest(s, tok)
			q.(*teep.QueryRequest).Versions = []uint32{99}
			return q, s.tam, nil
		}, judge: wantError(teep.ErrUnsupportedMsgVersion)},
	{id: "agent.unsupported-cipher-suite", title: "no common cipher suite: Error ERR_UNSUPPORTED_CIPHER_SUITES", section: "protocol-26 §4.2, §8.2", required: true,
		message: func(s *AgentSuite, tok []byte) (teep.Message, *cosekey.Signer, error) {
			q, _, _ := validQueryRequest(s, tok)
			q.(*teep.QueryRequest).SupportedCipherSuites = []teep.CipherSuite{teep.Sign1Suite(-35)} // ES384
			return q, s.tam, nil
		}, judge: wantError(teep.ErrUnsupportedCipherSuites)},
	{id: "agent.untrusted-tam", title: "a QueryRequest signed by an untrusted key gets no QueryResponse", section: "protocol-26 §4.1.2", required: true,
		message: func(s *AgentSuite, tok []byte) (teep.Message, *cosekey.Signer, error) {
			q, _, _ := validQueryRequest(s, tok)
			return q, s.stranger, nil
		}, judge: wantRefusal(teep.ErrBadCertificate)},
	{id: "agent.install", title: "a valid Update installs and gets a Success", section: "protocol-26 §4.4, §4.5", required: true, update: true,
		message: func(s *AgentSuite, tok []byte) (teep.Message, *cosekey.Signer, error) {
			env, err := s.envelope(2, []byte("conform trusted app v2"), s.tcSigner, nil)
			s.installed = env
			return &teep.Update{Token: tok, ManifestList: [][]byte{env}}, s.tam, err
		}, judge: wantSuccess},
	{id: "agent.tampered-manifest", title: "an Update whose payload does not match its digest is refused", section: "protocol-26 §4.4", required: true, update: true,
		message: func(s *AgentSuite, tok []byte) (teep.Message, *cosekey.Signer, error) {
			payload := []byte("conform trusted app v3")
			env, err := s.envelope(3, payload, s.tcSigner, nil)
			if i := bytes.Index(env, payload); i >= 0 {
				env[i] ^= 0x20
			}
			return &teep.Update{Token: tok, ManifestList: [][]byte{env}}, s.tam, err
		}, judge: wantRefusal(teep.ErrManifestProcessingFailed)},
	{id: "agent.untrusted-signer", title: "a manifest signed by an untrusted key is refused", section: "protocol-26 §4.4", required: true, update: true,
		message: func(s *AgentSuite, tok []byte) (teep.Message, *cosekey.Signer, error) {
			env, err := s.envelope(4, []byte("conform trusted app v4"), s.stranger, nil)
			return &teep.Update{Token: tok, ManifestList: [][]byte{env}}, s.tam, err
		}, judge: wantRefusal(teep.ErrManifestProcessingFailed)},
	{id: "agent.wrong-class", title: "a manifest for another device class is refused", section: "protocol-26 §4.4", required: true, update: true,
		message: func(s *AgentSuite, tok []byte) (teep.Message, *cosekey.Signer, error) {
			env, err := s.envelope(5, []byte("conform trusted app v5"), s.tcSigner, func(m *suit.ManifestSpec) {
				m.VendorID, m.ClassID = randomUUID(), randomUUID()
			})
			return &teep.Update{Token: tok, ManifestList: [][]byte{env}}, s.tam, err
		}, judge: wantRefusal(teep.ErrManifestProcessingFailed)},
	{id: "agent.rollback", title: "a lower sequence number than the installed one is refused", section: "protocol-26 §4.4 (SUIT §8.4.2)", required: true, update: true,
		message: func(s *AgentSuite, tok []byte) (teep.Message, *cosekey.Signer, error) {
			env, err := s.envelope(1, []byte("conform trusted app v1"), s.tcSigner, nil)
			return &teep.Update{Token: tok, ManifestList: [][]byte{env}}, s.tam, err
		}, judge: wantRefusal(teep.ErrManifestProcessingFailed)},
	{id: "agent.bad-token", title: "an Update with a token of 4 bytes is not accepted", section: "protocol-26 §4.1.1", required: true, update: true,
		message: func(s *AgentSuite, tok []byte) (teep.Message, *cosekey.Signer, error) {
			return &teep.Update{Token: tok[:4], UnneededManifestList: []suit.ComponentID{conformManifestID()}}, s.tam, nil
		}, judge: wantRefusal(teep.ErrPermanentError)},
}

// NewAgentSuite makes a scripted TAM for the Agent catalogue.
func NewAgentSuite(o AgentOptions) (*AgentSuite, error) {
	s := &AgentSuite{num: o.Numbering, results: map[string]Result{}, done: make(chan struct{})}
	var err error
	if s.tam, err = signerFor(o.TAMKey); err != nil {
		return nil, err
	}
	if s.tcSigner, err = signerFor(o.SignerKey); err != nil {
		return nil, err
	}
	if s.stranger, err = newSigner(); err != nil {
		return nil, err
	}
	return s, nil
}

func signerFor(k *cosekey.Key) (*cosekey.Signer, error) {
	if k == nil {
		return newSigner()
	}
	return cosekey.NewSigner(k, k.Alg())
}

// TAMPublicKey is the key the device must trust as its TAM.
func (s *AgentSuite) TAMPublicKey() *cosekey.Key { return s.tam.PublicKey() }

// SignerPublicKey is the key the device must trust as TC signer.
func (s *AgentSuite) SignerPublicKey() *cosekey.Key { return s.tcSigner.PublicKey() }

// Done is closed when every scenario has a result.
func (s *AgentSuite) Done() <-chan struct{} { return s.done }

// Report returns the results so far, in catalogue order; scenarios not run
// yet are skipped.
func (s *AgentSuite) Report(target string) *Report {
	s.mu.Lock()
	defer s.mu.Unlock()
	rep := &Report{Target: target, Numbering: s.num.String()}
	for _, sc := range agentScenarios {
		res, ok := s.results[sc.id]
		if !ok {
			res = Result{ID: sc.id, Group: "agent", Title: sc.title, Section: sc.section, Required: sc.required, Status: Skip,
				Detail: "the device did not run this session"}
		}
		rep.add(res)
	}
	return rep
}

func (s *AgentSuite) record(sc *agentScenario, st Status, detail string) {
	s.results[sc.id] = Result{ID: sc.id, Group: "agent", Title: sc.title, Section: sc.section, Required: sc.required, Status: st, Detail: detail}
	if len(s.results) == len(agentScenarios) {
		select {
		case <-s.done:
		default:
			close(s.done)
		}
	}
}

// ServeHTTP is the scripted TAM's TEEP/HTTP endpoint.
func (s *AgentSuite) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost {
		http.Error(w, "POST only", http.StatusMethodNotAllowed)
		return
	}
	body, err := io.ReadAll(io.LimitReader(r.Body, MaxAgentMessage+1))
	if err != nil || len(body) > MaxAgentMessage {
		http.Error(w, "body unreadable or too large", http.StatusRequestEntityTooLarge)
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []byte
	if len(body) == 0 {
		out, err = s.startSession()
	} else {
		out, err = s.answer(body)
	}
	if err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	if out == nil {
		w.WriteHeader(http.StatusNoContent)
		return
	}
	w.Header().Set("Content-Type", MediaType)
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.Header().Set("Content-Security-Policy", "default-src 'none'")
	w.Header().Set("Referrer-Policy", "no-referrer")
	w.Write(out)
}

// startSession closes the scenario in progress (its answer never came) and
// sends the first message of the next one.
func (s *AgentSuite) startSession() ([]byte, error) {
	if s.cur != nil && s.awaiting {
		st, d := s.cur.judge(s, nil, nil)
		s.record(s.cur, st, d)
	}
	s.cur, s.awaiting = nil, false
	if s.next >= len(agentScenarios) {
		return nil, nil // nothing more to test: 204
	}
	s.cur = &agentScenarios[s.next]
	s.next++
	tok := randomToken()
	s.awaiting, s.phase = true, 0
	if s.cur.update {
		q, signer, _ := validQueryRequest(s, tok)
		s.lastQueryToken = tok
		return s.sign(q, signer)
	}
	m, signer, err := s.cur.message(s, tok)
	if err != nil {
		return nil, err
	}
	s.lastQueryToken = tok
	return s.sign(m, signer)
}

func (s *AgentSuite) answer(body []byte) ([]byte, error) {
	if s.cur == nil || !s.awaiting {
		return nil, nil
	}
	op, err := teep.Open(body, teep.OpenOptions{Numbering: s.num, SkipVerifyUnsafe: true})
	var got teep.Message
	if err == nil {
		got = op.Message
	}
	if s.cur.update && s.phase == 0 {
		if _, ok := got.(*teep.QueryResponse); !ok {
			s.record(s.cur, Fail, fmt.Sprintf("the QueryRequest before the Update got %s", describe(got, err)))
			s.awaiting = false
			return nil, nil
		}
		s.phase = 1
		tok := randomToken()
		m, signer, err := s.cur.message(s, tok)
		if err != nil {
			return nil, err
		}
		s.lastQueryToken = tok
		return s.sign(m, signer)
	}
	if got == nil {
		s.record(s.cur, Fail, "the Agent answered with something that is not a TEEP message: "+err.Error())
	} else {
		st, d := s.cur.judge(s, nil, got)
		s.record(s.cur, st, d)
	}
	s.awaiting = false
	return nil, nil
}

func (s *AgentSuite) sign(m teep.Message, signer *cosekey.Signer) ([]byte, error) {
	return teep.Sign(m, signer, teep.SignOptions{Encode: teep.EncodeOptions{Numbering: s.num}})
}

func describe(m teep.Message, err error) string {
	if m == nil {
		if err != nil {
			return "an invalid message (" + err.Error() + ")"
		}
		return "no answer"
	}
	if e, ok := m.(*teep.Error); ok {
		return fmt.Sprintf("Error %s (%s)", e.ErrCode, e.ErrMsg)
	}
	return m.Type().String()
}

func validQueryRequest(s *AgentSuite, tok []byte) (teep.Message, *cosekey.Signer, error) {
	return &teep.QueryRequest{Token: tok, SupportedCipherSuites: teep.MandatoryCipherSuites(),
		SupportedSUITCOSEProfiles: teep.MandatorySUITCOSEProfiles(), DataItemRequested: teep.DataItemTrustedComponents}, s.tam, nil
}

func wantQueryResponse(s *AgentSuite, _ teep.Message, got teep.Message) (Status, string) {
	qr, ok := got.(*teep.QueryResponse)
	if !ok {
		return failf("got %s", describe(got, nil))
	}
	if !bytes.Equal(qr.Token, s.lastQueryToken) {
		return failf("the token was not echoed")
	}
	return passf("")
}

func wantSuccess(s *AgentSuite, _ teep.Message, got teep.Message) (Status, string) {
	sc, ok := got.(*teep.Success)
	if !ok {
		return failf("got %s", describe(got, nil))
	}
	if !bytes.Equal(sc.Token, s.lastQueryToken) {
		return failf("the Success does not echo the Update's token")
	}
	return passf("")
}

func wantError(code teep.ErrCode) func(*AgentSuite, teep.Message, teep.Message) (Status, string) {
	return func(s *AgentSuite, _ teep.Message, got teep.Message) (Status, string) {
		e, ok := got.(*teep.Error)
		if !ok {
			return failf("got %s, want Error %s", describe(got, nil), code)
		}
		if e.ErrCode != code {
			return failf("Error %s, want %s", e.ErrCode, code)
		}
		return passf("Error %s", code)
	}
}

// wantRefusal: the Agent must not accept; an Error (ideally with code) or
// no answer at all both refuse.
func wantRefusal(code teep.ErrCode) func(*AgentSuite, teep.Message, teep.Message) (Status, string) {
	return func(s *AgentSuite, _ teep.Message, got teep.Message) (Status, string) {
		switch m := got.(type) {
		case nil:
			return passf("no answer")
		case *teep.Error:
			if m.ErrCode != code {
				return passf("Error %s (the draft suggests %s)", m.ErrCode, code)
			}
			return passf("Error %s", m.ErrCode)
		}
		return failf("got %s: the message was accepted", describe(got, nil))
	}
}

func conformManifestID() suit.ComponentID {
	return suit.NewComponentID("TEEP-Device", "SecureFS", "conform", "suit")
}

// envelope builds the conformance Trusted Component at sequence seq.
func (s *AgentSuite) envelope(seq uint64, payload []byte, signer *cosekey.Signer, mod func(*suit.ManifestSpec)) ([]byte, error) {
	spec := suit.ManifestSpec{
		ManifestComponentID: conformManifestID(),
		SequenceNumber:      seq,
		Components:          []suit.ComponentSpec{{ID: suit.NewComponentID("TEEP-Device", "SecureFS", "conform", "ta"), Payload: payload, Integrated: true}},
	}
	if mod != nil {
		mod(&spec)
	}
	env, err := suit.Build(spec)
	if err != nil {
		return nil, err
	}
	if err := env.Sign(signer); err != nil {
		return nil, err
	}
	return env.Marshal(suit.MarshalOptions{})
}

func randomUUID() []byte {
	b := make([]byte, 16)
	rand.Read(b)
	return b
}
