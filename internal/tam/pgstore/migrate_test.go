package pgstore

import (
	"context"
	"io/fs"
	"testing"

	"github.com/jackc/pgx/v5"
	"github.com/teep-go/teep/internal/tam"
	"github.com/teep-go/teep/internal/tam/pgstore/pgtest"
	"github.com/teep-go/teep/suit"
)

// TestMigrationFromV2 upgrades a database made by the schema before per-
// tenant data (migrations 0001 and 0002, rows as that release wrote them):
// labels and personalization data become the default tenant's, and other
// tenants can then use the same name.
func TestMigrationFromV2(t *testing.T) {
	ctx := context.Background()
	dsn := pgtest.DSN(t)
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	kid := make([]byte, 32)
	kid[0] = 7
	if _, err := conn.Exec(ctx, `CREATE TABLE schema_migrations (version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at BIGINT NOT NULL)`); err != nil {
		t.Fatal(err)
	}
	for _, n := range []string{"0001_initial.sql", "0002_tenants.sql"} {
		b, err := migrationFS.ReadFile("migrations/" + n)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := conn.Exec(ctx, string(b)); err != nil {
			t.Fatalf("%s: %v", n, err)
		}
	}
	for _, q := range []struct {
		sql  string
		args []any
	}{
		{`INSERT INTO schema_migrations VALUES (1, '0001_initial.sql', 0), (2, '0002_tenants.sql', 0)`, nil},
		{`INSERT INTO tenants VALUES ('acme', 'Acme', 0)`, nil},
		{`INSERT INTO devices VALUES ($1, '\xa1', -7, '{region=eu,beta}', '', '', '', '', true, 'none', 0, '', false, 'ok', '', 0, '', 1, 0)`, []any{kid}},
		{`INSERT INTO personalization VALUES ($1, 'config', $2, $3, 4, '\xd86b', '\x0102', '{}', 42, 5)`,
			[]any{kid, idCol(suit.NewComponentID("pz", "suit")), idCol(suit.NewComponentID("pz"))}},
	} {
		if _, err := conn.Exec(ctx, q.sql, q.args...); err != nil {
			t.Fatalf("%s: %v", q.sql, err)
		}
	}
	conn.Close(ctx)

	s := open(t, dsn)
	defer s.Close()
	// Every later migration runs too, whatever their number.
	all, _ := fs.Glob(migrationFS, "migrations/*.sql")
	if v, err := s.SchemaVersion(ctx); err != nil || v != len(all) {
		t.Fatalf("schema version %d, %v; want %d", v, err, len(all))
	}
	err = s.Update(ctx, func(tx tam.Tx) error {
		d, err := tx.Device(ctx, kid)
		if err != nil {
			return err
		}
		if got := d.LabelsOf(tam.DefaultTenant); len(got) != 2 || got[0] != "region=eu" {
			t.Errorf("default tenant's labels after the migration: %q", got)
		}
		if got := d.LabelsOf("acme"); got != nil {
			t.Errorf("acme's labels after the migration: %q", got)
		}
		p, err := tx.Personalization(ctx, kid, tam.DefaultTenant, "config")
		if err != nil {
			return err
		}
		if p.Tenant != tam.DefaultTenant || p.Sequence != 4 || p.Size != 42 {
			t.Errorf("migrated personalization: %+v", p)
		}
		if _, err := tx.Personalization(ctx, kid, "acme", "config"); err == nil {
			t.Error("acme has the default tenant's item after the migration")
		}
		return tx.PutPersonalization(ctx, tam.Personalization{DeviceKID: kid, Tenant: "acme", Name: "config", ComponentID: p.ComponentID, Sequence: 1, Envelope: []byte{1}})
	})
	if err != nil {
		t.Fatal(err)
	}
}
