package broker

import (
	"bytes"
	"errors"
	"flag"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/teep-go/teep/internal/httpd"
)

// TestBrokerProblem checks the one mapping from Broker errors to the local
// API's problem documents.
func TestBrokerProblem(t *testing.T) {
	sync := &SyncError{TEE: "main", Problems: []string{"session with http://tam: 503", "update rejected"}}
	cases := []struct {
		name     string
		err      error
		status   int
		typ      string
		problems int
	}{
		{"unknown TEE", fmt.Errorf("tee %q: %w", "nope", ErrUnknownTEE), 404, httpd.TypeBlank, 0},
		{"sync failed", fmt.Errorf("sync: %w", sync), 502, httpd.TypeSyncFailed, 2},
		{"anything else", errors.New("TAM unreachable"), 502, httpd.TypeBlank, 0},
	}
	for _, c := range cases {
		p := brokerProblem(c.err)
		if p.Status != c.status || p.Type != c.typ || len(p.Problems) != c.problems || p.Detail != c.err.Error() {
			t.Errorf("%s: %+v", c.name, p)
		}
	}
}

// TestLocalErrorFromProblem: the client reads detail and problems back.
func TestLocalErrorFromProblem(t *testing.T) {
	sock := startLocal(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		writeBrokerError(w, &SyncError{TEE: "main", Problems: []string{"one", "two"}})
	}))
	err := NewLocalClient(sock).Sync(t.Context(), "")
	var le *LocalError
	if !errors.As(err, &le) || le.Status != 502 || !strings.Contains(le.Message, "TEE main: one; two") || len(le.Problems) != 2 {
		t.Fatalf("%#v", err)
	}
	// A body that is not a problem document still gives a message.
	sock = startLocal(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Error(w, "plain failure", http.StatusTeapot)
	}))
	if err := NewLocalClient(sock).Sync(t.Context(), ""); !errors.As(err, &le) || le.Message != "plain failure" {
		t.Fatalf("%#v", err)
	}
	sock = startLocal(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(http.StatusTeapot) }))
	if err := NewLocalClient(sock).Sync(t.Context(), ""); !errors.As(err, &le) || le.Message != http.StatusText(http.StatusTeapot) {
		t.Fatalf("%#v", err)
	}
}

func TestAgentAPIProblems(t *testing.T) {
	w := httptest.NewRecorder()
	AgentHandler(nil).ServeHTTP(w, httptest.NewRequest("POST", "/agent/v1/request-ta", strings.NewReader(`{"bogus":1}`)))
	if p, err := httpd.ParseProblem(w.Header().Get("Content-Type"), w.Body.Bytes()); err != nil || w.Code != 400 || p.Status != 400 {
		t.Fatalf("%d %s: %v", w.Code, w.Body, err)
	}
	w = httptest.NewRecorder()
	AgentHandler(nil).ServeHTTP(w, httptest.NewRequest("GET", "/agent/v1/request-ta", nil))
	if w.Code != 405 || w.Header().Get("Content-Type") != httpd.MediaTypeProblem {
		t.Fatalf("%d %s", w.Code, w.Body)
	}
}

var update = flag.Bool("update", false, "rewrite testdata/*.golden")

// TestSyncFailedGolden pins the problem document of a failed sync, the one
// local API answer with an extension member (problems).
func TestSyncFailedGolden(t *testing.T) {
	w := httptest.NewRecorder()
	writeBrokerError(w, fmt.Errorf("sync: %w", &SyncError{TEE: "main",
		Problems: []string{"session with https://tam.example/tam: 503 Service Unavailable: busy; retry later", "Agent: manifest 1 rejected"}}))
	if w.Code != http.StatusBadGateway || w.Header().Get("Content-Type") != httpd.MediaTypeProblem {
		t.Fatalf("%d %q", w.Code, w.Header().Get("Content-Type"))
	}
	path := filepath.Join("testdata", "sync_failed.golden")
	if *update {
		if err := os.WriteFile(path, w.Body.Bytes(), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (go test -update writes it)", err)
	}
	if !bytes.Equal(w.Body.Bytes(), want) {
		t.Fatalf("body differs from %s (go test -update rewrites it):\n%s", path, w.Body)
	}
}
