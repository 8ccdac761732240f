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
