package broker

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"net"
	"net/http"
	"os"
	"syscall"
	"time"

	"github.com/teep-go/teep/internal/httpd"
	"github.com/teep-go/teep/internal/tee"
	"github.com/teep-go/teep/suit"
)

// The local API lets rich-OS applications (and the teep CLI) ask the Broker
// for Trusted Components: JSON over HTTP on a Unix socket that only the
// device's owner can open (mode 0600). RFC 9397 §6.2 leaves this API to the
// implementation.
//
//	GET  /v1/status                        → {"tees": [TEEStatus...]}
//	POST /v1/request {"tee","component_id","tam"} → {"tee": name}
//	POST /v1/release {"tee","component_id","tam"} → {"tee": name}
//	POST /v1/sync    {"tee"}               → {"tees": [names]}
//	POST /v1/invoke  {"tee","component_id","input"} → {"tee": name, "output": base64}
//
// Failures answer an RFC 9457 problem document (internal/httpd) with a 4xx
// (the request) or 502 (the TAM or the TEE) status; a failed sync says what
// went wrong in each session in the problems member.

// MaxLocalRequestSize bounds a local API request body.
const MaxLocalRequestSize = 64 << 10

// MaxInvokeInput is the largest Trusted Application input the local API
// carries: what fits, base64-encoded, in one request with room for the
// other members.
const MaxInvokeInput = (MaxLocalRequestSize - 1<<10) / 4 * 3

// MaxSocketPath is the longest Unix socket path that works everywhere.
const MaxSocketPath = 103

// LocalRequest is the body of the local API's POST requests.
type LocalRequest struct {
	TEE         string           `json:"tee,omitempty"`
	ComponentID suit.ComponentID `json:"component_id,omitempty"`
	TAM         string           `json:"tam,omitempty"`
	// Input is a Trusted Application's input (invoke only; base64 in JSON).
	Input []byte `json:"input,omitempty"`
}

// DecodeLocalRequest parses a local API request strictly: one JSON object,
// known fields only, no trailing data, bounded size.
func DecodeLocalRequest(data []byte) (*LocalRequest, error) {
	var r LocalRequest
	if err := decodeStrictJSON(data, MaxLocalRequestSize, &r); err != nil {
		return nil, err
	}
	if r.TAM != "" {
		if _, err := CheckTAMURI(r.TAM); err != nil {
			return nil, err
		}
	}
	if len(r.TEE) > 64 {
		return nil, fmt.Errorf("tee name is %d bytes, more than 64", len(r.TEE))
	}
	return &r, nil
}

func decodeStrictJSON(data []byte, limit int, v any) error {
	if len(data) > limit {
		return fmt.Errorf("request is %d bytes, more than %d", len(data), limit)
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return fmt.Errorf("bad JSON request: %w", err)
	}
	if _, err := dec.Token(); err != io.EOF {
		return errors.New("bad JSON request: data after the object")
	}
	return nil
}

// LocalHandler serves the local API for b.
func (b *Broker) LocalHandler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /v1/status", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusOK, map[string]any{"tees": b.Status(r.Context())})
	})
	for _, op := range []string{"request", "release"} {
		mux.HandleFunc("POST /v1/"+op, func(w http.ResponseWriter, r *http.Request) {
			req, ok := readLocalRequest(w, r)
			if !ok {
				return
			}
			if len(req.ComponentID) == 0 {
				writeProblem(w, httpd.NewProblem(http.StatusBadRequest, "component_id is required"))
				return
			}
			var (
				name string
				err  error
			)
			if op == "request" {
				name, err = b.RequestTA(r.Context(), req.TEE, req.ComponentID, req.TAM)
			} else {
				name, err = b.UnrequestTA(r.Context(), req.TEE, req.ComponentID, req.TAM)
			}
			if err != nil {
				writeBrokerError(w, err)
				return
			}
			writeJSON(w, http.StatusOK, map[string]string{"tee": name})
		})
	}
	mux.HandleFunc("POST /v1/sync", func(w http.ResponseWriter, r *http.Request) {
		req, ok := readLocalRequest(w, r)
		if !ok {
			return
		}
		if err := b.Sync(r.Context(), req.TEE); err != nil {
			writeBrokerError(w, err)
			return
		}
		names := b.TEEs()
		if req.TEE != "" {
			names = []string{req.TEE}
		}
		writeJSON(w, http.StatusOK, map[string]any{"tees": names})
	})
	mux.HandleFunc("POST /v1/invoke", func(w http.ResponseWriter, r *http.Request) {
		req, ok := readLocalRequest(w, r)
		if !ok {
			return
		}
		if len(req.ComponentID) == 0 {
			writeProblem(w, httpd.NewProblem(http.StatusBadRequest, "component_id is required"))
			return
		}
		name, out, err := b.Invoke(r.Context(), req.TEE, req.ComponentID, req.Input)
		if err != nil {
			writeBrokerError(w, err)
			return
		}
		writeJSON(w, http.StatusOK, InvokeResult{TEE: name, Output: out})
	})
	return httpd.WithSecurityHeaders(httpd.Routes(mux))
}

func readLocalRequest(w http.ResponseWriter, r *http.Request) (*LocalRequest, bool) {
	data, err := io.ReadAll(io.LimitReader(r.Body, MaxLocalRequestSize+1))
	if err != nil {
		writeProblem(w, httpd.NewProblem(http.StatusBadRequest, "reading the request: "+err.Error()))
		return nil, false
	}
	if len(bytes.TrimSpace(data)) == 0 {
		data = []byte("{}")
	}
	req, err := DecodeLocalRequest(data)
	if err != nil {
		writeProblem(w, httpd.NewProblem(http.StatusBadRequest, err.Error()))
		return nil, false
	}
	return req, true
}

// brokerProblem is the one place mapping Broker errors to the local API's
// statuses: an unknown TEE is the caller's mistake (404); anything else
// failed between the Broker, its TEEs and their TAMs (502).
func brokerProblem(err error) *httpd.Problem {
	if errors.Is(err, ErrUnknownTEE) || errors.Is(err, tee.ErrNotFound) {
		return httpd.NewProblem(http.StatusNotFound, err.Error())
	}
	if errors.Is(err, tee.ErrNotRunnable) {
		return httpd.NewProblem(http.StatusConflict, err.Error())
	}
	var se *SyncError
	if errors.As(err, &se) {
		return &httpd.Problem{Type: httpd.TypeSyncFailed, Title: "policy check failed", Status: http.StatusBadGateway,
			Detail: err.Error(), Problems: se.Problems}
	}
	return httpd.NewProblem(http.StatusBadGateway, err.Error())
}

func writeBrokerError(w http.ResponseWriter, err error) { writeProblem(w, brokerProblem(err)) }

// writeProblem answers a local API or Agent API failure.
func writeProblem(w http.ResponseWriter, p *httpd.Problem) { httpd.WriteProblem(w, p) }

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	enc.Encode(v)
}

// ListenUnix listens on a Unix socket at path, readable and writable by the
// owner only. A stale socket left by a crashed process is replaced; a live
// one (another process answering) is an error.
func ListenUnix(path string) (net.Listener, error) {
	// sun_path holds 108 bytes on Linux, 104 on the BSDs, NUL included.
	if len(path) > MaxSocketPath {
		return nil, fmt.Errorf("socket path %s is %d bytes, longer than the %d Unix sockets allow; use a shorter directory", path, len(path), MaxSocketPath)
	}
	if c, err := net.DialTimeout("unix", path, time.Second); err == nil {
		c.Close()
		return nil, fmt.Errorf("%s: another process is already listening", path)
	}
	if err := os.Remove(path); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return nil, err
	}
	// The socket's directory should be private (the state directory is
	// 0700); the chmod narrows the socket itself as well.
	ln, err := net.Listen("unix", path)
	if err != nil {
		return nil, err
	}
	if err := os.Chmod(path, 0o600); err != nil {
		ln.Close()
		return nil, err
	}
	return ln, nil
}

// Serve serves h on ln until ctx is cancelled, then shuts down: the
// contexts of requests in progress are cancelled and they get up to grace to
// finish. No read or write timeout: a sync answers after whole sessions.
func Serve(ctx context.Context, ln net.Listener, h http.Handler, grace time.Duration, log *slog.Logger) error {
	srv, err := httpd.NewServer(httpd.ServerConfig{Handler: h, ShutdownTimeout: grace, CancelOnShutdown: true, Logger: log})
	if err != nil {
		return err
	}
	return srv.Serve(ctx, ln)
}

// ErrNotRunning: nothing listens on the local socket.
var ErrNotRunning = errors.New("broker: no daemon is listening on the local socket")

// LocalClient calls the local API of a running Broker.
type LocalClient struct {
	http *http.Client
}

// NewLocalClient returns a client for the socket at path.
func NewLocalClient(path string) *LocalClient {
	return &LocalClient{http: unixHTTPClient(path)}
}

func unixHTTPClient(path string) *http.Client {
	return &http.Client{Transport: &http.Transport{
		DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			var d net.Dialer
			return d.DialContext(ctx, "unix", path)
		},
		MaxIdleConns: 2,
	}}
}

// notRunning maps "no socket" and "nobody listening" to ErrNotRunning.
func notRunning(err error) error {
	if errors.Is(err, fs.ErrNotExist) || errors.Is(err, syscall.ECONNREFUSED) || errors.Is(err, syscall.ENOENT) {
		return fmt.Errorf("%w (%v)", ErrNotRunning, err)
	}
	return err
}

// unixCall sends in (nil: no body) as JSON to url over client and returns
// the status, Content-Type and body (at most limit bytes): the request half
// shared by LocalClient and RemoteAgent.
func unixCall(ctx context.Context, client *http.Client, method, url string, in any, limit int64) (int, string, []byte, error) {
	var body io.Reader
	if in != nil {
		b, err := json.Marshal(in)
		if err != nil {
			return 0, "", nil, err
		}
		body = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, url, body)
	if err != nil {
		return 0, "", nil, err
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := client.Do(req)
	if err != nil {
		return 0, "", nil, notRunning(err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, limit+1))
	if err != nil {
		return 0, "", nil, err
	}
	if int64(len(data)) > limit {
		return 0, "", nil, fmt.Errorf("answer larger than %d bytes", limit)
	}
	return resp.StatusCode, resp.Header.Get("Content-Type"), data, nil
}

func (c *LocalClient) call(ctx context.Context, method, path string, in, out any) error {
	status, ct, data, err := unixCall(ctx, c.http, method, "http://teep-broker"+path, in, DefaultMaxMessageSize)
	if err != nil {
		return err
	}
	if status != http.StatusOK {
		le := &LocalError{Status: status, Message: httpd.ErrorText(ct, data)}
		if p, err := httpd.ParseProblem(ct, data); err == nil {
			le.Problems = p.Problems
		}
		if le.Message == "" {
			le.Message = http.StatusText(status)
		}
		return le
	}
	if out == nil {
		return nil
	}
	return json.Unmarshal(data, out)
}

// LocalError is a failure reported by the daemon.
type LocalError struct {
	Status   int
	Message  string
	Problems []string
}

func (e *LocalError) Error() string { return e.Message }

// Status lists the TEEs and what they hold.
func (c *LocalClient) Status(ctx context.Context) ([]TEEStatus, error) {
	var out struct {
		TEEs []TEEStatus `json:"tees"`
	}
	if err := c.call(ctx, http.MethodGet, "/v1/status", nil, &out); err != nil {
		return nil, err
	}
	return out.TEEs, nil
}

// Request asks for a Trusted Component; it returns the TEE that handled it.
func (c *LocalClient) Request(ctx context.Context, tee string, id suit.ComponentID, tam string) (string, error) {
	var out struct {
		TEE string `json:"tee"`
	}
	err := c.call(ctx, http.MethodPost, "/v1/request", LocalRequest{TEE: tee, ComponentID: id, TAM: tam}, &out)
	return out.TEE, err
}

// Release says a Trusted Component is no longer needed.
func (c *LocalClient) Release(ctx context.Context, tee string, id suit.ComponentID, tam string) (string, error) {
	var out struct {
		TEE string `json:"tee"`
	}
	err := c.call(ctx, http.MethodPost, "/v1/release", LocalRequest{TEE: tee, ComponentID: id, TAM: tam}, &out)
	return out.TEE, err
}

// Invoke runs an installed Trusted Application with input and returns
// the TEE that ran it and the output.
func (c *LocalClient) Invoke(ctx context.Context, tee string, id suit.ComponentID, input []byte) (*InvokeResult, error) {
	var out InvokeResult
	if err := c.call(ctx, http.MethodPost, "/v1/invoke", LocalRequest{TEE: tee, ComponentID: id, Input: input}, &out); err != nil {
		return nil, err
	}
	return &out, nil
}

// InvokeResult is the answer of the local API's invoke call.
type InvokeResult struct {
	TEE    string `json:"tee"`
	Output []byte `json:"output"`
}

// invoker is an Agent that runs Trusted Applications; the in-process
// Agent is one, a remote Agent (another process) is not yet.
type invoker interface {
	Invoke(ctx context.Context, id suit.ComponentID, input []byte) ([]byte, error)
}

func (p inProcess) Invoke(ctx context.Context, id suit.ComponentID, input []byte) ([]byte, error) {
	return p.a.Invoke(ctx, id, input)
}

// Invoke runs the Trusted Application id on tee ("" = the default TEE).
// Invocations do not take the TEE's session lock: the TEE serializes what
// it must (one component's invocations), and a long TAM session does not
// hold up applications.
func (b *Broker) Invoke(ctx context.Context, teeName string, id suit.ComponentID, input []byte) (string, []byte, error) {
	name, s, err := b.slot(teeName)
	if err != nil {
		return "", nil, err
	}
	inv, ok := s.agent.(invoker)
	if !ok {
		return name, nil, fmt.Errorf("TEE %s: %w: its Agent does not run Trusted Applications", name, tee.ErrNotRunnable)
	}
	out, err := inv.Invoke(ctx, id, input)
	if err != nil {
		return name, nil, fmt.Errorf("TEE %s: %w", name, err)
	}
	return name, out, nil
}

// Sync triggers a policy check for one TEE ("" = all) and waits for it.
func (c *LocalClient) Sync(ctx context.Context, tee string) error {
	return c.call(ctx, http.MethodPost, "/v1/sync", LocalRequest{TEE: tee}, nil)
}
