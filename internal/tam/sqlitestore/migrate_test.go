package sqlitestore

import (
	"context"
	"database/sql"
	"encoding/hex"
	"io/fs"
	"path/filepath"
	"testing"

	"github.com/teep-go/teep/internal/tam"
	"github.com/teep-go/teep/suit"
)

// TestMigrationFromV2 upgrades a database made by the schema before per-
// tenant data (migrations 0001 and 0002, rows written as that release
// wrote them): labels and personalization data become the default
// tenant's, and other tenants can then use the same name.
func TestMigrationFromV2(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "tam.db")
	db, err := sql.Open("sqlite", "file:"+path+"?_pragma=foreign_keys(1)")
	if err != nil {
		t.Fatal(err)
	}
	kid := make([]byte, 32)
	kid[0] = 7
	stmts := []string{`CREATE TABLE schema_migrations (version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at INTEGER NOT NULL)`}
	for _, n := range []string{"0001_initial.sql", "0002_tenants.sql"} {
		b, err := migrationFS.ReadFile("migrations/" + n)
		if err != nil {
			t.Fatal(err)
		}
		stmts = append(stmts, string(b))
	}
	stmts = append(stmts,
		`INSERT INTO schema_migrations VALUES (1, '0001_initial.sql', 0), (2, '0002_tenants.sql', 0)`,
		`INSERT INTO tenants VALUES ('acme', 'Acme', 0)`,
		`INSERT INTO devices VALUES (x'`+hex.EncodeToString(kid)+`', x'a1', -7, '["region=eu","beta"]', x'', x'', x'', '', 1, 'none', 0, '', 0, 'ok', '', 0, '', 1, 0)`,
		`INSERT INTO personalization VALUES (x'`+hex.EncodeToString(kid)+`', 'config', '`+idCol(suit.NewComponentID("pz", "suit"))+`', '`+idCol(suit.NewComponentID("pz"))+`', 4, x'd86b', x'0102', '[]', 42, 5)`)
	for _, q := range stmts {
		if _, err := db.ExecContext(ctx, q); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
	db.Close()

	s, err := Open(ctx, path, Options{})
	if err != nil {
		t.Fatal(err)
	}
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
		// The new key lets another tenant use the name.
		return tx.PutPersonalization(ctx, tam.Personalization{DeviceKID: kid, Tenant: "acme", Name: "config", ComponentID: p.ComponentID, Sequence: 1, Envelope: []byte{1}})
	})
	if err != nil {
		t.Fatal(err)
	}
}
