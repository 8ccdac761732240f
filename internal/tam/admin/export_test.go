package admin

// RoutePatterns lists the route table's patterns, so the access test can
// check it covers every route.
func RoutePatterns() []string {
	var out []string
	for _, rt := range (&server{}).routes() {
		out = append(out, rt.pattern)
	}
	return out
}
