package sqlitestore

import (
	"context"
	"sort"
)

// ForgetStatements drops the prepared statements, so Statements lists only
// what runs after it.
func (s *Store) ForgetStatements() {
	s.writeStmts.close()
	s.readStmts.close()
}

// Statements lists every distinct SQL statement run through the store
// since ForgetStatements.
func (s *Store) Statements() []string {
	set := map[string]bool{}
	for _, c := range []*stmtCache{s.writeStmts, s.readStmts} {
		c.mu.Lock()
		for q := range c.m {
			set[q] = true
		}
		for q := range c.pending {
			set[q] = true
		}
		c.mu.Unlock()
	}
	var qs []string
	for q := range set {
		qs = append(qs, q)
	}
	sort.Strings(qs)
	return qs
}

// Explain returns the detail lines of EXPLAIN QUERY PLAN for q, with every
// parameter NULL.
func (s *Store) Explain(ctx context.Context, q string, params int) ([]string, error) {
	args := make([]any, params)
	rows, err := s.reader.QueryContext(ctx, "EXPLAIN QUERY PLAN "+q, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var id, parent, notUsed int
		var detail string
		if err := rows.Scan(&id, &parent, &notUsed, &detail); err != nil {
			return nil, err
		}
		out = append(out, detail)
	}
	return out, rows.Err()
}
