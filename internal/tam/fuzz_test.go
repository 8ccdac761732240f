package tam_test

import (
	"encoding/hex"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/teep-go/teep/internal/tam"
	"github.com/teep-go/teep/internal/tam/tamtest"
	"github.com/teep-go/teep/teep"
)

// seeds are the TEEP vectors of testdata (bare and signed, both numberings).
func seeds(t testing.TB) [][]byte {
	var out [][]byte
	for _, dir := range []string{"draft-26", "pre-26-legacy", "synthesized"} {
		files, _ := filepath.Glob(filepath.Join("..", "..", "testdata", "teep", dir, "*.hex"))
		for _, f := range files {
			b, err := os.ReadFile(f)
			if err != nil {
				t.Fatal(err)
			}
			raw, err := hex.DecodeString(strings.Join(strings.Fields(string(b)), ""))
			if err != nil {
				t.Fatalf("%s: %v", f, err)
			}
			out = append(out, raw)
		}
	}
	if len(out) < 15 {
		t.Fatalf("found %d vectors", len(out))
	}
	return out
}

// TestVectorsRefused feeds the draft's messages (and the synthesized signed
// ones) to a TAM: none carries a token this TAM issued, so each is refused
// without touching the database.
func TestVectorsRefused(t *testing.T) {
	f := newFixture(t)
	for _, v := range seeds(t) {
		for _, n := range []teep.Numbering{teep.Draft26, teep.Legacy} {
			before := f.dump()
			out, err := f.eng.Handle(ctx, v, tam.HandleOptions{Numbering: n})
			if err == nil || out != nil {
				t.Fatalf("vector %x... accepted", v[:8])
			}
			if k := tam.KindOf(err); k != tam.KindBadMessage && k != tam.KindReplay && k != tam.KindUnauthorized {
				t.Fatalf("vector %x...: %v (kind %v)", v[:8], err, k)
			}
			if f.dump() != before {
				t.Fatal("database changed")
			}
		}
	}
}

// FuzzHandle: no input makes the engine panic, and a refused input never
// changes the database.
func FuzzHandle(f *testing.F) {
	fx := newFixture(f)
	id := fx.add(fx.tc("app", 1, []byte("x")))
	fx.require(id, tam.Required, tam.ScopeAll, "")
	a := fx.agent(tamtest.AgentOptions{})
	tr, err := a.Sync(ctx)
	if err != nil {
		f.Fatal(err)
	}
	for _, m := range tr.Messages {
		f.Add(m)
	}
	for _, s := range seeds(f) {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, in []byte) {
		if len(in) == 0 {
			return // a session start: always answered
		}
		before, err := fx.store.Dump(ctx)
		if err != nil {
			t.Fatal(err)
		}
		out, err := fx.eng.Handle(ctx, in, tam.HandleOptions{})
		if err == nil {
			return
		}
		if out != nil {
			t.Fatal("output with an error")
		}
		after, _ := fx.store.Dump(ctx)
		if after != before {
			t.Fatalf("refused input changed the database: %v", err)
		}
	})
}
