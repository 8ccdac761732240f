// Package pgtest gives tests a fresh PostgreSQL schema on the server named
// by TEEP_TEST_POSTGRES_DSN. Without a reachable server the tests skip,
// saying why, except under CI=true, where they fail: CI asked for
// PostgreSQL (.ci/run starts one) and a silent skip would hide that the
// PostgreSQL store went untested.
package pgtest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"net/url"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

// EnvDSN names the variable holding the test server's DSN.
const EnvDSN = "TEEP_TEST_POSTGRES_DSN"

// connectTimeout bounds how long an unreachable server delays a test.
const connectTimeout = 10 * time.Second

// DSN creates an empty schema on the test server and returns a DSN whose
// search_path selects it; the schema is dropped when t ends. Every call
// gets its own schema, so tests and concurrent runs do not interfere.
func DSN(t testing.TB) string {
	t.Helper()
	base := os.Getenv(EnvDSN)
	if base == "" {
		unavailable(t, EnvDSN+" is not set")
	}
	ctx, cancel := context.WithTimeout(context.Background(), connectTimeout)
	defer cancel()
	conn, err := pgx.Connect(ctx, base)
	if err != nil {
		unavailable(t, "cannot reach the server: "+err.Error())
	}
	defer conn.Close(context.Background())
	b := make([]byte, 8)
	rand.Read(b)
	schema := "teep_test_" + hex.EncodeToString(b)
	if _, err := conn.Exec(ctx, "CREATE SCHEMA "+schema); err != nil {
		t.Fatalf("pgtest: create schema: %v", err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), connectTimeout)
		defer cancel()
		conn, err := pgx.Connect(ctx, base)
		if err != nil {
			t.Errorf("pgtest: drop schema %s: %v", schema, err)
			return
		}
		defer conn.Close(context.Background())
		if _, err := conn.Exec(ctx, "DROP SCHEMA "+schema+" CASCADE"); err != nil {
			t.Errorf("pgtest: drop schema %s: %v", schema, err)
		}
	})
	dsn, err := withSearchPath(base, schema)
	if err != nil {
		t.Fatalf("pgtest: %s: %v", EnvDSN, err)
	}
	return dsn
}

// withSearchPath adds search_path to a URL or key=value DSN.
func withSearchPath(dsn, schema string) (string, error) {
	if !strings.HasPrefix(dsn, "postgres://") && !strings.HasPrefix(dsn, "postgresql://") {
		return dsn + " search_path=" + schema, nil
	}
	u, err := url.Parse(dsn)
	if err != nil {
		return "", err
	}
	q := u.Query()
	q.Set("search_path", schema)
	u.RawQuery = q.Encode()
	return u.String(), nil
}

func unavailable(t testing.TB, why string) {
	t.Helper()
	if ci, _ := strconv.ParseBool(os.Getenv("CI")); ci {
		t.Fatalf("PostgreSQL tests cannot run under CI=true: %s (.ci/run starts a server and sets %s)", why, EnvDSN)
	}
	t.Skipf("PostgreSQL tests skipped: %s; set %s=postgres://... to run them", why, EnvDSN)
}
