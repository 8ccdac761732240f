package device_test

import (
	"context"
	"crypto/rand"
	"io"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"sync"
	"testing"

	"github.com/teep-go/teep/cosekey"
	"github.com/teep-go/teep/internal/agent"
	"github.com/teep-go/teep/internal/device"
	"github.com/teep-go/teep/internal/tam/tamtest"
	"github.com/teep-go/teep/teep"
)

// resendingTAM is a scripted peer TAM that answers every QueryResponse with
// an Update carrying the same manifest, installed or not, as some TAMs do.
type resendingTAM struct {
	key      *cosekey.Signer
	envelope []byte
	mu       sync.Mutex
	updates  int
}

func (p *resendingTAM) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	token := make([]byte, 16)
	rand.Read(token)
	var m teep.Message
	switch {
	case len(body) == 0:
		m = &teep.QueryRequest{Token: token, SupportedCipherSuites: teep.MandatoryCipherSuites(),
			SupportedSUITCOSEProfiles: teep.MandatorySUITCOSEProfiles(), DataItemRequested: teep.DataItemTrustedComponents}
	default:
		op, err := teep.Open(body, teep.OpenOptions{SkipVerifyUnsafe: true})
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		if _, ok := op.Message.(*teep.QueryResponse); !ok {
			w.WriteHeader(http.StatusNoContent) // Success, Error: session over
			return
		}
		p.mu.Lock()
		p.updates++
		p.mu.Unlock()
		m = &teep.Update{Token: token, ManifestList: [][]byte{p.envelope}}
	}
	out, err := teep.Sign(m, p.key, teep.SignOptions{})
	if err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "application/teep+cbor")
	w.Write(out)
}

// Against a TAM that resends the installed manifest in every session,
// --once installs it once, then ends the round and succeeds instead of
// reinstalling until the session cap.
func TestOnceAgainstATAMThatResendsTheUpdate(t *testing.T) {
	signer := tamtest.Signer(t)
	tamKey, err := cosekey.Generate(cosekey.AlgESP256)
	if err != nil {
		t.Fatal(err)
	}
	s, _ := cosekey.NewSigner(tamKey, cosekey.AlgESP256)
	peer := &resendingTAM{key: s, envelope: tamtest.Envelope(t, signer, "app", 1, []byte("v1"))}
	srv := httptest.NewServer(peer)
	defer srv.Close()

	var mu sync.Mutex
	kinds := map[agent.EventKind]int{}
	state := filepath.Join(t.TempDir(), "state")
	o := device.Options{StateDir: state, TAM: srv.URL + "/tam", TEEs: []string{"a"},
		TAMKeys: []*cosekey.Key{tamKey.PublicKey()}, SignerKeys: []*cosekey.Key{signer.PublicKey()}, Retry: fastRetry, Once: true,
		Events: func(e agent.Event) { mu.Lock(); kinds[e.Kind]++; mu.Unlock() }}
	d, err := device.Open(context.Background(), o)
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	if err := d.Run(context.Background()); err != nil {
		t.Fatalf("--once against a resending TAM: %v", err)
	}
	mu.Lock()
	defer mu.Unlock()
	if kinds[agent.EventInstall] != 1 || kinds[agent.EventUnchanged] != 1 {
		t.Fatalf("events %v: want one install, then one unchanged resend", kinds)
	}
	if peer.updates != 2 {
		t.Fatalf("%d Updates, want 2 (the install, then one session that changed nothing)", peer.updates)
	}
}
