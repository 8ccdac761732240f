package tam_test

import (
	"context"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/teep-go/teep/cosekey"
	"github.com/teep-go/teep/internal/tam"
	"github.com/teep-go/teep/internal/tam/appraiser"
	"github.com/teep-go/teep/internal/tam/tamtest"
	"github.com/teep-go/teep/internal/verifier"
	"github.com/teep-go/teep/suit"
	"github.com/teep-go/teep/teep"
)

// clock is a settable test clock.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) add(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

func TestAttestAlwaysAndReattest(t *testing.T) {
	clk := &clock{t: time.Now()}
	f := newFixture(t, func(c *tam.Config) { c.Attestation = tam.AttestAlways; c.Clock = clk.now })
	a := f.agent(tamtest.AgentOptions{})
	// With AttestAlways the first QueryRequest already asks for Evidence.
	tr := runSession(t, a, "query-request", "query-response")
	op, _ := teep.Open(tr.Messages[0], teep.OpenOptions{SkipVerifyUnsafe: true})
	if q := op.Message.(*teep.QueryRequest); !q.DataItemRequested.Has(teep.DataItemAttestation) || len(q.Challenge) != 32 || q.Token == nil {
		t.Fatalf("first QueryRequest %+v", q)
	}
	first := f.device(a.KID()).AttestedAt
	clk.add(time.Minute)
	runSession(t, a, "query-request", "query-response")
	if !f.device(a.KID()).AttestedAt.After(first) {
		t.Fatal("AttestAlways did not appraise the second session")
	}

	g := newFixture(t, func(c *tam.Config) { c.ReattestAfter = time.Hour; c.Clock = clk.now })
	b := g.agent(tamtest.AgentOptions{})
	runSession(t, b, "query-request", "query-response", "query-request", "query-response")
	runSession(t, b, "query-request", "query-response") // fresh: no attestation
	clk.add(2 * time.Hour)
	runSession(t, b, "query-request", "query-response", "query-request", "query-response") // stale: attested again
	// An operator can force it.
	if _, err := g.eng.Reattest(ctx, b.KID()); err != nil {
		t.Fatal(err)
	}
	runSession(t, b, "query-request", "query-response", "query-request", "query-response")
	if d := g.device(b.KID()); d.NeedsAttestation || d.Attestation != tam.AttestationAffirming {
		t.Fatalf("after forced re-attestation: needs %v, %s", d.NeedsAttestation, d.Attestation)
	}
}

func TestPassportModel(t *testing.T) {
	vk, err := cosekey.Generate(cosekey.AlgESP256)
	if err != nil {
		t.Fatal(err)
	}
	vs, _ := cosekey.NewSigner(vk, 0)
	var att *cosekey.Key
	f := newFixture(t, func(c *tam.Config) {
		c.Passport = true
		c.Appraiser = &appraiser.Verifier{ResultKeys: []*cosekey.Key{vk.PublicKey()}}
	})
	att = f.att
	v, err := verifier.New(verifier.Config{Policy: &verifier.Policy{ID: "p", ResultTTL: time.Minute, Endorsements: []verifier.Endorsement{{Name: "d", Key: att.PublicKey()}}}, Key: vs})
	if err != nil {
		t.Fatal(err)
	}
	// The Agent gets its passport from the Verifier (nonce = the TEEP token).
	passport := func(ev []byte) ([]byte, error) {
		a, err := v.AppraiseEvidence(context.Background(), ev, verifier.Expectations{})
		if err != nil {
			return nil, err
		}
		return v.IssueResult(a)
	}
	id := f.add(f.tc("app", 1, []byte("x")))
	f.require(id, tam.Required, tam.ScopeAll, "")
	a := f.agent(tamtest.AgentOptions{Passport: passport})
	tr := runSession(t, a, "query-request", "query-response", "query-request", "query-response", "update", "success")
	op, _ := teep.Open(tr.Messages[2], teep.OpenOptions{SkipVerifyUnsafe: true})
	if q := op.Message.(*teep.QueryRequest); q.Challenge != nil || !q.DataItemRequested.Has(teep.DataItemAttestation) {
		t.Fatalf("passport QueryRequest has a challenge or no attestation bit: %+v", q)
	}
	if d := f.device(a.KID()); d.Attestation != tam.AttestationAffirming || len(d.Installed) != 1 {
		t.Fatalf("passport device %+v", d.Device)
	}
	// Evidence instead of a result is refused: no Verifier for Evidence here.
	b := f.agent(tamtest.AgentOptions{})
	before := f.dump()
	if _, err := b.Sync(ctx); tam.KindOf(err) != tam.KindUnauthorized {
		t.Fatalf("Evidence in the passport model: %v", err)
	}
	if f.dump() != before {
		t.Fatal("database changed")
	}
}

func TestTokenExpiry(t *testing.T) {
	clk := &clock{t: time.Now()}
	f := newFixture(t, func(c *tam.Config) { c.Clock = clk.now; c.TokenLifetime = time.Hour })
	id := f.add(f.tc("app", 1, []byte("x")))
	f.require(id, tam.Required, tam.ScopeAll, "")
	a := f.agent(tamtest.AgentOptions{})
	h := func(m []byte) ([]byte, error) { return f.eng.Handle(ctx, m, tam.HandleOptions{}) }
	q, _ := h(nil)
	clk.add(59 * time.Minute)
	r, _ := a.Answer(ctx, q) // still valid: unknown Agent, asked to attest
	q2, err := h(r)
	if err != nil {
		t.Fatal(err)
	}
	r2, _ := a.Answer(ctx, q2)
	clk.add(61 * time.Minute) // q2 expired
	if _, err := h(r2); tam.KindOf(err) != tam.KindReplay || !strings.Contains(err.Error(), "expired") {
		t.Fatalf("expired token: %v", err)
	}
	// A fresh session works; then the Update's token expires before its Success.
	runSession(t, a, "query-request", "query-response", "query-request", "query-response", "update", "success")
	f.add(f.tc("app", 2, []byte("y")))
	q, _ = h(nil)
	r, _ = a.Answer(ctx, q)
	u, err := h(r)
	if err != nil || u == nil {
		t.Fatalf("Update: %v", err)
	}
	s, _ := a.Answer(ctx, u)
	clk.add(2 * time.Hour)
	if _, err := h(s); tam.KindOf(err) != tam.KindReplay {
		t.Fatalf("Success after the Update expired: %v", err)
	}
	n, err := f.eng.Purge(ctx)
	if err != nil || n < 2 {
		t.Fatalf("Purge removed %d rows (%v); want the used tokens and the pending Update", n, err)
	}
	if d := f.device(a.KID()); len(d.Pending) != 0 {
		t.Fatalf("pending Updates after purge: %d", len(d.Pending))
	}
}

func TestHaveBinaryAndUpdateSizeLimit(t *testing.T) {
	f := newFixture(t, func(c *tam.Config) { c.MaxUpdateBytes = 3000 })
	var ids []suit.ComponentID
	for _, n := range []string{"a", "b", "c"} {
		id := f.add(f.tc(n, 1, make([]byte, 2000)))
		f.require(id, tam.Optional, tam.ScopeAll, "")
		ids = append(ids, id)
	}
	f.require(ids[0], tam.Required, tam.ScopeAll, "")
	f.require(ids[1], tam.Required, tam.ScopeAll, "")
	a := f.agent(tamtest.AgentOptions{})
	tr := runSession(t, a)
	// Two 2 kB envelopes do not fit in 3000 bytes: one per session.
	if n := len(a.Installed(ctx)); n != 1 {
		t.Fatalf("first session installed %d components (trace %v)", n, tr.Types)
	}
	runSession(t, a, "query-request", "query-response", "update", "success")
	if n := len(a.Installed(ctx)); n != 2 {
		t.Fatalf("second session: %d installed", n)
	}
	// have-binary: the Agent has the payload, the TAM sends the manifest only.
	one := uint64(1)
	yes := true
	h := func(m []byte) ([]byte, error) { return f.eng.Handle(ctx, m, tam.HandleOptions{}) }
	q, _ := h(nil)
	a.Tamper = func(m teep.Message) {
		if r, ok := m.(*teep.QueryResponse); ok {
			r.RequestedTCList = []teep.RequestedTC{{ComponentID: tamtest.ManifestID("c"), SequenceNumber: &one, HaveBinary: &yes}}
		}
	}
	r, _ := a.Answer(ctx, q)
	u, err := h(r)
	if err != nil || u == nil {
		t.Fatalf("Update for a have-binary request: %v", err)
	}
	op, _ := teep.Open(u, teep.OpenOptions{Keys: f.eng.PublicKeys()})
	upd := op.Message.(*teep.Update)
	if len(upd.ManifestList) != 1 {
		t.Fatalf("%d manifests", len(upd.ManifestList))
	}
	env, err := suit.ParseEnvelope(upd.ManifestList[0], suit.ParseOptions{})
	if err != nil || len(env.Integrated()) != 0 || len(upd.ManifestList[0]) > 1000 {
		t.Fatalf("have-binary manifest: %d bytes, %d integrated payloads, %v", len(upd.ManifestList[0]), len(env.Integrated()), err)
	}
}

func TestAgentErrorForQueryRequest(t *testing.T) {
	f := newFixture(t)
	a := f.agent(tamtest.AgentOptions{})
	runSession(t, a)
	h := func(m []byte) ([]byte, error) { return f.eng.Handle(ctx, m, tam.HandleOptions{}) }
	q, _ := h(nil)
	op, _ := teep.Open(q, teep.OpenOptions{Keys: f.eng.PublicKeys()})
	e, _ := a.Sign(&teep.Error{Token: op.Message.(*teep.QueryRequest).Token, ErrCode: teep.ErrUnsupportedCipherSuites,
		SupportedCipherSuites: []teep.CipherSuite{teep.Sign1Suite(-35)}, ErrMsg: "ES384 only"})
	out, err := h(e)
	if err != nil || out != nil {
		t.Fatalf("Error answering a QueryRequest: %v", err)
	}
	d := f.device(a.KID())
	if d.Status != tam.StatusIncompatible || d.LastErrorCode != int(teep.ErrUnsupportedCipherSuites) || !strings.Contains(d.LastError, "ES384 only") {
		t.Fatalf("device after the Error: %s %d %q", d.Status, d.LastErrorCode, d.LastError)
	}
	if len(d.Reports) != 1 || d.Reports[0].Kind != "error" {
		t.Fatalf("reports %+v", d.Reports)
	}
	if _, err := h(e); tam.KindOf(err) != tam.KindReplay {
		t.Fatalf("replayed Error: %v", err)
	}
	// The same from an unknown Agent cannot be verified.
	b := f.agent(tamtest.AgentOptions{})
	q, _ = h(nil)
	op, _ = teep.Open(q, teep.OpenOptions{Keys: f.eng.PublicKeys()})
	e, _ = b.Sign(&teep.Error{Token: op.Message.(*teep.QueryRequest).Token, ErrCode: teep.ErrPermanentError})
	before := f.dump()
	if _, err := h(e); tam.KindOf(err) != tam.KindUnauthorized {
		t.Fatalf("Error from an unknown Agent: %v", err)
	}
	if f.dump() != before {
		t.Fatal("database changed")
	}
}

func TestConcurrentSessions(t *testing.T) {
	f := newFixture(t)
	id := f.add(f.tc("app", 1, []byte("x")))
	f.require(id, tam.Required, tam.ScopeAll, "")
	const n = 8
	var wg sync.WaitGroup
	agents := make([]*tamtest.Agent, n)
	for i := range agents {
		agents[i] = f.agent(tamtest.AgentOptions{})
	}
	errs := make(chan error, n)
	for _, a := range agents {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < 3; i++ {
				if _, err := a.Sync(ctx); err != nil {
					errs <- err
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	devs, err := f.eng.Devices(ctx)
	if err != nil || len(devs) != n {
		t.Fatalf("%d devices, %v", len(devs), err)
	}
	for _, d := range devs {
		if d.Status != tam.StatusOK || len(d.Installed) != 1 {
			t.Fatalf("device %x: %s %+v", d.KID, d.Status, d.Installed)
		}
	}
}
