// Package admin is the TAM's management API: JSON over HTTP under
// /admin/v1/ with bearer-token authentication (docs/openapi/admin-v1.yaml),
// the Prometheus /metrics endpoint, health checks, and a Go client the CLI
// uses.
package admin
