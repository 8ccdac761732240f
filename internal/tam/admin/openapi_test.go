package admin

import (
	"os"
	"strings"
	"testing"
)

// TestOpenAPICoversRoutes keeps docs/openapi/admin-v1.yaml in step with the
// routes: every path is documented with every method it serves.
func TestOpenAPICoversRoutes(t *testing.T) {
	b, err := os.ReadFile("../../../docs/openapi/admin-v1.yaml")
	if err != nil {
		t.Fatal(err)
	}
	doc := string(b)
	for _, rt := range (&server{}).routes() {
		method, path, _ := strings.Cut(rt.pattern, " ")
		i := strings.Index(doc, "\n  "+path+":\n")
		if i < 0 {
			t.Errorf("%s is not documented", path)
			continue
		}
		// The path's block ends at the next path entry (two-space indent).
		block := doc[i+1:]
		if j := strings.Index(block[3:], "\n  /"); j >= 0 {
			block = block[:j+3]
		}
		if j := strings.Index(block, "\ncomponents:"); j >= 0 {
			block = block[:j]
		}
		if !strings.Contains(block, "\n    "+strings.ToLower(method)+":") {
			t.Errorf("%s %s is not documented", method, path)
		}
	}
}

// TestOpenAPIErrorsAreProblems keeps the documented error body the one the
// server sends: RFC 9457 problem details.
func TestOpenAPIErrorsAreProblems(t *testing.T) {
	b, err := os.ReadFile("../../../docs/openapi/admin-v1.yaml")
	if err != nil {
		t.Fatal(err)
	}
	doc := string(b)
	if strings.Contains(doc, "schemas/Error") || !strings.Contains(doc, "application/problem+json: {schema: {$ref: \"#/components/schemas/Problem\"}}") {
		t.Error("error responses are not documented as application/problem+json Problem")
	}
	i := strings.Index(doc, "\n    Problem:\n")
	if i < 0 {
		t.Fatal("no Problem schema")
	}
	schema := doc[i+1:]
	// The schema ends at the next schema (four-space indent).
	for j := 1; j < len(schema); j++ {
		if strings.HasPrefix(schema[j:], "\n    ") && !strings.HasPrefix(schema[j:], "\n     ") {
			schema = schema[:j]
			break
		}
	}
	for _, m := range []string{"type", "title", "status", "detail"} {
		if !strings.Contains(schema, "\n        "+m+": ") {
			t.Errorf("the Problem schema lacks %s", m)
		}
	}
}
