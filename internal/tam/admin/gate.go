package admin

import (
	"net/http"
	"sync"

	"github.com/teep-go/teep/internal/tam"
)

// The access table, for other front ends of the API (the web console,
// package console): they call the API's own handlers, so authentication,
// the access rules and the audit path are this package's; MinRole only lets
// them leave out what a token could not do anyway.

var (
	tableOnce sync.Once
	tableMux  *http.ServeMux
	tableRole map[string]tam.Role
)

// MinRole returns the least role the access table asks for method on the
// API path (for example "POST", "/admin/v1/policies"), found with the same
// pattern matching as the API; ok is false when no route takes it.
func MinRole(method, path string) (role tam.Role, ok bool) {
	tableOnce.Do(func() {
		tableMux, tableRole = http.NewServeMux(), map[string]tam.Role{}
		for _, rt := range (&server{}).routes() {
			tableMux.Handle(rt.pattern, http.NotFoundHandler())
			tableRole[rt.pattern] = rt.min
		}
	})
	r, err := http.NewRequest(method, path, nil)
	if err != nil {
		return "", false
	}
	_, pattern := tableMux.Handler(r)
	role, ok = tableRole[pattern]
	return role, ok
}

// Permits reports whether the access table lets role call method on path.
// The tenant rules still apply when the call is made.
func Permits(role tam.Role, method, path string) bool {
	min, ok := MinRole(method, path)
	return ok && role.Rank() >= min.Rank()
}
