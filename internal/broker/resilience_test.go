package broker

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"
)

// A TAM that wrongly wants a Content-Type on the empty POST: the client
// retries once with one, and sends it from then on to that TAM only.
func TestEmptyPOSTToATAMThatWantsAContentType(t *testing.T) {
	var mu sync.Mutex
	var seenTypes []string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		defer mu.Unlock()
		seenTypes = append(seenTypes, r.Header.Get("Content-Type"))
		if r.Header.Get("Content-Type") != MediaType {
			w.WriteHeader(http.StatusUnsupportedMediaType)
			return
		}
		w.WriteHeader(http.StatusNoContent)
	}))
	defer srv.Close()
	c := NewClient(ClientOptions{Retry: fastRetry})
	for i := 0; i < 2; i++ {
		if _, err := c.Post(context.Background(), srv.URL, nil); err != nil {
			t.Fatalf("Post %d: %v", i, err)
		}
	}
	mu.Lock()
	defer mu.Unlock()
	if got := strings.Join(seenTypes, ","); got != ","+MediaType+","+MediaType {
		t.Fatalf("Content-Types sent: %q, want none, then %s twice", got, MediaType)
	}
	// A TAM that refuses even then: the 415 is the answer, no loop.
	refuse := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusUnsupportedMediaType)
	}))
	defer refuse.Close()
	if _, err := c.Post(context.Background(), refuse.URL, nil); !isStatus(err, http.StatusUnsupportedMediaType) {
		t.Fatalf("Post to a TAM that always says 415: %v", err)
	}
}

// A TAM that dies after receiving a TEEP message: the session restarts
// from an empty POST instead of replaying the message, whose token the
// TAM may have consumed.
func TestInterruptedSessionRestartsFromEmptyPOST(t *testing.T) {
	var mu sync.Mutex
	var bodies []string
	died := false
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		mu.Lock()
		defer mu.Unlock()
		bodies = append(bodies, string(body))
		switch {
		case len(body) == 0:
			w.Header().Set("Content-Type", MediaType)
			w.Write([]byte("QueryRequest"))
		case !died:
			died = true
			w.WriteHeader(http.StatusServiceUnavailable) // consumed, then failed
		default:
			w.WriteHeader(http.StatusNoContent)
		}
	}))
	defer srv.Close()
	a := &fakeAgent{tam: srv.URL, replies: 2}
	b := New(Options{Client: NewClient(ClientOptions{Retry: fastRetry})})
	b.AddAgent("t", a)
	if err := b.Sync(context.Background(), "t"); err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	defer mu.Unlock()
	if got := strings.Join(bodies, "|"); got != "|re:QueryRequest||re:QueryRequest" {
		t.Fatalf("requests %q: want the session started again from an empty POST, nothing replayed", got)
	}
	if len(a.errors) != 0 {
		t.Fatalf("the Agent was told of a failure: %q", a.errors)
	}
}

// A TAM that never finishes: the session ends at its deadline.
func TestSessionDeadline(t *testing.T) {
	release := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", MediaType)
		w.WriteHeader(http.StatusOK)
		w.Write([]byte{0x82})
		w.(http.Flusher).Flush()
		select { // trickles nothing more
		case <-release:
		case <-r.Context().Done():
		}
	}))
	defer srv.Close()
	defer close(release)
	a := &fakeAgent{tam: srv.URL}
	b := New(Options{Client: NewClient(ClientOptions{Retry: fastRetry}), SessionTimeout: 50 * time.Millisecond})
	b.AddAgent("t", a)
	err := b.Sync(context.Background(), "t")
	if err == nil || !strings.Contains(err.Error(), "exceeded its deadline of 50ms") {
		t.Fatalf("Sync: %v, want the session deadline", err)
	}
	var se *SyncError
	if !errors.As(err, &se) {
		t.Fatalf("%T", err)
	}
}
