package broker

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"

	"github.com/teep-go/teep/internal/httpd"
	"github.com/teep-go/teep/suit"
)

// The Broker/Agent boundary across a process boundary: an Agent process
// serves AgentHandler on a local socket and the Broker talks to it through
// RemoteAgent, which implements Agent. Each RFC 9397 §6.2.1 call is one
// POST with a JSON body; TEEP messages travel as base64 (JSON []byte).
//
//	POST /agent/v1/request-ta      {"component_id", "tam"}  → AgentResult
//	POST /agent/v1/unrequest-ta    {"component_id", "tam"}  → AgentResult
//	POST /agent/v1/policy-check    {}                       → AgentResult
//	POST /agent/v1/process-message {"tam", "message"}       → AgentResult
//	POST /agent/v1/process-error   {"tam", "error"}         → {}
//	GET  /agent/v1/status                                   → TEEStatus

// MaxAgentCallSize bounds one call across the boundary (a TEEP message with
// an Update's manifests, base64-encoded).
const MaxAgentCallSize = DefaultMaxMessageSize*4/3 + 4096

// AgentCall is the body of a call to a remote Agent.
type AgentCall struct {
	ComponentID suit.ComponentID `json:"component_id,omitempty"`
	TAM         string           `json:"tam,omitempty"`
	Message     []byte           `json:"message,omitempty"`
	Error       string           `json:"error,omitempty"`
}

// AgentResult is the answer of a remote Agent.
type AgentResult struct {
	TAM      string   `json:"tam,omitempty"`
	Message  []byte   `json:"message,omitempty"`
	Problems []string `json:"problems,omitempty"`
	Refused  string   `json:"refused,omitempty"`
}

// DecodeAgentCall parses a call strictly (one object, known fields, no
// trailing data, bounded size).
func DecodeAgentCall(data []byte) (*AgentCall, error) {
	var c AgentCall
	if err := decodeStrictJSON(data, MaxAgentCallSize, &c); err != nil {
		return nil, err
	}
	if c.TAM != "" {
		if _, err := CheckTAMURI(c.TAM); err != nil {
			return nil, err
		}
	}
	return &c, nil
}

// AgentHandler serves a as a remote Agent.
func AgentHandler(a Agent) http.Handler {
	mux := http.NewServeMux()
	handle := func(op string, fn func(ctx context.Context, c *AgentCall) (Result, error)) {
		mux.HandleFunc("POST /agent/v1/"+op, func(w http.ResponseWriter, r *http.Request) {
			data, err := io.ReadAll(io.LimitReader(r.Body, MaxAgentCallSize+1))
			if err != nil {
				writeProblem(w, httpd.NewProblem(http.StatusBadRequest, err.Error()))
				return
			}
			c, err := DecodeAgentCall(data)
			if err != nil {
				writeProblem(w, httpd.NewProblem(http.StatusBadRequest, err.Error()))
				return
			}
			res, err := fn(r.Context(), c)
			if err != nil {
				writeProblem(w, httpd.NewProblem(http.StatusInternalServerError, err.Error()))
				return
			}
			writeJSON(w, http.StatusOK, AgentResult{TAM: res.TAMURI, Message: res.Message, Problems: res.Problems, Refused: res.Refused})
		})
	}
	handle("request-ta", func(ctx context.Context, c *AgentCall) (Result, error) {
		if len(c.ComponentID) == 0 {
			return Result{}, errors.New("component_id is required")
		}
		return a.RequestTA(ctx, c.ComponentID, c.TAM)
	})
	handle("unrequest-ta", func(ctx context.Context, c *AgentCall) (Result, error) {
		if len(c.ComponentID) == 0 {
			return Result{}, errors.New("component_id is required")
		}
		return a.UnrequestTA(ctx, c.ComponentID, c.TAM)
	})
	handle("policy-check", func(ctx context.Context, c *AgentCall) (Result, error) {
		return a.RequestPolicyCheck(ctx)
	})
	handle("process-message", func(ctx context.Context, c *AgentCall) (Result, error) {
		if c.TAM == "" || len(c.Message) == 0 {
			return Result{}, errors.New("tam and message are required")
		}
		return a.ProcessTeepMessage(ctx, c.TAM, c.Message)
	})
	handle("process-error", func(ctx context.Context, c *AgentCall) (Result, error) {
		if c.TAM == "" {
			return Result{}, errors.New("tam is required")
		}
		a.ProcessError(ctx, c.TAM, errors.New(c.Error))
		return Result{}, nil
	})
	mux.HandleFunc("GET /agent/v1/status", func(w http.ResponseWriter, r *http.Request) {
		st, err := a.Status(r.Context())
		if err != nil {
			writeProblem(w, httpd.NewProblem(http.StatusInternalServerError, err.Error()))
			return
		}
		writeJSON(w, http.StatusOK, st)
	})
	return httpd.Routes(mux)
}

// RemoteAgent is an Agent in another process, reached over a Unix socket.
type RemoteAgent struct {
	http *http.Client
}

var _ Agent = (*RemoteAgent)(nil)

// DialAgent returns a RemoteAgent for the Agent process serving on the Unix
// socket at path. Nothing is dialled until the first call.
func DialAgent(path string) *RemoteAgent {
	return &RemoteAgent{http: unixHTTPClient(path)}
}

func (r *RemoteAgent) do(ctx context.Context, method, op string, in *AgentCall, out any) error {
	var body any
	if in != nil {
		body = in
	}
	status, ct, data, err := unixCall(ctx, r.http, method, "http://teep-agent/agent/v1/"+op, body, MaxAgentCallSize)
	if err != nil {
		return fmt.Errorf("remote agent: %w", err)
	}
	if status != http.StatusOK {
		return fmt.Errorf("remote agent: status %d: %s", status, httpd.ErrorText(ct, data))
	}
	if err := json.Unmarshal(data, out); err != nil {
		return fmt.Errorf("remote agent: bad answer: %w", err)
	}
	return nil
}

func (r *RemoteAgent) result(ctx context.Context, op string, in *AgentCall) (Result, error) {
	var out AgentResult
	if err := r.do(ctx, http.MethodPost, op, in, &out); err != nil {
		return Result{}, err
	}
	if out.TAM != "" {
		if _, err := CheckTAMURI(out.TAM); err != nil {
			return Result{}, fmt.Errorf("remote agent: %w", err)
		}
	}
	return Result{TAMURI: out.TAM, Message: out.Message, Problems: out.Problems, Refused: out.Refused}, nil
}

// RequestTA implements Agent.
func (r *RemoteAgent) RequestTA(ctx context.Context, id suit.ComponentID, tam string) (Result, error) {
	return r.result(ctx, "request-ta", &AgentCall{ComponentID: id, TAM: tam})
}

// UnrequestTA implements Agent.
func (r *RemoteAgent) UnrequestTA(ctx context.Context, id suit.ComponentID, tam string) (Result, error) {
	return r.result(ctx, "unrequest-ta", &AgentCall{ComponentID: id, TAM: tam})
}

// RequestPolicyCheck implements Agent.
func (r *RemoteAgent) RequestPolicyCheck(ctx context.Context) (Result, error) {
	return r.result(ctx, "policy-check", &AgentCall{})
}

// ProcessTeepMessage implements Agent.
func (r *RemoteAgent) ProcessTeepMessage(ctx context.Context, tam string, msg []byte) (Result, error) {
	return r.result(ctx, "process-message", &AgentCall{TAM: tam, Message: msg})
}

// ProcessError implements Agent. A failure to reach the Agent process is
// dropped: the Broker is already reporting the transport failure.
func (r *RemoteAgent) ProcessError(ctx context.Context, tam string, cause error) {
	msg := ""
	if cause != nil {
		msg = cause.Error()
	}
	var out struct{}
	r.do(ctx, http.MethodPost, "process-error", &AgentCall{TAM: tam, Error: msg}, &out)
}

// Status implements Agent.
func (r *RemoteAgent) Status(ctx context.Context) (*TEEStatus, error) {
	var st TEEStatus
	if err := r.do(ctx, http.MethodGet, "status", nil, &st); err != nil {
		return nil, err
	}
	return &st, nil
}
