package verifier

import (
	"context"
	"testing"

	"github.com/teep-go/teep/cosekey"
	"github.com/teep-go/teep/eat"
	"github.com/teep-go/teep/internal/attester"
)

// BenchmarkAppraiseEvidence is the full background-check appraisal; the
// baseline below does only what cannot be skipped (decode and verify the
// signature), so the ratio is the cost of the policy checks.
func BenchmarkAppraiseEvidence(b *testing.B) {
	f := newFixture(b)
	nonce := []byte("nonce-0001")
	ev := f.evidence(b, attester.Request{Nonce: nonce})
	exp := Expectations{Nonce: nonce, AgentKey: f.agent}
	ctx := context.Background()
	for b.Loop() {
		if _, err := f.v.AppraiseEvidence(ctx, ev, exp); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkBaselineParseVerify(b *testing.B) {
	f := newFixture(b)
	ev := f.evidence(b, attester.Request{Nonce: []byte("nonce-0001")})
	keys := []*cosekey.Key{f.attKey.PublicKey()}
	for b.Loop() {
		t, err := eat.Parse(ev, eat.ParseOptions{})
		if err != nil {
			b.Fatal(err)
		}
		if _, err := t.Verify(keys); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkIssueAndVerifyResult is the passport path: sign a result, then
// the TAM's check.
func BenchmarkIssueAndVerifyResult(b *testing.B) {
	f := newFixture(b)
	token := []byte("teep-token-1")
	a, err := f.v.AppraiseEvidence(context.Background(), f.evidence(b, attester.Request{Nonce: token}), Expectations{})
	if err != nil {
		b.Fatal(err)
	}
	trusted := []*cosekey.Key{f.vKey.PublicKey()}
	exp := Expectations{Nonce: token, AgentKey: f.agent, Now: now}
	for b.Loop() {
		res, err := f.v.IssueResult(a)
		if err != nil {
			b.Fatal(err)
		}
		if _, err := VerifyResult(res, trusted, exp); err != nil {
			b.Fatal(err)
		}
	}
}
