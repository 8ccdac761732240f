package tam_test

import (
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/teep-go/teep/cosekey"
	"github.com/teep-go/teep/internal/tam"
	"github.com/teep-go/teep/teep"
)

// A device that already has MaxPendingPerDevice outstanding Updates is told
// to retry later (KindUnavailable: HTTP 503 with Retry-After, CoAP 5.03)
// instead of having its oldest Update silently dropped; the refused
// session leaves the state as it was, so the same QueryResponse succeeds
// once an outstanding Update is answered.
func TestMaxPendingPerDeviceRefusesRetryLater(t *testing.T) {
	reg := prometheus.NewRegistry()
	f := newFixture(t, func(c *tam.Config) {
		c.Appraiser = nil
		c.MaxPendingPerDevice = 2
		c.Registerer = reg
	})
	id := f.add(f.tc("app", 1, []byte("x")))
	f.require(id, tam.Required, tam.ScopeAll, "")
	ak := mustKey(t, -9)
	signer, err := cosekey.NewSigner(ak, 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.eng.AddAgent(ctx, ak.PublicKey(), nil); err != nil {
		t.Fatal(err)
	}
	a := &benchAgent{signer: signer, tam: f.eng.PublicKeys()}
	post := f.transport(teep.Draft26)
	// Three concurrent sessions, interleaved: three QueryResponses in hand.
	var responses [][]byte
	for i := 0; i < 3; i++ {
		qr, err := post(ctx, nil)
		if err != nil {
			t.Fatal(err)
		}
		r, err := a.answer(qr)
		if err != nil {
			t.Fatal(err)
		}
		responses = append(responses, r)
	}
	var updates [][]byte
	for _, r := range responses[:2] {
		u, err := post(ctx, r)
		if err != nil || u == nil {
			t.Fatalf("QueryResponse within the bound: %v (%d bytes)", err, len(u))
		}
		updates = append(updates, u)
	}
	before := f.dump()
	_, err = post(ctx, responses[2])
	if tam.KindOf(err) != tam.KindUnavailable {
		t.Fatalf("third outstanding Update: %v, want KindUnavailable", err)
	}
	if after := f.dump(); after != before {
		t.Fatalf("a refused session changed the state:\nbefore %s\nafter %s", before, after)
	}
	if got := counter(t, reg, "teep_tam_pending_refused_total"); got != 1 {
		t.Fatalf("teep_tam_pending_refused_total = %v, want 1", got)
	}
	// Both outstanding Updates are still answerable: nothing was dropped.
	s, err := a.answer(updates[0])
	if err != nil {
		t.Fatal(err)
	}
	if out, err := post(ctx, s); err != nil || out != nil {
		t.Fatalf("Success of the first Update: %v", err)
	}
	// The refused QueryResponse's token was not consumed: a retry works.
	if u, err := post(ctx, responses[2]); err != nil || u == nil {
		t.Fatalf("retried QueryResponse: %v", err)
	}
	if _, err := post(ctx, responses[2]); tam.KindOf(err) != tam.KindReplay {
		t.Fatalf("QueryResponse replayed after its success: %v, want KindReplay", err)
	}
	s, err = a.answer(updates[1])
	if err != nil {
		t.Fatal(err)
	}
	if out, err := post(ctx, s); err != nil || out != nil {
		t.Fatalf("Success of the second Update: %v", err)
	}
}

func counter(t *testing.T, reg *prometheus.Registry, name string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() == name && len(mf.GetMetric()) == 1 {
			return mf.GetMetric()[0].GetCounter().GetValue()
		}
	}
	t.Fatalf("no metric %s", name)
	return 0
}
