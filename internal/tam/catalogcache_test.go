package tam_test

import (
	"context"
	"path/filepath"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/teep-go/teep/cosekey"
	"github.com/teep-go/teep/internal/tam"
	"github.com/teep-go/teep/internal/tam/pgstore"
	"github.com/teep-go/teep/internal/tam/pgstore/pgtest"
	"github.com/teep-go/teep/internal/tam/sqlitestore"
	"github.com/teep-go/teep/internal/tam/tamtest"
	"github.com/teep-go/teep/teep"
)

// Two engines, each with its own store handle on one database (two
// replicas): every catalog change made through A is planned from by B's
// next session, though B keeps its catalog between sessions: no stale
// install (a new policy, a new version), no stale removal (a policy
// deleted, then given again).
func TestCatalogCacheAcrossReplicas(t *testing.T) {
	t.Run("sqlite", func(t *testing.T) {
		path := filepath.Join(t.TempDir(), "tam.db")
		testCatalogAcrossReplicas(t, func() tam.Store {
			st, err := sqlitestore.Open(ctx, path, sqlitestore.Options{})
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { st.Close() })
			return st
		})
	})
	t.Run("postgres", func(t *testing.T) {
		dsn := pgtest.DSN(t)
		testCatalogAcrossReplicas(t, func() tam.Store {
			st, err := pgstore.Open(ctx, dsn, pgstore.Options{})
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { st.Close() })
			return st
		})
	})
}

func testCatalogAcrossReplicas(t *testing.T, open func() tam.Store) {
	keys := []*cosekey.Key{mustKey(t, -9), mustKey(t, -19)}
	session := make([]byte, 32)
	engine := func(reg prometheus.Registerer) *tam.Engine {
		e, err := tam.New(tam.Config{Store: open(), Keys: keys, SessionKey: session, Registerer: reg})
		if err != nil {
			t.Fatal(err)
		}
		return e
	}
	regB := prometheus.NewRegistry()
	a, b := engine(nil), engine(regB)
	signer := tamtest.Signer(t)
	if _, err := a.AddTrustedKey(ctx, tam.RoleTCSigner, signer.PublicKey(), "s"); err != nil {
		t.Fatal(err)
	}
	v1, err := a.AddComponent(ctx, tamtest.Envelope(t, signer, "app", 1, []byte("one")))
	if err != nil {
		t.Fatal(err)
	}
	agent := tamtest.NewAgent(t, tamtest.AgentOptions{TAMKeys: b.PublicKeys(), Trust: []*cosekey.Key{signer.PublicKey()},
		Transport: func(ctx context.Context, msg []byte) ([]byte, error) {
			return b.Handle(ctx, msg, tam.HandleOptions{Numbering: teep.Draft26})
		}})
	if _, err := a.AddAgent(ctx, agent.Key().PublicKey(), nil); err != nil {
		t.Fatal(err)
	}
	app := tamtest.ManifestID("app").String()
	round := func(what string, want map[string]uint64) {
		t.Helper()
		tr, err := agent.Sync(ctx)
		if err != nil {
			t.Fatalf("%s: %v (trace %v)", what, err, tr.Types)
		}
		got := agent.Installed(ctx)
		if len(got) != len(want) {
			t.Fatalf("%s: device holds %v, want %v", what, got, want)
		}
		for id, seq := range want {
			if got[id] != seq {
				t.Fatalf("%s: device holds %v, want %v", what, got, want)
			}
		}
	}
	// B's first session caches a catalog without any policy.
	round("no policy", nil)
	round("no policy, again", nil)
	if _, err := a.SetPolicy(ctx, tam.Policy{Component: v1.ComponentID, Mode: tam.Required, Scope: tam.ScopeAll}); err != nil {
		t.Fatal(err)
	}
	round("policy set through A", map[string]uint64{app: 1})
	round("steady", map[string]uint64{app: 1})
	if _, err := a.AddComponent(ctx, tamtest.Envelope(t, signer, "app", 2, []byte("two"))); err != nil {
		t.Fatal(err)
	}
	round("version 2 added through A", map[string]uint64{app: 2})
	if _, err := a.RemovePolicies(ctx, tam.PolicyFilter{Component: v1.ComponentID}); err != nil {
		t.Fatal(err)
	}
	round("policy deleted through A", nil)
	if _, err := a.SetPolicy(ctx, tam.Policy{Component: v1.ComponentID, Mode: tam.Required, Scope: tam.ScopeAll}); err != nil {
		t.Fatal(err)
	}
	round("policy set again through A", map[string]uint64{app: 2})
	round("steady again", map[string]uint64{app: 2})

	// The steady rounds planned from B's cache; each change made it reload.
	hits, misses := cacheCounts(t, regB)
	if hits == 0 || misses < 4 {
		t.Errorf("B's catalog cache: %v hits, %v misses; want hits and a reload per change (4)", hits, misses)
	}
}

func cacheCounts(t *testing.T, reg *prometheus.Registry) (hits, misses float64) {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != "teep_tam_catalog_cache_total" {
			continue
		}
		for _, m := range mf.GetMetric() {
			for _, l := range m.GetLabel() {
				switch l.GetValue() {
				case "hit":
					hits = m.GetCounter().GetValue()
				case "miss":
					misses = m.GetCounter().GetValue()
				}
			}
		}
	}
	return hits, misses
}
