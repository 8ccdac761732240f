package pgstore_test

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/teep-go/teep/cosekey"
	"github.com/teep-go/teep/internal/tam"
	"github.com/teep-go/teep/internal/tam/pgstore"
	"github.com/teep-go/teep/internal/tam/pgstore/pgtest"
	"github.com/teep-go/teep/internal/tam/tamtest"
	"github.com/teep-go/teep/teep"
)

// growingTables grow with the fleet or with history: a hot-path statement
// must reach their rows through an index condition, never by a Seq Scan
// nor by walking a whole index. (The catalog tables are read whole per
// catalog miss by design and stay small; catalog_generation and
// token_epoch hold one row.)
var growingTables = map[string]bool{
	"devices": true, "installed": true, "install_failures": true, "reports": true,
	"pending_updates": true, "used_tokens": true, "personalization": true, "audit_log": true,
}

// Fleet and history of the populated database: enough rows that a
// sequential scan costs far more than an index probe, so the planner's
// choice shows whether an index exists for the statement.
const (
	planDevices        = 20_000
	planReports        = 200_000 // 10 per device; the engine keeps 50
	planUsedTokens     = 200_000 // consumed QueryRequest tokens, kept until they expire
	planPendingUpdates = planDevices
	planFailures       = 2_000
	// One in planExpiredOf used tokens and pending Updates is past its
	// expiry: about what accumulates between two janitor runs (5 minutes
	// of a 12-hour token lifetime is 0.7%), not a backlog.
	planExpiredOf = 100
)

// stmtRecorder is a pgx tracer keeping every distinct statement the store
// sends, with the arguments of its first run: EXPLAIN then plans it with
// the values a real session used.
type stmtRecorder struct {
	mu    sync.Mutex
	order []string
	args  map[string][]any
}

func (r *stmtRecorder) TraceQueryStart(ctx context.Context, _ *pgx.Conn, d pgx.TraceQueryStartData) context.Context {
	r.mu.Lock()
	defer r.mu.Unlock()
	if _, ok := r.args[d.SQL]; !ok {
		r.order = append(r.order, d.SQL)
		r.args[d.SQL] = append([]any(nil), d.Args...)
	}
	return ctx
}

func (r *stmtRecorder) TraceQueryEnd(context.Context, *pgx.Conn, pgx.TraceQueryEndData) {}

func (r *stmtRecorder) reset() {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.order, r.args = nil, map[string][]any{}
}

// plannable reports whether q is a statement EXPLAIN accepts (not BEGIN,
// COMMIT, SET or SHOW).
func plannable(q string) bool {
	f := strings.Fields(q)
	if len(f) == 0 {
		return false
	}
	switch strings.ToUpper(f[0]) {
	case "SELECT", "INSERT", "UPDATE", "DELETE", "WITH":
		return true
	}
	return false
}

// populate fills the tables that grow with a fleet and its history, then
// ANALYZEs them so the planner knows their size.
func populate(ctx context.Context, t *testing.T, c *pgx.Conn, now time.Time) {
	t.Helper()
	n := now.UnixNano()
	life := tam.DefaultTokenLifetime.Nanoseconds()
	app, other := tam.IDHex(tamtest.ManifestID("app")), tam.IDHex(tamtest.ManifestID("other"))
	// Row i of total expires at now + life/total*(i - total/planExpiredOf):
	// the first in planExpiredOf have expired, the rest spread over the
	// token lifetime.
	for _, s := range []struct {
		what string
		q    string
		args []any
	}{
		{"devices", `INSERT INTO devices (kid, key, alg, labels, ueid, oemid, hwmodel, hwversion, preregistered, attestation,
			attested_at, attestation_reason, needs_attestation, status, last_error, last_error_code, numbering, created_at, last_seen)
			SELECT sha256(int4send(i)), '\x00'::bytea, -9, '{fleet}', '', '', '', '', true, $2, 0, '', false, $3, '', 0, '', $1, $1
			FROM generate_series(1, $4::int) i`,
			[]any{n, string(tam.AttestationNone), string(tam.StatusOK), planDevices}},
		{"installed", `INSERT INTO installed (device_kid, component_id, sequence, managed, requested, updated_at)
			SELECT sha256(int4send(i)), c, 1, true, false, $1 FROM generate_series(1, $2::int) i, unnest($3::text[]) c`,
			[]any{n, planDevices, []string{app, other}}},
		{"install_failures", `INSERT INTO install_failures (device_kid, component_id, sequence, attempts, last_error, last_at)
			SELECT sha256(int4send(i)), $3, 2, 1, 'temporary error', $1 FROM generate_series(1, $2::int) i`,
			[]any{n, planFailures, app}},
		{"reports", `INSERT INTO reports (device_kid, at, kind, err_code, message, suit_reports)
			SELECT sha256(int4send(1 + i % $2::int)), $1::bigint - i, 'success', 0, '', '{}' FROM generate_series(1, $3::int) i`,
			[]any{n, planDevices, planReports}},
		{"used_tokens", `INSERT INTO used_tokens (token, expires_at)
			SELECT sha256(int8send(i) || 'query'::bytea), $1::bigint + $2::bigint / $3::int * (i - $3::int / $4::int) FROM generate_series(1, $3::int) i`,
			[]any{n, life, planUsedTokens, planExpiredOf}},
		{"pending_updates", `INSERT INTO pending_updates (token, device_kid, numbering, install, remove, created_at, expires_at)
			SELECT sha256(int8send(i) || 'update'::bytea), sha256(int4send(i)), 'draft-26', '[]', '{}', $1,
			$1::bigint + $2::bigint / $3::int * (i - $3::int / $4::int) FROM generate_series(1, $3::int) i`,
			[]any{n, life, planPendingUpdates, planExpiredOf}},
		{"personalization", `INSERT INTO personalization (device_kid, name, component_id, payload_id, sequence, envelope, digest,
			depends_on, size, created_at, tenant_id)
			SELECT sha256(int4send(i)), 'config', $3, '', 1, '\x00'::bytea, '\x00'::bytea, '{}', 1, $1, $4
			FROM generate_series(1, $2::int) i`,
			[]any{n, planDevices, app, tam.DefaultTenant}},
	} {
		if _, err := c.Exec(ctx, s.q, s.args...); err != nil {
			t.Fatalf("populate %s: %v", s.what, err)
		}
	}
	// Named tables only: a bare ANALYZE would walk every schema on the
	// shared test server.
	tables := make([]string, 0, len(growingTables))
	for tbl := range growingTables {
		tables = append(tables, tbl)
	}
	if _, err := c.Exec(ctx, "ANALYZE "+strings.Join(tables, ", ")); err != nil {
		t.Fatal(err)
	}
}

// planNode is the part of EXPLAIN (FORMAT JSON) output the test reads.
type planNode struct {
	NodeType    string     `json:"Node Type"`
	Operation   string     `json:"Operation"`
	Relation    string     `json:"Relation Name"`
	Index       string     `json:"Index Name"`
	IndexCond   string     `json:"Index Cond"`
	RecheckCond string     `json:"Recheck Cond"`
	Filter      string     `json:"Filter"`
	Arbiters    []string   `json:"Conflict Arbiter Indexes"`
	Parent      string     `json:"Parent Relationship"`
	SubplanName string     `json:"Subplan Name"`
	Rows        float64    `json:"Plan Rows"`
	Plans       []planNode `json:"Plans"`
}

// problems lists the nodes of p that read a growing table without an
// index condition.
func (p planNode) problems() []string {
	var out []string
	if growingTables[p.Relation] {
		switch p.NodeType {
		case "Seq Scan", "Tid Range Scan", "Sample Scan":
			out = append(out, fmt.Sprintf("%s on %s", p.NodeType, p.Relation))
		case "Index Scan", "Index Only Scan":
			if p.IndexCond == "" {
				out = append(out, fmt.Sprintf("%s on %s using %s without an index condition (the whole index)", p.NodeType, p.Relation, p.Index))
			}
		}
	}
	for _, c := range p.Plans {
		out = append(out, c.problems()...)
	}
	return out
}

// render writes p as an indented tree, one node a line.
func (p planNode) render(b *strings.Builder, depth int) {
	fmt.Fprintf(b, "%s%s", strings.Repeat("  ", depth), p.NodeType)
	if p.Operation != "" && p.NodeType == "ModifyTable" {
		fmt.Fprintf(b, " %s", p.Operation)
	}
	if p.Relation != "" {
		fmt.Fprintf(b, " on %s", p.Relation)
	}
	if p.Index != "" {
		fmt.Fprintf(b, " using %s", p.Index)
	}
	for _, kv := range [][2]string{{"index cond", p.IndexCond}, {"recheck", p.RecheckCond}, {"filter", p.Filter}} {
		if kv[1] != "" {
			fmt.Fprintf(b, " [%s %s]", kv[0], kv[1])
		}
	}
	if len(p.Arbiters) > 0 {
		fmt.Fprintf(b, " [arbiter %s]", strings.Join(p.Arbiters, ", "))
	}
	if p.SubplanName != "" {
		fmt.Fprintf(b, " (%s)", p.SubplanName)
	}
	fmt.Fprintf(b, " rows=%.0f\n", p.Rows)
	for _, c := range p.Plans {
		c.render(b, depth+1)
	}
}

// Every statement the engine sends to PostgreSQL in install sessions (a
// manifest processing failure, then a Success), a steady round, the janitor's purge and
// the operator's device view is planned with an index on the tables that
// grow, in a database of planDevices devices and their history: the
// custom plan with the arguments the sessions used and the generic plan,
// neither with a Seq Scan of them (knownFullScans excepted, and logged).
// The PostgreSQL counterpart of sqlitestore's test of the same name; run
// with -v for the plans (BENCHMARKS.md, "PostgreSQL query plans").
func TestHotPathQueriesUseIndexes(t *testing.T) {
	ctx := context.Background()
	dsn := pgtest.DSN(t)
	st, err := pgstore.Open(ctx, dsn, pgstore.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(context.Background())
	populate(ctx, t, conn, time.Now())

	rec := &stmtRecorder{}
	rec.reset()
	if err := pgstore.TraceStatements(ctx, st, rec); err != nil {
		t.Fatal(err)
	}

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
	// Only what sessions, the purge and the device view send counts, not
	// the setup above.
	rec.reset()

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
				// A manifest failure, not a temporary error: it also
				// records an install failure (PutFailure).
				m = &teep.Error{Token: q.Token, ErrCode: teep.ErrManifestProcessingFailed}
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
	if _, err := eng.DeviceInfo(ctx, ak.KID(), 10); err != nil {
		t.Fatal(err)
	}

	rec.mu.Lock()
	order, args := rec.order, rec.args
	rec.mu.Unlock()
	// A statement the pool has cached runs a generic plan once PostgreSQL
	// finds it no costlier than the custom ones, so both are checked.
	gcfg, err := pgx.ParseConfig(dsn)
	if err != nil {
		t.Fatal(err)
	}
	gcfg.RuntimeParams["plan_cache_mode"] = "force_generic_plan"
	gconn, err := pgx.ConnectConfig(ctx, gcfg)
	if err != nil {
		t.Fatal(err)
	}
	defer gconn.Close(context.Background())
	checked, known := 0, 0
	for _, q := range order {
		if !plannable(q) {
			continue
		}
		custom, raw := explain(ctx, t, conn, q, args[q])
		generic, graw := explainGeneric(ctx, t, gconn, q)
		var b strings.Builder
		custom.render(&b, 1)
		msg := strings.Join(strings.Fields(q), " ") + "\n" + b.String()
		var g strings.Builder
		generic.render(&g, 1)
		if shape(custom) != shape(generic) {
			msg += "  generic plan:\n" + g.String()
		}
		t.Log(msg)
		var probs []string
		for _, p := range custom.problems() {
			probs = append(probs, "custom plan: "+p)
		}
		for _, p := range generic.problems() {
			probs = append(probs, "generic plan: "+p)
		}
		if why, ok := knownFullScans[strings.Join(strings.Fields(q), " ")]; ok {
			known++
			if len(probs) == 0 {
				t.Logf("  listed in knownFullScans but planned with an index now: remove it from the list")
			} else {
				t.Logf("  KNOWN: %s: %s", strings.Join(probs, "; "), why)
			}
			checked++
			continue
		}
		for _, p := range probs {
			t.Errorf("%s\n  %s: a table that grows read without an index condition\n  custom plan: %s\n  generic plan: %s", q, p, raw, graw)
		}
		checked++
	}
	if checked < 10 {
		t.Fatalf("only %d statements recorded: %q", checked, order)
	}
	t.Logf("%d hot-path statements planned (%d known full scans) on %d devices, %d reports, %d used tokens, %d pending Updates",
		checked, known, planDevices, planReports, planUsedTokens, planPendingUpdates)
}

// knownFullScans are statements whose plan reads a growing table whole
// today, each with why it is not failed here. Keyed by the statement with
// its whitespace collapsed.
var knownFullScans = map[string]string{
	// None: the janitor's purge DELETEs used to join their IN subquery to the
	// whole table; they now repeat the expiry in the outer WHERE.
}

// explain plans q with args, the custom plan a session's values get.
func explain(ctx context.Context, t *testing.T, c *pgx.Conn, q string, args []any) (planNode, []byte) {
	t.Helper()
	var out []byte
	if err := c.QueryRow(ctx, "EXPLAIN (FORMAT JSON) "+q, args...).Scan(&out); err != nil {
		t.Fatalf("EXPLAIN %s: %v", q, err)
	}
	return decodePlan(t, q, out), out
}

// explainGeneric plans q as a prepared statement on c, whose
// plan_cache_mode forces the generic plan: the parameters are unknown to
// the planner, so NULLs stand for them.
func explainGeneric(ctx context.Context, t *testing.T, c *pgx.Conn, q string) (planNode, []byte) {
	t.Helper()
	simple := pgx.QueryExecModeSimpleProtocol
	if _, err := c.Exec(ctx, "PREPARE plan_probe AS "+q, simple); err != nil {
		t.Fatalf("PREPARE %s: %v", q, err)
	}
	defer c.Exec(ctx, "DEALLOCATE plan_probe", simple)
	var n int
	if err := c.QueryRow(ctx, `SELECT cardinality(parameter_types) FROM pg_prepared_statements WHERE name = 'plan_probe'`).Scan(&n); err != nil {
		t.Fatal(err)
	}
	call := "EXPLAIN (FORMAT JSON) EXECUTE plan_probe"
	if n > 0 {
		call += "(" + strings.TrimSuffix(strings.Repeat("NULL, ", n), ", ") + ")"
	}
	var out []byte
	if err := c.QueryRow(ctx, call, simple).Scan(&out); err != nil {
		t.Fatalf("%s for %s: %v", call, q, err)
	}
	return decodePlan(t, q, out), out
}

func decodePlan(t *testing.T, q string, out []byte) planNode {
	t.Helper()
	var plans []struct {
		Plan planNode `json:"Plan"`
	}
	if err := json.Unmarshal(out, &plans); err != nil || len(plans) != 1 {
		t.Fatalf("EXPLAIN %s: %d plans, %v", q, len(plans), err)
	}
	return plans[0].Plan
}

// shape is p's node types, relations and indexes, without the conditions
// (which name the custom plan's values).
func shape(p planNode) string {
	s := p.NodeType + "/" + p.Relation + "/" + p.Index + "("
	for _, c := range p.Plans {
		s += shape(c) + ","
	}
	return s + ")"
}
