package tam_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/teep-go/teep/cosekey"
	"github.com/teep-go/teep/internal/tam"
	"github.com/teep-go/teep/internal/tam/tamtest"
	"github.com/teep-go/teep/teep"
)

// benchAgent answers a TAM without installing anything: its tc-list stays
// empty, so every session goes QueryRequest -> QueryResponse -> Update ->
// Success, and the time measured is the TAM's (plus two Agent signatures).
type benchAgent struct {
	signer *cosekey.Signer
	tam    []*cosekey.Key
	tcList []teep.SystemPropertyClaims // reported in every QueryResponse
}

func (a *benchAgent) answer(in []byte) ([]byte, error) {
	op, err := teep.Open(in, teep.OpenOptions{Keys: a.tam})
	if err != nil {
		return nil, err
	}
	var out teep.Message
	switch m := op.Message.(type) {
	case *teep.QueryRequest:
		out = &teep.QueryResponse{Token: m.Token, TCList: a.tcList}
	case *teep.Update:
		out = &teep.Success{Token: m.Token}
	default:
		return nil, fmt.Errorf("unexpected %T", m)
	}
	return teep.Sign(out, a.signer, teep.SignOptions{})
}

func (a *benchAgent) session(ctx context.Context, post tamtest.Transport) error {
	msg := []byte{}
	for n := 0; ; n++ {
		in, err := post(ctx, msg)
		if err != nil {
			return err
		}
		if in == nil {
			if n != 2 {
				return fmt.Errorf("session ended after %d exchanges, want an Update", n)
			}
			return nil
		}
		if msg, err = a.answer(in); err != nil {
			return err
		}
	}
}

// cryptoBaseline is the signing and verification a session needs and
// nothing else: COSE_Sign QueryRequest, QueryResponse, Update (with one
// manifest), Success, each signed once and verified once.
func cryptoBaseline(b *testing.B, tamKeys []*cosekey.Key, agent *cosekey.Signer, envelope []byte) time.Duration {
	b.Helper()
	var ss []*cosekey.Signer
	for _, k := range tamKeys {
		s, err := cosekey.NewSigner(k, 0)
		if err != nil {
			b.Fatal(err)
		}
		ss = append(ss, s)
	}
	tok := make([]byte, 42)
	pub := []*cosekey.Key{tamKeys[0].PublicKey(), tamKeys[1].PublicKey()}
	agentPub := []*cosekey.Key{agent.PublicKey()}
	run := func() {
		qr := &teep.QueryRequest{Token: tok, Versions: []uint32{0}, SupportedCipherSuites: teep.MandatoryCipherSuites(),
			SupportedSUITCOSEProfiles: teep.MandatorySUITCOSEProfiles(), DataItemRequested: teep.DataItemTrustedComponents}
		steps := []struct {
			m      teep.Message
			multi  bool
			signer *cosekey.Signer
			keys   []*cosekey.Key
		}{
			{qr, true, nil, pub},
			{&teep.QueryResponse{Token: tok}, false, agent, agentPub},
			{&teep.Update{Token: tok[:24], ManifestList: [][]byte{envelope}}, false, ss[0], pub},
			{&teep.Success{Token: tok[:24]}, false, agent, agentPub},
		}
		for _, s := range steps {
			var out []byte
			var err error
			if s.multi {
				out, err = teep.SignMulti(s.m, ss, teep.SignOptions{})
			} else {
				out, err = teep.Sign(s.m, s.signer, teep.SignOptions{})
			}
			if err != nil {
				b.Fatal(err)
			}
			if _, err := teep.Open(out, teep.OpenOptions{Keys: s.keys}); err != nil {
				b.Fatal(err)
			}
		}
	}
	const n = 200
	start := time.Now()
	for i := 0; i < n; i++ {
		run()
	}
	return time.Since(start) / n
}

func benchSetup(b *testing.B) (*fixture, *benchAgent, []byte) {
	f := newFixture(b, func(c *tam.Config) { c.Appraiser = nil })
	env := f.tc("app", 1, make([]byte, 4096))
	id := f.add(env)
	f.require(id, tam.Required, tam.ScopeAll, "")
	ak := mustKey(b, -9)
	signer, err := cosekey.NewSigner(ak, 0)
	if err != nil {
		b.Fatal(err)
	}
	if _, err := f.eng.AddAgent(ctx, ak.PublicKey(), nil); err != nil {
		b.Fatal(err)
	}
	return f, &benchAgent{signer: signer, tam: f.eng.PublicKeys()}, env
}

// BenchmarkSession runs full sessions against the engine in process; the
// metric x-crypto is the time per session over the bare signing and
// verification it needs (measured in the same run): what the database and
// the protocol logic cost on top.
func BenchmarkSession(b *testing.B) {
	f, a, env := benchSetup(b)
	base := cryptoBaseline(b, f.keys, a.signer, env)
	post := f.transport(teep.Draft26)
	b.ReportAllocs()
	b.ResetTimer()
	start := time.Now()
	for i := 0; i < b.N; i++ {
		if err := a.session(ctx, post); err != nil {
			b.Fatal(err)
		}
	}
	per := time.Since(start) / time.Duration(b.N)
	b.ReportMetric(float64(per)/float64(base), "x-crypto")
	b.ReportMetric(float64(base.Microseconds()), "crypto-us")
}

// BenchmarkSessionHTTP runs the same sessions over loopback HTTP against a
// complete TAM (tamtest); x-crypto as above.
func BenchmarkSessionHTTP(b *testing.B) {
	srv := tamtest.Start(b, tamtest.Options{NoAttestation: true})
	signer := tamtest.Signer(b)
	srv.TrustSigner(signer.PublicKey())
	env := tamtest.Envelope(b, signer, "app", 1, make([]byte, 4096))
	srv.Require(srv.Upload(env))
	ak := mustKey(b, -9)
	as, _ := cosekey.NewSigner(ak, 0)
	srv.AddAgent(ak)
	a := &benchAgent{signer: as, tam: srv.Keys()}
	p256, ed := mustKey(b, -9), mustKey(b, -19)
	base := cryptoBaseline(b, []*cosekey.Key{p256, ed}, as, env)
	post := srv.Transport(teep.Draft26)
	b.ReportAllocs()
	b.ResetTimer()
	start := time.Now()
	for i := 0; i < b.N; i++ {
		if err := a.session(ctx, post); err != nil {
			b.Fatal(err)
		}
	}
	per := time.Since(start) / time.Duration(b.N)
	b.ReportMetric(float64(per)/float64(base), "x-crypto")
	b.ReportMetric(float64(base.Microseconds()), "crypto-us")
}

// BenchmarkSteadyRound runs rounds of a device that is up to date: it
// reports the required component, so the TAM answers the QueryResponse with
// 204. x-crypto is over the signatures of such a round (COSE_Sign
// QueryRequest and QueryResponse, each signed and verified once).
func BenchmarkSteadyRound(b *testing.B) {
	f, a, _ := benchSetup(b)
	post := f.transport(teep.Draft26)
	if err := a.session(ctx, post); err != nil {
		b.Fatal(err)
	}
	cs, err := f.eng.Components(ctx)
	if err != nil || len(cs) != 1 {
		b.Fatalf("%d components, %v", len(cs), err)
	}
	a.tcList = []teep.SystemPropertyClaims{{ComponentID: cs[0].ID}}
	base := steadyBaseline(b, f.keys, a.signer)
	b.ReportAllocs()
	b.ResetTimer()
	start := time.Now()
	for i := 0; i < b.N; i++ {
		qr, err := post(ctx, nil)
		if err != nil {
			b.Fatal(err)
		}
		r, err := a.answer(qr)
		if err != nil {
			b.Fatal(err)
		}
		if out, err := post(ctx, r); err != nil || out != nil {
			b.Fatalf("steady round: %v (%d bytes)", err, len(out))
		}
	}
	per := time.Since(start) / time.Duration(b.N)
	b.ReportMetric(float64(per)/float64(base), "x-crypto")
	b.ReportMetric(float64(base.Microseconds()), "crypto-us")
}

func steadyBaseline(b *testing.B, tamKeys []*cosekey.Key, agent *cosekey.Signer) time.Duration {
	b.Helper()
	var ss []*cosekey.Signer
	for _, k := range tamKeys {
		s, err := cosekey.NewSigner(k, 0)
		if err != nil {
			b.Fatal(err)
		}
		ss = append(ss, s)
	}
	tok := make([]byte, 42)
	pub := []*cosekey.Key{tamKeys[0].PublicKey(), tamKeys[1].PublicKey()}
	const n = 200
	start := time.Now()
	for i := 0; i < n; i++ {
		qr := &teep.QueryRequest{Token: tok, Versions: []uint32{0}, SupportedCipherSuites: teep.MandatoryCipherSuites(),
			SupportedSUITCOSEProfiles: teep.MandatorySUITCOSEProfiles(), DataItemRequested: teep.DataItemTrustedComponents}
		out, err := teep.SignMulti(qr, ss, teep.SignOptions{})
		if err != nil {
			b.Fatal(err)
		}
		if _, err := teep.Open(out, teep.OpenOptions{Keys: pub}); err != nil {
			b.Fatal(err)
		}
		if out, err = teep.Sign(&teep.QueryResponse{Token: tok}, agent, teep.SignOptions{}); err != nil {
			b.Fatal(err)
		}
		if _, err := teep.Open(out, teep.OpenOptions{Keys: []*cosekey.Key{agent.PublicKey()}}); err != nil {
			b.Fatal(err)
		}
	}
	return time.Since(start) / n
}

// BenchmarkQueryRequestSigning measures what signing the initial
// QueryRequest once per offered suite (COSE_Sign, as
// draft-ietf-teep-protocol-26 requires while the Agent's suite is unknown)
// costs against one COSE_Sign1 signature.
func BenchmarkQueryRequestSigning(b *testing.B) {
	p256, err := cosekey.NewSigner(mustKey(b, -9), 0)
	if err != nil {
		b.Fatal(err)
	}
	ed, err := cosekey.NewSigner(mustKey(b, -19), 0)
	if err != nil {
		b.Fatal(err)
	}
	qr := &teep.QueryRequest{Token: make([]byte, 42), Versions: []uint32{0}, SupportedCipherSuites: teep.MandatoryCipherSuites(),
		SupportedSUITCOSEProfiles: teep.MandatorySUITCOSEProfiles(), DataItemRequested: teep.DataItemTrustedComponents}
	b.Run("sign1-esp256", func(b *testing.B) {
		for i := 0; i < b.N; i++ {
			if _, err := teep.Sign(qr, p256, teep.SignOptions{}); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("sign-esp256-ed25519", func(b *testing.B) {
		for i := 0; i < b.N; i++ {
			if _, err := teep.SignMulti(qr, []*cosekey.Signer{p256, ed}, teep.SignOptions{}); err != nil {
				b.Fatal(err)
			}
		}
	})
}
