package processor_test

import (
	"context"
	"errors"
	"testing"

	"github.com/teep-go/teep/cosekey"
	"github.com/teep-go/teep/suit"
	"github.com/teep-go/teep/suit/processor"
)

// storeInvoker is a device whose invoked component writes to the same
// store the processor runs on, as a TA's sealed storage does: it can
// only when the processor holds no transaction (MemStore refuses a second
// one).
type storeInvoker struct {
	store *processor.MemStore
	fail  error
	calls int
}

func (s *storeInvoker) Invoke(ctx context.Context, id suit.ComponentID, args []byte) error {
	s.calls++
	if s.fail != nil {
		return s.fail
	}
	txn, err := s.store.Begin(ctx)
	if err != nil {
		return err
	}
	defer txn.Abort()
	w, err := txn.Create(ctx, suit.NewComponentID("state-of", id.String()))
	if err != nil {
		return err
	}
	w.Write(args)
	if err := w.Close(); err != nil {
		return err
	}
	return txn.Commit(ctx)
}

func builtInvokeEnvelope(t *testing.T, args []byte) []byte {
	t.Helper()
	e, err := suit.Build(suit.ManifestSpec{
		ManifestComponentID: suit.NewComponentID("app.suit"),
		SequenceNumber:      1,
		Components: []suit.ComponentSpec{{ID: suit.NewComponentID("app"), Payload: []byte("app code"), Integrated: true,
			Invoke: true, InvokeArgs: args}},
	})
	if err != nil {
		t.Fatal(err)
	}
	s, err := cosekey.NewSigner(loadKey(t, "example-p256-private.pem"), 0)
	if err != nil {
		t.Fatal(err)
	}
	if err := e.Sign(s); err != nil {
		t.Fatal(err)
	}
	raw, err := e.Marshal(suit.MarshalOptions{})
	if err != nil {
		t.Fatal(err)
	}
	return raw
}

// TestInvokeSection: a manifest built with an invoked component has a
// suit-invoke section; the Invocation procedure runs it with the invoke
// args and no store transaction held, and an invoker's failure is the
// run's operation-failed failure, reported.
func TestInvokeSection(t *testing.T) {
	env := builtInvokeEnvelope(t, []byte("start"))
	parsed, err := suit.ParseEnvelope(env, suit.ParseOptions{})
	if err != nil || parsed.Manifest().Invoke == nil {
		t.Fatalf("built manifest has no suit-invoke: %v", err)
	}
	var inv storeInvoker
	e := newEnv(t, func(c *processor.Config) { c.Invoker = &inv })
	inv.store = e.store
	mustInstall(t, e, env)
	if inv.calls != 0 {
		t.Fatal("the Update procedure invoked the component")
	}
	ctx := context.Background()
	res, err := e.p.Invoke(ctx, suit.NewComponentID("app.suit"), processor.RunOptions{Nonce: []byte("n")})
	if err != nil || !res.Success {
		t.Fatalf("invoke: %v", err)
	}
	if got := string(e.content(t, suit.NewComponentID("state-of", suit.NewComponentID("app").String()))); got != "start" {
		t.Fatalf("the invoked component's write: %q", got)
	}
	if len(res.Report.Records) == 0 {
		t.Fatal("no record of the invoke directive (policy report-all)")
	}

	inv.fail = errors.New("TA trapped")
	res, err = e.p.Invoke(ctx, suit.NewComponentID("app.suit"), processor.RunOptions{})
	wantFailure(t, res, err, suit.ReasonOperationFailed, "TA trapped")
	if res.Failure.Section != suit.SectionInvoke || res.Failure.Command != suit.DirInvoke {
		t.Fatalf("failure at %s %s", res.Failure.Section, suit.CommandName(res.Failure.Command))
	}
	// The manifest stays installed: the Invocation procedure changes no
	// component.
	if got := string(e.content(t, suit.NewComponentID("app"))); got != "app code" {
		t.Fatalf("component after a failed invocation: %q", got)
	}

	// Without an Invoker the directive is unsupported.
	e2 := newEnv(t, nil)
	mustInstall(t, e2, env)
	res, err = e2.p.Invoke(ctx, suit.NewComponentID("app.suit"), processor.RunOptions{})
	wantFailure(t, res, err, suit.ReasonCommandUnsupported, "cannot invoke")
}

// TestInvokeSectionChangesNothing: suit-invoke runs against the committed
// store read only; a write there fails as unsupported and changes nothing.
func TestInvokeSectionChangesNothing(t *testing.T) {
	inv := &recordingInvoker{}
	e := newEnv(t, func(c *processor.Config) { c.Invoker = inv })
	payload := []byte("app")
	man := manifest(1, ids("app.suit"), [][][]byte{ids("app")}, seq(20, m{3: digestOf(payload), 14: uint64(3)}),
		m{20: seq(20, m{18: payload}, 18, 15), 9: seq(20, m{18: []byte("evil")}, 18, 15, 23, 15)})
	mustInstall(t, e, signed(t, man))
	res, err := e.p.Invoke(context.Background(), suit.NewComponentID("app.suit"), processor.RunOptions{})
	wantFailure(t, res, err, suit.ReasonCommandUnsupported, "suit-invoke changes no component")
	if len(inv.calls) != 0 {
		t.Fatalf("invoked after the refused write: %v", inv.calls)
	}
	if got := string(e.content(t, suit.NewComponentID("app"))); got != "app" {
		t.Fatalf("component written by suit-invoke: %q", got)
	}
}
