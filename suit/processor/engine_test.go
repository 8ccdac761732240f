package processor_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"testing"

	"github.com/fxamacker/cbor/v2"
	"github.com/teep-go/teep/cosekey"
	"github.com/teep-go/teep/suit"
	"github.com/teep-go/teep/suit/processor"
)

// Helpers to write manifests by hand (for commands the builder never emits).

type m = map[int64]any

var em, _ = cbor.CoreDetEncOptions().EncMode()

func enc(v any) []byte {
	b, err := em.Marshal(v)
	if err != nil {
		panic(err)
	}
	return b
}

func seq(cmds ...any) []byte { return enc(cmds) }

func digestOf(b []byte) []byte {
	d, _ := suit.DigestOf(suit.AlgSHA256, b)
	return d.Marshal()
}

func ids(segs ...string) [][]byte {
	out := [][]byte{}
	for _, s := range segs {
		out = append(out, []byte(s))
	}
	return out
}

// manifest encodes a manifest with the given components, shared sequence
// and sections (key -> encoded sequence).
func manifest(seqNo uint64, mid [][]byte, comps [][][]byte, shared []byte, sections m) []byte {
	common := m{2: comps}
	if shared != nil {
		common[4] = shared
	}
	mm := m{1: 1, 2: seqNo, 3: enc(common)}
	if mid != nil {
		mm[5] = mid
	}
	for k, v := range sections {
		mm[k] = v
	}
	return enc(mm)
}

// signed wraps and signs a manifest with the example key.
func signed(t testing.TB, manifest []byte, integrated ...suit.Integrated) []byte {
	t.Helper()
	return signedBy(t, "example-p256-private.pem", manifest, integrated...)
}

// signedBy wraps and signs a manifest with a key of testdata/suit/keys.
func signedBy(t testing.TB, keyFile string, manifest []byte, integrated ...suit.Integrated) []byte {
	t.Helper()
	e, err := suit.NewEnvelope(manifest, integrated, false)
	if err != nil {
		t.Fatal(err)
	}
	s, err := cosekey.NewSigner(loadKey(t, keyFile), 0)
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

// payloadManifest installs payload at comp from uri (integrated when "#...").
func payloadManifest(seqNo uint64, comp string, payload []byte, uri string) []byte {
	shared := seq(20, m{3: digestOf(payload), 14: uint64(len(payload))})
	install := seq(20, m{21: uri}, 21, 2, 3, 15)
	return manifest(seqNo, ids(comp+".suit"), [][][]byte{ids(comp)}, shared, m{20: install, 24: seq(33, 15)})
}

func install(t testing.TB, e *env, envelope []byte) (*processor.Result, error) {
	t.Helper()
	return e.p.Install(context.Background(), envelope, processor.RunOptions{})
}

func mustInstall(t testing.TB, e *env, envelope []byte) *processor.Result {
	t.Helper()
	res, err := install(t, e, envelope)
	if err != nil {
		t.Fatalf("install: %v", err)
	}
	return res
}

func wantFailure(t *testing.T, res *processor.Result, err error, reason suit.Reason, msg string) {
	t.Helper()
	if err == nil {
		t.Fatal("run succeeded")
	}
	if res == nil || res.Failure == nil || res.Failure.Reason != reason || res.Report.Failure == nil || res.Report.Failure.Reason != reason {
		t.Fatalf("reason: got %v (%v), want %s", res.Failure, err, reason)
	}
	if !strings.Contains(err.Error(), msg) {
		t.Fatalf("error %q lacks %q", err, msg)
	}
	if rep, perr := suit.ParseReport(res.ReportBytes); perr != nil || rep.Success() {
		t.Fatalf("report bytes: %v", perr)
	}
}

func storeEmpty(t *testing.T, e *env) {
	t.Helper()
	ctx := context.Background()
	if c, _ := e.store.Components(ctx); len(c) != 0 {
		t.Errorf("components installed: %+v", c)
	}
	if r, _ := e.store.Manifests(ctx); len(r) != 0 {
		t.Errorf("manifests recorded: %d", len(r))
	}
}

func TestRollback(t *testing.T) {
	e := newEnv(t, nil)
	v2 := signed(t, payloadManifest(2, "app", []byte("v2"), "#p"), suit.Integrated{Key: "#p", Data: []byte("v2")})
	mustInstall(t, e, v2)
	// Lower: rejected, v2 stays.
	v1 := signed(t, payloadManifest(1, "app", []byte("v1"), "#p"), suit.Integrated{Key: "#p", Data: []byte("v1")})
	res, err := install(t, e, v1)
	wantFailure(t, res, err, suit.ReasonUnauthorised, "rollback")
	// Equal with a different manifest: rejected.
	v2b := signed(t, payloadManifest(2, "app", []byte("v2b"), "#p"), suit.Integrated{Key: "#p", Data: []byte("v2b")})
	res, err = install(t, e, v2b)
	wantFailure(t, res, err, suit.ReasonUnauthorised, "already installed")
	// Equal, same manifest: re-applied.
	mustInstall(t, e, v2)
	if got := e.content(t, suit.NewComponentID("app")); string(got) != "v2" {
		t.Fatalf("content %q", got)
	}
	// Higher: installed, sequence recorded.
	mustInstall(t, e, signed(t, payloadManifest(3, "app", []byte("v3"), "#p"), suit.Integrated{Key: "#p", Data: []byte("v3")}))
	rec, _ := e.store.Manifest(context.Background(), suit.NewComponentID("app.suit"))
	if rec.SequenceNumber != 3 || string(e.content(t, suit.NewComponentID("app"))) != "v3" {
		t.Fatalf("after update: seq %d", rec.SequenceNumber)
	}
	// Uninstalled: the highest sequence number is still remembered.
	if _, err := e.p.Uninstall(context.Background(), suit.NewComponentID("app.suit"), processor.RunOptions{}); err != nil {
		t.Fatal(err)
	}
	res, err = install(t, e, v2)
	wantFailure(t, res, err, suit.ReasonUnauthorised, "highest ever installed")
	mustInstall(t, e, signed(t, payloadManifest(3, "app", []byte("v3"), "#p"), suit.Integrated{Key: "#p", Data: []byte("v3")}))
	// Strict policy: equal refused even for the same manifest.
	s := newEnv(t, func(c *processor.Config) { c.RequireIncreasingSequence = true; c.Store = e.store })
	res, err = install(t, s, signed(t, payloadManifest(3, "app", []byte("v3"), "#p"), suit.Integrated{Key: "#p", Data: []byte("v3")}))
	wantFailure(t, res, err, suit.ReasonUnauthorised, "rollback")
}

func TestFailuresLeaveStoreUntouched(t *testing.T) {
	payload := []byte("payload")
	good := payloadManifest(1, "app", payload, "#p")
	custom := manifest(1, ids("x.suit"), [][][]byte{ids("x")}, nil, m{20: seq(20, m{18: []byte("c")}, 18, 15, -300, nil)})
	unknown := manifest(1, ids("x.suit"), [][][]byte{ids("x")}, nil, m{20: seq(20, m{18: []byte("c")}, 18, 15, 30, 0)})
	badParam := manifest(1, ids("x.suit"), [][][]byte{ids("x")}, nil, m{20: seq(20, m{27: uint64(1)}, 18, 15)})
	for _, tc := range []struct {
		name     string
		envelope []byte
		mod      func(*processor.Config)
		reason   suit.Reason
		msg      string
	}{
		{"digest mismatch", signed(t, good, suit.Integrated{Key: "#p", Data: []byte("PAYLOAD")}), nil, suit.ReasonConditionFailed, "has digest"},
		{"missing integrated payload", signed(t, good), nil, suit.ReasonOperationFailed, "no integrated payload"},
		{"wrong key", signed(t, good, suit.Integrated{Key: "#p", Data: payload}), func(c *processor.Config) {
			c.Trust = []*cosekey.Key{loadKey(t, "tam-p256-public.pem")}
		}, suit.ReasonUnauthorised, "signature"},
		{"unsigned", func() []byte {
			e, _ := suit.NewEnvelope(good, []suit.Integrated{{Key: "#p", Data: payload}}, false)
			raw, _ := e.Marshal(suit.MarshalOptions{})
			return raw
		}(), nil, suit.ReasonUnauthorised, "no authentication block"},
		{"custom command", signed(t, custom), nil, suit.ReasonCommandUnsupported, "custom(-300)"},
		{"unknown command", signed(t, unknown), nil, suit.ReasonCommandUnsupported, "command(30)"},
		{"unsupported parameter", signed(t, badParam), nil, suit.ReasonParameterUnsupported, "update-priority"},
		{"oversize envelope", signed(t, good, suit.Integrated{Key: "#p", Data: payload}), func(c *processor.Config) {
			c.Limits.MaxEnvelopeSize = 100
		}, suit.ReasonCBORParse, "exceed"},
		{"oversize payload", signed(t, good, suit.Integrated{Key: "#p", Data: payload}), func(c *processor.Config) {
			c.Limits.MaxComponentSize = 3
		}, suit.ReasonOperationFailed, "larger than 3"},
		{"garbage", []byte{0xa1, 0x02}, nil, suit.ReasonCBORParse, "envelope"},
		{"identity", signed(t, manifest(1, nil, [][][]byte{ids("x")}, seq(20, m{1: bytes.Repeat([]byte{9}, 16)}, 1, 15), m{20: seq(20, m{18: []byte("c")}, 18, 15)})),
			nil, suit.ReasonConditionFailed, "vendor-id"},
		{"authorize", signed(t, good, suit.Integrated{Key: "#p", Data: payload}), func(c *processor.Config) {
			c.Authorize = func(r processor.AuthorizeRequest) error {
				if r.Component != nil {
					return fmt.Errorf("%s may not write %s", r.Signer.KID()[:4], r.Component)
				}
				return nil
			}
		}, suit.ReasonComponentUnauthorised, "may not write"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t, tc.mod)
			res, err := install(t, e, tc.envelope)
			wantFailure(t, res, err, tc.reason, tc.msg)
			storeEmpty(t, e)
		})
	}
}

// failingFetcher delivers part of the payload, then fails.
type failingFetcher struct{ data []byte }

func (f failingFetcher) Fetch(context.Context, string) (io.ReadCloser, int64, error) {
	return io.NopCloser(io.MultiReader(bytes.NewReader(f.data[:len(f.data)/2]), errReader{})), int64(len(f.data)), nil
}

type errReader struct{}

func (errReader) Read([]byte) (int, error) { return 0, errors.New("connection reset") }

// TestAtomicAcrossComponents: a manifest writing two components, where the
// second fails, leaves the previous version of both intact.
func TestAtomicAcrossComponents(t *testing.T) {
	a, b := []byte("A-v1"), []byte("B-v1")
	two := func(seqNo uint64, a, b []byte, uriB string) []byte {
		shared := seq(12, 0, 20, m{3: digestOf(a), 14: uint64(len(a))}, 12, 1, 20, m{3: digestOf(b), 14: uint64(len(b))})
		inst := seq(12, 0, 20, m{21: "#a"}, 21, 2, 3, 15, 12, 1, 20, m{21: uriB}, 21, 2, 3, 15)
		return manifest(seqNo, ids("ab.suit"), [][][]byte{ids("a"), ids("b")}, shared, m{20: inst})
	}
	e := newEnv(t, nil)
	mustInstall(t, e, signed(t, two(1, a, b, "#b"), suit.Integrated{Key: "#a", Data: a}, suit.Integrated{Key: "#b", Data: b}))
	a2, b2 := []byte("A-v2"), bytes.Repeat([]byte("B-v2"), 1000)
	env2 := signed(t, two(2, a2, b2, "https://example.org/b"), suit.Integrated{Key: "#a", Data: a2})
	for _, fetcher := range []processor.Fetcher{failingFetcher{b2}, processor.NewMemFetcher(map[string][]byte{"https://example.org/b": b})} {
		e2 := newEnv(t, func(c *processor.Config) { c.Store = e.store; c.Fetcher = fetcher })
		if _, err := install(t, e2, env2); err == nil {
			t.Fatal("interrupted install succeeded")
		}
		if string(e.content(t, suit.NewComponentID("a"))) != "A-v1" || string(e.content(t, suit.NewComponentID("b"))) != "B-v1" {
			t.Fatal("previous version not intact")
		}
		rec, _ := e.store.Manifest(context.Background(), suit.NewComponentID("ab.suit"))
		if rec.SequenceNumber != 1 {
			t.Fatalf("sequence number persisted on failure: %d", rec.SequenceNumber)
		}
	}
}

// TestLinkedComponentNotOverwritten: a component another manifest links
// cannot be written (draft-ietf-suit-trust-domains §6.6).
func TestLinkedComponentNotOverwritten(t *testing.T) {
	e := newEnv(t, nil)
	first := manifest(1, ids("one.suit"), [][][]byte{ids("shared")}, nil, m{20: seq(20, m{18: []byte("one")}, 18, 15)})
	second := manifest(1, ids("two.suit"), [][][]byte{ids("shared")}, nil, m{20: seq(20, m{18: []byte("two")}, 18, 15)})
	mustInstall(t, e, signed(t, first))
	res, err := install(t, e, signed(t, second))
	wantFailure(t, res, err, suit.ReasonComponentUnauthorised, "linked by manifest")
	if string(e.content(t, suit.NewComponentID("shared"))) != "one" {
		t.Fatal("linked component overwritten")
	}
}

func TestCommands(t *testing.T) {
	payload := []byte("0123456789")
	c := [][][]byte{ids("c0"), ids("c1")}
	for _, tc := range []struct {
		name    string
		install []byte
		ok      bool
		check   func(t *testing.T, e *env)
		reason  suit.Reason
	}{
		{"try-each falls through", seq(15, []any{seq(20, m{18: []byte("x")}, 14, 15), seq(20, m{18: []byte("second")}, 18, 15)}), true,
			func(t *testing.T, e *env) { want(t, e, "c0", "second") }, 0},
		{"try-each all fail", seq(15, []any{seq(14, 15), seq(14, 15)}), false, nil, suit.ReasonConditionFailed},
		{"try-each nil", seq(15, []any{seq(14, 15), nil}, 20, m{18: []byte("after")}, 18, 15), true,
			func(t *testing.T, e *env) { want(t, e, "c0", "after") }, 0},
		{"try-each directive failure aborts", seq(15, []any{seq(22, 15), seq(20, m{18: []byte("x")}, 18, 15)}), false, nil, suit.ReasonOperationFailed},
		{"run-sequence soft failure", seq(32, seq(20, m{13: true}, 14, 15, 18, 15), 20, m{18: []byte("ran")}, 18, 15), true,
			func(t *testing.T, e *env) { want(t, e, "c0", "ran") }, 0},
		{"run-sequence hard failure", seq(32, seq(14, 15)), false, nil, suit.ReasonConditionFailed},
		{"soft-failure outside nesting", seq(20, m{13: true}), false, nil, suit.ReasonParameterUnsupported},
		{"index true writes all", seq(12, true, 20, m{18: []byte("all")}, 18, 15), true,
			func(t *testing.T, e *env) { want(t, e, "c0", "all"); want(t, e, "c1", "all") }, 0},
		{"index list", seq(12, []uint64{1}, 20, m{18: []byte("one")}, 18, 15), true,
			func(t *testing.T, e *env) { want(t, e, "c1", "one") }, 0},
		{"index out of range", seq(12, 5), false, nil, suit.ReasonComponentUnsupported},
		{"copy", seq(20, m{18: payload}, 18, 15, 12, 1, 20, m{22: uint64(0), 3: digestOf(payload)}, 22, 15, 3, 15), true,
			func(t *testing.T, e *env) { want(t, e, "c1", string(payload)) }, 0},
		{"swap", seq(12, 0, 20, m{18: []byte("zero")}, 18, 15, 12, 1, 20, m{18: []byte("one")}, 18, 15, 20, m{22: uint64(0)}, 31, 15), true,
			func(t *testing.T, e *env) { want(t, e, "c0", "one"); want(t, e, "c1", "zero") }, 0},
		{"check-content", seq(20, m{18: payload}, 18, 15, 6, 15), true, nil, 0},
		{"check-content differs", seq(20, m{18: payload}, 18, 15, 20, m{18: []byte("other")}, 6, 15), false, nil, suit.ReasonConditionFailed},
		{"image-not-match", seq(20, m{18: payload, 3: digestOf([]byte("x"))}, 18, 15, 25, 15), true, nil, 0},
		{"image-match size", seq(20, m{18: payload, 3: digestOf(payload), 14: uint64(11)}, 18, 15, 3, 15), false, nil, suit.ReasonConditionFailed},
		{"set-parameters keeps", seq(20, m{18: []byte("first")}, 19, m{18: []byte("second")}, 18, 15), true,
			func(t *testing.T, e *env) { want(t, e, "c0", "first") }, 0},
		{"is-dependency", seq(8, 15), false, nil, suit.ReasonConditionFailed},
		{"invoke unsupported", seq(23, 15), false, nil, suit.ReasonCommandUnsupported},
		{"write without content", seq(18, 15), false, nil, suit.ReasonOperationFailed},
		{"copy from itself", seq(20, m{22: uint64(0)}, 22, 15), false, nil, suit.ReasonOperationFailed},
		{"component-slot unsupported", seq(20, m{5: uint64(1)}, 5, 15), false, nil, suit.ReasonConditionFailed},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t, nil)
			res, err := install(t, e, signed(t, manifest(1, ids("t.suit"), c, nil, m{20: tc.install})))
			if tc.ok {
				if err != nil {
					t.Fatal(err)
				}
				if tc.check != nil {
					tc.check(t, e)
				}
				return
			}
			if err == nil || res.Failure.Reason != tc.reason {
				t.Fatalf("got %v, want %s", err, tc.reason)
			}
			storeEmpty(t, e)
		})
	}
}

func want(t *testing.T, e *env, comp, content string) {
	t.Helper()
	if got := e.content(t, suit.NewComponentID(comp)); string(got) != content {
		t.Errorf("%s = %q, want %q", comp, got, content)
	}
}

// TestFailureRecord: the report names the failing command's section,
// offset and component.
func TestFailureRecord(t *testing.T) {
	e := newEnv(t, nil)
	install := seq(12, 1, 20, m{18: []byte("x"), 3: digestOf([]byte("y"))}, 18, 15, 3, 15)
	res, err := e.p.Install(context.Background(), signed(t, manifest(1, ids("t.suit"), [][][]byte{ids("a"), ids("b")}, nil, m{20: install})),
		processor.RunOptions{Nonce: []byte{1, 2, 3}})
	if err == nil {
		t.Fatal("succeeded")
	}
	f := res.Report.Failure
	// offset of "3, 15": after [12,1,20,{..},18,15] inside the install sequence.
	s, _ := suit.ParseEnvelope(signed(t, manifest(1, ids("t.suit"), [][][]byte{ids("a"), ids("b")}, nil, m{20: install})), suit.ParseOptions{})
	wantOff := s.Manifest().Install.Sequence.Commands[3].Offset
	if f.Record.Section != suit.SectionInstall || int(f.Record.Offset) != wantOff || f.Record.ComponentIndex != 1 || f.Code != suit.CondImageMatch {
		t.Fatalf("failure record %+v, want offset %d", f, wantOff)
	}
	if !bytes.Equal(res.Report.Nonce, []byte{1, 2, 3}) || len(f.Record.Properties) != 1 {
		t.Fatalf("report %+v", res.Report)
	}
	// The record carries the measured digest.
	if d := f.Record.Properties[0].Value.(suit.Digest); !bytes.Equal(d.Marshal(), digestOf([]byte("x"))) {
		t.Fatalf("measured digest %s", d)
	}
	// Records asked for by the reporting policy (15 = on success too).
	if len(res.Report.Records) == 0 {
		t.Fatal("no records for policy 15")
	}
}

type recordingInvoker struct{ calls []string }

func (r *recordingInvoker) Invoke(_ context.Context, id suit.ComponentID, args []byte) error {
	r.calls = append(r.calls, id.String()+" "+string(args))
	return nil
}

func TestInvocationProcedure(t *testing.T) {
	inv := &recordingInvoker{}
	e := newEnv(t, func(c *processor.Config) { c.Invoker = inv })
	payload := []byte("app")
	man := manifest(1, ids("app.suit"), [][][]byte{ids("app")}, seq(20, m{3: digestOf(payload), 14: uint64(3)}),
		m{20: seq(20, m{18: payload}, 18, 15), 7: seq(3, 15), 9: seq(20, m{23: []byte("--run")}, 23, 15)})
	mustInstall(t, e, signed(t, man))
	if len(inv.calls) != 0 {
		t.Fatal("Update procedure invoked the component")
	}
	res, err := e.p.Invoke(context.Background(), suit.NewComponentID("app.suit"), processor.RunOptions{})
	if err != nil || !res.Success {
		t.Fatal(err)
	}
	if len(inv.calls) != 1 || inv.calls[0] != "app --run" {
		t.Fatalf("calls %v", inv.calls)
	}
	// Tampered content fails validate before invoke.
	txn, _ := e.store.Begin(context.Background())
	w, _ := txn.Create(context.Background(), suit.NewComponentID("app"))
	w.Write([]byte("evil"))
	w.Close()
	txn.Commit(context.Background())
	_, err = e.p.Invoke(context.Background(), suit.NewComponentID("app.suit"), processor.RunOptions{})
	if err == nil || len(inv.calls) != 1 {
		t.Fatalf("tampered component invoked: %v", err)
	}
}

func TestSkipFetchIfPresent(t *testing.T) {
	payload := []byte("large TA")
	e := newEnv(t, func(c *processor.Config) { c.SkipFetchIfPresent = true })
	e.fetcher.Set("https://example.org/ta", payload)
	mustInstall(t, e, signed(t, payloadManifest(1, "ta", payload, "https://example.org/ta")))
	mustInstall(t, e, signed(t, payloadManifest(2, "ta", payload, "https://example.org/ta")))
	if e.fetcher.Calls != 1 {
		t.Fatalf("fetched %d times, want 1 (unchanged payload)", e.fetcher.Calls)
	}
}

func TestDependencyChecks(t *testing.T) {
	dep := signed(t, manifest(1, ids("dep.suit"), [][][]byte{ids("d")}, nil, m{20: seq(20, m{18: []byte("dep")}, 18, 15)}))
	depEnv, _ := suit.ParseEnvelope(dep, suit.ParseOptions{})
	root := func(prefix string, digest []byte) []byte {
		common := m{2: [][][]byte{ids("r")}, 1: m{1: m{1: ids(prefix)}}}
		mm := m{1: 1, 2: uint64(1), 3: enc(common), 5: ids("root.suit"),
			15: seq(12, 1, 20, m{3: digest, 21: "#dep"}, 21, 2, 7, 15),
			20: seq(12, 1, 11, 0, 12, 0, 20, m{18: []byte("root")}, 18, 15)}
		return signed(t, enc(mm), suit.Integrated{Key: "#dep", Data: dep})
	}
	good := depEnv.Digest().Marshal()
	e := newEnv(t, nil)
	res := mustInstall(t, e, root("dep.suit", good))
	if len(res.Installed) != 2 || len(res.Manifests) != 2 {
		t.Fatalf("result %+v", res)
	}
	for _, tc := range []struct {
		name, prefix string
		digest       []byte
		msg          string
	}{
		{"digest", "dep.suit", digestOf([]byte("other")), "manifest digest"},
		{"prefix", "other.suit", good, "expects"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t, nil)
			res, err := install(t, e, root(tc.prefix, tc.digest))
			if err == nil || !strings.Contains(err.Error(), tc.msg) {
				t.Fatalf("got %v", err)
			}
			if res.Failure.Reason != suit.ReasonUnauthorised && res.Failure.Reason != suit.ReasonComponentUnauthorised {
				t.Fatalf("reason %s", res.Failure.Reason)
			}
			storeEmpty(t, e)
		})
	}
	// A dependency signed by an untrusted key.
	e = newEnv(t, func(c *processor.Config) {
		c.Trust = []*cosekey.Key{loadKey(t, "example-p256-public.pem")}
	})
	tamSigner, _ := cosekey.NewSigner(loadKey(t, "tam-p256-private.pem"), 0)
	de, _ := suit.NewEnvelope(depEnv.Manifest().Raw, nil, false)
	de.Sign(tamSigner)
	rawDep, _ := de.Marshal(suit.MarshalOptions{})
	common := m{2: [][][]byte{ids("r")}, 1: m{1: m{1: ids("dep.suit")}}}
	mm := m{1: 1, 2: uint64(1), 3: enc(common), 5: ids("root.suit"),
		15: seq(12, 1, 20, m{3: good, 21: "#dep"}, 21, 2, 7, 15), 20: seq(12, 1, 11, 0)}
	res, err := install(t, e, signed(t, enc(mm), suit.Integrated{Key: "#dep", Data: rawDep}))
	if err == nil || res.Failure.Reason != suit.ReasonUnauthorised || !res.Failure.ManifestID.Equal(suit.NewComponentID("root.suit")) {
		t.Fatalf("untrusted dependency: %v", err)
	}
}

func TestCapabilityReport(t *testing.T) {
	e := newEnv(t, nil)
	res, err := e.p.Install(context.Background(), signed(t, payloadManifest(1, "app", []byte("x"), "#p"), suit.Integrated{Key: "#p", Data: []byte("x")}),
		processor.RunOptions{Capabilities: true})
	if err != nil {
		t.Fatal(err)
	}
	rep, err := suit.ParseReport(res.ReportBytes)
	if err != nil || rep.Capability == nil {
		t.Fatalf("capability report missing: %v", err)
	}
	var caps map[int64]any
	if err := cbor.Unmarshal(rep.Capability, &caps); err != nil {
		t.Fatal(err)
	}
	if cmds, ok := caps[2].([]any); !ok || len(cmds) != len(e.p.Capabilities().Commands) {
		t.Fatalf("commands: %v", caps[2])
	}
	if comps := caps[1].([]any)[0].([]any); len(comps) != 1 || comps[0] != true {
		t.Fatalf("components: %v", caps[1])
	}
}

// A processor with no trust anchors can still uninstall what was installed
// (authenticated then), but authenticates nothing new.
func TestNoTrustAnchors(t *testing.T) {
	e := newEnv(t, nil)
	mustInstall(t, e, signed(t, payloadManifest(1, "app", []byte("v1"), "#p"), suit.Integrated{Key: "#p", Data: []byte("v1")}))
	bare := newEnv(t, func(c *processor.Config) { c.Trust, c.MACKeys, c.Store = nil, nil, e.store })
	res, err := install(t, bare, signed(t, payloadManifest(2, "app", []byte("v2"), "#p"), suit.Integrated{Key: "#p", Data: []byte("v2")}))
	wantFailure(t, res, err, suit.ReasonUnauthorised, "")
	if got := e.content(t, suit.NewComponentID("app")); string(got) != "v1" {
		t.Fatalf("content %q after a refused install", got)
	}
	if _, err := bare.p.Uninstall(context.Background(), suit.NewComponentID("app.suit"), processor.RunOptions{}); err != nil {
		t.Fatalf("uninstall without trust anchors: %v", err)
	}
	if inst, err := bare.p.Installed(context.Background()); err != nil || len(inst) != 0 {
		t.Fatalf("after uninstall: %v %v", inst, err)
	}
}
