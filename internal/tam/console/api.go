package console

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"

	"github.com/teep-go/teep/internal/httpd"
)

// apiError is a refusal of the admin API: its HTTP status and detail.
type apiError struct {
	Status int
	Detail string
}

func (e *apiError) Error() string {
	return fmt.Sprintf("%d %s: %s", e.Status, http.StatusText(e.Status), e.Detail)
}

// call runs one admin API request in process, as the holder of secret, and
// decodes a JSON answer into out (when not nil). The request keeps the
// browser's peer address and TLS state, so the API logs and audits the
// real client.
func (c *Console) call(r *http.Request, secret, method, path, contentType string, body []byte, out any) error {
	return c.callCtx(r.Context(), r, secret, method, path, contentType, body, out)
}

func (c *Console) callCtx(ctx context.Context, orig *http.Request, secret, method, path, contentType string, body []byte, out any) error {
	req, err := http.NewRequestWithContext(ctx, method, path, bytes.NewReader(body))
	if err != nil {
		return fmt.Errorf("console: API request: %w", err)
	}
	req.Header.Set("Authorization", "Bearer "+secret)
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	if orig != nil {
		req.RemoteAddr, req.TLS, req.Host = orig.RemoteAddr, orig.TLS, orig.Host
	}
	rec := &recorder{header: http.Header{}, code: http.StatusOK}
	c.cfg.API.ServeHTTP(rec, req)
	if rec.code < 200 || rec.code > 299 {
		detail := http.StatusText(rec.code)
		if p, err := httpd.ParseProblem(rec.header.Get("Content-Type"), rec.body.Bytes()); err == nil && p.Detail != "" {
			detail = p.Detail
		}
		return &apiError{Status: rec.code, Detail: detail}
	}
	if out == nil || rec.code == http.StatusNoContent {
		return nil
	}
	if err := json.Unmarshal(rec.body.Bytes(), out); err != nil {
		return fmt.Errorf("console: decoding the answer of %s %s: %w", method, path, err)
	}
	return nil
}

// recorder keeps an in-process answer.
type recorder struct {
	header http.Header
	code   int
	body   bytes.Buffer
	wrote  bool
}

func (r *recorder) Header() http.Header { return r.header }

func (r *recorder) WriteHeader(code int) {
	if !r.wrote {
		r.code, r.wrote = code, true
	}
}

func (r *recorder) Write(b []byte) (int, error) {
	r.wrote = true
	return r.body.Write(b)
}

var _ io.Writer = (*recorder)(nil)
