package layering

import (
	"bufio"
	"bytes"
	"os/exec"
	"strings"
	"testing"
)

const module = "github.com/teep-go/teep"

// forbiddenInLibraries are import-path prefixes no public package may
// depend on.
var forbiddenInLibraries = []string{
	"net/http",
	"database/sql",
	"modernc.org/sqlite",
	"github.com/jackc/pgx",
	"github.com/plgd-dev/go-coap",
	"github.com/prometheus/",
	module + "/internal/",
}

// forbiddenInEngine are the prefixes the TAM engine may not import, itself
// or through any package of this module. (Prometheus, which the engine's
// metrics use, imports net/http for its own purposes: that is not the
// engine speaking HTTP, so third-party packages are not followed.)
var forbiddenInEngine = []string{"net/http"}

// forbiddenFor are further rules for single packages of ours, against their
// transitive dependencies. The shared HTTP plumbing is a leaf, so that every
// server can use it; the admin API takes that plumbing from it, not from its
// sibling the TEEP endpoint.
var forbiddenFor = map[string][]string{
	module + "/internal/httpd":     {module + "/"},
	module + "/internal/tam/admin": {module + "/internal/tam/teephttp"},
}

// pkgDeps maps an import path to its transitive dependencies.
type pkgDeps map[string][]string

// violation is one package depending on one thing its layer forbids.
type violation struct{ pkg, dep string }

func (v violation) String() string { return v.pkg + " depends on " + v.dep }

func isLibrary(pkg string) bool {
	rest, ok := strings.CutPrefix(pkg, module+"/")
	if !ok {
		return false
	}
	first, _, _ := strings.Cut(rest, "/")
	return first != "internal" && first != "cmd" && first != "examples"
}

func matches(dep string, prefixes []string) bool {
	for _, p := range prefixes {
		if strings.HasSuffix(p, "/") {
			if strings.HasPrefix(dep, p) {
				return true
			}
		} else if dep == p || strings.HasPrefix(dep, p+"/") {
			return true
		}
	}
	return false
}

// violations applies the layering rules: deps holds each package's
// transitive dependencies, imports its direct ones.
func violations(deps, imports pkgDeps) []violation {
	var out []violation
	for pkg, all := range deps {
		for _, d := range all {
			if matches(d, forbiddenFor[pkg]) {
				out = append(out, violation{pkg, d})
			}
		}
		switch {
		case isLibrary(pkg):
			for _, d := range all {
				if matches(d, forbiddenInLibraries) {
					out = append(out, violation{pkg, d})
				}
			}
		case pkg == module+"/internal/tam":
			for _, p := range append([]string{pkg}, all...) {
				if p != pkg && !strings.HasPrefix(p, module+"/") {
					continue
				}
				for _, d := range imports[p] {
					if matches(d, forbiddenInEngine) {
						out = append(out, violation{pkg, d + " (imported by " + p + ")"})
					}
				}
			}
		}
	}
	return out
}

// loadGraph lists every package of the module with its transitive and
// direct dependencies (test imports excluded).
func loadGraph(t *testing.T) (deps, imports pkgDeps) {
	t.Helper()
	goBin, err := exec.LookPath("go")
	if err != nil {
		t.Fatalf("the go command is needed to list dependencies: %v", err)
	}
	cmd := exec.Command(goBin, "list", "-f", `{{.ImportPath}} {{join .Deps ","}} {{join .Imports ","}}`, module+"/...")
	cmd.Dir = "../.."
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("go list: %v\n%s", err, stderr.String())
	}
	deps, imports = pkgDeps{}, pkgDeps{}
	sc := bufio.NewScanner(bytes.NewReader(out))
	sc.Buffer(make([]byte, 0, 1<<20), 16<<20)
	for sc.Scan() {
		fields := strings.Split(sc.Text(), " ")
		if len(fields) != 3 {
			t.Fatalf("go list: unexpected line %q", sc.Text())
		}
		deps[fields[0]] = strings.FieldsFunc(fields[1], isComma)
		imports[fields[0]] = strings.FieldsFunc(fields[2], isComma)
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return deps, imports
}

func isComma(r rune) bool { return r == ',' }

func TestLayering(t *testing.T) {
	deps, imports := loadGraph(t)
	musts := []string{module + "/teep", module + "/suit", module + "/eat", module + "/internal/tam"}
	for pkg := range forbiddenFor {
		musts = append(musts, pkg)
	}
	for _, must := range musts {
		if _, ok := deps[must]; !ok {
			t.Fatalf("go list did not report %s: the guard would check nothing", must)
		}
	}
	for _, v := range violations(deps, imports) {
		t.Errorf("layering: %s", v)
	}
}

// TestRules proves the guard can fail: each graph breaks one rule.
func TestRules(t *testing.T) {
	tests := []struct {
		name    string
		graph   pkgDeps // transitive
		imports pkgDeps // direct; nil: the same as graph
		want    int
	}{
		{"library on net/http", pkgDeps{module + "/teep": {"bytes", "net/http"}}, nil, 1},
		{"library on a net/http sub-package", pkgDeps{module + "/suit": {"net/http/httptrace"}}, nil, 1},
		{"library on internal", pkgDeps{module + "/suit/processor": {module + "/internal/cborenc"}}, nil, 1},
		{"library on prometheus", pkgDeps{module + "/eat": {"github.com/prometheus/client_golang/prometheus"}}, nil, 1},
		{"library on sql", pkgDeps{module + "/cosekey": {"database/sql", "modernc.org/sqlite"}}, nil, 2},
		{"engine on net/http", pkgDeps{module + "/internal/tam": {"net/http"}}, nil, 1},
		{"engine through a package of ours", pkgDeps{module + "/internal/tam": {module + "/internal/verifier", "net/http"}},
			pkgDeps{module + "/internal/tam": {module + "/internal/verifier"}, module + "/internal/verifier": {"net/http"}}, 1},
		{"engine through a third-party package", pkgDeps{module + "/internal/tam": {"github.com/prometheus/client_golang/prometheus", "net/http"}},
			pkgDeps{module + "/internal/tam": {"github.com/prometheus/client_golang/prometheus"}, "github.com/prometheus/client_golang/prometheus": {"net/http"}}, 0},
		{"engine sub-package may serve HTTP", pkgDeps{module + "/internal/tam/teephttp": {"net/http"}}, nil, 0},
		{"cmd may use anything", pkgDeps{module + "/cmd/teep": {"net/http", "database/sql"}}, nil, 0},
		{"net is not net/http", pkgDeps{module + "/teep": {"net", "net/netip"}}, nil, 0},
		{"a name sharing a prefix", pkgDeps{module + "/teep": {"net/httpx"}}, nil, 0},
		{"admin on the TEEP endpoint", pkgDeps{module + "/internal/tam/admin": {module + "/internal/httpd", module + "/internal/tam/teephttp"}}, nil, 1},
		{"admin on the shared plumbing", pkgDeps{module + "/internal/tam/admin": {module + "/internal/httpd", "net/http"}}, nil, 0},
		{"plumbing on a package of ours", pkgDeps{module + "/internal/httpd": {"net/http", module + "/internal/tam"}}, nil, 1},
		{"plumbing on the standard library and Prometheus", pkgDeps{module + "/internal/httpd": {"net/http", "github.com/prometheus/client_golang/prometheus"}}, nil, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			imports := tt.imports
			if imports == nil {
				imports = tt.graph
			}
			if got := violations(tt.graph, imports); len(got) != tt.want {
				t.Errorf("violations = %v, want %d", got, tt.want)
			}
		})
	}
}
