package sqlitestore_test

import (
	"context"
	"path/filepath"
	"strings"
	"testing"

	"github.com/teep-go/teep/cosekey"
	"github.com/teep-go/teep/internal/tam"
	"github.com/teep-go/teep/internal/tam/sqlitestore"
	"github.com/teep-go/teep/internal/tam/tamtest"
	"github.com/teep-go/teep/teep"
)

// perDeviceTables grow with the fleet or with history: a hot-path
// statement must never scan them. (The catalog tables are read whole per
// catalog miss by design and stay small.)
var perDeviceTables = []string{"devices", "installed", "install_failures", "reports", "pending_updates", "used_tokens", "personalization"}

// Every statement the engine runs in install sessions, steady rounds, an
// Agent error and the purge is planned with an index on the tables that
// grow: EXPLAIN QUERY PLAN shows no SCAN of them.
func TestHotPathQueriesUseIndexes(t *testing.T) {
	ctx := context.Background()
	st, err := sqlitestore.Open(ctx, filepath.Join(t.TempDir(), "tam.db"), sqlitestore.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	key := func(alg cosekey.KeyType) *cosekey.Key {
		a := cosekey.AlgESP256
		if alg == cosekey.KeyTypeEd25519 {
			a = cosekey.AlgEd25519
		}
		k, err := cosekey.Generate(a)
		if err != nil {
			t.Fatal(err)
		}
		return k
	}
	eng, err := tam.New(tam.Config{Store: st, Keys: []*cosekey.Key{key(cosekey.KeyTypeP256), key(cosekey.KeyTypeEd25519)}})
	if err != nil {
		t.Fatal(err)
	}
	signer := tamtest.Signer(t)
	if _, err := eng.AddTrustedKey(ctx, tam.RoleTCSigner, signer.PublicKey(), "s"); err != nil {
		t.Fatal(err)
	}
	v, err := eng.AddComponent(ctx, tamtest.Envelope(t, signer, "app", 1, []byte("x")))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := eng.SetPolicy(ctx, tam.Policy{Component: v.ComponentID, Mode: tam.Required, Scope: tam.ScopeAll}); err != nil {
		t.Fatal(err)
	}
	ak := key(cosekey.KeyTypeP256)
	as, _ := cosekey.NewSigner(ak, 0)
	if _, err := eng.AddAgent(ctx, ak.PublicKey(), nil); err != nil {
		t.Fatal(err)
	}
	st.ForgetStatements()

	post := func(in []byte) []byte {
		t.Helper()
		out, err := eng.Handle(ctx, in, tam.HandleOptions{Numbering: teep.Draft26})
		if err != nil {
			t.Fatal(err)
		}
		return out
	}
	reply := func(in []byte, tcList []teep.SystemPropertyClaims, fail bool) []byte {
		t.Helper()
		op, err := teep.Open(in, teep.OpenOptions{Keys: eng.PublicKeys()})
		if err != nil {
			t.Fatal(err)
		}
		var m teep.Message
		switch q := op.Message.(type) {
		case *teep.QueryRequest:
			m = &teep.QueryResponse{Token: q.Token, TCList: tcList}
		case *teep.Update:
			m = &teep.Success{Token: q.Token}
			if fail {
				m = &teep.Error{Token: q.Token, ErrCode: teep.ErrTemporaryError}
			}
		}
		b, err := teep.Sign(m, as, teep.SignOptions{})
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	for _, fail := range []bool{true, false} {
		u := post(reply(post(nil), nil, false))
		if post(reply(u, nil, fail)) != nil {
			t.Fatal("an answer to an Success or Error")
		}
	}
	steady := []teep.SystemPropertyClaims{{ComponentID: tamtest.ManifestID("app")}}
	if post(reply(post(nil), steady, false)) != nil {
		t.Fatal("steady round answered with an Update")
	}
	if _, err := eng.Purge(ctx); err != nil {
		t.Fatal(err)
	}

	qs := st.Statements()
	if len(qs) < 5 {
		t.Fatalf("only %d statements recorded: %q", len(qs), qs)
	}
	for _, q := range qs {
		plan, err := st.Explain(ctx, q, strings.Count(q, "?"))
		if err != nil {
			t.Fatalf("EXPLAIN %s: %v", q, err)
		}
		for _, step := range plan {
			for _, tbl := range perDeviceTables {
				if step == "SCAN "+tbl || strings.HasPrefix(step, "SCAN "+tbl+" ") {
					t.Errorf("%s\n  plan step %q scans a table that grows", q, step)
				}
			}
		}
	}
	t.Logf("%d hot-path statements checked", len(qs))
}
