package broker

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/teep-go/teep/cosekey"
	"github.com/teep-go/teep/internal/agent"
	"github.com/teep-go/teep/internal/tee/softtee"
)

// A TAM that answers garbage: the real Agent refuses the first reply with
// an Error, and the second invalid reply ends the session with one error
// naming the first refusal, instead of 64 exchanges of repeated Errors.
func TestTAMThatAnswersGarbageEndsTheSession(t *testing.T) {
	var posts atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		posts.Add(1)
		w.Header().Set("Content-Type", MediaType)
		w.Write([]byte{0xd2, 0x84, 0x40, 0xa0, 0x41, 0x00, 0x40}) // a COSE_Sign1 that verifies nothing
	}))
	defer srv.Close()

	tt, err := softtee.Open(t.TempDir(), softtee.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer tt.Close()
	tamKey, err := cosekey.Generate(cosekey.AlgESP256)
	if err != nil {
		t.Fatal(err)
	}
	if err := agent.AddTrustAnchor(tt.Storage(), agent.RoleTAM, tamKey.PublicKey()); err != nil {
		t.Fatal(err)
	}
	inst, err := agent.NewSUIT(agent.SUITConfig{TEE: tt})
	if err != nil {
		t.Fatal(err)
	}
	a, err := agent.New(agent.Config{TEE: tt, Installer: inst, TAMs: []string{srv.URL + "/tam"}})
	if err != nil {
		t.Fatal(err)
	}
	b := New(Options{Client: NewClient(ClientOptions{Retry: fastRetry})})
	b.AddAgent("t", InProcess(a))
	err = b.Sync(context.Background(), "t")
	var se *SyncError
	if !errors.As(err, &se) || !strings.Contains(err.Error(), ErrTAMInvalid.Error()) || !strings.Contains(err.Error(), "first refusal: teep: COSE structure") {
		t.Fatalf("Sync: %v, want the session ended naming the first refusal", err)
	}
	if len(se.Problems) != 2 {
		t.Fatalf("problems %q, want the session's end and the (once) refused message", se.Problems)
	}
	// The empty POST, the Error for the first reply, and nothing after the second.
	if got := posts.Load(); got != 2 {
		t.Fatalf("%d POSTs, want 2", got)
	}
}
