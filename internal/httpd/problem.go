package httpd

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"strings"
	"unicode/utf8"
)

// MediaTypeProblem is the media type of problem documents (RFC 9457 §6.1).
const MediaTypeProblem = "application/problem+json"

// Limits of problem documents.
const (
	// MaxDetailBytes bounds the detail a server sends: one sentence for a
	// person, never a dump.
	MaxDetailBytes = 512
	// MaxProblemBytes bounds what ParseProblem reads.
	MaxProblemBytes = 16 << 10
	// MaxProblemItems bounds the problems extension member.
	MaxProblemItems = 64
)

// Problem types (RFC 9457 §3.1.1). TypeBlank says the status code is the
// whole story; the others carry extension members. The URIs name sections of
// docs/http-errors.md, which describes each type.
const (
	TypeBlank = "about:blank"
	typeBase  = "https://github.com/teep-go/teep/blob/main/docs/http-errors.md#"
	// TypeTEEPMessage: the TAM refused a TEEP message (draft-ietf-teep-protocol-26
	// §4.1.2 drops it); ErrCode is the TEEP err-code the failure maps to, in
	// the numbering of the endpoint, when it maps to one.
	TypeTEEPMessage = typeBase + "teep-message"
	// TypeSyncFailed: the Broker could not complete a session for one or
	// more TEEs; Problems says what happened in each.
	TypeSyncFailed = typeBase + "sync-failed"
)

// Problem is an RFC 9457 problem details object. The extension members
// (§3.2) are ours, snake_case, and omitted when empty.
type Problem struct {
	Type     string `json:"type"`
	Title    string `json:"title"`
	Status   int    `json:"status"`
	Detail   string `json:"detail,omitempty"`
	Instance string `json:"instance,omitempty"`

	// ErrCode is a TEEP err-code (draft-ietf-teep-protocol-26 §4.6); 0 is
	// reserved there and means "none" here.
	ErrCode uint64 `json:"err_code,omitempty"`
	// Problems lists what failed, one line per part (TypeSyncFailed).
	Problems []string `json:"problems,omitempty"`
}

// NewProblem is a problem of type about:blank: title is the status text
// (RFC 9457 §4.2.1), detail the sentence for the reader.
func NewProblem(status int, detail string) *Problem {
	return &Problem{Type: TypeBlank, Title: http.StatusText(status), Status: status, Detail: detail}
}

// Error lets a Problem travel as an error (handlers that return errors).
func (p *Problem) Error() string {
	if p.Detail != "" {
		return fmt.Sprintf("%d %s: %s", p.Status, p.Title, p.Detail)
	}
	return fmt.Sprintf("%d %s", p.Status, p.Title)
}

// normalized is p as it goes on the wire: a status that is an error status,
// a type and title, bounded valid UTF-8 text.
func (p *Problem) normalized() Problem {
	q := *p
	if q.Status < 400 || q.Status > 599 {
		// A problem document reports a failure; a handler that says
		// otherwise is wrong, and that is the server's fault.
		q = Problem{Status: http.StatusInternalServerError}
	}
	if q.Type == "" {
		q.Type = TypeBlank
	}
	if q.Title == "" || q.Type == TypeBlank {
		q.Title = http.StatusText(q.Status)
	}
	q.Detail = clip(q.Detail, MaxDetailBytes)
	if len(q.Problems) > MaxProblemItems {
		q.Problems = q.Problems[:MaxProblemItems]
	}
	ps := make([]string, len(q.Problems))
	for i, s := range q.Problems {
		ps[i] = clip(s, MaxDetailBytes)
	}
	if len(ps) == 0 {
		ps = nil
	}
	q.Problems = ps
	return q
}

// clip makes s valid UTF-8 of at most n bytes, cut at a character boundary.
func clip(s string, n int) string {
	s = strings.ToValidUTF8(s, "\uFFFD")
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n]
}

// WriteProblem sends p as the response. The body is small and final: the
// caller has set any other header (Allow, Retry-After, WWW-Authenticate).
func WriteProblem(w http.ResponseWriter, p *Problem) {
	q := p.normalized()
	b, err := json.MarshalIndent(q, "", "  ")
	if err != nil {
		// Only strings and integers: this cannot fail; answer anyway.
		q = Problem{Type: TypeBlank, Title: http.StatusText(http.StatusInternalServerError), Status: http.StatusInternalServerError}
		b, _ = json.Marshal(q)
	}
	h := w.Header()
	h.Set("Content-Type", MediaTypeProblem)
	h.Set("X-Content-Type-Options", "nosniff")
	h.Del("Content-Length")
	w.WriteHeader(q.Status)
	w.Write(append(b, '\n'))
}

// Errors of ParseProblem.
var (
	ErrNotProblem = errors.New("httpd: not an application/problem+json body")
	ErrBadProblem = errors.New("httpd: malformed problem document")
)

// ParseProblem decodes a problem document from an answer's Content-Type
// and body. It is strict about what it knows (one JSON object, no
// duplicate or mistyped members, no trailing data, at most
// MaxProblemBytes) and ignores extension members it does not know, as
// RFC 9457 §3.2 asks of clients. A missing type means about:blank (§3.1.1).
func ParseProblem(contentType string, body []byte) (*Problem, error) {
	mt, _, err := mime.ParseMediaType(contentType)
	if err != nil || mt != MediaTypeProblem {
		return nil, ErrNotProblem
	}
	if len(body) > MaxProblemBytes {
		return nil, fmt.Errorf("%w: %d bytes, more than %d", ErrBadProblem, len(body), MaxProblemBytes)
	}
	members, err := topLevelMembers(body)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrBadProblem, err)
	}
	p := &Problem{Type: TypeBlank}
	fields := map[string]any{
		"type": &p.Type, "title": &p.Title, "status": &p.Status, "detail": &p.Detail, "instance": &p.Instance,
		"err_code": &p.ErrCode, "problems": &p.Problems,
	}
	for name, raw := range members {
		dst, ok := fields[name]
		if !ok {
			continue
		}
		if string(raw) == "null" { // encoding/json would take it as absent
			return nil, fmt.Errorf("%w: member %q is null", ErrBadProblem, name)
		}
		if err := json.Unmarshal(raw, dst); err != nil {
			return nil, fmt.Errorf("%w: member %q: %v", ErrBadProblem, name, err)
		}
	}
	if _, ok := members["status"]; ok && (p.Status < 100 || p.Status > 599) {
		return nil, fmt.Errorf("%w: status %d is not an HTTP status code", ErrBadProblem, p.Status)
	}
	if len(p.Problems) > MaxProblemItems {
		return nil, fmt.Errorf("%w: %d problems, more than %d", ErrBadProblem, len(p.Problems), MaxProblemItems)
	}
	return p, nil
}

// topLevelMembers splits one JSON object into its members, refusing
// duplicates (encoding/json would keep the last silently) and trailing data.
func topLevelMembers(body []byte) (map[string]json.RawMessage, error) {
	dec := json.NewDecoder(bytes.NewReader(body))
	tok, err := dec.Token()
	if err != nil {
		return nil, err
	}
	if d, ok := tok.(json.Delim); !ok || d != '{' {
		return nil, errors.New("not a JSON object")
	}
	out := map[string]json.RawMessage{}
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return nil, err
		}
		name, ok := tok.(string)
		if !ok {
			return nil, errors.New("member name is not a string")
		}
		if _, dup := out[name]; dup {
			return nil, fmt.Errorf("member %q appears twice", name)
		}
		var raw json.RawMessage
		if err := dec.Decode(&raw); err != nil {
			return nil, err
		}
		out[name] = raw
	}
	if _, err := dec.Token(); err != nil { // the closing brace
		return nil, err
	}
	if _, err := dec.Token(); err != io.EOF {
		return nil, errors.New("data after the object")
	}
	return out, nil
}

// MaxErrorText bounds what ErrorText returns.
const MaxErrorText = MaxDetailBytes

// ErrorText says in one line what an error answer said, for a person: the
// detail (else the title) of a problem document, else the start of a text
// or JSON body, else the body's size and type. Control characters become
// spaces so that a hostile server cannot drive the terminal.
func ErrorText(contentType string, body []byte) string {
	var s string
	if p, err := ParseProblem(contentType, body); err == nil {
		s = p.Detail
		if s == "" {
			s = p.Title
		}
	} else if strings.HasPrefix(contentType, "text/") || strings.Contains(contentType, "json") {
		s = string(body)
	} else if len(body) > 0 {
		return fmt.Sprintf("%d-byte %s body", len(body), contentType)
	}
	s = strings.Map(func(r rune) rune {
		if r < 0x20 || r == 0x7f {
			return ' '
		}
		return r
	}, strings.ToValidUTF8(s, "?"))
	s = strings.TrimSpace(s)
	if len(s) > MaxErrorText {
		s = clip(s, MaxErrorText) + "…"
	}
	return s
}
