package tamserver_test

import (
	"context"
	"fmt"
	"path/filepath"
	"testing"
	"time"

	"github.com/teep-go/teep/cosekey"
	"github.com/teep-go/teep/internal/tam"
	"github.com/teep-go/teep/internal/tam/pgstore/pgtest"
	"github.com/teep-go/teep/internal/tam/tamserver"
	"github.com/teep-go/teep/internal/tam/tamtest"
	"github.com/teep-go/teep/teep"
)

// installAgent never installs anything, so that every session it runs is
// an install session for the TAM: QueryRequest, QueryResponse with an empty
// tc-list, Update with the manifest, Success.
type installAgent struct {
	signer *cosekey.Signer
	tam    []*cosekey.Key
}

func (a *installAgent) session(ctx context.Context, eng *tam.Engine) error {
	msg := []byte{}
	for n := 0; ; n++ {
		in, err := eng.Handle(ctx, msg, tam.HandleOptions{Numbering: teep.Draft26})
		if err != nil {
			return err
		}
		if in == nil {
			if n != 2 {
				return fmt.Errorf("session ended after %d exchanges, want an Update", n)
			}
			return nil
		}
		op, err := teep.Open(in, teep.OpenOptions{Keys: a.tam})
		if err != nil {
			return err
		}
		var out teep.Message
		switch m := op.Message.(type) {
		case *teep.QueryRequest:
			out = &teep.QueryResponse{Token: m.Token}
		case *teep.Update:
			out = &teep.Success{Token: m.Token}
		default:
			return fmt.Errorf("unexpected %T", m)
		}
		if msg, err = teep.Sign(out, a.signer, teep.SignOptions{}); err != nil {
			return err
		}
	}
}

func benchTAM(b *testing.B, db string) (*tamserver.TAM, *installAgent) {
	b.Helper()
	srv, err := tamserver.Open(context.Background(), tamserver.Options{DataDir: filepath.Join(b.TempDir(), "data"), DB: db, Attestation: tam.AttestNever})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { srv.Close() })
	ctx := context.Background()
	signer := tamtest.Signer(b)
	if _, err := srv.Engine.AddTrustedKey(ctx, tam.RoleTCSigner, signer.PublicKey(), ""); err != nil {
		b.Fatal(err)
	}
	v, err := srv.Engine.AddComponent(ctx, tamtest.Envelope(b, signer, "app", 1, make([]byte, 1024)))
	if err != nil {
		b.Fatal(err)
	}
	if _, err := srv.Engine.SetPolicy(ctx, tam.Policy{Component: v.ComponentID, Mode: tam.Required, Scope: tam.ScopeAll}); err != nil {
		b.Fatal(err)
	}
	ak, err := cosekey.Generate(cosekey.AlgESP256)
	if err != nil {
		b.Fatal(err)
	}
	if _, err := srv.Engine.AddAgent(ctx, ak.PublicKey(), nil); err != nil {
		b.Fatal(err)
	}
	as, err := cosekey.NewSigner(ak, 0)
	if err != nil {
		b.Fatal(err)
	}
	return srv, &installAgent{signer: as, tam: srv.Engine.PublicKeys()}
}

// BenchmarkInstallSessionSQLiteVsPostgres runs one install session (1 KiB
// component) on a TAM on SQLite and one on a TAM on PostgreSQL per
// iteration, in process, and reports each one's time and their ratio
// (pg/sqlite): the same run, so the machine's load weighs on both alike.
func BenchmarkInstallSessionSQLiteVsPostgres(b *testing.B) {
	ctx := context.Background()
	sq, sqAgent := benchTAM(b, "")
	pg, pgAgent := benchTAM(b, pgtest.DSN(b))
	var sqTime, pgTime time.Duration
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		start := time.Now()
		if err := sqAgent.session(ctx, sq.Engine); err != nil {
			b.Fatal(err)
		}
		mid := time.Now()
		if err := pgAgent.session(ctx, pg.Engine); err != nil {
			b.Fatal(err)
		}
		sqTime += mid.Sub(start)
		pgTime += time.Since(mid)
	}
	n := float64(b.N)
	b.ReportMetric(float64(sqTime.Microseconds())/n, "sqlite-us/session")
	b.ReportMetric(float64(pgTime.Microseconds())/n, "postgres-us/session")
	b.ReportMetric(float64(pgTime)/float64(sqTime), "pg/sqlite")
}
